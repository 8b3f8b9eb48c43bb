package retention

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

func snapAt(id, host, path string, t time.Time, tags map[string]string) Snapshot {
	return Snapshot{ID: id, Host: host, Path: path, Time: t, Tags: tags}
}

func withInvoker(s Snapshot, invoker string) Snapshot {
	s.Invoker = invoker
	return s
}

// apply decides on retention.Snapshots themselves.
func apply(snaps []Snapshot, p Policy) []Group[Snapshot] {
	return Apply(snaps, func(s Snapshot) Snapshot { return s }, p)
}

// kept returns the IDs a policy keeps, newest first, with reasons.
func kept(groups []Group[Snapshot]) map[string][]string {
	out := map[string][]string{}
	for _, g := range groups {
		for _, d := range g.Decisions {
			if d.Keep {
				out[d.Snapshot.ID] = d.Reasons
			}
		}
	}
	return out
}

func TestApply(t *testing.T) {
	base := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC) // a Tuesday
	// One snapshot every 6 hours for 40 days, newest is s0.
	var series []Snapshot
	for i := range 160 {
		series = append(series, snapAt(fmt.Sprintf("s%03d", i), "host-0", "/data", base.Add(-time.Duration(i)*6*time.Hour), nil))
	}
	tests := []struct {
		name   string
		snaps  []Snapshot
		policy Policy
		want   map[string][]string
	}{
		{
			name:   "empty policy keeps everything",
			snaps:  series[:3],
			policy: Policy{},
			want: map[string][]string{
				"s000": {"no retention policy set"}, "s001": {"no retention policy set"}, "s002": {"no retention policy set"},
			},
		},
		{
			name:   "keep last",
			snaps:  series[:5],
			policy: Policy{KeepLast: 2},
			want:   map[string][]string{"s000": {"last snapshot"}, "s001": {"last snapshot"}},
		},
		{
			name:   "keep daily takes the newest of each day",
			snaps:  series[:12],
			policy: Policy{KeepDaily: 3},
			// s000 12:00 Mar 10; s001 06:00; s002 00:00 Mar 10; s003 18:00 Mar 9 ...
			want: map[string][]string{"s000": {"daily snapshot"}, "s003": {"daily snapshot"}, "s007": {"daily snapshot"}},
		},
		{
			name:   "keep hourly and last overlap",
			snaps:  series[:4],
			policy: Policy{KeepLast: 1, KeepHourly: 2},
			want:   map[string][]string{"s000": {"last snapshot", "hourly snapshot"}, "s001": {"hourly snapshot"}},
		},
		{
			name:   "keep weekly uses ISO weeks",
			snaps:  series,
			policy: Policy{KeepWeekly: 2},
			// Mar 10 2026 is in ISO week 11 (Mon Mar 9); newest of week 10 is Sun Mar 8 18:00 = s007.
			want: map[string][]string{"s000": {"weekly snapshot"}, "s007": {"weekly snapshot"}},
		},
		{
			name:   "keep monthly",
			snaps:  series,
			policy: Policy{KeepMonthly: 2},
			// Newest of February: Feb 28 18:00 = 9 days 18 h before base = 39 steps.
			want: map[string][]string{"s000": {"monthly snapshot"}, "s039": {"monthly snapshot"}},
		},
		{
			name: "keep yearly",
			snaps: []Snapshot{
				snapAt("a", "h", "/p", time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC), nil),
				snapAt("b", "h", "/p", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), nil),
				snapAt("c", "h", "/p", time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC), nil),
				snapAt("d", "h", "/p", time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC), nil),
			},
			policy: Policy{KeepYearly: 2},
			want:   map[string][]string{"a": {"yearly snapshot"}, "c": {"yearly snapshot"}},
		},
		{
			name: "keep tags with and without value",
			snaps: []Snapshot{
				snapAt("a", "h", "/p", base, map[string]string{"release": "v1"}),
				snapAt("b", "h", "/p", base.Add(-time.Hour), map[string]string{"release": "v2"}),
				snapAt("c", "h", "/p", base.Add(-2*time.Hour), map[string]string{"pinned": ""}),
				snapAt("d", "h", "/p", base.Add(-3*time.Hour), nil),
			},
			policy: Policy{KeepTags: []string{"release=v2", "pinned"}},
			want:   map[string][]string{"b": {"tag release=v2"}, "c": {"tag pinned"}},
		},
		{
			name: "groups are per host and path",
			snaps: []Snapshot{
				snapAt("h0-new", "host-0", "/p", base, nil),
				snapAt("h0-old", "host-0", "/p", base.Add(-time.Hour), nil),
				snapAt("h1-new", "host-1", "/p", base.Add(-2*time.Hour), nil),
				snapAt("h1-old", "host-1", "/p", base.Add(-3*time.Hour), nil),
				snapAt("q-new", "host-0", "/q", base.Add(-4*time.Hour), nil),
			},
			policy: Policy{KeepLast: 1},
			want: map[string][]string{
				"h0-new": {"last snapshot"}, "h1-new": {"last snapshot"}, "q-new": {"last snapshot"},
			},
		},
		{
			// Two BackupConfigurations dumping one server into one
			// Repository: same host, same path, keepLast 1 each.
			name: "groups are per invoker too; untagged snapshots are a group of their own",
			snaps: []Snapshot{
				withInvoker(snapAt("a-new", "host-0", "dumpfile.sql", base, nil), "demo/BackupConfiguration/a"),
				withInvoker(snapAt("b-new", "host-0", "dumpfile.sql", base.Add(-time.Minute), nil), "demo/BackupConfiguration/b"),
				withInvoker(snapAt("a-old", "host-0", "dumpfile.sql", base.Add(-time.Hour), nil), "demo/BackupConfiguration/a"),
				withInvoker(snapAt("b-old", "host-0", "dumpfile.sql", base.Add(-2*time.Hour), nil), "demo/BackupConfiguration/b"),
				withInvoker(snapAt("other-ns-b", "host-0", "dumpfile.sql", base.Add(-3*time.Hour), nil), "prod/BackupConfiguration/b"),
				snapAt("imported-new", "host-0", "dumpfile.sql", base.Add(-4*time.Hour), map[string]string{"backup-session": "x"}),
				snapAt("imported-old", "host-0", "dumpfile.sql", base.Add(-5*time.Hour), nil),
			},
			policy: Policy{KeepLast: 1},
			want: map[string][]string{
				"a-new": {"last snapshot"}, "b-new": {"last snapshot"}, "other-ns-b": {"last snapshot"},
				"imported-new": {"last snapshot"},
			},
		},
		{
			name: "keepTags alone keeps the snapshot just taken",
			snaps: []Snapshot{
				snapAt("new", "h", "/p", base, nil),
				snapAt("old", "h", "/p", base.Add(-time.Hour), nil),
				snapAt("pinned", "h", "/p", base.Add(-2*time.Hour), map[string]string{"keep": "yes"}),
			},
			policy: Policy{KeepTags: []string{"keep=yes"}, KeepIDs: []string{"new"}},
			want:   map[string][]string{"new": {"snapshot just taken"}, "pinned": {"tag keep=yes"}},
		},
		{
			name: "the snapshot just taken is kept even when older snapshots fill keepLast",
			snaps: []Snapshot{
				snapAt("clock-ahead", "h", "/p", base, nil),
				snapAt("new", "h", "/p", base.Add(-time.Hour), nil),
			},
			policy: Policy{KeepLast: 1, KeepIDs: []string{"new"}},
			want:   map[string][]string{"clock-ahead": {"last snapshot"}, "new": {"snapshot just taken"}},
		},
		{
			name: "unsorted input and equal times",
			snaps: []Snapshot{
				snapAt("x1", "h", "/p", base, nil),
				snapAt("x3", "h", "/p", base.Add(time.Hour), nil),
				snapAt("x2", "h", "/p", base, nil),
			},
			policy: Policy{KeepLast: 2},
			want:   map[string][]string{"x3": {"last snapshot"}, "x2": {"last snapshot"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := kept(apply(tt.snaps, tt.policy))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("kept %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestApplyGroupsName(t *testing.T) {
	base := time.Now()
	groups := apply([]Snapshot{
		{ID: "1", Host: "h", Path: "/p", Invoker: "demo/BackupConfiguration/a", Time: base},
		snapAt("2", "h", "/p", base, nil),
	}, Policy{KeepLast: 1})
	var got []string
	for _, g := range groups {
		got = append(got, g.Host+"|"+g.Path+"|"+g.Invoker)
	}
	if want := []string{"h|/p|", "h|/p|demo/BackupConfiguration/a"}; !reflect.DeepEqual(got, want) {
		t.Errorf("groups %q, want %q", got, want)
	}
}

func TestApplyDecidesEverySnapshot(t *testing.T) {
	base := time.Now()
	var snaps []Snapshot
	for i := range 10 {
		snaps = append(snaps, snapAt(fmt.Sprint(i), "h", "/p", base.Add(-time.Duration(i)*time.Minute), nil))
	}
	groups := apply(snaps, Policy{KeepLast: 3})
	if len(groups) != 1 || len(groups[0].Decisions) != 10 {
		t.Fatalf("got %+v", groups)
	}
	var k, r int
	for _, d := range groups[0].Decisions {
		if d.Keep {
			k++
		} else {
			r++
			if len(d.Reasons) != 0 {
				t.Errorf("removed snapshot has reasons %v", d.Reasons)
			}
		}
	}
	if k != 3 || r != 7 {
		t.Errorf("kept %d removed %d", k, r)
	}
}
