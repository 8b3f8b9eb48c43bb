// Package treeprint fingerprints a directory tree by what a backup
// records of it: the names, kinds, modes, sizes, modification times and
// owners of its entries, at every level. Two trees with the same print
// would be recorded alike, entry for entry, by a backup that trusts a
// file whose metadata did not change (as kopia's and restic's do), so a
// backup may take a subtree whose print matches the one it recorded last
// time from that snapshot, without reading it again.
//
// A print covers a directory's own metadata and every entry beneath it,
// excluded ones too: it is computed before any exclude rule applies, so a
// change anywhere below a directory changes its print.
package treeprint

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/fs/localfs"
	"github.com/kopia/kopia/snapshot"
)

// Print is a directory's fingerprint: the first 16 bytes of a SHA-256.
type Print [16]byte

// version starts every hash; it changes whenever what a print covers does.
const version = "stash treeprint 1\x00"

// Meta is what a print covers of one entry: what a backup records of it.
type Meta struct {
	Name string
	// Kind is 'd' for a directory, 'f' for a regular file, 'l' for a
	// symbolic link.
	Kind  byte
	Mode  uint32 // as os.FileMode
	Size  int64
	MTime int64 // nanoseconds since the epoch
	UID   uint32
	GID   uint32
	// Dev and Rdev are the device numbers; no print covers them.
	Dev, Rdev uint64
}

// MetaOf is the Meta of an entry of kopia's fs. It is false for an entry
// of a kind a print does not vouch for: anything but a directory, a
// regular file or a symbolic link, and kopia's placeholder entries, whose
// recorded form comes from their content.
func MetaOf(e fs.Entry) (Meta, bool) {
	if _, ok := e.(snapshot.HasDirEntryOrNil); ok {
		return Meta{}, false
	}
	var kind byte
	switch e.(type) {
	case fs.Directory:
		kind = 'd'
	case fs.File:
		kind = 'f'
	case fs.Symlink:
		kind = 'l'
	default:
		return Meta{}, false
	}
	o, d := e.Owner(), e.Device()
	return Meta{
		Name: e.Name(), Kind: kind, Mode: uint32(e.Mode()), Size: e.Size(),
		MTime: e.ModTime().UnixNano(), UID: o.UserID, GID: o.GroupID,
		Dev: d.Dev, Rdev: d.Rdev,
	}, true
}

// Local is the print of one directory level: the directory's own
// metadata and that of each of its entries, in name order.
func Local(dir Meta, entries []Meta) Print {
	sorted := slices.Clone(entries)
	slices.SortFunc(sorted, func(a, b Meta) int { return strings.Compare(a.Name, b.Name) })
	h := sha256.New()
	var buf []byte
	buf = append(buf, version...)
	buf = appendMeta(buf, dir)
	for _, e := range sorted {
		buf = binary.AppendUvarint(buf, uint64(len(e.Name)))
		buf = append(buf, e.Name...)
		buf = appendMeta(buf, e)
		if len(buf) > 32<<10 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	var p Print
	copy(p[:], h.Sum(nil))
	return p
}

// LocalOf is Local of a directory and its entries as kopia's fs gives
// them, false if one of them is of a kind MetaOf does not vouch for.
func LocalOf(dir fs.Entry, entries []fs.Entry) (Print, bool) {
	dm, ok := MetaOf(dir)
	if !ok {
		return Print{}, false
	}
	ms := make([]Meta, len(entries))
	for i, e := range entries {
		if ms[i], ok = MetaOf(e); !ok {
			return Print{}, false
		}
	}
	return Local(dm, ms), true
}

// Subtree is the print of a directory and everything beneath it: its
// local print and, in name order, each subdirectory's name and subtree
// print.
func Subtree(local Print, children map[string]Print) Print {
	names := make([]string, 0, len(children))
	for n := range children {
		names = append(names, n)
	}
	slices.Sort(names)
	h := sha256.New()
	h.Write([]byte(version))
	h.Write(local[:])
	var buf []byte
	for _, n := range names {
		c := children[n]
		buf = binary.AppendUvarint(buf[:0], uint64(len(n)))
		buf = append(buf, n...)
		buf = append(buf, c[:]...)
		h.Write(buf)
	}
	var p Print
	copy(p[:], h.Sum(nil))
	return p
}

func appendMeta(buf []byte, m Meta) []byte {
	buf = append(buf, m.Kind)
	buf = binary.LittleEndian.AppendUint32(buf, m.Mode)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(m.Size))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(m.MTime))
	buf = binary.LittleEndian.AppendUint32(buf, m.UID)
	return binary.LittleEndian.AppendUint32(buf, m.GID)
}

// Dir is what a walk learned of one directory.
type Dir struct {
	// Local is the directory level's print (Local).
	Local Print
	// Tree is the subtree's print (Subtree); valid only when Complete.
	Tree Print
	// Complete is true when every level beneath could be printed.
	Complete bool
	// Self is the directory's own metadata as walked.
	Self Meta
}

// Tree holds the prints of a walked tree's directories by their path
// relative to its root ("" for the root, "a/b" beneath it).
type Tree struct {
	dirs map[string]Dir

	mu      sync.Mutex
	entries map[string][]Meta
}

// TakeEntries returns the entries of the directory at rel as the walk
// listed them, if it kept them (Options.KeepEntries), and forgets them:
// each is taken once.
func (t *Tree) TakeEntries(rel string) ([]Meta, bool) {
	if t == nil {
		return nil, false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[rel]
	delete(t.entries, rel)
	return e, ok
}

// Dir returns the prints of the directory at rel.
func (t *Tree) Dir(rel string) (Dir, bool) {
	if t == nil {
		return Dir{}, false
	}
	d, ok := t.dirs[rel]
	return d, ok
}

// Each calls fn with every directory walked, in no particular order.
func (t *Tree) Each(fn func(rel string, d Dir)) {
	if t == nil {
		return
	}
	for rel, d := range t.dirs {
		fn(rel, d)
	}
}

// Len is the number of directories walked.
func (t *Tree) Len() int {
	if t == nil {
		return 0
	}
	return len(t.dirs)
}

// ErrTooLarge is returned by Walk for a tree of more than MaxDirs
// directories.
var ErrTooLarge = errors.New("treeprint: more directories than the walk may hold")

// Options bound a walk.
type Options struct {
	// Workers is how many directories are listed at once (1 at least).
	Workers int
	// MaxDirs bounds the directories a walk holds prints of: past it the
	// walk stops with ErrTooLarge.
	MaxDirs int
	// KeepEntries bounds the entries a walk keeps for TakeEntries, in
	// all: the listings of complete directories, while they fit.
	KeepEntries int
}

// Walk lists every directory beneath the directory root and prints each,
// reading entries as kopia's local filesystem does (lstat, a name that
// vanished between the listing and its lstat left out). A directory that
// cannot be listed, or holds an entry a print does not vouch for, is not
// Complete, and neither is any directory above it; the walk goes on.
func Walk(ctx context.Context, root string, o Options) (*Tree, error) {
	rootMeta, err := lstatMeta(root)
	if err != nil {
		return nil, err
	}
	if rootMeta.Kind != 'd' {
		return nil, fmt.Errorf("treeprint: %s is not a directory", root)
	}
	w := &walker{
		dirs:    map[string]Dir{},
		entries: map[string][]Meta{},
		sem:     make(chan struct{}, max(o.Workers, 1)-1),
		max:     o.MaxDirs,
		keep:    int64(o.KeepEntries),
	}
	w.dir(ctx, root, "", rootMeta)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if w.tooLarge.Load() {
		return nil, ErrTooLarge
	}
	return &Tree{dirs: w.dirs, entries: w.entries}, nil
}

type walker struct {
	mu       sync.Mutex
	dirs     map[string]Dir
	entries  map[string][]Meta
	sem      chan struct{}
	max      int
	keep     int64
	kept     atomic.Int64
	count    atomic.Int64
	tooLarge atomic.Bool
}

// dir walks the directory at abs (rel beneath the root, self its own
// metadata) and returns its subtree print, false if incomplete.
func (w *walker) dir(ctx context.Context, abs, rel string, self Meta) (Print, bool) {
	if w.tooLarge.Load() || ctx.Err() != nil {
		return Print{}, false
	}
	if w.max > 0 && w.count.Add(1) > int64(w.max) {
		w.tooLarge.Store(true)
		return Print{}, false
	}
	entries, complete, err := list(abs)
	if err != nil {
		w.store(rel, Dir{Self: self}, nil)
		return Print{}, false
	}
	local := Local(self, entries)
	localOK := complete

	type child struct {
		print Print
		ok    bool
	}
	var subdirs []Meta
	for _, e := range entries {
		if e.Kind == 'd' {
			subdirs = append(subdirs, e)
		}
	}
	results := make([]child, len(subdirs))
	var wg sync.WaitGroup
	for i, sd := range subdirs {
		run := func() {
			p, ok := w.dir(ctx, filepath.Join(abs, sd.Name), path.Join(rel, sd.Name), sd)
			results[i] = child{p, ok}
		}
		select {
		case w.sem <- struct{}{}:
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-w.sem }()
				run()
			}()
		default:
			run()
		}
	}
	wg.Wait()

	prints := make(map[string]Print, len(results))
	for i, c := range results {
		complete = complete && c.ok
		prints[subdirs[i].Name] = c.print
	}
	out := Dir{Local: local, Complete: complete, Self: self}
	if complete {
		out.Tree = Subtree(local, prints)
	}
	if !localOK || w.kept.Add(int64(len(entries))) > w.keep {
		entries = nil
	}
	w.store(rel, out, entries)
	return out.Tree, complete
}

func (w *walker) store(rel string, d Dir, entries []Meta) {
	w.mu.Lock()
	w.dirs[rel] = d
	if entries != nil {
		w.entries[rel] = entries
	}
	w.mu.Unlock()
}

// metaOfMode is the Meta of name with its mode as os.FileMode, false for
// a kind a print does not vouch for (MetaOf); kopia's local filesystem
// takes a name ending in its placeholder suffix for a placeholder.
func metaOfMode(name string, mode os.FileMode) (Meta, bool) {
	if strings.HasSuffix(name, localfs.ShallowEntrySuffix) {
		return Meta{}, false
	}
	var kind byte
	switch mode & os.ModeType {
	case os.ModeDir:
		kind = 'd'
	case 0:
		kind = 'f'
	case os.ModeSymlink:
		kind = 'l'
	default:
		return Meta{}, false
	}
	return Meta{Name: name, Kind: kind, Mode: uint32(mode)}, true
}
