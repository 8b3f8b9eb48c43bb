package metricsauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-logr/logr"
	authenticationv1 "k8s.io/api/authentication/v1"
)

// These tests cover the guard's decisions and what it remembers. The
// reviews themselves go to a real API server in the operator's
// TestSecureMetrics (internal/operator).

// tableReviewer answers from tables and counts the reviews asked for.
type tableReviewer struct {
	users   map[string]string // token → user
	allowed map[string]bool   // user + " " + verb + " " + path
	err     error
	asked   int
}

func (r *tableReviewer) authenticate(_ context.Context, token string) (authenticationv1.UserInfo, bool, error) {
	r.asked++
	if r.err != nil {
		return authenticationv1.UserInfo{}, false, r.err
	}
	u, ok := r.users[token]
	return authenticationv1.UserInfo{Username: u}, ok, nil
}

func (r *tableReviewer) authorize(_ context.Context, user authenticationv1.UserInfo, verb, path string) (bool, error) {
	r.asked++
	return r.allowed[user.Username+" "+verb+" "+path], nil
}

func serve(t *testing.T, g *guard, method, path, auth string) int {
	t.Helper()
	h := g.handler(logr.Discard(), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("metrics")) }))
	req := httptest.NewRequest(method, path, nil)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code == http.StatusOK && rec.Body.String() != "metrics" {
		t.Fatalf("served %q", rec.Body.String())
	}
	return rec.Code
}

func TestDecisions(t *testing.T) {
	rev := &tableReviewer{
		users:   map[string]string{"good": "system:serviceaccount:mon:prometheus", "other": "system:serviceaccount:app:web"},
		allowed: map[string]bool{"system:serviceaccount:mon:prometheus get /metrics": true},
	}
	g := newGuard(rev, time.Now)
	for _, tc := range []struct {
		name, method, path, auth string
		want                     int
	}{
		{"no token", "GET", "/metrics", "", http.StatusUnauthorized},
		{"empty token", "GET", "/metrics", "Bearer ", http.StatusUnauthorized},
		{"basic credentials", "GET", "/metrics", "Basic Z29vZDo=", http.StatusUnauthorized},
		{"unknown token", "GET", "/metrics", "Bearer forged", http.StatusUnauthorized},
		{"allowed", "GET", "/metrics", "Bearer good", http.StatusOK},
		{"scheme in lower case", "GET", "/metrics", "bearer good", http.StatusOK},
		{"another path", "GET", "/debug/pprof", "Bearer good", http.StatusForbidden},
		{"another verb", "POST", "/metrics", "Bearer good", http.StatusForbidden},
		{"user without the right", "GET", "/metrics", "Bearer other", http.StatusForbidden},
	} {
		if got := serve(t, g, tc.method, tc.path, tc.auth); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestDecisionsExpire(t *testing.T) {
	rev := &tableReviewer{
		users:   map[string]string{"good": "prometheus"},
		allowed: map[string]bool{"prometheus get /metrics": true},
	}
	now := time.Unix(1e9, 0)
	g := newGuard(rev, func() time.Time { return now })
	if got := serve(t, g, "GET", "/metrics", "Bearer good"); got != http.StatusOK {
		t.Fatalf("first request: %d", got)
	}
	asked := rev.asked
	if got := serve(t, g, "GET", "/metrics", "Bearer good"); got != http.StatusOK || rev.asked != asked {
		t.Fatalf("second request: %d, reviews %d then %d: want the decision remembered", got, asked, rev.asked)
	}
	// The right is revoked: within allowTTL the decision stands, after it
	// the next request is refused.
	rev.allowed = nil
	now = now.Add(allowTTL)
	if got := serve(t, g, "GET", "/metrics", "Bearer good"); got != http.StatusForbidden {
		t.Errorf("after the right was revoked and %v passed: %d, want 403", allowTTL, got)
	}
	// A refusal is remembered for denyTTL only.
	rev.allowed = map[string]bool{"prometheus get /metrics": true}
	if got := serve(t, g, "GET", "/metrics", "Bearer good"); got != http.StatusForbidden {
		t.Errorf("within %v of a refusal: %d, want it remembered", denyTTL, got)
	}
	now = now.Add(denyTTL)
	if got := serve(t, g, "GET", "/metrics", "Bearer good"); got != http.StatusOK {
		t.Errorf("after %v: %d, want the right granted again", denyTTL, got)
	}
}

func TestReviewErrorsAreNotRemembered(t *testing.T) {
	rev := &tableReviewer{users: map[string]string{"good": "prometheus"}, allowed: map[string]bool{"prometheus get /metrics": true}, err: errors.New("apiserver unreachable")}
	g := newGuard(rev, time.Now)
	if got := serve(t, g, "GET", "/metrics", "Bearer good"); got != http.StatusInternalServerError {
		t.Fatalf("with the API server down: %d, want 500", got)
	}
	rev.err = nil
	if got := serve(t, g, "GET", "/metrics", "Bearer good"); got != http.StatusOK {
		t.Errorf("with the API server back: %d, want 200", got)
	}
}

func TestRememberedDecisionsAreBounded(t *testing.T) {
	rev := &tableReviewer{users: map[string]string{}}
	now := time.Unix(1e9, 0)
	g := newGuard(rev, func() time.Time { return now })
	for i := range 3 * maxDecisions {
		serve(t, g, "GET", "/metrics", fmt.Sprintf("Bearer forged-%d", i))
		if len(g.decisions) > maxDecisions {
			t.Fatalf("after %d tokens: %d decisions kept, more than %d", i+1, len(g.decisions), maxDecisions)
		}
	}
}
