package local

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// A running session is owned by the runtime process that runs it, and the
// proof of ownership is an flock the process holds on a file of its own
// under <state-dir>/owners. The kernel drops the lock when the process
// exits, whatever the exit: a SIGKILLed runtime that nobody has reaped yet
// (a zombie closed its files when it died) and a PID that a reboot gave to
// another program both read as "no owner". A PID alone says neither.

const ownersDir = "owners"

// owner is this process's ownership lock.
type owner struct {
	id   string
	path string
	f    *os.File
}

// newOwnerID is random so that no two runtimes, ever, share a lock file:
// a lock file is created once, locked, and never reused.
func newOwnerID() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func ownerPath(stateDir, id string) string {
	return filepath.Join(stateDir, ownersDir, id+".lock")
}

// acquireOwner creates and locks a new owner file. The file is locked under
// a temporary name and only then renamed into place, so that a sweep never
// sees it unlocked and removes it as the leftover of a dead runtime.
func acquireOwner(stateDir string) (*owner, error) {
	dir := filepath.Join(stateDir, ownersDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	id, err := newOwnerID()
	if err != nil {
		return nil, fmt.Errorf("session owner id: %w", err)
	}
	final := ownerPath(stateDir, id)
	tmp := final + ".new"
	// Go opens files close-on-exec: step processes do not inherit the
	// lock, so it goes when this process goes, not when its last step does.
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create session owner lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("lock %s: %w", tmp, err)
	}
	// The PID is for people reading the directory; nothing trusts it.
	fmt.Fprintf(f, "pid %d\nstarted %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339))
	if err := os.Rename(tmp, final); err != nil {
		f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("session owner lock: %w", err)
	}
	return &owner{id: id, path: final, f: f}, nil
}

// release removes the file, then drops the lock by closing it.
func (o *owner) release() error {
	rmErr := os.Remove(o.path)
	if errors.Is(rmErr, os.ErrNotExist) {
		rmErr = nil
	}
	return errors.Join(rmErr, o.f.Close())
}

// ownerHeld reports whether a live process holds owner id's lock. A missing
// file means its runtime is gone (a sweep removed the file after it died).
func ownerHeld(stateDir, id string) (bool, error) {
	if id == "" || strings.ContainsAny(id, `/\`) || strings.HasPrefix(id, ".") {
		return false, fmt.Errorf("session owner %q is not an owner id", id)
	}
	f, err := os.Open(ownerPath(stateDir, id))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	// A shared lock is enough to probe: it fails while the owner holds its
	// exclusive one, and is dropped again at Close.
	switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); {
	case err == nil:
		return false, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		return true, nil
	default:
		return false, fmt.Errorf("probe %s: %w", f.Name(), err)
	}
}

// removeDeadOwners deletes the lock files of runtimes that are gone, so
// that the directory does not grow with every `local trigger`. Files still
// being set up (*.new) are left alone unless they are an hour old: their
// creator died between creating and renaming them.
func removeDeadOwners(stateDir string) {
	dir := filepath.Join(stateDir, ownersDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasSuffix(name, ".lock"):
			if held, err := ownerHeld(stateDir, strings.TrimSuffix(name, ".lock")); err == nil && !held {
				os.Remove(filepath.Join(dir, name))
			}
		case strings.HasSuffix(name, ".new"):
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Hour {
				os.Remove(filepath.Join(dir, name))
			}
		}
	}
}

// InterruptedReason is the error of a session whose runtime died under it.
const InterruptedReason = "the runtime that ran it stopped (killed or crashed) before it finished"

// SessionAlive returns the test FailInterrupted applies to the sessions of
// state directory stateDir: a session is alive while its owner's lock is
// held. A session recorded before owners existed has only a PID, which is
// all there is to go by for it. When the lock cannot be probed the session
// counts as alive: failing a live session would start a second one beside
// it.
func SessionAlive(stateDir string) func(*Session) bool {
	return func(s *Session) bool {
		if s.Owner == "" {
			return ProcessAlive(s.PID)
		}
		held, err := ownerHeld(stateDir, s.Owner)
		if err != nil {
			return true
		}
		return held
	}
}
