package restic

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/stash-backup/stash/internal/repository"
)

// Reader is a restic repository opened the way this project opens its
// own for reading: it lists, restores and checks through the same
// interface (repository.SnapshotReader), so the CLI, the runtimes and
// every addon's restore step read Stash's backups unchanged.
type Reader struct {
	repo  *Repository
	opts  repository.Options
	cache snapshotCache
}

var _ repository.SnapshotReader = (*Reader)(nil)

// OpenReader opens the restic repository at opts.Location with
// opts.Password. It returns an error wrapping ErrNotRestic when the
// location holds none.
func OpenReader(ctx context.Context, opts repository.Options) (*Reader, error) {
	if opts.Location == nil {
		return nil, errors.New("repository location is not set")
	}
	be, err := OpenBackend(ctx, opts.Location)
	if err != nil {
		return nil, err
	}
	repo, err := Open(ctx, be, opts.Password)
	if err != nil {
		return nil, err
	}
	return &Reader{repo: repo, opts: opts}, nil
}

// Repository is the restic repository read.
func (r *Reader) Repository() *Repository { return r.repo }

// Close releases the reader.
func (r *Reader) Close(context.Context) error {
	r.repo.Close()
	return nil
}

// parallelism is how many files, or groups of blobs, are read at once:
// the mover's own worker count.
func (r *Reader) parallelism() int { return r.opts.Workers() }

// streamAhead is how many groups of blobs (up to maxGroupBytes each) a
// stream restore reads ahead: four per worker, within a quarter of the
// memory limit (each held read and decoded).
func (r *Reader) streamAhead() int {
	return max(2, min(4*r.parallelism(), int(r.opts.ReadAheadBudget()/(2*maxGroupBytes))))
}

func (r *Reader) all(ctx context.Context) ([]snapshot, error) {
	r.cache.once.Do(func() {
		r.cache.snaps, r.cache.err = r.repo.loadSnapshots(ctx)
		for _, sk := range r.repo.Skipped() {
			fmt.Fprintf(os.Stderr, "stash: warning: restic snapshot left out: %s (restic check tells more; restic forget removes it)\n", sk)
		}
	})
	return r.cache.snaps, r.cache.err
}

// Snapshots lists the restic snapshots matching f, oldest first.
func (r *Reader) Snapshots(ctx context.Context, f repository.Filter) ([]repository.Snapshot, error) {
	all, err := r.all(ctx)
	if err != nil {
		return nil, err
	}
	var out []repository.Snapshot
	for _, s := range all {
		if f.Match(s.Snapshot) {
			out = append(out, s.Snapshot)
		}
	}
	return out, nil
}

// Resolve finds one snapshot: latest, a restic ID, or a unique prefix of
// one such as restic's short IDs.
func (r *Reader) Resolve(ctx context.Context, ref string, f repository.Filter) (repository.Snapshot, error) {
	snaps, err := r.Snapshots(ctx, f)
	if err != nil {
		return repository.Snapshot{}, err
	}
	return repository.ResolveIn(snaps, ref, f)
}

func (r *Reader) find(ctx context.Context, s repository.Snapshot) (snapshot, error) {
	all, err := r.all(ctx)
	if err != nil {
		return snapshot{}, err
	}
	for _, sn := range all {
		if sn.ID == s.ID {
			return sn, nil
		}
	}
	return snapshot{}, fmt.Errorf("%w: no restic snapshot %s", repository.ErrSnapshotNotFound, s.ShortID())
}

// lockStale is when restic considers a lock stale: restic refreshes its
// locks every five minutes, and treats one not refreshed for 30 as left
// by a process that died.
const lockStale = 30 * time.Minute

// CheckLocks fails with ErrLocked when an exclusive restic lock that is
// not stale is held: a prune or repair may be deleting what a restore or
// an import would read.
func (r *Repository) CheckLocks(ctx context.Context) error {
	var names []string
	if err := r.be.List(ctx, LockFile, func(name string, _ int64) error {
		names = append(names, name)
		return nil
	}); err != nil {
		return fmt.Errorf("list locks: %w", err)
	}
	for _, name := range names {
		plain, err := r.LoadUnpacked(ctx, LockFile, name)
		if errors.Is(err, ErrNotExist) {
			continue // released meanwhile
		}
		if err != nil {
			return fmt.Errorf("read lock: %w", err)
		}
		var l struct {
			Time      time.Time `json:"time"`
			Exclusive bool      `json:"exclusive"`
			Hostname  string    `json:"hostname"`
			PID       int       `json:"pid"`
		}
		if err := json.Unmarshal(plain, &l); err != nil {
			return fmt.Errorf("lock %s is not restic's JSON: %w", short(name), err)
		}
		if l.Exclusive && time.Since(l.Time) < lockStale {
			return fmt.Errorf("%w by %s (pid %d) since %s, as a prune, check or repair holds it: wait until it ends and retry; if no restic process runs any more, the lock goes stale 30 minutes after it was last refreshed (or `restic unlock` removes it)",
				ErrLocked, l.Hostname, l.PID, l.Time.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

// RestoreStream writes file name of s to w: the stream's one file of a
// `restic backup --stdin` snapshot, or a file inside a directory snapshot.
func (r *Reader) RestoreStream(ctx context.Context, s repository.Snapshot, name string, w io.Writer, p repository.Progress) (int64, error) {
	sn, err := r.find(ctx, s)
	if err != nil {
		return 0, err
	}
	if err := r.repo.CheckLocks(ctx); err != nil {
		return 0, err
	}
	node := sn.root
	if sn.Stream {
		if name != "" && name != node.Name && strings.TrimPrefix(name, "/") != node.Name {
			return 0, fmt.Errorf("%w: snapshot %s holds %s, not %s", repository.ErrSnapshotNotFound, s.ShortID(), node.Name, name)
		}
	} else {
		if name == "" {
			return 0, fmt.Errorf("snapshot %s is a directory: name the file to write with --stdout NAME", s.ShortID())
		}
		if node, err = r.repo.Lookup(ctx, sn.tree, path.Join(sn.Path, name)); err != nil {
			return 0, fmt.Errorf("find %s in snapshot %s: %w", name, s.ShortID(), err)
		}
		if node.Type != "file" {
			return 0, fmt.Errorf("%s in snapshot %s is not a file", name, s.ShortID())
		}
	}
	var add func(int64)
	if p != nil {
		add = p.Add
	}
	n, err := r.repo.writeContent(ctx, node.Content, w, r.streamAhead(), add)
	if err != nil {
		return n, fmt.Errorf("restore %s of snapshot %s: %w", node.Name, s.ShortID(), err)
	}
	if n != int64(node.Size) {
		return n, fmt.Errorf("restore %s of snapshot %s: wrote %d bytes, its entry says %d", node.Name, s.ShortID(), n, node.Size)
	}
	return n, nil
}

// RestoreFiles calls each with every regular file of directory snapshot s
// in the order cmp gives (nil: name order); a file each does not read is
// not fetched.
func (r *Reader) RestoreFiles(ctx context.Context, s repository.Snapshot, cmp func(a, b string) int, each func(name string, src io.Reader) error) error {
	sn, err := r.find(ctx, s)
	if err != nil {
		return err
	}
	if sn.Stream || sn.root.Type != "dir" {
		return fmt.Errorf("snapshot %s is not a file set (a directory snapshot)", s.ShortID())
	}
	if err := r.repo.CheckLocks(ctx); err != nil {
		return err
	}
	nodes, err := r.repo.LoadTree(ctx, *sn.root.Subtree)
	if err != nil {
		return fmt.Errorf("list snapshot %s: %w", s.ShortID(), err)
	}
	files := map[string]*Node{}
	var names []string
	for _, n := range nodes {
		if n.Type == "file" {
			files[n.Name] = n
			names = append(names, n.Name)
		}
	}
	slices.Sort(names)
	if cmp != nil {
		slices.SortStableFunc(names, cmp)
	}
	for _, name := range names {
		cr, err := r.repo.newContentReader(ctx, files[name].Content, r.streamAhead())
		if err != nil {
			return fmt.Errorf("file %s of snapshot %s: %w", name, s.ShortID(), err)
		}
		err = each(name, cr)
		cr.Close()
		if err != nil {
			return fmt.Errorf("file %s of snapshot %s: %w", name, s.ShortID(), err)
		}
	}
	return nil
}

// RestoreTree writes s into target: the directory at the snapshot's path
// (or their common parent, for a snapshot of several) becomes target; a
// stream is written as target/<name>. Hard links restic recorded are
// restored as hard links.
func (r *Reader) RestoreTree(ctx context.Context, s repository.Snapshot, target string, o repository.TreeRestoreOptions) (*repository.RestoreResult, error) {
	sn, err := r.find(ctx, s)
	if err != nil {
		return nil, err
	}
	if err := r.repo.CheckLocks(ctx); err != nil {
		return nil, err
	}
	v := &view{r: r.repo, inflight: 2}
	root, err := v.rootEntry(sn.root)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", s.ShortID(), err)
	}
	// restic records no holes; a run of zeros it stored comes back as a
	// hole, as restic's restore --sparse writes it.
	o.Sparse = true
	files, bytes, err := repository.RestoreFS(ctx, repository.FSRestore{
		Root: root, Stream: sn.Stream,
		Packs: &packSource{r: r.repo}, MaxContent: maxChunk, Options: r.opts,
	}, target, o)
	if err != nil {
		return nil, fmt.Errorf("restore snapshot %s to %s: %w", s.ShortID(), target, err)
	}
	if err := repository.Relink(target, v.restoredLinks()); err != nil {
		return nil, fmt.Errorf("restore snapshot %s to %s: %w", s.ShortID(), target, err)
	}
	return &repository.RestoreResult{Snapshot: s.ID, Host: s.Host, Path: s.Path, Files: files, Bytes: bytes}, nil
}
