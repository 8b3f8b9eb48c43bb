package local

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/robfig/cron/v3"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/manifest"
	"github.com/stash-backup/stash/internal/metrics"
)

// Scheduler runs every BackupConfiguration of the manifests on its cron
// schedule, picks up changed manifests, and serves /metrics and /healthz.
type Scheduler struct {
	Runtime *Runtime
	Listen  string
	// Poll is how often the manifests are checked for changes.
	Poll time.Duration
	Log  *slog.Logger
	// Clock is the scheduler's time; nil means the real one. Tests pass
	// their own, so that a day of schedules passes without waiting.
	Clock Clock

	// trigger starts a session of a BackupConfiguration that fell due
	// at at; nil means the Runtime's.
	trigger func(ctx context.Context, namespace, name string, at time.Time)

	mu      sync.Mutex
	entries map[string]*entry
	running sync.WaitGroup
}

// Clock tells the time and wakes a waiter.
type Clock interface {
	Now() time.Time
	// After delivers the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// entry is one scheduled BackupConfiguration.
type entry struct {
	spec     string
	schedule cron.Schedule
	next     time.Time
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Run schedules until ctx ends, then waits for running sessions.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.Log == nil {
		s.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	set, _, err := s.Runtime.Load()
	if err != nil {
		return err
	}
	store, err := OpenStore(s.Runtime.StateDir)
	if err != nil {
		return err
	}
	n, err := s.Runtime.sweep(store)
	store.Close()
	if err != nil {
		return err
	}
	if n > 0 {
		s.Log.Warn("sessions left running by a stopped runtime marked Failed", "count", n, "reason", InterruptedReason)
	}
	// Sessions run on goroutines of their own; the lock that owns them
	// goes once they all finished.
	defer s.Runtime.Close()

	srv := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 5 * time.Second}
	if s.Listen != "" {
		l, err := net.Listen("tcp", s.Listen)
		if err != nil {
			return fmt.Errorf("--listen %s: %w", s.Listen, err)
		}
		go srv.Serve(l) //nolint:errcheck
		s.Log.Info("serving /metrics and /healthz", "address", l.Addr().String())
	}
	last := s.fingerprint()
	s.loop(ctx, set, func() (*manifest.Set, bool) {
		fp := s.fingerprint()
		if fp == last {
			return nil, false
		}
		last = fp
		set, _, err := s.Runtime.Load()
		if err != nil {
			s.Log.Error("manifests changed but are invalid; keeping the current schedule", "error", err)
			return nil, false
		}
		return set, true
	})
	s.Log.Info("stopping: waiting for running sessions")
	s.running.Wait()
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	return nil
}

// loop starts the sessions that fall due and, every Poll, asks changed
// for new manifests, until ctx ends. Sessions run on goroutines of their
// own: a long one never delays another invoker's, and one that finds its
// previous session still running is recorded as Skipped by the Runtime.
func (s *Scheduler) loop(ctx context.Context, set *manifest.Set, changed func() (*manifest.Set, bool)) {
	clock := s.clock()
	poll := s.Poll
	if poll <= 0 {
		poll = 2 * time.Second
	}
	s.apply(set, clock.Now())
	nextPoll := clock.Now().Add(poll)
	for {
		now := clock.Now()
		if !now.Before(nextPoll) {
			if set, ok := changed(); ok {
				s.apply(set, now)
			}
			nextPoll = now.Add(poll)
		}
		wake := nextPoll
		s.mu.Lock()
		for k, e := range s.entries {
			if !e.next.After(now) {
				s.start(ctx, k, e.next)
				e.next = e.schedule.Next(now)
			}
			if e.next.Before(wake) {
				wake = e.next
			}
		}
		s.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-clock.After(wake.Sub(now)):
		}
	}
}

func (s *Scheduler) clock() Clock {
	if s.Clock == nil {
		return realClock{}
	}
	return s.Clock
}

// start runs a session of the BackupConfiguration k on its own goroutine.
func (s *Scheduler) start(ctx context.Context, k string, at time.Time) {
	ns, name, _ := strings.Cut(k, "/")
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		if s.trigger != nil {
			s.trigger(ctx, ns, name, at)
			return
		}
		sess, err := s.Runtime.Trigger(context.WithoutCancel(ctx), ns, name)
		switch {
		case sess != nil:
			s.Log.Info("session finished", "session", sess.Namespace+"/"+sess.Name, "phase", sess.Phase, "error", sess.Error)
		case err != nil:
			s.Log.Error("session did not start", "backupConfiguration", k, "error", err)
		}
	}()
}

// fingerprint changes when a manifest file is added, removed or modified.
func (s *Scheduler) fingerprint() string {
	var parts []string
	for _, root := range s.Runtime.Files {
		_ = filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
			if err == nil && !info.IsDir() {
				parts = append(parts, fmt.Sprintf("%s:%d:%d", p, info.Size(), info.ModTime().UnixNano()))
			}
			return nil
		})
	}
	sort.Strings(parts)
	return strings.Join(parts, "|")
}

// apply makes the entries match the BackupConfigurations: a new or
// changed schedule runs first at its next time after now.
func (s *Scheduler) apply(set *manifest.Set, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries == nil {
		s.entries = map[string]*entry{}
	}
	want := map[string]string{}
	for k, bc := range set.BackupConfigurations {
		if bc.Spec.Paused || bc.Spec.Schedule == "" {
			continue
		}
		want[k] = bc.Spec.Schedule
	}
	for k, e := range s.entries {
		if want[k] != e.spec {
			delete(s.entries, k)
			s.log().Info("unscheduled", "backupConfiguration", k)
		}
	}
	for k, spec := range want {
		if _, ok := s.entries[k]; ok {
			continue
		}
		sched, err := cronParser.Parse(spec)
		if err != nil {
			s.log().Error("bad schedule", "backupConfiguration", k, "schedule", spec, "error", err)
			continue
		}
		s.entries[k] = &entry{spec: spec, schedule: sched, next: sched.Next(now)}
		s.log().Info("scheduled", "backupConfiguration", k, "schedule", spec)
	}
}

func (s *Scheduler) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Scheduler) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		store, err := OpenStore(s.Runtime.StateDir)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		list, err := store.List()
		store.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		// The store is the truth; each scrape exports it afresh.
		reg, err := sessionMetrics(list)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
	})
	return mux
}

// sessionMetrics exports, through internal/metrics, the newest finished
// session of each invoker, the last success of each backup invoker and
// the newest post-backup state of each repository: the metrics, under
// the names Stash pushes, that the operator serves in a cluster.
func sessionMetrics(sessions []Session) (*prometheus.Registry, error) {
	m := metrics.New()
	reg := prometheus.NewRegistry()
	if err := m.Register(reg); err != nil {
		return nil, err
	}
	latest := map[string]Session{}
	lastSuccess := map[string]Session{}
	repos := map[string]Session{}
	for _, s := range sessions {
		if s.Repository != nil {
			k := s.Repository.Namespace + "/" + s.Repository.Name
			if cur, ok := repos[k]; !ok || s.Start.After(cur.Start) {
				repos[k] = s
			}
		}
		if s.Phase == "Running" || s.Phase == "Pending" || s.Phase == "Skipped" {
			continue
		}
		k := s.Kind + "/" + s.Namespace + "/" + s.InvokerName
		if cur, ok := latest[k]; !ok || s.Start.After(cur.Start) {
			latest[k] = s
		}
		if cur, ok := lastSuccess[k]; s.Phase == "Succeeded" && (!ok || s.End.After(cur.End)) {
			lastSuccess[k] = s
		}
	}
	for k, s := range latest {
		switch s.Kind {
		case "BackupSession":
			var st stashv1beta1.BackupSessionStatus
			if len(s.Status) > 0 {
				_ = json.Unmarshal(s.Status, &st)
			}
			// The store's phase is the session's outcome, whatever the
			// recorded status says (an interrupted session has none).
			st.Phase = stashv1beta1.BackupSessionPhase(s.Phase)
			m.BackupSession(s.Namespace, s.InvokerName, repoName(s), st, s.Start, s.End)
			if ok, found := lastSuccess[k]; found {
				m.BackupSucceededAt(s.Namespace, s.InvokerName, repoName(s), ok.End)
			}
		case "RestoreSession":
			var st stashv1beta1.RestoreSessionStatus
			if len(s.Status) > 0 {
				_ = json.Unmarshal(s.Status, &st)
			}
			st.Phase = stashv1beta1.RestorePhase(s.Phase)
			m.RestoreSession(s.Namespace, s.InvokerName, repoName(s), st, s.Start, s.End, stashv1beta1.TargetRef{})
		}
	}
	for _, s := range repos {
		r := s.Repository
		integrity := r.Integrity
		m.RepositoryState(metrics.RepositoryLabels{Name: r.Name, Namespace: r.Namespace, Backend: r.Backend, Bucket: r.Bucket, Prefix: r.Prefix},
			&integrity, float64(r.SizeBytes), int64(r.SnapshotCount), 0)
	}
	return reg, nil
}

func repoName(s Session) string {
	if s.Repository != nil {
		return s.Repository.Name
	}
	return ""
}
