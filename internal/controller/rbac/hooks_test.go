package rbac

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

func TestHooksNeed(t *testing.T) {
	exec := &stashv1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"true"}}}
	local := &stashv1beta1.Handler{HTTPGet: &corev1.HTTPGetAction{Path: "/"}}
	remote := &stashv1beta1.Handler{HTTPPost: &stashv1beta1.HTTPPostAction{Host: "hooks.example", Path: "/"}}
	tcp := &stashv1beta1.Handler{TCPSocket: &corev1.TCPSocketAction{}}
	for _, c := range []struct {
		name     string
		handlers []*stashv1beta1.Handler
		want     HookAccess
	}{
		{"no hooks", nil, HookAccess{}},
		{"nil hooks", []*stashv1beta1.Handler{nil, nil}, HookAccess{}},
		{"exec", []*stashv1beta1.Handler{exec}, HookAccess{Pods: true, Exec: true}},
		{"http without host reaches the pod", []*stashv1beta1.Handler{local}, HookAccess{Pods: true}},
		{"tcp without host reaches the pod", []*stashv1beta1.Handler{nil, tcp}, HookAccess{Pods: true}},
		{"http to a named host needs nothing", []*stashv1beta1.Handler{remote}, HookAccess{}},
		{"exec wins", []*stashv1beta1.Handler{remote, exec}, HookAccess{Pods: true, Exec: true}},
	} {
		if got := HooksNeed(c.handlers...); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
}

func TestBoundedHookName(t *testing.T) {
	if got := BoundedHookName("stash-backup-web"); got != "stash-backup-web-hooks" {
		t.Errorf("short name: %s", got)
	}
	long := "stash-backup-" + strings.Repeat("x", 50)
	a, b := BoundedHookName(long), BoundedHookName(long+"y")
	if len(a) > 63 || !strings.HasSuffix(a, "-hooks") || a == b {
		t.Errorf("long names %s, %s: want ≤63, ending -hooks, distinct", a, b)
	}
}
