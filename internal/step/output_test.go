package step

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/repository"
)

// TestHostBackupStats: a step that backs up several hosts reports each;
// when some of them failed (addon.HostError), the others are reported
// with their snapshots and the failed ones with their errors; any other
// error fails the step's own host.
func TestHostBackupStats(t *testing.T) {
	o := &Options{Hostname: "host-0"}
	taken := []repository.SnapshotStats{{Host: "confighost"}, {Host: "host-0"}}
	for _, tt := range []struct {
		name  string
		stats []repository.SnapshotStats
		err   error
		want  string
	}{
		{"one host", []repository.SnapshotStats{{}}, nil, "[host-0 Succeeded 1 ]"},
		{"every component", append(taken, repository.SnapshotStats{Host: "host-1"}), nil, "[host-0 Succeeded 1 ] [confighost Succeeded 1 ] [host-1 Succeeded 1 ]"},
		{"a shard failed", taken, &addon.HostError{Host: "host-1", Err: errors.New("not authorized")},
			"[host-0 Succeeded 1 ] [confighost Succeeded 1 ] [host-1 Failed 0 not authorized]"},
		{"two failed", []repository.SnapshotStats{{Host: "host-0"}}, errors.Join(&addon.HostError{Host: "confighost", Err: errors.New("a")}, &addon.HostError{Host: "host-1", Err: errors.New("b")}),
			"[host-0 Succeeded 1 ] [confighost Failed 0 a] [host-1 Failed 0 b]"},
		{"the step failed", taken, errors.New("no repository"), "[host-0 Failed 0 no repository]"},
		{"a host error among others", taken, errors.Join(&addon.HostError{Host: "host-1", Err: errors.New("b")}, errors.New("balancer")), "[host-0 Failed 0 "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			for _, h := range o.hostBackupStats(time.Second, tt.stats, tt.err) {
				got += fmt.Sprintf("[%s %s %d %s] ", h.Hostname, h.Phase, len(h.Snapshots), h.Error)
			}
			if len(got) < len(tt.want) || got[:len(tt.want)] != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
	if totalHosts(0, 3) != 3 || totalHosts(0, 1) != 0 || totalHosts(2, 3) != 2 {
		t.Error("totalHosts")
	}
}

// TestHostRestoreStats: a restore of several hosts (a sharded cluster's
// components) reports each; a component's HostError fails it alone, any
// other error fails them all.
func TestHostRestoreStats(t *testing.T) {
	o := &Options{Hostname: "host-0"}
	hosts := []string{"confighost", "host-0", "host-1"}
	for _, tt := range []struct {
		name  string
		hosts []string
		err   error
		want  string
	}{
		{"one host", nil, nil, "[host-0 Succeeded ] "},
		{"one host failed", nil, errors.New("x"), "[host-0 Failed x] "},
		{"every component", hosts, nil, "[confighost Succeeded ] [host-0 Succeeded ] [host-1 Succeeded ] "},
		{"one component failed", hosts, &addon.HostError{Host: "host-1", Err: errors.New("no primary")}, "[confighost Succeeded ] [host-0 Succeeded ] [host-1 Failed no primary] "},
		{"the step failed", hosts, errors.New("no repository"), "[confighost Failed no repository] [host-0 Failed no repository] [host-1 Failed no repository] "},
	} {
		got := ""
		for _, h := range o.hostRestoreStats(time.Second, tt.hosts, tt.err) {
			got += fmt.Sprintf("[%s %s %s] ", h.Hostname, h.Phase, h.Error)
		}
		if got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}
