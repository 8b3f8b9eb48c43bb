package repository

import (
	"bytes"
	"context"
	"testing"
)

// TestForgetPerInvoker: two BackupConfigurations write the same host and
// path into one repository, each applying keepLast 1 to its own snapshots
// after each backup, as the backup steps do. Both newest survive, and so
// does a snapshot that names no invoker (an imported one).
func TestForgetPerInvoker(t *testing.T) {
	ctx := context.Background()
	r := openNew(t, localOptions(t))
	a := Invoker{Namespace: "demo", Kind: "BackupConfiguration", Name: "a"}
	b := Invoker{Namespace: "demo", Kind: "BackupConfiguration", Name: "b"}
	if _, err := r.BackupStream(ctx, "dumpfile.sql", bytes.NewReader([]byte("imported")), BackupOptions{Host: "host-0"}); err != nil {
		t.Fatal(err)
	}
	newest := map[Invoker]string{}
	for round, inv := range []Invoker{a, b, a, b, a, b} {
		st, err := r.BackupStream(ctx, "dumpfile.sql", bytes.NewReader([]byte{byte(round)}), BackupOptions{Host: "host-0", Tags: inv.Tags()})
		if err != nil {
			t.Fatal(err)
		}
		newest[inv] = st.Name
		res, err := r.Forget(ctx, Policy{KeepLast: 1, KeepIDs: []string{st.Name}}, Filter{Host: "host-0", Path: "dumpfile.sql", Invoker: &inv}, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Groups) != 1 || res.Groups[0].Invoker != inv.String() {
			t.Fatalf("round %d decided groups %+v, want %s's only", round, res.Groups, inv)
		}
	}
	snaps, err := r.Snapshots(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[Invoker]string{}
	for _, s := range snaps {
		got[InvokerOf(s)] += s.ID
	}
	if len(got) != 3 || got[a] != newest[a] || got[b] != newest[b] || got[Invoker{}] == "" {
		t.Errorf("left %v, want a's %s, b's %s and the imported one", got, newest[a], newest[b])
	}

	// A keepTags-only policy keeps the snapshot just taken.
	st, err := r.BackupStream(ctx, "dumpfile.sql", bytes.NewReader([]byte("tags")), BackupOptions{Host: "host-0", Tags: a.Tags()})
	if err != nil {
		t.Fatal(err)
	}
	res, err := r.Forget(ctx, Policy{KeepTags: []string{"pinned"}, KeepIDs: []string{st.Name}}, Filter{Host: "host-0", Path: "dumpfile.sql", Invoker: &a}, false)
	if err != nil || res.Kept != 1 || res.Removed != 1 {
		t.Fatalf("keepTags forget %+v %v", res, err)
	}
	if _, err := r.Resolve(ctx, st.Name, Filter{}); err != nil {
		t.Errorf("the snapshot just taken is gone: %v", err)
	}
}

func inv(ns, name string) map[string]string {
	return Invoker{Namespace: ns, Kind: "BackupConfiguration", Name: name}.Tags()
}

func TestInvokerOf(t *testing.T) {
	for _, tt := range []struct {
		tags map[string]string
		want Invoker
	}{
		{nil, Invoker{}},
		{map[string]string{TagInvokerKind: "BackupConfiguration", TagInvokerNamespace: "demo"}, Invoker{}},
		{map[string]string{TagInvokerName: "a"}, Invoker{Name: "a"}},
		{inv("demo", "a"), Invoker{Namespace: "demo", Kind: "BackupConfiguration", Name: "a"}},
	} {
		if got := InvokerOf(Snapshot{Tags: tt.tags}); got != tt.want {
			t.Errorf("InvokerOf(%v) = %+v, want %+v", tt.tags, got, tt.want)
		}
	}
	f := Filter{Invoker: &Invoker{}}
	if !f.match(Snapshot{}) || f.match(Snapshot{Tags: inv("demo", "a")}) {
		t.Error("a filter on the zero Invoker selects the untagged snapshots only")
	}
	f = Filter{Invoker: &Invoker{Namespace: "demo", Kind: "BackupConfiguration", Name: "a"}}
	if f.match(Snapshot{}) || !f.match(Snapshot{Tags: inv("demo", "a")}) || f.match(Snapshot{Tags: inv("demo", "b")}) {
		t.Error("a filter on an invoker selects its snapshots only")
	}
}
