package step

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/manifest"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/source"
)

// The engine's tests run a driver of their own, in process, against a
// real repository on local disk: what the engine does around a driver
// (objects, repository, hosts, retention, output.json, snapshot choice)
// is the same whatever the application.

const objects = `apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: app, namespace: demo}
spec:
  clientConfig: {url: 'postgres://127.0.0.1:5432/db'}
  secret: {name: app-auth}
---
apiVersion: v1
kind: Secret
metadata: {name: app-auth, namespace: demo}
stringData: {username: u, password: p}
---
apiVersion: v1
kind: Secret
metadata: {name: storage, namespace: demo}
stringData: {RESTIC_PASSWORD: test-password}
`

// testDriver backs up, for each of its hosts (the step's own when none),
// a file written through Stream and one through Commands, and restores
// them into restored.
type testDriver struct {
	hosts    []string
	data     string
	fail     error // returned by the Stream producer after writing
	noOutput int   // first backups that fail as a dump that could not connect
	noFiles  bool  // no file set
	waited   int
	restored map[string]string
}

func (d *testDriver) Wait(context.Context, time.Duration) error { d.waited++; return nil }

func (d *testDriver) Backup(ctx context.Context, w addon.Writer) error {
	if d.noOutput > 0 {
		d.noOutput--
		return &dump.NoOutputError{Err: errors.New("connection refused")}
	}
	hosts := d.hosts
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	for _, h := range hosts {
		err := w.Stream(ctx, h, "stream.dat", func(_ context.Context, out io.Writer) error {
			if _, err := io.WriteString(out, d.data+h); err != nil {
				return err
			}
			return d.fail
		})
		if err != nil {
			return err
		}
		if err := w.Commands(ctx, h, "dump.sql", func(ctx context.Context) *exec.Cmd {
			return exec.CommandContext(ctx, "printf", "%s", "dump of "+h)
		}); err != nil {
			return err
		}
		if d.noFiles {
			continue
		}
		if err := w.Files(ctx, h, "/stash-data/set", func(_ context.Context, add addon.AddFile) error {
			for _, name := range []string{"b.json", "a.json"} {
				if err := add(name, func(out io.Writer) error {
					_, err := io.WriteString(out, name+" of "+h)
					return err
				}); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

func (d *testDriver) Restore(ctx context.Context, r addon.Reader) error {
	hosts := d.hosts
	if len(hosts) == 0 {
		hosts = []string{""}
	}
	for _, h := range hosts {
		for _, name := range []string{"stream.dat", "dump.sql"} {
			var b bytes.Buffer
			if err := r.Stream(ctx, h, name, &b); err != nil {
				return err
			}
			d.restored[h+"/"+name] = b.String()
		}
		if d.noFiles {
			continue
		}
		if err := r.Files(ctx, h, "/stash-data/set", nil, func(name string, src io.Reader) error {
			b, err := io.ReadAll(src)
			d.restored[h+"/set/"+name] = string(b)
			return err
		}); err != nil {
			return err
		}
	}
	return nil
}

func registration(d *testDriver) addon.Registration {
	return addon.Registration{
		Name: "test", DefaultPort: 1, UserKeys: []string{"username"}, PasswordKeys: []string{"password"},
		NewBackup:  func(addon.Config) (addon.Driver, error) { return d, nil },
		NewRestore: func(addon.Config) (addon.Driver, error) { return d, nil },
	}
}

type env struct {
	opts Options
	repo string
}

func newEnv(t *testing.T) env {
	t.Helper()
	dir := t.TempDir()
	f := filepath.Join(dir, "objects.yaml")
	if err := os.WriteFile(f, []byte(objects), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := manifest.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	return env{repo: filepath.Join(dir, "repo"), opts: Options{
		Provider: "local", Bucket: filepath.Join(dir, "repo"), SecretName: "storage", Namespace: "demo", AppBinding: "app",
		OutputDir: filepath.Join(dir, "out"), Stdout: io.Discard, Log: io.Discard, InvokerName: "nightly", BackupSession: "s1",
		Source: func() (source.Source, error) { return source.Manifests{Set: set}, nil },
	}}
}

func (e env) open(t *testing.T) *repository.Repository {
	t.Helper()
	src, err := e.opts.Source()
	if err != nil {
		t.Fatal(err)
	}
	r, err := e.opts.OpenRepository(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

// TestBackupSeveralHosts: a driver that backs up several hosts in one
// step (the shards of a cluster) gets one snapshot per host and file or
// file set, each
// tagged with the session and invoker; output.json reports every host with
// its snapshots; retention keeps each host's files apart; the restore
// reads each host's own.
func TestBackupSeveralHosts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.opts.Retention = stashv1alpha1.RetentionPolicy{Name: "keep-1", KeepLast: 1}
	d := &testDriver{hosts: []string{"shard0", "shard1", "confighost"}}
	for i := range 2 {
		d.data = fmt.Sprintf("backup %d of ", i)
		if err := Backup(ctx, e.opts, registration(d), nil); err != nil {
			t.Fatal(err)
		}
	}
	out, err := ReadOutput(e.opts.OutputDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.HostBackupStats) != 3 {
		t.Fatalf("output.json reports %d hosts, want 3: %+v", len(out.HostBackupStats), out.HostBackupStats)
	}
	for i, hs := range out.HostBackupStats {
		if hs.Hostname != d.hosts[i] || hs.Phase != "Succeeded" || len(hs.Snapshots) != 3 {
			t.Errorf("host %d: %+v, want %s Succeeded with 3 snapshots", i, hs, d.hosts[i])
		}
	}
	if out.Retention == nil || out.Retention.SnapshotsRemoved != 9 || out.Retention.Error != "" {
		t.Errorf("retention %+v, want the first backup's 9 snapshots removed", out.Retention)
	}
	r := e.open(t)
	snaps, err := r.Snapshots(ctx, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 9 {
		t.Fatalf("%d snapshots after retention, want 9 (one per host and file or set)", len(snaps))
	}
	for _, s := range snaps {
		if s.Tags["backup-session"] != "s1" || repository.InvokerOf(s).Name != "nightly" {
			t.Errorf("snapshot %s of %s tags %v: want the session and invoker", s.ShortID(), s.Host, s.Tags)
		}
	}
	d.restored = map[string]string{}
	if err := Restore(ctx, e.opts, registration(d), nil); err != nil {
		t.Fatal(err)
	}
	for _, h := range d.hosts {
		if got := d.restored[h+"/stream.dat"]; got != "backup 1 of "+h {
			t.Errorf("%s: restored %q", h, got)
		}
		if got := d.restored[h+"/dump.sql"]; got != "dump of "+h {
			t.Errorf("%s: restored %q", h, got)
		}
		for _, f := range []string{"a.json", "b.json"} {
			if got := d.restored[h+"/set/"+f]; got != f+" of "+h {
				t.Errorf("%s: restored %s as %q", h, f, got)
			}
		}
	}
}

// TestStreamFailureCommitsNothing: a producer that fails after writing
// leaves no snapshot, and the failure is the step's reported result.
func TestStreamFailureCommitsNothing(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	d := &testDriver{data: strings.Repeat("x", 3<<20), fail: errors.New("the server hung up")}
	if err := Backup(ctx, e.opts, registration(d), nil); err != nil {
		t.Fatal(err) // with --output-dir the failure is in output.json
	}
	out, err := ReadOutput(e.opts.OutputDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.HostBackupStats) != 1 || out.HostBackupStats[0].Phase != "Failed" || !strings.Contains(out.HostBackupStats[0].Error, "the server hung up") {
		t.Fatalf("output %+v, want host-0 Failed with the producer's error", out.HostBackupStats)
	}
	snaps, err := e.open(t).Snapshots(ctx, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 0 {
		t.Fatalf("%d snapshots after a failed stream, want none", len(snaps))
	}
	e.opts.OutputDir = ""
	if err := Backup(ctx, e.opts, registration(d), nil); err == nil || !strings.Contains(err.Error(), "the server hung up") {
		t.Fatalf("without --output-dir: %v, want the producer's error", err)
	}
}

// TestBackupWaitsOnlyAfterNoOutput: the application is asked whether it
// is up only when a first attempt found nothing to read; then the backup
// runs once more.
func TestBackupWaitsOnlyAfterNoOutput(t *testing.T) {
	ctx := context.Background()
	for _, noOutput := range []int{0, 1, 2} {
		e := newEnv(t)
		e.opts.OutputDir = ""
		d := &testDriver{data: "d", noOutput: noOutput}
		err := Backup(ctx, e.opts, registration(d), nil)
		wantWaits := min(noOutput, 1)
		if d.waited != wantWaits {
			t.Errorf("%d failed attempts: waited %d times, want %d", noOutput, d.waited, wantWaits)
		}
		if (err != nil) != (noOutput == 2) {
			t.Errorf("%d failed attempts: err %v", noOutput, err)
		}
	}
}

// TestRestoreChoosesSnapshot: --snapshot names one snapshot whichever
// host took it; else the latest of --source-hostname; a host without
// snapshots fails naming it.
func TestRestoreChoosesSnapshot(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	d := &testDriver{noFiles: true}
	for _, host := range []string{"host-0", "host-1"} {
		e.opts.Hostname, d.data = host, "data of "
		if err := Backup(ctx, e.opts, registration(d), nil); err != nil {
			t.Fatal(err)
		}
	}
	r := e.open(t)
	s, err := r.Resolve(ctx, repository.Latest, repository.Filter{Host: "host-1", Path: "stream.dat"})
	if err != nil {
		t.Fatal(err)
	}
	e.opts.OutputDir = ""
	restore := func(o Options) (string, error) {
		d.restored = map[string]string{}
		err := Restore(ctx, o, registration(&testDriver{restored: d.restored, noFiles: true}), nil)
		return d.restored["/stream.dat"], err
	}
	o := e.opts
	o.Hostname, o.SourceHostname = "host-0", "host-1"
	if got, err := restore(o); err != nil || got != "data of " {
		t.Errorf("--source-hostname host-1: %q, %v", got, err)
	}
	o.SourceHostname, o.Snapshot = "", s.ShortID()
	d.restored = map[string]string{}
	// An ID chooses the file it names: the dump.sql read after it has
	// no such ID, so the restore reads only the named stream.
	err = Restore(ctx, o, registration(&testDriver{restored: d.restored, noFiles: true}), nil)
	if got := d.restored["/stream.dat"]; got != "data of " {
		t.Errorf("--snapshot %s: restored %q (%v)", s.ShortID(), got, err)
	}
	o.Snapshot, o.SourceHostname = "", "host-9"
	if _, err := restore(o); err == nil || !strings.Contains(err.Error(), "host-9") {
		t.Errorf("a host without snapshots: %v, want an error naming it", err)
	}
}
