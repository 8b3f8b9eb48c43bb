package local

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/status"
)

func TestIsStashImage(t *testing.T) {
	for img, want := range map[string]bool{
		"ghcr.io/stash-backup/stash:latest":           true,
		"ghcr.io/stash-backup/stash-postgres:v1.2":    true,
		"localhost:5000/stash-mysql@sha256:abc":       true,
		"stash":                                       true,
		"docker.io/library/postgres:15":               false,
		"ghcr.io/stashed/stash-postgres-other:11.9-1": false,
	} {
		if got := IsStashImage(img); got != want {
			t.Errorf("%s: %v", img, got)
		}
	}
}

func TestMapArg(t *testing.T) {
	e := &Executor{Mounts: map[string]string{"/stash-tmp": "/state/s/tmp", "/safe/data": "/backups/pg", "/safe": "/x"}}
	for in, want := range map[string]string{
		"--output-dir=/stash-tmp/output": "--output-dir=/state/s/tmp/output",
		"--bucket=/safe/data":            "--bucket=/backups/pg",
		"--bucket=/safe/database":        "--bucket=/x/database",
		"--bucket=/safety":               "--bucket=/safety",
		"--path=/safe/other":             "--path=/x/other",
		"/stash-tmp":                     "/state/s/tmp",
		"--flag":                         "--flag",
		"backup-pg":                      "backup-pg",
	} {
		if got := e.mapArg(in); got != want {
			t.Errorf("%s -> %s, want %s", in, got, want)
		}
	}
}

func TestStore(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, phase := range []string{"Succeeded", "Failed", "Succeeded", "Running"} {
		if err := s.Put(&Session{Name: "bc-" + string(rune('a'+i)), Namespace: "demo", Kind: "BackupSession", InvokerName: "bc",
			Phase: phase, Start: base.Add(time.Duration(i) * time.Hour), PID: 999999999}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.KeepNewest("BackupSession", "demo", "bc", 2); err != nil {
		t.Fatal(err)
	}
	list, _ := s.List()
	var names []string
	for _, x := range list {
		names = append(names, x.Name+":"+x.Phase)
	}
	if strings.Join(names, ",") != "bc-b:Failed,bc-c:Succeeded,bc-d:Running" {
		t.Errorf("after KeepNewest(2): %v", names)
	}
	n, err := s.FailInterrupted(func(*Session) bool { return false })
	if err != nil || n != 1 {
		t.Fatalf("FailInterrupted: %d %v", n, err)
	}
	list, _ = s.List()
	if last := list[len(list)-1]; last.Phase != "Failed" || last.Error != InterruptedReason {
		t.Errorf("interrupted session %+v", last)
	}
}

// TestSessionMetrics: the local runtime's /metrics exports, under Stash's
// names and through the operator's internal/metrics, the newest finished
// session of each invoker (its hosts too), the last success even when a
// failure followed, and each repository's newest state.
func TestSessionMetrics(t *testing.T) {
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	status := []byte(`{"phase":"Failed","targets":[{"ref":{"kind":"AppBinding","name":"pg"},"stats":[{"hostname":"host-0","phase":"Failed","duration":"1.5s",
		"snapshots":[{"name":"abc","path":"dumpfile.sql","totalSize":"2.000 MiB","uploaded":"512 B","processingTime":"1.25s","fileStats":{"totalFiles":1,"newFiles":0,"modifiedFiles":1,"unmodifiedFiles":0}}]}]}]}`)
	reg, err := sessionMetrics([]Session{
		{Name: "a", Namespace: "demo", Kind: "BackupSession", InvokerKind: "BackupConfiguration", InvokerName: "db", Phase: "Succeeded", Start: base, End: base.Add(4 * time.Second)},
		{Name: "b", Namespace: "demo", Kind: "BackupSession", InvokerKind: "BackupConfiguration", InvokerName: "db", Phase: "Failed", Start: base.Add(time.Hour), End: base.Add(time.Hour + 2*time.Second), Status: status},
		{Name: "r", Namespace: "demo", Kind: "RestoreSession", InvokerKind: "RestoreSession", InvokerName: "r", Phase: "Succeeded", Start: base, End: base.Add(time.Second)},
		{Name: "c", Namespace: "demo", Kind: "BackupSession", InvokerKind: "BackupConfiguration", InvokerName: "other", Phase: "Succeeded", Start: base, End: base.Add(time.Second),
			Repository: &RepositoryState{Name: "repo", Namespace: "demo", Backend: "s3", Bucket: "b", Prefix: "p/", Integrity: true, SizeBytes: 4096, SnapshotCount: 3}},
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	const db = `driver="Restic",invoker_kind="BackupConfiguration",invoker_name="db",namespace="demo",repository=""`
	const host = `driver="Restic",hostname="host-0",invoker_kind="BackupConfiguration",invoker_name="db",kind="AppBinding",name="pg",namespace="demo",repository=""`
	const repo = `backend="s3",bucket="b",name="repo",namespace="demo",prefix="p/"`
	for _, want := range []string{
		`stash_appscode_com_backupsession_success{` + db + `} 0`,
		`stash_backup_session_success{` + db + `} 0`,
		`stash_appscode_com_backupsession_duration_seconds{` + db + `} 2`,
		`stash_appscode_com_backupsession_last_success_time_seconds{` + db + `} 1.767225604e+09`,
		`stash_appscode_com_restoresession_success{driver="Restic",invoker_kind="RestoreSession",invoker_name="r",namespace="demo",repository=""} 1`,
		"# TYPE stash_appscode_com_backupsession_success gauge",
		`stash_appscode_com_repository_integrity{` + repo + `} 1`,
		`stash_appscode_com_repository_size_bytes{` + repo + `} 4096`,
		`stash_appscode_com_repository_snapshot_count{` + repo + `} 3`,
		`stash_appscode_com_backupsession_host_backup_success{` + host + `} 0`,
		`stash_appscode_com_backupsession_host_data_size_bytes{` + host + `} 2.097152e+06`,
		`stash_appscode_com_backupsession_host_data_uploaded_bytes{` + host + `} 512`,
		`stash_appscode_com_backupsession_host_files_modified{` + host + `} 1`,
		`stash_appscode_com_backupsession_host_backup_duration_seconds{` + host + `} 1.5`,
		`stash_appscode_com_backupsession_target_count_total{` + db + `} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("metrics lack %s\n%s", want, out)
		}
	}
}

// Skipped sessions never push the last real outcome out of the history.
func TestKeepNewestKeepsLastOutcome(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, phase := range []string{"Succeeded", "Succeeded", "Skipped", "Skipped", "Skipped"} {
		if err := s.Put(&Session{Name: "bc-" + string(rune('a'+i)), Namespace: "demo", Kind: "BackupSession", InvokerName: "bc",
			Phase: phase, Start: base.Add(time.Duration(i) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.KeepNewest("BackupSession", "demo", "bc", 2); err != nil {
		t.Fatal(err)
	}
	list, _ := s.List()
	var names []string
	for _, x := range list {
		names = append(names, x.Name+":"+x.Phase)
	}
	if strings.Join(names, ",") != "bc-b:Succeeded,bc-d:Skipped,bc-e:Skipped" {
		t.Errorf("after KeepNewest(2): %v", names)
	}
}

// TestBeginNeverOverwrites: a session name the store holds is refused,
// whatever that session's phase, and its record stays as it was: two
// sessions started within one second must not share a record.
func TestBeginNeverOverwrites(t *testing.T) {
	s, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	first := &Session{Name: "bc-100", Namespace: "demo", Kind: "BackupSession", InvokerName: "bc", Phase: "Failed", Error: "killed"}
	if err := s.Put(first); err != nil {
		t.Fatal(err)
	}
	again := &Session{Name: "bc-100", Namespace: "demo", Kind: "BackupSession", InvokerName: "bc"}
	if _, err := s.Begin(again, func(*Session) bool { return false }); !errors.Is(err, ErrSessionExists) {
		t.Fatalf("Begin on a taken name: %v, want ErrSessionExists", err)
	}
	list, err := s.List()
	if err != nil || len(list) != 1 || list[0].Phase != "Failed" || list[0].Error != "killed" {
		t.Fatalf("the first session's record changed: %+v (%v)", list, err)
	}
}

// TestStoreRecorder: update-status's result lands in the session's own
// record in the store, merged across hosts, keeping what the runtime
// wrote there; a session the store does not hold is recorded with the
// status's phase.
func TestStoreRecorder(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	running := &Session{Name: "bc-1", Namespace: "demo", Kind: "BackupSession", InvokerName: "bc", Phase: "Running", PID: 42}
	if err := s.Put(running); err != nil {
		t.Fatal(err)
	}
	rec := StoreRecorder{Dir: dir}
	target := stashv1beta1.TargetRef{Kind: "AppBinding", Name: "pg"}
	for _, h := range []string{"host-0", "host-1"} {
		if _, err := rec.RecordBackup(ctx, "demo", "bc-1", target, 2, []stashv1beta1.HostBackupStats{{Hostname: h, Phase: "Succeeded"}}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Get("BackupSession", "demo", "bc-1")
	if err != nil || got == nil {
		t.Fatalf("get: %v %v", got, err)
	}
	var st stashv1beta1.BackupSessionStatus
	if err := json.Unmarshal(got.Status, &st); err != nil {
		t.Fatal(err)
	}
	if st.Phase != stashv1beta1.BackupSessionSucceeded || len(st.Targets) != 1 || len(st.Targets[0].Stats) != 2 {
		t.Errorf("recorded status %+v, want both hosts Succeeded", st)
	}
	if got.Phase != "Running" || got.PID != 42 {
		t.Errorf("the runtime's fields changed: %+v", got)
	}
	// The session has ended: a late result is refused and changes nothing.
	if _, err := rec.RecordBackup(ctx, "demo", "bc-1", target, 2, []stashv1beta1.HostBackupStats{{Hostname: "host-1", Phase: "Failed", Error: "late"}}, nil, nil); !errors.Is(err, status.ErrSessionEnded) {
		t.Errorf("a result after the session ended: %v, want ErrSessionEnded", err)
	}
	if again, _ := s.Get("BackupSession", "demo", "bc-1"); string(again.Status) != string(got.Status) {
		t.Errorf("a late result changed the status: %s", again.Status)
	}
	if _, err := rec.RecordRestore(ctx, "demo", "by-hand", 1, []stashv1beta1.HostRestoreStats{{Hostname: "host-0", Phase: "Failed", Error: "x"}}); err != nil {
		t.Fatal(err)
	}
	if byHand, _ := s.Get("RestoreSession", "demo", "by-hand"); byHand == nil || byHand.Phase != "Failed" {
		t.Errorf("a session recorded by hand: %+v", byHand)
	}
}
