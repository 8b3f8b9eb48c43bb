package repository

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/snapshot"

	"github.com/stash-backup/stash/internal/treeprint"
)

// An unchanged directory is taken from the previous snapshot whole.
//
// kopia's uploader trusts a file whose metadata did not change, but it
// still reads every directory of the previous snapshot to learn that, and
// writes every directory again: for a tree of many small files, a backup
// with nothing changed spent most of its time there. A directory backup
// instead walks the tree first (treeprint), while the repository opens,
// and records with each snapshot the print of every directory the
// snapshot holds as walked. The next backup of the same path hands the
// uploader, for each directory whose print is the one recorded, that
// directory's entry in the previous snapshot (the uploader's placeholder
// hook, snapshot.HasDirEntryOrNil), so it neither lists, reads nor writes
// anything beneath it.
//
// The uploader takes other directories' listings from the walk too, and
// reads a file's metadata again when it opens it (placeholders.go,
// refreshed). A print is recorded only for a directory whose every level
// the uploader read as the walk saw it (or took whole): a change between
// the walk and the upload leaves it, and every directory above it,
// unrecorded, so a record always describes what its snapshot holds.

// treePrintsType is the kopia manifest type of a snapshot's record of
// prints. One is kept per source, for its latest snapshot.
const treePrintsType = "stash-treeprints"

// Bounds on what a walk and a record hold, so that memory stays small
// for any tree: past maxWalkedDirs the walk gives up (the backup runs as
// kopia's alone would), and a record keeps the maxRecordedDirs shallowest
// directories (every manifest is read at each open of the repository).
const (
	maxWalkedDirs   = 1 << 17
	maxRecordedDirs = 4096
	// maxKeptEntries bounds the entries a walk keeps for the uploader,
	// which then lists those directories no more (about 100 bytes each).
	maxKeptEntries = 1 << 17
	// maxPrevDirBytes bounds a previous directory object read to find a
	// directory's entry; a larger one is not taken whole.
	maxPrevDirBytes = 256 << 20
)

type printRecord struct {
	// Snapshot is the ID of the snapshot the prints describe.
	Snapshot string `json:"snapshot"`
	// Policy is policyKey of the backup that took it.
	Policy string `json:"policy"`
	// Dirs maps a directory's stored path ("" for the root) to its print.
	Dirs map[string]string `json:"dirs"`
}

// policyKey names what, beside the tree, decides what a snapshot holds:
// a backup with other exclude rules must not take directories from one
// taken under these.
func policyKey(exclude []string) string {
	h := sha256.New()
	h.Write([]byte("stash treeprint policy 1\x00"))
	for _, e := range exclude {
		fmt.Fprintf(h, "%d:%s", len(e), e)
	}
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil)[:16])
}

// TreeWalk is the walk of a directory about to be backed up, started
// ahead of the backup (StartTreeWalk) so that it runs while the
// repository opens, which spends its time deriving the key on one CPU.
type TreeWalk struct {
	done   chan struct{}
	cancel context.CancelFunc
	tree   *treeprint.Tree
	err    error
}

// StartTreeWalk starts walking the directory abs, on up to GOMAXPROCS-1
// CPUs. Stop ends it early; a walk nobody waits for costs only its CPU.
func StartTreeWalk(ctx context.Context, abs string) *TreeWalk {
	ctx, cancel := context.WithCancel(ctx)
	w := &TreeWalk{done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(w.done)
		// One CPU is left to the key derivation the walk runs beside:
		// more walkers than CPUs would share them with it and delay the
		// backup they are meant to speed up.
		w.tree, w.err = treeprint.Walk(ctx, abs, treeprint.Options{
			Workers: max(runtime.GOMAXPROCS(0)-1, 1), MaxDirs: maxWalkedDirs,
			KeepEntries: maxKeptEntries,
		})
	}()
	return w
}

// StartTreeWalks starts a TreeWalk of each of paths that is a directory,
// for BackupOptions.Walks; stop ends them all.
func StartTreeWalks(ctx context.Context, paths []string) (walks map[string]*TreeWalk, stop func()) {
	walks = map[string]*TreeWalk{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			continue
		}
		if fi, err := os.Lstat(abs); err != nil || !fi.IsDir() {
			continue
		}
		if walks[abs] == nil {
			walks[abs] = StartTreeWalk(ctx, abs)
		}
	}
	return walks, func() {
		for _, w := range walks {
			w.Stop()
		}
	}
}

// Stop cancels the walk if it still runs.
func (w *TreeWalk) Stop() {
	if w != nil {
		w.cancel()
	}
}

func (w *TreeWalk) wait(ctx context.Context) (*treeprint.Tree, error) {
	select {
	case <-w.done:
		return w.tree, w.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// treeReuse is one directory backup's use of its walk: it serves the
// uploader's placeholder hook, checks each listing the uploader reads
// against the walk, and gives the record of the new snapshot.
type treeReuse struct {
	walk   *TreeWalk
	policy string

	// Set by load, before the upload starts.
	rep    repo.Repository
	prev   *snapshot.Manifest
	record map[string]treeprint.Print

	mu       sync.Mutex
	listed   map[string]bool // listed by the uploader: true if as walked
	reused   map[string]bool
	prevDirs map[string]*prevDir
}

type prevDir struct {
	once    sync.Once
	entries map[string]*snapshot.DirEntry
	err     error
}

func newTreeReuse(walk *TreeWalk, exclude []string) *treeReuse {
	return &treeReuse{
		walk: walk, policy: policyKey(exclude),
		listed: map[string]bool{}, reused: map[string]bool{}, prevDirs: map[string]*prevDir{},
	}
}

// load reads the record of prev, the snapshot the backup builds on. A
// record that is missing, of other exclude rules or unreadable means
// nothing is taken whole.
func (t *treeReuse) load(ctx context.Context, rep repo.Repository, prev *snapshot.Manifest) {
	t.rep, t.prev = rep, prev
	if prev == nil {
		return
	}
	mds, err := rep.FindManifests(ctx, map[string]string{
		manifest.TypeLabelKey: treePrintsType, "snapshot": string(prev.ID),
	})
	if err != nil || len(mds) == 0 {
		return
	}
	var rec printRecord
	if _, err := rep.GetManifest(ctx, mds[0].ID, &rec); err != nil {
		slog.Debug("tree prints unreadable", "snapshot", prev.ID, "error", err)
		return
	}
	if rec.Snapshot != string(prev.ID) || rec.Policy != t.policy {
		return
	}
	prints := make(map[string]treeprint.Print, len(rec.Dirs))
	for p, s := range rec.Dirs {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) != len(treeprint.Print{}) {
			slog.Debug("tree prints malformed", "snapshot", prev.ID, "dir", p)
			return
		}
		prints[p] = treeprint.Print(b)
	}
	t.record = prints
}

// wrap presents the source directory so that the uploader's reads of it
// come through t.
func (t *treeReuse) wrap(e fs.Entry) fs.Entry {
	if d, ok := e.(fs.Directory); ok {
		return &printedDir{Directory: d, t: t}
	}
	return e
}

// take returns the previous snapshot's entry for the directory at rel,
// whose current entry is cur, if the directory is as recorded then.
func (t *treeReuse) take(ctx context.Context, rel string, cur fs.Entry) *snapshot.DirEntry {
	if t.record == nil {
		return nil
	}
	tree, err := t.walk.wait(ctx)
	if err != nil {
		return nil
	}
	d, ok := tree.Dir(rel)
	if !ok || !d.Complete {
		return nil
	}
	if want, ok := t.record[storedPath(rel)]; !ok || want != d.Tree {
		return nil
	}
	de, err := t.prevEntry(ctx, rel)
	if err != nil {
		slog.Debug("previous directory unreadable", "dir", rel, "error", err)
		return nil
	}
	// The print says this; a record that disagreed with its snapshot
	// would be a fault, and the directory is then read as usual.
	if de == nil || de.Type != snapshot.EntryTypeDirectory || de.Name != storedName(cur.Name()) ||
		!de.ModTime.ToTime().Equal(cur.ModTime()) || de.Permissions != snapshot.Permissions(cur.Mode()&fs.ModBits) ||
		de.UserID != cur.Owner().UserID || de.GroupID != cur.Owner().GroupID || de.DirSummary == nil {
		slog.Debug("recorded directory differs from its snapshot", "dir", rel)
		return nil
	}
	t.mu.Lock()
	t.reused[rel] = true
	t.mu.Unlock()
	c := *de
	return &c
}

// prevEntry finds the entry of the directory at rel in the previous
// snapshot, reading each directory above it once.
func (t *treeReuse) prevEntry(ctx context.Context, rel string) (*snapshot.DirEntry, error) {
	if rel == "" {
		return t.prev.RootEntry, nil
	}
	parent := path.Dir(rel)
	if parent == "." {
		parent = ""
	}
	t.mu.Lock()
	pd := t.prevDirs[parent]
	if pd == nil {
		pd = &prevDir{}
		t.prevDirs[parent] = pd
	}
	t.mu.Unlock()
	pd.once.Do(func() {
		var de *snapshot.DirEntry
		if de, pd.err = t.prevEntry(ctx, parent); pd.err != nil {
			return
		}
		if de == nil || de.Type != snapshot.EntryTypeDirectory {
			pd.err = fmt.Errorf("%q is not a directory in snapshot %s", parent, t.prev.ID)
			return
		}
		pd.entries, pd.err = readDirEntries(ctx, t.rep, de)
	})
	if pd.err != nil {
		return nil, pd.err
	}
	return pd.entries[storedName(path.Base(rel))], nil
}

// readDirEntries decodes the directory object of de, by stored name.
func readDirEntries(ctx context.Context, rep repo.Repository, de *snapshot.DirEntry) (map[string]*snapshot.DirEntry, error) {
	rd, err := rep.OpenObject(ctx, de.ObjectID)
	if err != nil {
		return nil, err
	}
	defer rd.Close() //nolint:errcheck
	b, err := io.ReadAll(io.LimitReader(rd, maxPrevDirBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxPrevDirBytes {
		return nil, fmt.Errorf("directory %s is larger than %d bytes", de.ObjectID, maxPrevDirBytes)
	}
	var m snapshot.DirManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("directory %s: %w", de.ObjectID, err)
	}
	if m.StreamType != "kopia:directory" {
		return nil, fmt.Errorf("directory %s: stream type %q", de.ObjectID, m.StreamType)
	}
	out := make(map[string]*snapshot.DirEntry, len(m.Entries))
	for _, e := range m.Entries {
		out[e.Name] = e
	}
	return out, nil
}

// sawListing notes that the uploader listed the directory at rel (dir)
// as entries, and whether that is what the walk saw.
func (t *treeReuse) sawListing(ctx context.Context, rel string, dir fs.Entry, entries []fs.Entry) {
	same := false
	if tree, err := t.walk.wait(ctx); err == nil {
		if d, ok := tree.Dir(rel); ok {
			local, ok := treeprint.LocalOf(dir, entries)
			same = ok && local == d.Local
		}
	}
	t.mu.Lock()
	t.listed[rel] = same
	t.mu.Unlock()
}

// walkedEntries gives the uploader the directory at rel (dir) as the
// walk listed it, if the walk kept its listing: it is not listed again.
// The directory is then as walked if its own metadata is.
func (t *treeReuse) walkedEntries(ctx context.Context, rel string, dir fs.Entry) ([]fs.Entry, bool) {
	local := dir.LocalFilesystemPath()
	if local == "" {
		return nil, false
	}
	tree, err := t.walk.wait(ctx)
	if err != nil {
		return nil, false
	}
	metas, ok := tree.TakeEntries(rel)
	if !ok {
		return nil, false
	}
	d, _ := tree.Dir(rel)
	self, selfOK := treeprint.MetaOf(dir)
	// A file or link read in another state than walked leaves the
	// directory unrecorded.
	changed := func() {
		t.mu.Lock()
		t.listed[rel] = false
		t.mu.Unlock()
	}
	entries := make([]fs.Entry, len(metas))
	for i, m := range metas {
		e := plainEntry(plainMeta{
			name: m.Name, mode: os.FileMode(m.Mode), size: m.Size, mtime: m.MTime,
			owner: fs.OwnerInfo{UserID: m.UID, GroupID: m.GID},
			dev:   fs.DeviceInfo{Dev: m.Dev, Rdev: m.Rdev},
			path:  filepath.Join(local, m.Name),
		})
		switch x := e.(type) {
		case *plainFile:
			x.changed = changed
		case *plainSymlink:
			x.changed = changed
		}
		entries[i] = e
	}
	// The root's walked name is its path; names are the entries' own.
	self.Name, d.Self.Name = "", ""
	t.mu.Lock()
	t.listed[rel] = selfOK && self == d.Self
	t.mu.Unlock()
	return entries, true
}

// recorded returns the prints to record with the snapshot just taken: of
// each directory the snapshot holds as the walk saw it, down to its
// every level, the maxRecordedDirs shallowest.
func (t *treeReuse) recorded(ctx context.Context) map[string]string {
	tree, err := t.walk.wait(ctx)
	if err != nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	children := map[string][]string{}
	var all []string
	tree.Each(func(rel string, _ treeprint.Dir) {
		all = append(all, rel)
		if rel != "" {
			p := path.Dir(rel)
			if p == "." {
				p = ""
			}
			children[p] = append(children[p], rel)
		}
	})
	valid := map[string]bool{}
	var check func(rel string, under bool) bool
	check = func(rel string, under bool) bool {
		d, _ := tree.Dir(rel)
		ok := d.Complete && (under || t.reused[rel] || t.listed[rel])
		under = under || t.reused[rel]
		for _, c := range children[rel] {
			_, listed := t.listed[c]
			// A subdirectory the uploader neither listed nor took was
			// excluded: the snapshot does not hold it.
			if cok := check(c, under); !cok && (under || listed || t.reused[c]) {
				ok = false
			}
		}
		valid[rel] = ok
		return ok
	}
	if _, ok := tree.Dir(""); !ok {
		return nil
	}
	check("", false)
	var keep []string
	for _, rel := range all {
		if valid[rel] {
			keep = append(keep, rel)
		}
	}
	slices.SortFunc(keep, func(a, b string) int {
		if da, db := depth(a), depth(b); da != db {
			return da - db
		}
		return strings.Compare(a, b)
	})
	if len(keep) > maxRecordedDirs {
		keep = keep[:maxRecordedDirs]
	}
	out := make(map[string]string, len(keep))
	for _, rel := range keep {
		d, _ := tree.Dir(rel)
		out[storedPath(rel)] = base64.RawURLEncoding.EncodeToString(d.Tree[:])
	}
	return out
}

func depth(rel string) int {
	if rel == "" {
		return 0
	}
	return strings.Count(rel, "/") + 1
}

// save records the prints of snapshot id, taken of source, and drops the
// records of the source's earlier snapshots.
func (t *treeReuse) save(ctx context.Context, w repo.RepositoryWriter, id manifest.ID, source snapshot.SourceInfo) error {
	labels := map[string]string{
		manifest.TypeLabelKey: treePrintsType,
		"hostname":            source.Host, "username": source.UserName, "path": source.Path,
	}
	old, err := w.FindManifests(ctx, labels)
	if err != nil {
		return fmt.Errorf("find tree prints: %w", err)
	}
	if dirs := t.recorded(ctx); len(dirs) > 0 {
		rec := printRecord{Snapshot: string(id), Policy: t.policy, Dirs: dirs}
		withID := map[string]string{"snapshot": string(id)}
		for k, v := range labels {
			withID[k] = v
		}
		if _, err := w.PutManifest(ctx, withID, &rec); err != nil {
			return fmt.Errorf("record tree prints: %w", err)
		}
	}
	for _, md := range old {
		if err := w.DeleteManifest(ctx, md.ID); err != nil {
			return fmt.Errorf("drop old tree prints: %w", err)
		}
	}
	return nil
}

// dropTreePrints deletes the records of prints of the snapshots ids.
func dropTreePrints(ctx context.Context, w repo.RepositoryWriter, ids []manifest.ID) error {
	mds, err := w.FindManifests(ctx, map[string]string{manifest.TypeLabelKey: treePrintsType})
	if err != nil {
		return fmt.Errorf("find tree prints: %w", err)
	}
	for _, md := range mds {
		if slices.Contains(ids, manifest.ID(md.Labels["snapshot"])) {
			if err := w.DeleteManifest(ctx, md.ID); err != nil {
				return fmt.Errorf("drop tree prints of snapshot %s: %w", md.Labels["snapshot"], err)
			}
		}
	}
	return nil
}

// listEntries reads every entry of d, keeping the error of the listing as
// it is (as the uploader would see it from d).
func listEntries(ctx context.Context, d fs.Directory) ([]fs.Entry, error) {
	it, err := d.Iterate(ctx)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var entries []fs.Entry
	for {
		e, err := it.Next(ctx)
		if err != nil || e == nil {
			return entries, err
		}
		entries = append(entries, e)
	}
}

// printedDir is a source directory whose reads by the uploader go through
// its backup's treeReuse.
type printedDir struct {
	fs.Directory
	rel string
	t   *treeReuse
}

var _ snapshot.HasDirEntryOrNil = (*printedDir)(nil)

// DirEntryOrNil is the uploader's placeholder hook: an entry of the
// previous snapshot, taken as it is, or nil to read the directory.
func (d *printedDir) DirEntryOrNil(ctx context.Context) (*snapshot.DirEntry, error) {
	return d.t.take(ctx, d.rel, d.Directory), nil
}

func (d *printedDir) Iterate(ctx context.Context) (fs.DirectoryIterator, error) {
	entries, ok := d.t.walkedEntries(ctx, d.rel, d.Directory)
	if !ok {
		var err error
		if entries, err = listEntries(ctx, d.Directory); err != nil {
			return nil, err
		}
		d.t.sawListing(ctx, d.rel, d.Directory, entries)
	}
	for i, e := range entries {
		entries[i] = d.child(e)
	}
	return fs.StaticIterator(entries, nil), nil
}

func (d *printedDir) Child(ctx context.Context, name string) (fs.Entry, error) {
	e, err := d.Directory.Child(ctx, name)
	if err != nil {
		return nil, err
	}
	return d.child(e), nil
}

func (d *printedDir) child(e fs.Entry) fs.Entry {
	if sd, ok := e.(fs.Directory); ok {
		if _, placeholder := e.(snapshot.HasDirEntryOrNil); !placeholder {
			return &printedDir{Directory: sd, rel: path.Join(d.rel, sd.Name()), t: d.t}
		}
	}
	return e
}
