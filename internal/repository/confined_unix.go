//go:build unix

package repository

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/restore"
	"golang.org/x/sys/unix"
)

// confinedOutput is kopia's restore output written so that nothing lands
// outside the target, whatever the snapshot or the target already holds:
// the target is opened once, and every write resolves its path below that
// handle without following a symlink (openat2 with RESOLVE_BENEATH and
// RESOLVE_NO_SYMLINKS on Linux, else one O_NOFOLLOW openat per
// component), then acts on the last component with an *at call that does
// not follow it either. So a symlink restored a moment earlier, or one
// another process puts there during the restore, is never written
// through. kopia's FilesystemOutput joins paths and follows symlinks.
//
// Symlinks are restored as symlinks with their target text as recorded.
type confinedOutput struct {
	root     *os.File
	rootPath string
	// skipRootAttrs leaves the target's own owner, mode and times alone
	// (a stream snapshot's synthetic directory has none of its own).
	skipRootAttrs bool
	// sparse leaves all-zero blocks of files as holes (sparse.go).
	sparse   bool
	uid, gid int
	closed   bool
	dirs     dirCache
	// written, when set, records the files put in place (hardlinks.go).
	written *writtenFiles
}

// dirCache keeps the descriptors of the directories a restore writes in,
// so that each file costs no path resolution of its own, and remembers
// which directories the restore created. A descriptor stays on the
// directory it was opened on, which was beneath the root, reached without
// a symlink, when it was resolved; a process that moves that directory
// elsewhere meanwhile needs write access to both places, and gains nothing
// it could not do after the restore.
type dirCache struct {
	mu      sync.Mutex
	m       map[string]*cachedDir
	created map[string]bool
}

type cachedDir struct{ fd, refs int }

// maxCachedDirs bounds the descriptors the cache holds.
const maxCachedDirs = 64

// setSparse makes files written from now on keep their all-zero blocks
// as holes (sparse.go).
func (o *confinedOutput) setSparse(on bool) { o.sparse = on }

func newConfinedOutput(target string, skipRootAttrs bool) (*confinedOutput, error) {
	// The target itself is the caller's choice and may be reached through
	// symlinks; only what is below it comes from the snapshot.
	if err := os.MkdirAll(target, 0o700); err != nil {
		return nil, fmt.Errorf("create restore target: %w", err)
	}
	f, err := os.Open(target)
	if err != nil {
		return nil, fmt.Errorf("open restore target: %w", err)
	}
	if st, err := f.Stat(); err != nil || !st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("restore target %s is not a directory", target)
	}
	return &confinedOutput{root: f, rootPath: target, skipRootAttrs: skipRootAttrs, uid: os.Geteuid(), gid: os.Getegid()}, nil
}

var _ restore.Output = (*confinedOutput)(nil)

// Parallelizable implements restore.Output.
func (o *confinedOutput) Parallelizable() bool { return true }

// Close implements restore.Output: kopia calls it when the restore
// succeeded, and it flushes what the restore wrote to stable storage
// first, so a restore is reported done only once its files are durable.
// Later calls do nothing.
func (o *confinedOutput) Close(context.Context) error {
	if o.closed {
		return nil
	}
	o.closed = true
	o.dirs.mu.Lock()
	for _, c := range o.dirs.m {
		unix.Close(c.fd)
	}
	o.dirs.m = nil
	o.dirs.mu.Unlock()
	err := o.flush()
	if cerr := o.root.Close(); err == nil {
		err = cerr
	}
	return err
}

// flush writes what the restore wrote so far to stable storage.
func (o *confinedOutput) flush() error {
	if err := syncFilesystem(int(o.root.Fd())); err != nil {
		return fmt.Errorf("flush restore target %s: %w", o.rootPath, err)
	}
	return nil
}

// WriteDirEntry implements restore.Output; only shallow restores use it.
func (o *confinedOutput) WriteDirEntry(context.Context, string, *snapshot.DirEntry, fs.Directory) error {
	return nil
}

// errBeneath explains a path the restore refused to resolve.
func (o *confinedOutput) errBeneath(rel string, err error) error {
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ENOTDIR) {
		return fmt.Errorf("%s in restore target %s: a directory on its path is a symlink or not a directory; a restore never writes through a symlink (remove it from the target, or restore into an empty directory): %w", rel, o.rootPath, err)
	}
	return fmt.Errorf("%s in restore target %s: %w", rel, o.rootPath, err)
}

// noOpenat2 is set once openat2 is found missing (a kernel before 5.6, or
// a seccomp profile that refuses it); the component walk is used then.
var noOpenat2 atomic.Bool

// openDir opens directory rel below the root without following symlinks.
// The returned release func must be called; rel "" is the root itself.
func (o *confinedOutput) openDir(rel string) (int, func(), error) {
	rootFD := int(o.root.Fd())
	if rel == "" || rel == "." {
		return rootFD, func() {}, nil
	}
	o.dirs.mu.Lock()
	if c := o.dirs.m[rel]; c != nil {
		c.refs++
		o.dirs.mu.Unlock()
		return c.fd, func() { o.releaseDir(c) }, nil
	}
	o.dirs.mu.Unlock()
	fd, err := o.resolveDir(rootFD, rel)
	if err != nil {
		return -1, nil, err
	}
	o.dirs.mu.Lock()
	defer o.dirs.mu.Unlock()
	if c := o.dirs.m[rel]; c != nil {
		c.refs++
		unix.Close(fd)
		return c.fd, func() { o.releaseDir(c) }, nil
	}
	if o.dirs.m == nil {
		o.dirs.m = map[string]*cachedDir{}
	}
	if len(o.dirs.m) >= maxCachedDirs {
		for k, c := range o.dirs.m {
			if c.refs == 0 {
				unix.Close(c.fd)
				delete(o.dirs.m, k)
				break
			}
		}
	}
	if len(o.dirs.m) >= maxCachedDirs || o.closed {
		return fd, func() { unix.Close(fd) }, nil
	}
	c := &cachedDir{fd: fd, refs: 1}
	o.dirs.m[rel] = c
	return fd, func() { o.releaseDir(c) }, nil
}

func (o *confinedOutput) releaseDir(c *cachedDir) {
	o.dirs.mu.Lock()
	c.refs--
	o.dirs.mu.Unlock()
}

// created reports whether the restore created directory rel (so it held
// nothing before).
func (o *confinedOutput) created(rel string) bool {
	o.dirs.mu.Lock()
	defer o.dirs.mu.Unlock()
	return o.dirs.created[rel]
}

// resolveDir opens directory rel below rootFD without following symlinks.
func (o *confinedOutput) resolveDir(rootFD int, rel string) (int, error) {
	if !noOpenat2.Load() {
		fd, err := openat2Beneath(rootFD, rel)
		if err == nil {
			return fd, nil
		}
		if !errors.Is(err, errNoOpenat2) {
			return -1, o.errBeneath(rel, err)
		}
		noOpenat2.Store(true)
	}
	fd, err := walkBeneath(rootFD, rel)
	if err != nil {
		return -1, o.errBeneath(rel, err)
	}
	return fd, nil
}

// walkBeneath opens directory rel below dirfd one component at a time,
// each with O_NOFOLLOW: race-free like openat2, at one call per level.
func walkBeneath(dirfd int, rel string) (int, error) {
	cur := dirfd
	for _, c := range strings.Split(rel, "/") {
		if c == "" || c == "." || c == ".." {
			if cur != dirfd {
				unix.Close(cur)
			}
			return -1, fmt.Errorf("path component %q: %w", c, ErrUnsafeEntry)
		}
		next, err := unix.Openat(cur, c, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if cur != dirfd {
			unix.Close(cur)
		}
		if err != nil {
			return -1, err
		}
		cur = next
	}
	return cur, nil
}

// split returns rel's directory ("" for the root) and last component.
// place is where entry rel of a snapshot goes: its directory and name
// below the target, with the names a backup escaped restored
// (storednames.go).
func place(rel string) (dir, base string, err error) {
	raw, err := rawPath(rel)
	if err != nil {
		return "", "", err
	}
	dir, base = split(raw)
	return dir, base, nil
}

func split(rel string) (string, string) {
	dir, base := path.Split(rel)
	return strings.TrimSuffix(dir, "/"), base
}

// ignorable reports errors of setting ownership or modes that a restore
// running unprivileged (or in a user namespace) cannot avoid, as kopia's
// IgnorePermissionErrors does.
func ignorable(err error) bool {
	return errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.EINVAL)
}

// unixMode turns Go's mode bits into the kernel's.
func unixMode(m os.FileMode) uint32 {
	u := uint32(m.Perm())
	if m&os.ModeSetuid != 0 {
		u |= unix.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		u |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		u |= unix.S_ISVTX
	}
	return u
}

// fdAttrs sets owner and mode through an open descriptor, which cannot
// be redirected by a symlink. Ownership goes first: chown clears setuid.
func (o *confinedOutput) fdAttrs(fd int, e fs.Entry) error {
	own := e.Owner()
	if int(own.UserID) != o.uid || int(own.GroupID) != o.gid {
		if err := unix.Fchown(fd, int(own.UserID), int(own.GroupID)); err != nil && !ignorable(err) {
			return fmt.Errorf("set owner: %w", err)
		}
	}
	if err := unix.Fchmod(fd, unixMode(e.Mode()&fs.ModBits)); err != nil && !ignorable(err) {
		return fmt.Errorf("set mode: %w", err)
	}
	return nil
}

// setTimes sets an entry's times by name in dirfd, not following a
// symlink there.
func setTimes(dirfd int, name string, e fs.Entry) error {
	t := unix.NsecToTimespec(e.ModTime().UnixNano())
	if err := unix.UtimesNanoAt(dirfd, name, []unix.Timespec{t, t}, unix.AT_SYMLINK_NOFOLLOW); err != nil && !ignorable(err) {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// BeginDirectory implements restore.Output.
func (o *confinedOutput) BeginDirectory(_ context.Context, rel string, _ fs.Directory) error {
	if rel == "" {
		return nil
	}
	dir, base, err := place(rel)
	if err != nil {
		return err
	}
	dfd, done, err := o.openDir(dir)
	if err != nil {
		return err
	}
	defer done()
	err = unix.Mkdirat(dfd, base, 0o700)
	if err == nil {
		o.dirs.mu.Lock()
		if o.dirs.created == nil {
			o.dirs.created = map[string]bool{}
		}
		o.dirs.created[rel] = true
		o.dirs.mu.Unlock()
	}
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if err = unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("%s in restore target %s exists and is not a directory (a symlink is not followed): remove it, or restore into an empty directory", rel, o.rootPath)
		}
	}
	if err != nil {
		return fmt.Errorf("create directory %s in %s: %w", rel, o.rootPath, err)
	}
	return nil
}

// FinishDirectory implements restore.Output: a directory's attributes are
// set once everything in it is written.
func (o *confinedOutput) FinishDirectory(_ context.Context, rel string, e fs.Directory) error {
	if rel == "" {
		if o.skipRootAttrs {
			return nil
		}
		if err := o.fdAttrs(int(o.root.Fd()), e); err != nil {
			return fmt.Errorf("restore target %s: %w", o.rootPath, err)
		}
		if err := os.Chtimes(o.rootPath, e.ModTime(), e.ModTime()); err != nil && !ignorable(err) {
			return fmt.Errorf("restore target %s: %w", o.rootPath, err)
		}
		return nil
	}
	dir, base, err := place(rel)
	if err != nil {
		return err
	}
	dfd, done, err := o.openDir(dir)
	if err != nil {
		return err
	}
	defer done()
	fd, err := unix.Openat(dfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return o.errBeneath(rel, err)
	}
	err = o.fdAttrs(fd, e)
	unix.Close(fd)
	if err == nil {
		err = setTimes(dfd, base, e)
	}
	if err != nil {
		return fmt.Errorf("directory %s in %s: %w", rel, o.rootPath, err)
	}
	return nil
}

// copyBuffers are the buffers file contents are copied with.
var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// progressWriter reports each write; it also hides *os.File's ReadFrom,
// which would copy through its own small buffer.
type progressWriter struct {
	w  io.Writer
	cb restore.FileWriteProgress
}

func (p progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if p.cb != nil && n > 0 {
		p.cb(int64(n))
	}
	return n, err
}

func tempName() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return ".stash-restore-" + hex.EncodeToString(b[:])
}

// WriteFile implements restore.Output: the content goes to a new file
// (O_EXCL, O_NOFOLLOW) in the entry's directory, which replaces the entry
// by rename once written, as kopia's atomic writes do (see createFile and
// commitFile).
func (o *confinedOutput) WriteFile(ctx context.Context, rel string, f fs.File, cb restore.FileWriteProgress) error {
	t, err := o.createFile(rel)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			o.discardFile(t)
		}
	}()
	r, err := f.Open(ctx)
	if err != nil {
		return fmt.Errorf("open %s in the snapshot: %w", rel, err)
	}
	defer r.Close()
	buf := copyBuffers.Get().(*[]byte)
	var w io.Writer = progressWriter{t.f, cb}
	var sw *sparseWriter
	if o.sparse {
		sw = &sparseWriter{f: t.f, cb: cb}
		w = sw
	}
	_, err = io.CopyBuffer(w, r, *buf)
	copyBuffers.Put(buf)
	if err == nil && sw != nil {
		err = sw.finish()
	}
	if err != nil {
		return fmt.Errorf("write %s in %s: %w", rel, o.rootPath, err)
	}
	if err := o.commitFile(t, f); err != nil {
		return err
	}
	ok = true
	return nil
}

// tempFile is a file being restored under a temporary name beside its
// entry's. Its descriptor may be closed between writes and reopened.
type tempFile struct {
	rel, dir, base, tmp string
	f                   *os.File
}

// createFile creates the temporary file for entry rel: O_EXCL and
// O_NOFOLLOW in the entry's directory, reached without following a
// symlink.
func (o *confinedOutput) createFile(rel string) (*tempFile, error) {
	dir, base, err := place(rel)
	if err != nil {
		return nil, err
	}
	dfd, done, err := o.openDir(dir)
	if err != nil {
		return nil, err
	}
	defer done()
	tmp := tempName()
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create %s in %s: %w", rel, o.rootPath, err)
	}
	return &tempFile{rel: rel, dir: dir, base: base, tmp: tmp, f: os.NewFile(uintptr(fd), path.Join(o.rootPath, dir, tmp))}, nil
}

// reopenFile opens t's temporary file again after closeFile.
func (o *confinedOutput) reopenFile(t *tempFile) error {
	if t.f != nil {
		return nil
	}
	dfd, done, err := o.openDir(t.dir)
	if err != nil {
		return err
	}
	defer done()
	fd, err := unix.Openat(dfd, t.tmp, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("reopen %s in %s: %w", t.rel, o.rootPath, err)
	}
	t.f = os.NewFile(uintptr(fd), path.Join(o.rootPath, t.dir, t.tmp))
	return nil
}

// commitFile gives t the entry's owner, mode and times and renames it
// over the entry's name. A rename replaces a symlink at the name; it never
// writes through it.
//
// A file that replaces one already there is synced before the rename, so
// that a crash leaves the old file or the whole new one, never an empty one
// under the name. A new file is not: an interrupted restore has no file
// under that name yet to keep, and Close flushes the whole filesystem once
// at the end, which costs a fraction of a sync per file on a tree of many
// small files. In a directory this restore created nothing can be there.
func (o *confinedOutput) commitFile(t *tempFile, e fs.Entry) error {
	if err := o.reopenFile(t); err != nil {
		return err
	}
	if err := o.fdAttrs(int(t.f.Fd()), e); err != nil {
		return fmt.Errorf("%s in %s: %w", t.rel, o.rootPath, err)
	}
	dfd, done, err := o.openDir(t.dir)
	if err != nil {
		return err
	}
	defer done()
	var existing unix.Stat_t
	if !o.created(t.dir) && unix.Fstatat(dfd, t.base, &existing, unix.AT_SYMLINK_NOFOLLOW) == nil {
		if err := t.f.Sync(); err != nil {
			return fmt.Errorf("sync %s in %s: %w", t.rel, o.rootPath, err)
		}
	}
	if err := o.closeFile(t); err != nil {
		return err
	}
	if err := unix.Renameat(dfd, t.tmp, dfd, t.base); err != nil {
		return fmt.Errorf("put %s in place in %s (a directory there is not replaced): %w", t.rel, o.rootPath, err)
	}
	t.tmp = ""
	if err := setTimes(dfd, t.base, e); err != nil {
		return fmt.Errorf("%s in %s: %w", t.rel, o.rootPath, err)
	}
	if o.written != nil {
		o.written.add(path.Join(t.dir, t.base))
	}
	return nil
}

// discardFile removes t's temporary file, if it is still there.
func (o *confinedOutput) discardFile(t *tempFile) {
	o.closeFile(t) //nolint:errcheck
	if t.tmp == "" {
		return
	}
	if dfd, done, err := o.openDir(t.dir); err == nil {
		unix.Unlinkat(dfd, t.tmp, 0) //nolint:errcheck
		done()
	}
	t.tmp = ""
}

// CreateSymlink implements restore.Output: the link is made with its
// recorded target text, replacing a symlink (not a file or directory) at
// its name.
func (o *confinedOutput) CreateSymlink(ctx context.Context, rel string, e fs.Symlink) error {
	target, err := e.Readlink(ctx)
	if err != nil {
		return fmt.Errorf("read symlink %s in the snapshot: %w", rel, err)
	}
	dir, base, err := place(rel)
	if err != nil {
		return err
	}
	dfd, done, err := o.openDir(dir)
	if err != nil {
		return err
	}
	defer done()
	err = unix.Symlinkat(target, dfd, base)
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if err = unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
			if st.Mode&unix.S_IFMT != unix.S_IFLNK {
				return fmt.Errorf("symlink %s: %s already exists in %s and is not a symlink: remove it, or restore into an empty directory", rel, base, o.rootPath)
			}
			if err = unix.Unlinkat(dfd, base, 0); err == nil {
				err = unix.Symlinkat(target, dfd, base)
			}
		}
	}
	if err != nil {
		return fmt.Errorf("create symlink %s in %s: %w", rel, o.rootPath, err)
	}
	own := e.Owner()
	if int(own.UserID) != o.uid || int(own.GroupID) != o.gid {
		if err := unix.Fchownat(dfd, base, int(own.UserID), int(own.GroupID), unix.AT_SYMLINK_NOFOLLOW); err != nil && !ignorable(err) {
			return fmt.Errorf("symlink %s in %s: set owner: %w", rel, o.rootPath, err)
		}
	}
	if err := setTimes(dfd, base, e); err != nil {
		return fmt.Errorf("symlink %s in %s: %w", rel, o.rootPath, err)
	}
	return nil
}

func (o *confinedOutput) lstat(rel string) (unix.Stat_t, bool) {
	var st unix.Stat_t
	dir, base, err := place(rel)
	if err != nil {
		return st, false
	}
	dfd, done, err := o.openDir(dir)
	if err != nil {
		return st, false
	}
	defer done()
	return st, unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// FileExists implements restore.Output. Only incremental restores ask,
// which Stash does not run; a regular file of the entry's size counts.
func (o *confinedOutput) FileExists(_ context.Context, rel string, e fs.File) bool {
	st, ok := o.lstat(rel)
	return ok && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Size == e.Size()
}

// SymlinkExists implements restore.Output.
func (o *confinedOutput) SymlinkExists(_ context.Context, rel string, _ fs.Symlink) bool {
	st, ok := o.lstat(rel)
	return ok && st.Mode&unix.S_IFMT == unix.S_IFLNK
}
