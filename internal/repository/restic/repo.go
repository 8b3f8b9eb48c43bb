// Package restic reads the restic repositories Stash wrote, formats 1 and
// 2, so that its users keep every backup they took: configuration and
// keys (scrypt), index, packs, trees and blobs, each blob verified by its
// MAC and its hash as restic does. It never writes to a repository: the
// Backend it reads through has no method that could.
package restic

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"

	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"

	"github.com/stash-backup/stash/internal/keytable"
	"github.com/stash-backup/stash/internal/repository"
)

// Errors callers branch on with errors.Is.
var (
	// ErrNotRestic means the location holds no restic repository (no
	// config object).
	ErrNotRestic = errors.New("no restic repository at this location")
	// ErrWrongPassword means the password opens none of the keys.
	ErrWrongPassword = errWrongPassword
	// ErrLocked means an exclusive restic lock is held (a prune, a
	// check or a repair is running).
	ErrLocked = errors.New("restic repository is locked exclusively")
)

// BlobType is the kind of a blob: file data or a directory tree.
type BlobType uint8

// Blob types as restic's index names them.
const (
	DataBlob BlobType = iota
	TreeBlob
)

func (t BlobType) String() string {
	if t == TreeBlob {
		return "tree"
	}
	return "data"
}

// ID is the SHA-256 of a blob's plaintext, or of an object's stored
// bytes.
type ID [32]byte

func (id ID) String() string { return hex.EncodeToString(id[:]) }

// MarshalJSON and UnmarshalJSON use restic's hex form.
func (id ID) MarshalJSON() ([]byte, error) { return json.Marshal(id.String()) }

// UnmarshalJSON parses restic's hex form.
func (id *ID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	p, err := ParseID(s)
	if err != nil {
		return err
	}
	*id = p
	return nil
}

// ParseID parses a 64-character hex ID.
func ParseID(s string) (ID, error) {
	var id ID
	if len(s) != 64 {
		return id, fmt.Errorf("ID %q is not 64 hex characters", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("ID %q is not hex", s)
	}
	return id, nil
}

type blobKey struct {
	id ID
	t  BlobType
}

// blobLoc is where a blob lies: in which pack, at which offset, how long
// stored, and how long uncompressed (0 when stored uncompressed).
type blobLoc struct {
	pack               ID
	offset, length     uint32
	uncompressedLength uint32
}

// Config is a repository's configuration object.
type Config struct {
	Version           int    `json:"version"`
	ID                string `json:"id"`
	ChunkerPolynomial string `json:"chunker_polynomial"`
}

// Repository is a restic repository opened for reading. It is safe for
// concurrent use.
type Repository struct {
	be     Backend
	key    *masterKey
	config Config

	indexOnce sync.Once
	indexErr  error
	index     map[blobKey]blobLoc
	packs     map[ID]struct{}

	dec *zstd.Decoder

	// skipped are the snapshots a listing left out (damaged).
	skipped []string
}

// Open opens the restic repository behind be with password. It returns
// ErrNotRestic when there is none and ErrWrongPassword when no key opens
// with the password. The index is loaded on first use.
func Open(ctx context.Context, be Backend, password string) (*Repository, error) {
	raw, err := be.Get(ctx, ConfigFile, "", 0, -1)
	if errors.Is(err, ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", be, ErrNotRestic)
	}
	if err != nil {
		return nil, fmt.Errorf("read restic config at %s: %w", be, err)
	}
	var names []string
	if err := be.List(ctx, KeyFile, func(name string, _ int64) error {
		names = append(names, name)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("list keys at %s: %w", be, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("restic repository at %s has no keys: it cannot be opened", be)
	}
	var key *masterKey
	var lastErr error = ErrWrongPassword
	keytable.Release()
	for _, name := range names {
		kraw, err := be.Get(ctx, KeyFile, name, 0, -1)
		if err != nil {
			lastErr = fmt.Errorf("read key %s: %w", short(name), err)
			continue
		}
		k, err := openKey(kraw, password)
		if err != nil {
			if !errors.Is(err, ErrWrongPassword) {
				lastErr = fmt.Errorf("key %s: %w", short(name), err)
			}
			continue
		}
		key = k
		break
	}
	if key == nil {
		if errors.Is(lastErr, ErrWrongPassword) {
			return nil, fmt.Errorf("restic repository at %s: %w", be, ErrWrongPassword)
		}
		return nil, fmt.Errorf("restic repository at %s: no key opens with RESTIC_PASSWORD (last error: %w)", be, lastErr)
	}
	// The key derivation left its scrypt tables (32 MiB a lane with
	// restic's parameters) as garbage. Collected now, their pages serve
	// the restore's buffers instead of raising the heap's peak.
	runtime.GC()
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(maxBlobSize*2))
	if err != nil {
		return nil, err
	}
	r := &Repository{be: be, key: key, dec: dec}
	plain, err := key.open(raw)
	if err != nil {
		return nil, fmt.Errorf("restic config at %s: %w", be, err)
	}
	if plain, err = r.decodeUnpacked(plain); err != nil {
		return nil, fmt.Errorf("restic config at %s: %w", be, err)
	}
	if err := json.Unmarshal(plain, &r.config); err != nil {
		return nil, fmt.Errorf("restic config at %s is not JSON: %w", be, err)
	}
	if r.config.Version != 1 && r.config.Version != 2 {
		return nil, fmt.Errorf("restic repository at %s has format version %d: this reader knows versions 1 and 2", be, r.config.Version)
	}
	return r, nil
}

// Config returns the repository's configuration.
func (r *Repository) Config() Config { return r.config }

// Backend returns where the repository is read from.
func (r *Repository) Backend() Backend { return r.be }

// Close releases the decoder.
func (r *Repository) Close() { r.dec.Close() }

// maxBlobSize bounds a blob's size: restic's chunker cuts at most 8 MiB,
// and a tree blob is rarely near it. Anything larger read from storage
// is refused rather than allocated.
const maxBlobSize = 64 << 20

// decodeUnpacked undoes format 2's compression of a decrypted object that
// is not in a pack: a leading byte 2 marks zstd, '{' or '[' plain JSON.
func (r *Repository) decodeUnpacked(plain []byte) ([]byte, error) {
	if len(plain) == 0 || plain[0] == '{' || plain[0] == '[' {
		return plain, nil
	}
	if plain[0] != 2 || r.config.Version == 1 && r.config.ID != "" {
		return nil, fmt.Errorf("unknown object encoding (first byte %#x)", plain[0])
	}
	out, err := r.dec.DecodeAll(plain[1:], nil)
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	return out, nil
}

// LoadUnpacked reads, verifies and decrypts an object that is not in a
// pack (a snapshot, an index, a lock): its name must be the SHA-256 of its
// stored bytes.
func (r *Repository) LoadUnpacked(ctx context.Context, t FileType, name string) ([]byte, error) {
	raw, err := r.be.Get(ctx, t, name, 0, -1)
	if err != nil {
		return nil, err
	}
	if t != LockFile {
		if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != name {
			return nil, fmt.Errorf("%s %s is damaged: its content does not hash to its name", t, short(name))
		}
	}
	plain, err := r.key.open(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", t, short(name), err)
	}
	out, err := r.decodeUnpacked(plain)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", t, short(name), err)
	}
	return out, nil
}

// indexJSON is an index file; format 0 indexes were a bare list of packs.
type indexJSON struct {
	Packs []indexPack `json:"packs"`
}

type indexPack struct {
	ID    ID `json:"id"`
	Blobs []struct {
		ID                 ID     `json:"id"`
		Type               string `json:"type"`
		Offset             uint32 `json:"offset"`
		Length             uint32 `json:"length"`
		UncompressedLength uint32 `json:"uncompressed_length"`
	} `json:"blobs"`
}

// ErrNoIndex means the repository has snapshots but no index: restic's
// own repair has to rebuild it first.
var ErrNoIndex = errors.New("restic repository has no index: rebuild it with restic (`restic repair index`, or `restic rebuild-index` before 0.16), then retry")

// loadIndex reads every index file, in parallel.
func (r *Repository) loadIndex(ctx context.Context) error {
	r.indexOnce.Do(func() { r.indexErr = r.readIndex(ctx) })
	return r.indexErr
}

func (r *Repository) readIndex(ctx context.Context) error {
	var names []string
	if err := r.be.List(ctx, IndexFile, func(name string, _ int64) error {
		names = append(names, name)
		return nil
	}); err != nil {
		return fmt.Errorf("list index: %w", err)
	}
	if len(names) == 0 {
		return ErrNoIndex
	}
	var mu sync.Mutex
	r.index = map[blobKey]blobLoc{}
	r.packs = map[ID]struct{}{}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(listWorkers())
	for _, name := range names {
		g.Go(func() error {
			plain, err := r.LoadUnpacked(gctx, IndexFile, name)
			if err != nil {
				return fmt.Errorf("read index: %w", err)
			}
			var idx indexJSON
			if bytes.HasPrefix(bytes.TrimSpace(plain), []byte("[")) {
				err = json.Unmarshal(plain, &idx.Packs)
			} else {
				err = json.Unmarshal(plain, &idx)
			}
			if err != nil {
				return fmt.Errorf("index %s is not restic's JSON: %w", short(name), err)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, p := range idx.Packs {
				r.packs[p.ID] = struct{}{}
				for _, b := range p.Blobs {
					t := DataBlob
					switch b.Type {
					case "tree":
						t = TreeBlob
					case "data":
					default:
						return fmt.Errorf("index %s: blob %s has unknown type %q", short(name), b.ID, b.Type)
					}
					r.index[blobKey{b.ID, t}] = blobLoc{pack: p.ID, offset: b.Offset, length: b.Length, uncompressedLength: b.UncompressedLength}
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// lookup finds a blob in the index.
func (r *Repository) lookup(ctx context.Context, t BlobType, id ID) (blobLoc, error) {
	if err := r.loadIndex(ctx); err != nil {
		return blobLoc{}, err
	}
	loc, ok := r.index[blobKey{id, t}]
	if !ok {
		return blobLoc{}, fmt.Errorf("%s blob %s is not in the repository's index (the index is incomplete or the data was pruned: check the repository with restic)", t, id)
	}
	return loc, nil
}

// LoadBlob reads blob id of type t: one read of its pack range, then
// MAC, decompression and hash checked.
func (r *Repository) LoadBlob(ctx context.Context, t BlobType, id ID) ([]byte, error) {
	loc, err := r.lookup(ctx, t, id)
	if err != nil {
		return nil, err
	}
	if err := checkSize(t, id, loc); err != nil {
		return nil, err
	}
	raw, err := r.be.Get(ctx, PackFile, loc.pack.String(), int64(loc.offset), int64(loc.length))
	if err != nil {
		return nil, fmt.Errorf("read %s blob %s from pack %s: %w", t, short(id.String()), short(loc.pack.String()), err)
	}
	return r.decodeBlob(t, id, loc, raw, nil)
}

// decodeBlob verifies and decrypts one stored blob, in place in raw. A
// compressed blob is decompressed into dst when its capacity holds it,
// else into new memory.
func (r *Repository) decodeBlob(t BlobType, id ID, loc blobLoc, raw, dst []byte) ([]byte, error) {
	if len(raw) != int(loc.length) {
		return nil, fmt.Errorf("%s blob %s: pack %s is truncated", t, short(id.String()), short(loc.pack.String()))
	}
	if err := checkSize(t, id, loc); err != nil {
		return nil, err
	}
	plain, err := r.key.open(raw)
	if err != nil {
		return nil, fmt.Errorf("%s blob %s in pack %s is damaged: %w", t, short(id.String()), short(loc.pack.String()), err)
	}
	if loc.uncompressedLength != 0 {
		if cap(dst) < int(loc.uncompressedLength) {
			dst = make([]byte, 0, loc.uncompressedLength)
		}
		out, err := r.dec.DecodeAll(plain, dst[:0])
		if err != nil {
			return nil, fmt.Errorf("%s blob %s in pack %s: decompress: %w", t, short(id.String()), short(loc.pack.String()), err)
		}
		if len(out) != int(loc.uncompressedLength) {
			return nil, fmt.Errorf("%s blob %s in pack %s: %d bytes uncompressed, index says %d", t, short(id.String()), short(loc.pack.String()), len(out), loc.uncompressedLength)
		}
		plain = out
	}
	if sha256.Sum256(plain) != id {
		return nil, fmt.Errorf("%s blob %s in pack %s is damaged: its content does not hash to its ID", t, short(id.String()), short(loc.pack.String()))
	}
	return plain, nil
}

// checkSize refuses a blob the index makes larger than a restic blob can
// be, before memory is taken for it.
func checkSize(t BlobType, id ID, loc blobLoc) error {
	if loc.length > maxBlobSize || loc.uncompressedLength > maxBlobSize {
		return fmt.Errorf("%s blob %s: index says %d bytes, more than a restic blob can be", t, short(id.String()), max(loc.length, loc.uncompressedLength))
	}
	return nil
}

// rangeReader is a Backend that reads a range into memory the caller
// holds, so that restores reuse their buffers.
type rangeReader interface {
	// ReadRange fills dst with the bytes at off of object (t, name).
	ReadRange(ctx context.Context, t FileType, name string, off int64, dst []byte) error
}

// readRange fills dst with the bytes at off of an object.
func (r *Repository) readRange(ctx context.Context, t FileType, name string, off int64, dst []byte) error {
	if rr, ok := r.be.(rangeReader); ok {
		return rr.ReadRange(ctx, t, name, off, dst)
	}
	b, err := r.be.Get(ctx, t, name, off, int64(len(dst)))
	if err != nil {
		return err
	}
	if len(b) != len(dst) {
		return fmt.Errorf("%s %s: read %d bytes at %d, want %d", t, short(name), len(b), off, len(dst))
	}
	copy(dst, b)
	return nil
}

// short is restic's short form of an ID, for messages.
func short(id string) string {
	if len(id) > 8 {
		return id[:8]
	}
	return id
}

// listWorkers is how many index or snapshot objects are read at once, as
// the mover sizes its workers (GOMAXPROCS within [2, 16]).
func listWorkers() int {
	var o repository.Options
	return o.Workers()
}
