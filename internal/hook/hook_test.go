package hook

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

func summary() Summary {
	var s Summary
	s.Name, s.Namespace = "db-backup-1", "demo"
	s.Invoker.Kind, s.Invoker.Name = "BackupConfiguration", "db-backup"
	s.Status.Phase, s.Status.Error = "Failed", "pg_dumpall failed"
	return s
}

func TestExecHook(t *testing.T) {
	out := filepath.Join(t.TempDir(), "marker")
	h := &stashv1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo '{{.Name}} {{.Status.Phase}}' > " + out}}}
	if err := Execute(context.Background(), h, summary(), Target{Host: "127.0.0.1"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(out); string(b) != "db-backup-1 Failed\n" {
		t.Errorf("rendered %q", b)
	}
	bad := &stashv1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo oops >&2; exit 3"}}}
	if err := Execute(context.Background(), bad, summary(), Target{}, io.Discard); err == nil || !strings.Contains(err.Error(), "oops") {
		t.Errorf("failing hook: %v", err)
	}
	tmpl := &stashv1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"echo", "{{.Nope}}"}}}
	if err := Execute(context.Background(), tmpl, summary(), Target{}, io.Discard); err == nil || !strings.Contains(err.Error(), "Nope") {
		t.Errorf("bad template: %v", err)
	}
}

func TestHTTPHooks(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Token")+" "+string(b))
		if r.URL.Path == "/fail" {
			http.Error(w, "nope", http.StatusBadGateway)
		}
	}))
	defer srv.Close()
	_, p, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	port, _ := strconv.Atoi(p)
	post := &stashv1beta1.Handler{HTTPPost: &stashv1beta1.HTTPPostAction{
		Path: "/notify", Port: intstr.FromInt(port), HTTPHeaders: []corev1.HTTPHeader{{Name: "X-Token", Value: "t"}},
		Body: `{"text": "{{.Invoker.Name}}: {{.Status.Phase}} ({{.Status.Error}})"}`,
	}}
	if err := Execute(context.Background(), post, summary(), Target{Host: "127.0.0.1"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	get := &stashv1beta1.Handler{HTTPGet: &corev1.HTTPGetAction{Path: "fail", Port: intstr.FromString(p)}}
	if err := Execute(context.Background(), get, summary(), Target{Host: "127.0.0.1"}, io.Discard); err == nil || !strings.Contains(err.Error(), "502") {
		t.Errorf("failing GET: %v", err)
	}
	if len(got) != 2 || got[0] != `POST /notify t {"text": "db-backup: Failed (pg_dumpall failed)"}` || !strings.HasPrefix(got[1], "GET /fail") {
		t.Errorf("server saw %q", got)
	}
	tcp := &stashv1beta1.Handler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt(port)}}
	if err := Execute(context.Background(), tcp, summary(), Target{Host: "127.0.0.1"}, io.Discard); err != nil {
		t.Errorf("tcp: %v", err)
	}
}

func TestShouldRun(t *testing.T) {
	tests := []struct {
		policy stashv1beta1.HookExecutionPolicy
		phase  string
		final  bool
		want   bool
	}{
		{"", "Succeeded", false, true},
		{stashv1beta1.ExecuteAlways, "Failed", false, true},
		{stashv1beta1.ExecuteOnSuccess, "Failed", false, false},
		{stashv1beta1.ExecuteOnFailure, "Failed", false, true},
		{stashv1beta1.ExecuteOnFailure, "Succeeded", false, false},
		{stashv1beta1.ExecuteOnFinalRetryFailure, "Failed", false, false},
		{stashv1beta1.ExecuteOnFinalRetryFailure, "Failed", true, true},
	}
	for _, tt := range tests {
		if got := ShouldRun(tt.policy, tt.phase, tt.final); got != tt.want {
			t.Errorf("%s/%s/%v: %v", tt.policy, tt.phase, tt.final, got)
		}
	}
}
