package restic

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// Node is one entry of a restic tree, as restic's JSON holds it.
type Node struct {
	Name       string      `json:"name"`
	Type       string      `json:"type"`
	Mode       fs.FileMode `json:"mode,omitempty"`
	ModTime    time.Time   `json:"mtime,omitempty"`
	AccessTime time.Time   `json:"atime,omitempty"`
	ChangeTime time.Time   `json:"ctime,omitempty"`
	UID        uint32      `json:"uid"`
	GID        uint32      `json:"gid"`
	User       string      `json:"user,omitempty"`
	Group      string      `json:"group,omitempty"`
	Inode      uint64      `json:"inode,omitempty"`
	DeviceID   uint64      `json:"device_id,omitempty"`
	Size       uint64      `json:"size,omitempty"`
	Links      uint64      `json:"links,omitempty"`
	LinkTarget string      `json:"linktarget,omitempty"`
	// LinkTargetRaw holds a link target that is not UTF-8 (restic 0.17+).
	LinkTargetRaw []byte `json:"linktarget_raw,omitempty"`
	Device        uint64 `json:"device,omitempty"`
	Content       []ID   `json:"content"`
	Subtree       *ID    `json:"subtree,omitempty"`
	// ExtendedAttributes are only counted: neither a restore nor an
	// import writes them, and an import says so.
	ExtendedAttributes []json.RawMessage `json:"extended_attributes,omitempty"`
}

// tree is a restic tree blob.
type tree struct {
	Nodes []*Node `json:"nodes"`
}

// unquoteName undoes restic's escaping of names: restic stores a name as
// strconv.Quote without the quotes, so that bytes that are not UTF-8
// survive JSON.
func unquoteName(s string) (string, error) {
	if !strings.ContainsRune(s, '\\') && !strings.ContainsRune(s, '"') {
		return s, nil
	}
	return strconv.Unquote(`"` + s + `"`)
}

// checkName refuses a name that could leave its directory or is not a
// file name at all: trees are input from storage.
func checkName(name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("tree holds an entry named %q, which is not a file name", name)
	}
	return nil
}

// LoadTree reads and checks the tree blob id.
func (r *Repository) LoadTree(ctx context.Context, id ID) ([]*Node, error) {
	raw, err := r.LoadBlob(ctx, TreeBlob, id)
	if err != nil {
		return nil, err
	}
	var t tree
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("tree %s is not restic's JSON: %w", short(id.String()), err)
	}
	for _, n := range t.Nodes {
		if n == nil {
			return nil, fmt.Errorf("tree %s holds a null entry", short(id.String()))
		}
		name, err := unquoteName(n.Name)
		if err != nil {
			return nil, fmt.Errorf("tree %s: entry name %q: %w", short(id.String()), n.Name, err)
		}
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("tree %s: %w", short(id.String()), err)
		}
		n.Name = name
		if n.Type == "dir" && n.Subtree == nil {
			return nil, fmt.Errorf("tree %s: directory %q has no subtree", short(id.String()), name)
		}
	}
	return t.Nodes, nil
}

// Target is a symlink's target, raw bytes when restic recorded them.
func (n *Node) Target() string {
	if len(n.LinkTargetRaw) > 0 {
		return string(n.LinkTargetRaw)
	}
	return n.LinkTarget
}

// Lookup walks from tree root along the slash-separated path p ("" or
// "/" is the root itself) and returns the node of its last element.
func (r *Repository) Lookup(ctx context.Context, root ID, p string) (*Node, error) {
	cur := &Node{Name: "/", Type: "dir", Mode: fs.ModeDir | 0o755, Subtree: &root}
	for _, part := range strings.Split(strings.Trim(p, "/"), "/") {
		if part == "" {
			continue
		}
		if cur.Type != "dir" {
			return nil, fmt.Errorf("%s: %q is not a directory", p, cur.Name)
		}
		nodes, err := r.LoadTree(ctx, *cur.Subtree)
		if err != nil {
			return nil, err
		}
		var next *Node
		for _, n := range nodes {
			if n.Name == part {
				next = n
				break
			}
		}
		if next == nil {
			return nil, fmt.Errorf("%s: %q not found in the snapshot", p, part)
		}
		cur = next
	}
	return cur, nil
}
