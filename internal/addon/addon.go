// Package addon defines what an application driver is: how it backs up
// and restores through the step engine (internal/step), and how it is
// registered as the backup-<name> and restore-<name> step commands.
//
// A driver knows its application and its tools, never the runtime it runs
// under or the repository's internals: it hands its data to a Writer and
// takes it back from a Reader. Each call of a Writer is one snapshot, so a
// driver that backs up several hosts in one step (the shards of a MongoDB
// cluster) calls it once per host, and a driver whose data does not come
// from a command (a Go client, a network connection such as a Galera SST)
// writes through Stream.
package addon

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"time"

	"github.com/stash-backup/stash/internal/appbinding"
)

// Driver backs up and restores one application.
type Driver interface {
	// Wait returns once the application accepts connections, or an error
	// after timeout. The engine calls it only when a first backup attempt
	// found nothing to read (dump.NoOutputError), and before a restore.
	Wait(ctx context.Context, timeout time.Duration) error
	// Backup writes the application's data through w. It returns only
	// when every snapshot it wrote is committed or has failed.
	Backup(ctx context.Context, w Writer) error
	// Restore loads the application's data from r.
	Restore(ctx context.Context, r Reader) error
}

// Writer takes a driver's backup. Each call commits one snapshot of host
// (empty: the step's --hostname) holding one file, name, and only when
// its source ended cleanly: a failed or truncated dump never becomes a
// snapshot. The engine tags each snapshot with the session and invoker
// and applies retention to every (host, name) written.
type Writer interface {
	// Commands runs cmds one after another and stores their standard
	// output, concatenated, as name. The first command starts before the
	// repository is open, so the dump runs while the key is derived; the
	// snapshot is committed only when every command exited 0.
	Commands(ctx context.Context, host, name string, cmds ...func(context.Context) *exec.Cmd) error
	// Stream stores what produce writes as name, committing it only when
	// produce returns nil. produce may read from anywhere: a Go client
	// (a MongoDB archive) or a network connection (a Galera SST).
	Stream(ctx context.Context, host, name string, produce func(ctx context.Context, w io.Writer) error) error
	// Files stores the files produce adds, one after another, as one
	// directory snapshot of path (an application's per-index files),
	// committing it only when produce returns nil. Nothing is written to
	// local disk on the way.
	Files(ctx context.Context, host, path string, produce func(ctx context.Context, add AddFile) error) error
}

// AddFile adds the file name, holding what write writes, to the snapshot
// Files is writing.
type AddFile func(name string, write func(io.Writer) error) error

// ErrNoSnapshot is what a Reader's error wraps when no snapshot matches,
// so that a driver can look under another name (the path Stash used).
var ErrNoSnapshot = errors.New("no such snapshot")

// Reader gives a driver back what it wrote.
type Reader interface {
	// Stream writes the file name of host's snapshot (empty: the snapshot
	// the step's --snapshot and --source-hostname choose) to w.
	Stream(ctx context.Context, host, name string, w io.Writer) error
	// Files calls each with every file of host's directory snapshot of
	// path (chosen as Stream chooses), in the order cmp gives (nil: name
	// order), so that a driver reads what makes a table or an index
	// before its data. A file each does not read is not fetched.
	Files(ctx context.Context, host, path string, cmp func(a, b string) int, each func(name string, r io.Reader) error) error
}

// Flag is a flag of a driver's own Functions, beside the flags every
// backup-* and restore-* step shares.
type Flag struct {
	Name, Default, Usage string
}

// Config is what a driver is made from for one step.
type Config struct {
	// Conn is the application's address and credentials, from its
	// AppBinding and the AppBinding's Secrets.
	Conn *appbinding.Connection
	// ScratchDir is the step's scratch directory (--scratch-dir).
	ScratchDir string
	// Flags holds the values of the driver's own flags, by name.
	Flags map[string]string
}

// Registration is one driver as the step commands know it. Every built-in
// driver is listed in internal/addon/builtin.
type Registration struct {
	// Name makes the commands backup-<Name> and restore-<Name>.
	Name string
	// BackupShort and RestoreShort are the commands' one-line help.
	BackupShort, RestoreShort string
	// DefaultPort, UserKeys and PasswordKeys resolve the AppBinding: the
	// port when it names none, and the Secret keys of the user and
	// password, in order of preference.
	DefaultPort            int
	UserKeys, PasswordKeys []string
	// BackupFlags and RestoreFlags are the driver's own flags.
	BackupFlags, RestoreFlags []Flag
	// NewBackup and NewRestore make the driver of a backup or a restore
	// step; an error names the flag at fault.
	NewBackup, NewRestore func(Config) (Driver, error)
	// RestoreNeedsApp, if set, says whether a restore with these flags
	// reads its AppBinding: a restore into a data directory for a
	// database not yet created (a Galera replica's claim) does not, and
	// its Config.Conn is nil.
	RestoreNeedsApp func(flags map[string]string) bool
}

// MultiHost is a driver that restores several hosts in one step (the
// components of a sharded cluster): it names them, so that the step
// reports each, failed or not.
type MultiHost interface {
	Hosts() []string
}

// HostError is the failure of one host of a step that backs up or
// restores several (a shard of a MongoDB cluster): the step fails, and the
// snapshots the other hosts took still count and are reported.
type HostError struct {
	Host string
	Err  error
}

func (e *HostError) Error() string { return e.Host + ": " + e.Err.Error() }

// Unwrap returns the host's error.
func (e *HostError) Unwrap() error { return e.Err }

// HostErrors returns the HostErrors err is made of (one, or several
// joined with errors.Join), or nil when err is nil or holds any other
// error.
func HostErrors(err error) []*HostError {
	if he, ok := err.(*HostError); ok {
		return []*HostError{he}
	}
	j, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil
	}
	var out []*HostError
	for _, e := range j.Unwrap() {
		hs := HostErrors(e)
		if hs == nil {
			return nil
		}
		out = append(out, hs...)
	}
	return out
}
