// Package step is the step engine every backup-* and restore-* command
// shares: it opens the repository from a Function's flags or a named
// Repository, runs a driver's backup or restore, applies retention,
// reports the result as output.json, and, in update-status, records that
// result in the session with the post-backup actions. Commands map their
// flags to Options and call Backup, Restore, BackupPaths, RestorePaths,
// Record or RunHook; no command holds orchestration of its own.
package step

import (
	"errors"
	"fmt"
	"io"
	"os"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	"github.com/stash-backup/stash/internal/source"
)

// Options are the flags of Stash's addon Functions, shared by every step.
type Options struct {
	// The repository: a backend from the Function's flags, or Repository,
	// a Repository object in the source.
	Provider, Bucket, Endpoint, Region, Prefix string
	InsecureTLS                                bool
	MaxConnections                             int64
	Repository                                 string
	// The storage Secret: by name in the source, or as files (Stash 0.9
	// Functions' --secret-dir).
	SecretName, SecretNamespace, SecretDir string

	ScratchDir string
	// Hostname is the snapshot's host (host-0 when empty); SourceHostname
	// the host whose snapshots a restore reads (default Hostname).
	Hostname, SourceHostname string
	// Namespace is the session's.
	Namespace                       string
	AppBinding, AppBindingNamespace string
	// BackupSession names the session a backup belongs to; Snapshot the
	// snapshot a restore reads (an ID, or latest).
	BackupSession, Snapshot string
	// InvokerKind and InvokerName name the session's invoker, recorded on
	// the snapshot (Invoker).
	InvokerKind, InvokerName string
	// OutputDir, when set, receives the result as output.json and the
	// step succeeds whatever the result, for update-status to record it.
	OutputDir string
	// WaitTimeout is how many seconds to wait for the application.
	WaitTimeout int
	Retention   stashv1alpha1.RetentionPolicy

	// Source finds AppBindings, Secrets, Repositories and sessions (the
	// cluster or manifest files). It is called once the flags are checked.
	Source func() (source.Source, error)
	// Stdout receives the result when there is no OutputDir; Log the
	// step's warnings. Both default to the process's.
	Stdout, Log io.Writer
}

func (o *Options) stdout() io.Writer {
	if o.Stdout == nil {
		return os.Stdout
	}
	return o.Stdout
}

func (o *Options) log() io.Writer {
	if o.Log == nil {
		return os.Stderr
	}
	return o.Log
}

func (o *Options) warn(format string, args ...any) {
	fmt.Fprintf(o.log(), "stash: warning: "+format+"\n", args...)
}

func (o *Options) source() (source.Source, error) {
	if o.Source == nil {
		return nil, errors.New("no object source: outside a cluster pass -f with the manifests holding the AppBinding, Secrets and Repository")
	}
	return o.Source()
}

// check refuses negative counts, which would otherwise read as unset: a
// --retention-keep-last=-1 would keep nothing by it.
func (o *Options) check() error {
	for _, c := range []struct {
		flag string
		n    int64
	}{
		{"--max-connections", o.MaxConnections},
		{"--retention-keep-last", o.Retention.KeepLast},
		{"--retention-keep-hourly", o.Retention.KeepHourly},
		{"--retention-keep-daily", o.Retention.KeepDaily},
		{"--retention-keep-weekly", o.Retention.KeepWeekly},
		{"--retention-keep-monthly", o.Retention.KeepMonthly},
		{"--retention-keep-yearly", o.Retention.KeepYearly},
		{"--wait-timeout", int64(o.WaitTimeout)},
	} {
		if c.n < 0 {
			return fmt.Errorf("%s=%d: must be 0 or more", c.flag, c.n)
		}
	}
	return nil
}

// defaultHost makes an empty --hostname host-0, the job model's host, as
// the Functions pass it (--hostname=${HOSTNAME:=}): a backup needs a host,
// and a restore filtering on an empty one would match every host's
// snapshots.
func (o *Options) defaultHost() {
	if o.Hostname == "" {
		o.Hostname = "host-0"
	}
}

func orStr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
