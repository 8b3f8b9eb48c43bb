package step

import (
	"strings"
	"testing"
	"time"

	"github.com/stash-backup/stash/internal/repository"
)

func TestLatestWarning(t *testing.T) {
	base := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	snap := func(id string, minutes int, inv repository.Invoker) repository.Snapshot {
		return repository.Snapshot{ID: id, Host: "host-0", Path: "dumpfile.sql", Time: base.Add(time.Duration(minutes) * time.Minute), Tags: inv.Tags()}
	}
	a := repository.Invoker{Namespace: "demo", Kind: "BackupConfiguration", Name: "a"}
	b := repository.Invoker{Namespace: "demo", Kind: "BackupConfiguration", Name: "b"}
	for _, tt := range []struct {
		name  string
		snaps []repository.Snapshot
		want  []string // substrings; none means no warning
	}{
		{"one invoker", []repository.Snapshot{snap("a1aaaaaaaa", 0, a), snap("a2aaaaaaaa", 1, a)}, nil},
		{"only untagged", []repository.Snapshot{snap("x1xxxxxxxx", 0, repository.Invoker{}), snap("x2xxxxxxxx", 1, repository.Invoker{})}, nil},
		{"two invokers", []repository.Snapshot{snap("a1aaaaaaaa", 0, a), snap("b1bbbbbbbb", 1, b)}, []string{
			"host host-0 and path dumpfile.sql", "2 invokers (demo/BackupConfiguration/a, demo/BackupConfiguration/b)",
			"restored the newest, b1bbbbbb of demo/BackupConfiguration/b taken 2026-05-01T12:01:00Z", "give its ID",
		}},
		{"an invoker and untagged", []repository.Snapshot{snap("a1aaaaaaaa", 0, a), snap("x1xxxxxxxx", 1, repository.Invoker{})}, []string{
			"2 invokers (demo/BackupConfiguration/a, snapshots naming no invoker)", "x1xxxxxx of snapshots naming no invoker",
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := latestWarning(tt.snaps, tt.snaps[len(tt.snaps)-1])
			if len(tt.want) == 0 && got != "" {
				t.Errorf("warning %q, want none", got)
			}
			if len(tt.want) > 0 && got == "" {
				t.Error("no warning")
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%q lacks %q", got, w)
				}
			}
		})
	}
}
