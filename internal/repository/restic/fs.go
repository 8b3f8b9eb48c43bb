package restic

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	kfs "github.com/kopia/kopia/fs"

	"github.com/stash-backup/stash/internal/repository"
)

// A restic tree read through kopia's fs interfaces: the same restore
// output that writes this project's snapshots writes restic's (names
// checked, nothing written outside the target or through a symlink), and
// kopia's uploader imports it into a kopia repository without a copy on
// disk.

// view is what the entries of one tree walk share.
type view struct {
	r        *Repository
	inflight int
	// links records the files of the walk that restic saw as hard links
	// (more than one link), by device and inode, in walk order; restored
	// the files a restore wrote (a walk lists files its filters leave out).
	mu       sync.Mutex
	links    map[[2]uint64][]string
	restored map[string]bool
	// leftOut counts the entries of the walk no restore output can
	// write (devices, FIFOs, sockets) by type; xattrs the files with
	// extended attributes, which are not written either.
	leftOut map[string]int
	xattrs  int
}

// note records what of n the walk cannot carry over.
func (v *view) note(n *Node, leftOut bool) {
	if !leftOut && len(n.ExtendedAttributes) == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if leftOut {
		if v.leftOut == nil {
			v.leftOut = map[string]int{}
		}
		v.leftOut[n.Type]++
		return
	}
	v.xattrs++
}

// lost says what the walk could not carry over, for an import's
// warnings.
func (v *view) lost() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for _, t := range slices.Sorted(maps.Keys(v.leftOut)) {
		out = append(out, fmt.Sprintf("%d entries of type %s left out: only files, directories and symlinks are copied", v.leftOut[t], t))
	}
	if v.xattrs > 0 {
		out = append(out, fmt.Sprintf("the extended attributes of %d entries are not copied: this project's snapshots do not record them", v.xattrs))
	}
	return out
}

// noteRestored records that a restore writes file rel.
func (v *view) noteRestored(rel string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.restored == nil {
		v.restored = map[string]bool{}
	}
	v.restored[rel] = true
}

// restoredLinks returns, per inode restic recorded, the files of it this
// restore wrote, in walk order.
func (v *view) restoredLinks() [][]string {
	groups := v.linkGroups()
	v.mu.Lock()
	defer v.mu.Unlock()
	return repository.LinksAmong(groups, v.restored)
}

// linkGroups returns every inode's files the walk saw, where it saw more
// than one, in the order of their first files.
func (v *view) linkGroups() [][]string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out [][]string
	for _, rels := range v.links {
		if len(rels) > 1 {
			out = append(out, slices.Clone(rels))
		}
	}
	slices.SortFunc(out, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return out
}

func (v *view) noteLink(n *Node, rel string) {
	if n.Type != "file" || n.Links < 2 || n.Inode == 0 {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.links == nil {
		v.links = map[[2]uint64][]string{}
	}
	k := [2]uint64{n.DeviceID, n.Inode}
	if !slices.Contains(v.links[k], rel) {
		v.links[k] = append(v.links[k], rel)
	}
}

// entry is a restic node as a kopia fs.Entry.
type entry struct {
	v   *view
	n   *Node
	rel string
}

func (e *entry) Name() string { return e.n.Name }
func (e *entry) Size() int64 {
	if e.n.Type == "symlink" {
		return int64(len(e.n.Target()))
	}
	return int64(e.n.Size)
}

func (e *entry) Mode() os.FileMode {
	m := e.n.Mode
	switch e.n.Type {
	case "dir":
		m |= fs.ModeDir
	case "symlink":
		m |= fs.ModeSymlink
	}
	return m
}
func (e *entry) ModTime() time.Time { return e.n.ModTime }
func (e *entry) IsDir() bool        { return e.n.Type == "dir" }
func (e *entry) Sys() any           { return nil }
func (e *entry) Owner() kfs.OwnerInfo {
	return kfs.OwnerInfo{UserID: e.n.UID, GroupID: e.n.GID}
}
func (e *entry) Device() kfs.DeviceInfo      { return kfs.DeviceInfo{Dev: e.n.DeviceID} }
func (e *entry) LocalFilesystemPath() string { return "" }
func (e *entry) Close()                      {}
func (e *entry) child(n *Node) (kfs.Entry, bool) {
	rel := n.Name
	if e.rel != "" {
		rel = e.rel + "/" + n.Name
	}
	c := &entry{v: e.v, n: n, rel: rel}
	e.v.note(n, n.Type != "dir" && n.Type != "file" && n.Type != "symlink")
	switch n.Type {
	case "dir":
		return &dirEntry{c}, true
	case "file":
		e.v.noteLink(n, rel)
		return &fileEntry{c}, true
	case "symlink":
		return &symlinkEntry{c}, true
	}
	// Devices, FIFOs and sockets: kopia's restore output has no such
	// entries; they are left out.
	return nil, false
}

type dirEntry struct{ *entry }

func (d *dirEntry) SupportsMultipleIterations() bool { return true }

func (d *dirEntry) children(ctx context.Context) ([]kfs.Entry, error) {
	nodes, err := d.v.r.LoadTree(ctx, *d.n.Subtree)
	if err != nil {
		return nil, fmt.Errorf("directory %s: %w", d.rel, err)
	}
	out := make([]kfs.Entry, 0, len(nodes))
	for _, n := range nodes {
		if c, ok := d.child(n); ok {
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func (d *dirEntry) Child(ctx context.Context, name string) (kfs.Entry, error) {
	cs, err := d.children(ctx)
	if err != nil {
		return nil, err
	}
	if e := kfs.FindByName(cs, name); e != nil {
		return e, nil
	}
	return nil, kfs.ErrEntryNotFound
}

func (d *dirEntry) Iterate(ctx context.Context) (kfs.DirectoryIterator, error) {
	cs, err := d.children(ctx)
	if err != nil {
		return nil, err
	}
	return kfs.StaticIterator(cs, nil), nil
}

type fileEntry struct{ *entry }

func (f *fileEntry) Open(ctx context.Context) (kfs.Reader, error) {
	f.v.noteRestored(f.rel)
	cr, err := f.v.r.newContentReader(ctx, f.n.Content, f.v.inflight)
	if err != nil {
		return nil, fmt.Errorf("file %s: %w", f.rel, err)
	}
	if cr.size != int64(f.n.Size) {
		return nil, fmt.Errorf("file %s: its blobs hold %d bytes, its entry says %d", f.rel, cr.size, f.n.Size)
	}
	return &fileReader{contentReader: cr, e: f}, nil
}

type fileReader struct {
	*contentReader
	e *fileEntry
}

func (r *fileReader) Entry() (kfs.Entry, error) { return r.e, nil }

type symlinkEntry struct{ *entry }

func (s *symlinkEntry) Readlink(context.Context) (string, error) { return s.n.Target(), nil }
func (s *symlinkEntry) Resolve(context.Context) (kfs.Entry, error) {
	return nil, fmt.Errorf("symlink %s: not resolved inside a snapshot", s.rel)
}

// rootEntry is the kopia entry of node n (reached by path rel from the
// snapshot's root).
func (v *view) rootEntry(n *Node) (kfs.Entry, error) {
	parent := &entry{v: v, n: &Node{}, rel: ""}
	e, ok := parent.child(n)
	if !ok {
		return nil, fmt.Errorf("%q is a %s: only files, directories and symlinks can be restored", n.Name, n.Type)
	}
	if d, ok := e.(*dirEntry); ok {
		d.rel = ""
	}
	return e, nil
}
