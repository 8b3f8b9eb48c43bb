package sidecar

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

func result(session, host string, phase stashv1beta1.HostPhase) Result {
	return Result{Session: session, Pod: "p-" + host, Stats: stashv1beta1.HostBackupStats{Hostname: host, Phase: phase}}
}

func TestChannelRoundTrip(t *testing.T) {
	cm := &corev1.ConfigMap{Data: map[string]string{HostKey("host-0"): `{"session":"old","stats":{"hostname":"host-0","phase":"Succeeded"}}`}}
	if err := WriteSession(cm, Session{Name: "s2", TotalHosts: 2}); err != nil {
		t.Fatal(err)
	}
	st, err := Read(cm)
	if err != nil || st.Session == nil || st.Session.Name != "s2" || len(st.Results) != 0 {
		t.Fatalf("a new session must drop earlier results: %+v %v", st, err)
	}
	for _, r := range []Result{result("s2", "host-0", PhaseSucceeded), result("s1", "host-1", PhaseSucceeded)} {
		if err := SetResult(cm, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := SetPost(cm, Post{Session: "s1"}); err != nil {
		t.Fatal(err)
	}
	st, err = Read(cm)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Results) != 1 || st.Post != nil {
		t.Errorf("entries of another session were read: %+v", st)
	}
	// A result filed under another host's key is not that host's.
	cm.Data[HostKey("host-1")] = `{"session":"s2","stats":{"hostname":"host-0","phase":"Failed"}}`
	if st, _ := Read(cm); st.Results["host-0"].Stats.Phase != PhaseSucceeded || len(st.Results) != 1 {
		t.Errorf("a result under the wrong key counted: %+v", st.Results)
	}
	// Handing the same session over again keeps what its hosts
	// reported; a new session drops it.
	cm.Data[HostKey("host-1")] = `{"session":"s2","stats":{"hostname":"host-1","phase":"Running"}}`
	if err := WriteSession(cm, Session{Name: "s2", TotalHosts: 2}); err != nil {
		t.Fatal(err)
	}
	if st, err := Read(cm); err != nil || len(st.Results) != 2 || st.Results["host-1"].Stats.Phase != PhaseRunning {
		t.Errorf("handing the session over again dropped its results: %+v %v", st.Results, err)
	}
	cm.Data[PostKey] = "{"
	if _, err := Read(cm); err == nil {
		t.Error("a corrupt entry was read silently")
	}
	if err := WriteSession(cm, Session{Name: "s2"}); err != nil {
		t.Fatal(err)
	}
	if st, err := Read(cm); err != nil || len(st.Results) != 0 {
		t.Errorf("a channel that could not be read kept its entries: %+v %v", st.Results, err)
	}
	if err := WriteSession(cm, Session{Name: "s3"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := Read(cm); len(st.Results) != 0 {
		t.Errorf("a new session kept an old one's results: %+v", st.Results)
	}
}

func TestChannelDoneAndLast(t *testing.T) {
	sess := &Session{Name: "s", TotalHosts: 3}
	for _, c := range []struct {
		name    string
		results []Result
		post    bool
		done    bool
		last    string // a host for which Last is true ("" none)
	}{
		{"nothing yet", nil, false, false, ""},
		{"two of three", []Result{result("s", "host-0", PhaseSucceeded), result("s", "host-1", PhaseSucceeded)}, false, false, "host-2"},
		{"running does not count", []Result{result("s", "host-0", PhaseSucceeded), result("s", "host-1", PhaseRunning)}, false, false, ""},
		{"all succeeded, no post yet", []Result{result("s", "host-0", PhaseSucceeded), result("s", "host-1", PhaseSucceeded), result("s", "host-2", PhaseSucceeded)}, false, false, "host-2"},
		{"all succeeded with post", []Result{result("s", "host-0", PhaseSucceeded), result("s", "host-1", PhaseSucceeded), result("s", "host-2", PhaseSucceeded)}, true, true, "host-0"},
		{"a failure ends it without post", []Result{result("s", "host-0", PhaseFailed), result("s", "host-1", PhaseSucceeded), result("s", "host-2", PhaseSucceeded)}, false, true, "host-1"},
	} {
		st := State{Session: sess, Results: map[string]Result{}}
		for _, r := range c.results {
			st.Results[r.Stats.Hostname] = r
		}
		if c.post {
			st.Post = &Post{Session: "s"}
		}
		if got := st.Done(); got != c.done {
			t.Errorf("%s: Done() = %v, want %v", c.name, got, c.done)
		}
		if c.last != "" && !st.Last(c.last) {
			t.Errorf("%s: Last(%s) = false", c.name, c.last)
		}
		if c.last == "" && st.Last("host-9") {
			t.Errorf("%s: Last(host-9) = true with hosts still to go", c.name)
		}
	}
}

func TestCovers(t *testing.T) {
	base := func() *corev1.PodTemplateSpec {
		return &corev1.PodTemplateSpec{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "a"}}}}
	}
	defaulted := base()
	defaulted.Spec.Containers[0].TerminationMessagePath = "/dev/termination-log"
	defaulted.Spec.RestartPolicy = corev1.RestartPolicyAlways
	if !Covers(base(), defaulted) {
		t.Error("a template that only lacks the API server's defaults must count as the same")
	}
	more := base()
	more.Spec.Containers = append(more.Spec.Containers, corev1.Container{Name: "stash"})
	if Covers(more, defaulted) || Covers(base(), more) {
		t.Error("a container more or less must count as a change")
	}
	changed := base()
	changed.Spec.Containers[0].Image = "b"
	if Covers(changed, defaulted) {
		t.Error("a changed image must count as a change")
	}
}

func TestRestoreChannelRoundTrip(t *testing.T) {
	cm := &corev1.ConfigMap{}
	if err := WriteRestore(cm, Restore{Name: "r1", TotalHosts: 2}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []RestoreResult{
		{Session: "r1", Stats: stashv1beta1.HostRestoreStats{Hostname: "host-0", Phase: PhaseSucceeded}},
		{Session: "r0", Stats: stashv1beta1.HostRestoreStats{Hostname: "host-1", Phase: PhaseSucceeded}},
	} {
		if err := SetRestoreResult(cm, r); err != nil {
			t.Fatal(err)
		}
	}
	cm.Data[HostKey("host-2")] = `{"session":"r1","stats":{"hostname":"host-0","phase":"Failed"}}`
	st, err := ReadRestore(cm)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Results) != 1 || st.Results["host-0"].Stats.Phase != PhaseSucceeded || len(st.FinalStats()) != 1 {
		t.Errorf("results %+v: want host-0 alone (another session's and a misfiled entry dropped)", st.Results)
	}
	// Writing the same plan again keeps its results; a new one drops them.
	if err := WriteRestore(cm, Restore{Name: "r1", TotalHosts: 2}); err != nil {
		t.Fatal(err)
	}
	if st, _ := ReadRestore(cm); len(st.Results) != 1 {
		t.Errorf("rewriting the plan dropped its results: %+v", st.Results)
	}
	if err := WriteRestore(cm, Restore{Name: "r2"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := ReadRestore(cm); len(st.Results) != 0 {
		t.Errorf("a new plan kept an old one's results: %+v", st.Results)
	}
}

// TestHostsBeyond: the hosts a scale-down leaves without a pod.
func TestHostsBeyond(t *testing.T) {
	for _, tt := range []struct {
		kind, alias     string
		total, replicas int32
		want            []string
	}{
		{"StatefulSet", "", 3, 2, []string{"host-2"}},
		{"StatefulSet", "", 3, 0, []string{"host-0", "host-1", "host-2"}},
		{"StatefulSet", "db", 4, 2, []string{"db-2", "db-3"}},
		{"StatefulSet", "", 2, 2, nil},
		{"StatefulSet", "", 2, 3, nil},
		{"Deployment", "", 1, 0, []string{"host-0"}},
		{"Deployment", "web", 1, 0, []string{"web"}},
		{"Deployment", "", 1, 2, nil},
		{"ReplicaSet", "", 1, 0, []string{"host-0"}},
		{"ReplicationController", "", 1, 0, []string{"host-0"}},
		{"DaemonSet", "", 3, 1, nil},
	} {
		if got := HostsBeyond(tt.kind, tt.alias, tt.total, tt.replicas); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s alias %q, %d hosts, now %d replicas: %v, want %v", tt.kind, tt.alias, tt.total, tt.replicas, got, tt.want)
		}
	}
}

// TestFailUnstarted: only hosts with no report at all are failed; one
// that started is left to the lost-pod check, one that finished keeps
// its result.
func TestFailUnstarted(t *testing.T) {
	cm := &corev1.ConfigMap{}
	if err := WriteSession(cm, Session{Name: "s", TotalHosts: 4}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []Result{result("s", "host-1", PhaseRunning), result("s", "host-2", PhaseSucceeded)} {
		if err := SetResult(cm, r); err != nil {
			t.Fatal(err)
		}
	}
	st, err := Read(cm)
	if err != nil {
		t.Fatal(err)
	}
	changed, err := st.FailUnstarted(cm, []string{"host-1", "host-2", "host-3"}, func(h string) string { return "scaled down: " + h })
	if err != nil || !changed {
		t.Fatalf("changed %v, %v", changed, err)
	}
	again, err := Read(cm)
	if err != nil {
		t.Fatal(err)
	}
	for h, want := range map[string]stashv1beta1.HostPhase{"host-1": PhaseRunning, "host-2": PhaseSucceeded, "host-3": PhaseFailed} {
		if got := again.Results[h].Stats.Phase; got != want || st.Results[h].Stats.Phase != want {
			t.Errorf("%s: %s in the channel, %s in the state; want %s", h, got, st.Results[h].Stats.Phase, want)
		}
	}
	if e := again.Results["host-3"].Stats.Error; e != "scaled down: host-3" {
		t.Errorf("host-3 error %q", e)
	}
	if changed, _ := again.FailUnstarted(cm, []string{"host-3"}, func(string) string { return "x" }); changed {
		t.Error("a host failed already was failed again")
	}
}
