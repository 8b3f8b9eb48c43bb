// Package repository is Stash's data mover: encrypted, deduplicated,
// compressed snapshots of streams and directory trees, stored with the kopia
// library on local disk, S3, GCS, Azure or B2. It opens a repository from a
// Stash Repository's backend and Secret; it knows nothing of Kubernetes.
package repository

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/azure"
	"github.com/kopia/kopia/repo/blob/b2"
	"github.com/kopia/kopia/repo/blob/filesystem"
	"github.com/kopia/kopia/repo/blob/gcs"
	"github.com/kopia/kopia/repo/blob/s3"
	"github.com/kopia/kopia/repo/compression"
	"github.com/kopia/kopia/repo/content"
	"github.com/kopia/kopia/repo/encryption"
	"github.com/kopia/kopia/repo/format"
	"github.com/kopia/kopia/repo/maintenance"

	"github.com/stash-backup/stash/internal/cgroup"
	"github.com/stash-backup/stash/internal/chunker"
	"github.com/stash-backup/stash/internal/keytable"
	"github.com/stash-backup/stash/internal/repository/location"
)

// Errors callers branch on with errors.Is.
var (
	ErrWrongPassword  = errors.New("wrong repository password (RESTIC_PASSWORD)")
	ErrNotInitialized = errors.New("no repository at this location")
	ErrAlreadyExists  = errors.New("a repository already exists at this location")
	ErrUnreachable    = errors.New("storage unreachable")
	// ErrBackendReadOnly means the backend (Swift, a restic REST server)
	// holds restic repositories, which are read, never written.
	ErrBackendReadOnly = errors.New("backend only reads Stash's restic repositories")
	// ErrForeignRepository means the location holds a repository of
	// another format (Stash's restic), which this project never writes to
	// or deletes.
	ErrForeignRepository = errors.New("location holds a restic repository")
)

// clientIdentity is the kopia user@host every Stash client connects as.
// Snapshots carry their own host (SourceInfo); the connection identity only
// decides maintenance ownership, and a fixed one lets any host run prune.
const (
	clientUser = "stash"
	clientHost = "stash"
)

// defaultHash is the content hash of new repositories: BLAKE3 makes stream
// backups faster than kopia's BLAKE2B default (BenchmarkBackupStreamHash,
// docs/benchmarks.md). A variable so the benchmark can compare.
var defaultHash = "BLAKE3-256-128"

// defaultSplitter cuts data into chunks of 1 MiB on average (kopia's
// default is 4 MiB): a small change in a large dump then re-uploads about
// 2 MiB instead of about 8 MiB (docs/benchmarks.md).
const defaultSplitter = "DYNAMIC-1M-BUZHASH"

// DefaultCompression is the compressor for new snapshots.
const DefaultCompression = "zstd-fastest"

// Options configure how a repository is opened.
type Options struct {
	// Location is where the repository lives (see ResolveLocation).
	Location *location.Location
	// Password is the encryption password (the Secret's RESTIC_PASSWORD).
	Password string
	// Compression names the compressor for new data ("" = zstd-fastest,
	// "none" disables it).
	Compression string
	// Parallelism bounds concurrent hashing, compression and uploads;
	// 0 means GOMAXPROCS (at least 2, at most MaxParallelism).
	Parallelism int
	// MemoryLimit is the memory this process may use, which bounds the
	// restore read-ahead; 0 means the cgroup's limit, negative none.
	MemoryLimit int64
}

// Reader is a repository opened for what only reads it: listing,
// restoring, checking. It has no method that writes a snapshot or
// removes one, so code given a Reader cannot change what is backed up
// (it does write the shared lock that keeps a prune from deleting what it
// reads). It is safe for concurrent use by the goroutines of one process;
// separate processes coordinate through the storage (see lock.go).
type Reader struct {
	rep       repo.Repository
	st        blob.Storage
	opts      Options
	configDir string
	// configLock holds configDir for this process (configdir.go).
	configLock *os.File
	// deletes guards every blob deletion kopia makes through this
	// Repository (see pruneNow).
	deletes *deleteGuard
	// held serves kopia's pack reads from ranges a tree restore read
	// whole (treerestore.go).
	held *heldRanges
	// byFile restores trees through kopia's restore, file by file, as
	// before treerestore.go (tests compare the two).
	byFile bool
	// chunker cuts streams, keyed per repository (chunkerkey.go); loaded
	// on the first stream backup.
	chunkerOnce sync.Once
	chunker     *chunker.Chunker
	chunkerErr  error
	// decoder reads contents without kopia's copies (contentdecode.go);
	// made on the first read.
	decoderOnce sync.Once
	decoder     *contentDecoder
	// fallbacks counts contents the decoder failed on and kopia then
	// read: tests expect none.
	fallbacks atomic.Int64
	// advise, when set, receives a stream restore's read-ahead hints
	// instead of the kernel (prefetch.go; tests).
	advise func(path string, off, n int64)
}

// Repository is a repository opened for writing: besides what a Reader
// does, it backs up, forgets, prunes and maintains, as kopia's
// RepositoryWriter extends its Repository.
type Repository struct {
	*Reader
}

// streamChunker returns the repository's stream chunker.
func (r *Repository) streamChunker(ctx context.Context) (*chunker.Chunker, error) {
	r.chunkerOnce.Do(func() { r.chunker, r.chunkerErr = loadChunker(ctx, r.rep) })
	return r.chunker, r.chunkerErr
}

// MaxParallelism caps the default parallelism: on a large node without a
// CPU quota GOMAXPROCS is the node's CPU count, and workers, readers and
// read-ahead all scale with it.
const MaxParallelism = 16

// Workers is the parallelism the options give: Parallelism, else
// GOMAXPROCS within [2, MaxParallelism].
func (o *Options) Workers() int { return o.parallelism() }

// parallelism follows GOMAXPROCS, which Go sets from the cgroup's CPU
// quota (runtime.NumCPU would be the node's CPUs, whatever the pod's limit).
func (o *Options) parallelism() int {
	if o.Parallelism > 0 {
		return o.Parallelism
	}
	return min(max(runtime.GOMAXPROCS(0), 2), MaxParallelism)
}

// NoLimitBudget is the memory a restore's read-ahead may hold when the
// cgroup sets no memory limit.
const NoLimitBudget = 512 << 20

// ReadAheadBudget is readAheadBudget, for readers of other formats.
func (o *Options) ReadAheadBudget() int64 { return o.readAheadBudget() }

// readAheadBudget is the memory a restore's read-ahead may hold: a quarter
// of the cgroup's memory limit (the rest is the heap, the tool on the
// other end of the pipe, and kopia's caches), or NoLimitBudget.
func (o *Options) readAheadBudget() int64 {
	limit := o.MemoryLimit
	if limit == 0 {
		if l, ok := cgroup.MemoryLimit(); ok {
			limit = l
		}
	}
	if limit <= 0 {
		return NoLimitBudget
	}
	return limit / 4
}

func (o *Options) compressor() (compression.Name, error) {
	name := o.Compression
	if name == "" {
		name = DefaultCompression
	}
	if name == "none" {
		return compression.Name("none"), nil
	}
	if _, ok := compression.ByName[compression.Name(name)]; !ok {
		var names []string
		for n := range compression.ByName {
			names = append(names, string(n))
		}
		return "", fmt.Errorf("unknown compression %q: use none or one of %s", name, strings.Join(names, ", "))
	}
	return compression.Name(name), nil
}

func (o *Options) check() error {
	if o.Location == nil {
		return errors.New("repository location is not set")
	}
	if o.Password == "" {
		return fmt.Errorf("storage Secret has no %s: add the repository's encryption password under that key", location.KeyPassword)
	}
	_, err := o.compressor()
	return err
}

// newStorage connects to the blob storage of a location.
func newStorage(ctx context.Context, loc *location.Location, create bool) (blob.Storage, error) {
	var (
		st  blob.Storage
		err error
	)
	switch loc.Kind {
	case location.KindLocal:
		if !create {
			if _, serr := os.Stat(loc.Filesystem.Path); serr != nil {
				return nil, fmt.Errorf("%w: directory %s does not exist: run `stash repo init` or a backup first", ErrNotInitialized, loc.Filesystem.Path)
			}
			// kopia's storage records its layout (.shards) on its first
			// request, even a read: a directory holding neither that nor
			// a format blob holds no repository, and opening it must not
			// write there.
			if !exists(filepath.Join(loc.Filesystem.Path, ".shards")) && !exists(filepath.Join(loc.Filesystem.Path, string(format.KopiaRepositoryBlobID)+".f")) {
				return nil, fmt.Errorf("%w: directory %s holds no repository: run `stash repo init` or a backup first", ErrNotInitialized, loc.Filesystem.Path)
			}
		}
		st, err = filesystem.New(ctx, fsLayoutOptions(loc.Filesystem, create), create)
	case location.KindS3, location.KindGCS, location.KindAzure, location.KindB2:
		st, err = ObjectStorage(ctx, loc)
	case location.KindSwift, location.KindRest:
		return nil, fmt.Errorf("%w: spec.backend.%s can restore, list, check and import Stash's restic backups, but new backups need s3 (Swift has an S3 API), gcs, azure, b2 or local", ErrBackendReadOnly, loc.Kind)
	default:
		return nil, fmt.Errorf("unsupported backend %q", loc.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, loc, err)
	}
	return st, nil
}

// ObjectStorage connects to the object store of an S3, GCS, Azure or B2
// location with kopia's client of that store; it creates nothing.
func ObjectStorage(ctx context.Context, loc *location.Location) (blob.Storage, error) {
	switch loc.Kind {
	case location.KindS3:
		return s3.New(ctx, loc.S3, false)
	case location.KindGCS:
		return gcs.New(ctx, loc.GCS, false)
	case location.KindAzure:
		return azure.New(ctx, loc.Azure, false)
	case location.KindB2:
		return b2.New(ctx, loc.B2, false)
	}
	return nil, fmt.Errorf("%s is not an object store", loc.Kind)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// fsLayoutOptions fixes the directory layout of a local repository that has
// none recorded yet. kopia records it in .shards on the first operation,
// from a default that differs between creating ([1,3]) and opening ([3,3],
// for repositories from before .shards): a client that opens while another
// creates the repository could record the old layout, or read with it
// what the creator wrote with the new one. Only a kopia repository from
// before .shards has a format blob and no .shards; it keeps the old default.
func fsLayoutOptions(o *filesystem.Options, create bool) *filesystem.Options {
	if create || o.DirectoryShards != nil {
		return o
	}
	if _, err := os.Stat(filepath.Join(o.Path, ".shards")); err == nil {
		return o
	}
	if _, err := os.Stat(filepath.Join(o.Path, string(format.KopiaRepositoryBlobID)+".f")); err == nil {
		return o
	}
	c := *o
	c.DirectoryShards = []int{1, 3}
	return &c
}

// Init creates a new repository at the location. It fails with
// ErrAlreadyExists when one is there.
func Init(ctx context.Context, opts Options) error {
	if err := opts.check(); err != nil {
		return err
	}
	if err := refuseForeignLocal(opts.Location); err != nil {
		return err
	}
	st, err := newStorage(ctx, opts.Location, true)
	if err != nil {
		return err
	}
	defer st.Close(ctx) //nolint:errcheck
	if err := refuseForeign(ctx, opts.Location, st); err != nil {
		return err
	}
	return initialize(ctx, st, opts)
}

func initialize(ctx context.Context, st blob.Storage, opts Options) error {
	leader, release, err := electCreator(ctx, st)
	if err != nil {
		return fmt.Errorf("initialize repository at %s: %w", opts.Location, err)
	}
	defer release()
	if !leader {
		if err := awaitCreated(ctx, st); err != nil {
			return fmt.Errorf("initialize repository at %s: %w", opts.Location, err)
		}
		return fmt.Errorf("%w: %s (created by another client meanwhile)", ErrAlreadyExists, opts.Location)
	}
	keytable.Release()
	err = repo.Initialize(ctx, st, &repo.NewRepositoryOptions{
		BlockFormat: format.ContentFormat{
			Hash:       defaultHash,
			Encryption: encryption.DefaultAlgorithm,
		},
		ObjectFormat: format.ObjectFormat{Splitter: defaultSplitter},
	}, opts.Password)
	if errors.Is(err, repo.ErrAlreadyInitialized) {
		return fmt.Errorf("%w: %s", ErrAlreadyExists, opts.Location)
	}
	if err != nil {
		return fmt.Errorf("initialize repository at %s: %w", opts.Location, err)
	}
	r, err := open(ctx, st, opts)
	if err != nil {
		return err
	}
	defer r.Close(ctx) //nolint:errcheck
	// Maintenance refuses to run for anyone but its owner; every Stash
	// client connects as the same identity, so make it the owner.
	err = repo.DirectWriteSession(ctx, r.rep.(repo.DirectRepository), repo.WriteSessionOptions{Purpose: "set maintenance owner"},
		func(ctx context.Context, w repo.DirectRepositoryWriter) error {
			p := maintenance.DefaultParams()
			p.Owner = clientUser + "@" + clientHost
			if err := maintenance.SetParams(ctx, w, &p); err != nil {
				return err
			}
			return writeChunkerKey(ctx, w)
		})
	if err != nil {
		return fmt.Errorf("set maintenance owner and chunker key: %w", err)
	}
	return nil
}

// Open opens the existing repository at the location for writing. It
// refuses a location that also holds a restic repository
// (ErrForeignRepository): a backup there would mix a new repository into
// Stash's old one.
func Open(ctx context.Context, opts Options) (*Repository, error) {
	r, err := openStorage(ctx, opts, true)
	if err != nil {
		return nil, err
	}
	return &Repository{Reader: r}, nil
}

// OpenReader opens the existing repository at the location for reading.
// It never creates one: a restore pointed at an empty location fails
// with ErrNotInitialized instead of leaving a new repository there.
func OpenReader(ctx context.Context, opts Options) (*Reader, error) {
	return openStorage(ctx, opts, false)
}

func openStorage(ctx context.Context, opts Options, write bool) (*Reader, error) {
	if err := opts.check(); err != nil {
		return nil, err
	}
	if write {
		if err := refuseForeignLocal(opts.Location); err != nil {
			return nil, err
		}
	}
	st, err := newStorage(ctx, opts.Location, false)
	if err != nil {
		return nil, err
	}
	if write {
		if err := refuseForeign(ctx, opts.Location, st); err != nil {
			st.Close(ctx) //nolint:errcheck
			return nil, err
		}
	}
	r, err := open(ctx, st, opts)
	if err != nil {
		st.Close(ctx) //nolint:errcheck
		return nil, err
	}
	return r, nil
}

// OpenOrInit opens the repository, creating it first if the location holds
// none, as Stash's InitializeBackendRepository pre-backup action does.
func OpenOrInit(ctx context.Context, opts Options) (*Repository, error) {
	r, err := Open(ctx, opts)
	if err == nil || !errors.Is(err, ErrNotInitialized) {
		return r, err
	}
	if ierr := Init(ctx, opts); ierr != nil && !errors.Is(ierr, ErrAlreadyExists) {
		return nil, ierr
	}
	return Open(ctx, opts)
}

func open(ctx context.Context, st blob.Storage, opts Options) (*Reader, error) {
	if _, err := st.GetMetadata(ctx, format.KopiaRepositoryBlobID); err != nil {
		if errors.Is(err, blob.ErrBlobNotFound) {
			return nil, classifyOpenError(opts.Location, repo.ErrRepositoryNotInitialized)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, opts.Location, err)
	}
	// kopia opens a repository from a connection config file, in a
	// private directory for the life of this handle (its maintenance lock
	// file goes beside it). The config names st, which this process has
	// open, instead of describing the storage with its credentials: no
	// secret is ever written to disk, even by a backup killed mid-way, and
	// kopia uses the connection already made instead of making a second.
	configDir, configLock, err := newConfigDir()
	if err != nil {
		return nil, fmt.Errorf("create repository config directory: %w", err)
	}
	configFile := filepath.Join(configDir, "repository.config")
	guard := &deleteGuard{}
	held := &heldRanges{}
	handle := openStorages.add(kopiaView{Storage: st, deletes: guard, held: held})
	defer openStorages.remove(handle)
	// The config is written here rather than by repo.Connect, which opens
	// the repository once more to verify it (a second scrypt key
	// derivation, about half a second) and, on failure, deletes the cache
	// directory it was given.
	lc := repo.LocalConfig{
		Storage: &blob.ConnectionInfo{Type: handleStorageType, Config: &handleConfig{Handle: handle}},
		// No local cache: kopia's data cache writes every chunk a restore
		// reads to disk again, which slows restores, and it needs
		// a data cache to have a metadata cache. Indexes are compacted by
		// prune, so opening reads few blobs.
		Caching:       &content.CachingOptions{},
		ClientOptions: repo.ClientOptions{Username: clientUser, Hostname: clientHost, Description: "stash"},
	}
	cfg, err := json.Marshal(lc)
	if err == nil {
		err = os.WriteFile(configFile, cfg, 0o600)
	}
	if err != nil {
		removeConfigDir(configDir, configLock)
		return nil, fmt.Errorf("write repository config: %w", err)
	}
	// kopia's library reads its CLI's KOPIA_CACHE_DIRECTORY, which a
	// user's shell or an image built from kopia's may set: it would give
	// this client, which caches nothing, a cache directory sized at zero,
	// on which kopia crashes; and it would put contents on disk.
	os.Unsetenv("KOPIA_CACHE_DIRECTORY")
	keytable.Release()
	rep, err := repo.Open(ctx, configFile, opts.Password, &repo.Options{DisableRepositoryLog: true})
	if err != nil {
		removeConfigDir(configDir, configLock)
		return nil, classifyOpenError(opts.Location, err)
	}
	// The key derivation (scrypt) left 64 MiB of garbage. Collected now,
	// those pages serve the backup's or restore's buffers; left to the
	// next collection, which a stream backup reaches only near its end,
	// the buffers fault in fresh pages, which is slow on virtual machines.
	runtime.GC()
	return &Reader{rep: rep, st: st, opts: opts, configDir: configDir, configLock: configLock, deletes: guard, held: held}, nil
}

// handleStorageType is the kopia storage type of a connection config that
// names a storage this process has open (see open).
const handleStorageType = "stash-open-storage"

// handleConfig is the whole of such a config: a handle, no credentials.
type handleConfig struct {
	Handle string `json:"handle"`
}

func init() {
	blob.AddSupportedStorage(handleStorageType, handleConfig{}, func(_ context.Context, c *handleConfig, _ bool) (blob.Storage, error) {
		st, ok := openStorages.get(c.Handle)
		if !ok {
			return nil, fmt.Errorf("storage %q is not open in this process", c.Handle)
		}
		return st, nil
	})
}

// openStorages are the storages that repositories being opened name in
// their connection configs.
var openStorages = storageHandles{m: map[string]blob.Storage{}}

type storageHandles struct {
	mu sync.Mutex
	m  map[string]blob.Storage
}

func (h *storageHandles) add(st blob.Storage) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	id := hex.EncodeToString(b)
	h.mu.Lock()
	h.m[id] = st
	h.mu.Unlock()
	return id
}

func (h *storageHandles) get(id string) (blob.Storage, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	st, ok := h.m[id]
	return st, ok
}

func (h *storageHandles) remove(id string) {
	h.mu.Lock()
	delete(h.m, id)
	h.mu.Unlock()
}

// kopiaView is a Repository's storage as kopia sees it: kopia closes the
// storage of a repository when it closes the repository, and this one is
// the Repository's, which closes it itself, last. Every deletion kopia
// makes passes its guard first.
type kopiaView struct {
	blob.Storage
	deletes *deleteGuard
	held    *heldRanges
}

// Close implements blob.Storage.
func (kopiaView) Close(context.Context) error { return nil }

// DeleteBlob implements blob.Storage.
func (v kopiaView) DeleteBlob(ctx context.Context, id blob.ID) error {
	if err := v.deletes.allow(); err != nil {
		return fmt.Errorf("delete %s: %w", id, err)
	}
	return v.Storage.DeleteBlob(ctx, id)
}

// deleteGuard, when set, is asked before each deletion: a prune sets it to
// its exclusive lock, so that no pack or index is deleted once the lock
// may have lapsed, even mid-way through one of kopia's phases.
type deleteGuard struct {
	mu    sync.Mutex
	check func() error
}

func (g *deleteGuard) set(check func() error) {
	g.mu.Lock()
	g.check = check
	g.mu.Unlock()
}

func (g *deleteGuard) allow() error {
	g.mu.Lock()
	check := g.check
	g.mu.Unlock()
	if check == nil {
		return nil
	}
	return check()
}

func classifyOpenError(loc *location.Location, err error) error {
	switch {
	case errors.Is(err, repo.ErrInvalidPassword):
		return fmt.Errorf("open repository at %s: %w: it does not decrypt this repository", loc, ErrWrongPassword)
	case errors.Is(err, repo.ErrRepositoryNotInitialized):
		return fmt.Errorf("open repository at %s: %w: run `stash repo init` or a backup first", loc, ErrNotInitialized)
	}
	return fmt.Errorf("open repository at %s: %w", loc, err)
}

// Close releases the repository and removes its connection config.
func (r *Reader) Close(ctx context.Context) error {
	err := r.rep.Close(ctx)
	r.decoderOnce.Do(func() {}) // no decoder made after this
	r.decoder.close()
	if cerr := r.st.Close(ctx); err == nil {
		err = cerr
	}
	if rerr := removeConfigDir(r.configDir, r.configLock); err == nil {
		err = rerr
	}
	// After the backup or restore, not before: off its way.
	sweepConfigDirs(time.Now())
	return err
}

// removeConfigDir removes dir, then lets go of its lock.
func removeConfigDir(dir string, lock *os.File) error {
	err := os.RemoveAll(dir)
	if lock != nil {
		lock.Close()
	}
	return err
}
