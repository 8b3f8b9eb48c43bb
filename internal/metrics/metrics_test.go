package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

func TestParseBytes(t *testing.T) {
	for in, want := range map[string]float64{
		"": 0, "12 B": 12, "1.500 KiB": 1536, "2.000 MiB": 2 << 20, "1 GiB": 1 << 30, "3.2 GB": 3.2e9, "junk": 0, "5 XB": 0,
	} {
		if got := ParseBytes(in); got != want {
			t.Errorf("ParseBytes(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestBackupSessionExportsBothNames(t *testing.T) {
	m := New()
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		t.Fatal(err)
	}
	n := int64(3)
	st := stashv1beta1.BackupSessionStatus{Phase: stashv1beta1.BackupSessionSucceeded, Targets: []stashv1beta1.BackupTargetStatus{{
		Ref: stashv1beta1.TargetRef{Kind: "AppBinding", Name: "pg"},
		Stats: []stashv1beta1.HostBackupStats{{Hostname: "host-0", Phase: "Succeeded", Duration: "2s",
			Snapshots: []stashv1beta1.SnapshotStats{{TotalSize: "1.000 MiB", Uploaded: "512 B", FileStats: stashv1beta1.FileStats{TotalFiles: &n}}}}},
	}}}
	start := time.Unix(1000, 0)
	m.BackupSession("demo", "pg-backup", "repo", st, start, start.Add(5*time.Second))
	want := `
# HELP stash_appscode_com_backupsession_host_data_size_bytes size of the host's data in the last backup
# TYPE stash_appscode_com_backupsession_host_data_size_bytes gauge
stash_appscode_com_backupsession_host_data_size_bytes{driver="Restic",hostname="host-0",invoker_kind="BackupConfiguration",invoker_name="pg-backup",kind="AppBinding",name="pg",namespace="demo",repository="repo"} 1.048576e+06
# HELP stash_backup_session_duration_seconds duration of the last backup session (legacy name)
# TYPE stash_backup_session_duration_seconds gauge
stash_backup_session_duration_seconds{driver="Restic",invoker_kind="BackupConfiguration",invoker_name="pg-backup",namespace="demo",repository="repo"} 5
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "stash_appscode_com_backupsession_host_data_size_bytes", "stash_backup_session_duration_seconds"); err != nil {
		t.Fatal(err)
	}
}
