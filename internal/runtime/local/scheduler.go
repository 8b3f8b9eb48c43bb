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

	mu      sync.Mutex
	cron    *cron.Cron
	entries map[string]cron.EntryID
	specs   map[string]string
	running sync.WaitGroup
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Run schedules until ctx ends, then waits for running sessions.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.Poll == 0 {
		s.Poll = 2 * time.Second
	}
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
	// Sessions run on cron's goroutines; the lock that owns them goes
	// once they all finished.
	defer s.Runtime.Close()
	s.cron = cron.New(cron.WithParser(cronParser))
	s.entries, s.specs = map[string]cron.EntryID{}, map[string]string{}
	s.apply(ctx, set)
	s.cron.Start()

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
	t := time.NewTicker(s.Poll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			s.Log.Info("stopping: waiting for running sessions")
			<-s.cron.Stop().Done()
			s.running.Wait()
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shut)
			return nil
		case <-t.C:
			fp := s.fingerprint()
			if fp == last {
				continue
			}
			last = fp
			set, _, err := s.Runtime.Load()
			if err != nil {
				s.Log.Error("manifests changed but are invalid; keeping the current schedule", "error", err)
				continue
			}
			s.apply(ctx, set)
		}
	}
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

// apply makes the cron entries match the BackupConfigurations.
func (s *Scheduler) apply(ctx context.Context, set *manifest.Set) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := map[string]string{}
	for k, bc := range set.BackupConfigurations {
		if bc.Spec.Paused || bc.Spec.Schedule == "" {
			continue
		}
		want[k] = bc.Spec.Schedule
	}
	for k, id := range s.entries {
		if want[k] != s.specs[k] {
			s.cron.Remove(id)
			delete(s.entries, k)
			delete(s.specs, k)
			s.Log.Info("unscheduled", "backupConfiguration", k)
		}
	}
	for k, spec := range want {
		if _, ok := s.entries[k]; ok {
			continue
		}
		ns, name, _ := strings.Cut(k, "/")
		id, err := s.cron.AddFunc(spec, func() {
			s.running.Add(1)
			defer s.running.Done()
			sess, err := s.Runtime.Trigger(context.WithoutCancel(ctx), ns, name)
			switch {
			case sess != nil:
				s.Log.Info("session finished", "session", sess.Namespace+"/"+sess.Name, "phase", sess.Phase, "error", sess.Error)
			case err != nil:
				s.Log.Error("session did not start", "backupConfiguration", k, "error", err)
			}
		})
		if err != nil {
			s.Log.Error("bad schedule", "backupConfiguration", k, "schedule", spec, "error", err)
			continue
		}
		s.entries[k], s.specs[k] = id, spec
		s.Log.Info("scheduled", "backupConfiguration", k, "schedule", spec)
	}
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
