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

	"github.com/robfig/cron/v3"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/manifest"
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
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
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
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		WriteMetrics(w, list)
	})
	return mux
}

// WriteMetrics renders Stash's session metrics (names as Stash pushes them)
// for the newest finished session of each invoker.
func WriteMetrics(w io.Writer, sessions []Session) {
	latest := map[string]Session{}
	lastSuccess := map[string]time.Time{}
	for _, s := range sessions {
		if s.Phase == "Running" || s.Phase == "Pending" || s.Phase == "Skipped" {
			continue
		}
		k := s.Kind + "/" + s.Namespace + "/" + s.InvokerName
		if cur, ok := latest[k]; !ok || s.Start.After(cur.Start) {
			latest[k] = s
		}
		if s.Phase == "Succeeded" && s.End.After(lastSuccess[k]) {
			lastSuccess[k] = s.End
		}
	}
	keys := make([]string, 0, len(latest))
	for k := range latest {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	type metric struct{ name, help string }
	backup := []metric{
		{"stash_appscode_com_backupsession_success", "1 if the last backup session succeeded"},
		{"stash_appscode_com_backupsession_duration_seconds", "duration of the last backup session"},
		{"stash_appscode_com_backupsession_last_success_time_seconds", "end of the last successful backup session"},
	}
	restore := []metric{
		{"stash_appscode_com_restoresession_success", "1 if the last restore session succeeded"},
		{"stash_appscode_com_restoresession_duration_seconds", "duration of the last restore session"},
	}
	writeHostMetrics(w, keys, latest)
	writeRepositoryMetrics(w, sessions)
	for _, group := range [][]metric{backup, restore} {
		for _, m := range group {
			fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n", m.name, m.help, m.name)
			for _, k := range keys {
				s := latest[k]
				isBackup := s.Kind == "BackupSession"
				if isBackup != strings.HasPrefix(m.name, "stash_appscode_com_backupsession") {
					continue
				}
				labels := fmt.Sprintf(`invoker_kind=%q,invoker_name=%q,namespace=%q`, s.InvokerKind, s.InvokerName, s.Namespace)
				var v float64
				switch {
				case strings.HasSuffix(m.name, "_success"):
					if s.Phase == "Succeeded" {
						v = 1
					}
				case strings.HasSuffix(m.name, "_duration_seconds"):
					v = s.End.Sub(s.Start).Seconds()
				case strings.HasSuffix(m.name, "_last_success_time_seconds"):
					if t, ok := lastSuccess[k]; ok {
						v = float64(t.Unix())
					}
				}
				fmt.Fprintf(w, "%s{%s} %g\n", m.name, labels, v)
			}
		}
	}
}

// writeHostMetrics renders Stash's per-host backup metrics from the newest
// session's status.
func writeHostMetrics(w io.Writer, keys []string, latest map[string]Session) {
	type sample struct {
		labels string
		v      float64
	}
	series := map[string][]sample{}
	order := []string{
		"stash_appscode_com_backupsession_target_host_count_total",
		"stash_appscode_com_backupsession_host_backup_success",
		"stash_appscode_com_backupsession_host_backup_duration_seconds",
		"stash_appscode_com_backupsession_host_data_size_bytes",
		"stash_appscode_com_backupsession_host_data_uploaded_bytes",
		"stash_appscode_com_backupsession_host_data_processing_time_seconds",
		"stash_appscode_com_backupsession_host_files_total",
		"stash_appscode_com_backupsession_host_files_new",
		"stash_appscode_com_backupsession_host_files_modified",
		"stash_appscode_com_backupsession_host_files_unmodified",
	}
	for _, k := range keys {
		s := latest[k]
		if s.Kind != "BackupSession" || len(s.Status) == 0 {
			continue
		}
		var st stashv1beta1.BackupSessionStatus
		if json.Unmarshal(s.Status, &st) != nil {
			continue
		}
		base := fmt.Sprintf(`invoker_kind=%q,invoker_name=%q,namespace=%q`, s.InvokerKind, s.InvokerName, s.Namespace)
		for _, t := range st.Targets {
			tl := base + fmt.Sprintf(`,kind=%q,name=%q`, t.Ref.Kind, t.Ref.Name)
			series[order[0]] = append(series[order[0]], sample{tl, float64(len(t.Stats))})
			for _, h := range t.Stats {
				hl := tl + fmt.Sprintf(`,hostname=%q`, h.Hostname)
				ok := 0.0
				if h.Phase == "Succeeded" {
					ok = 1
				}
				series[order[1]] = append(series[order[1]], sample{hl, ok})
				if d, err := time.ParseDuration(h.Duration); err == nil {
					series[order[2]] = append(series[order[2]], sample{hl, d.Seconds()})
				}
				var size, up, proc float64
				var files [4]int64
				for _, sn := range h.Snapshots {
					size += parseBytes(sn.TotalSize)
					up += parseBytes(sn.Uploaded)
					if d, err := time.ParseDuration(sn.ProcessingTime); err == nil {
						proc += d.Seconds()
					}
					for i, p := range []*int64{sn.FileStats.TotalFiles, sn.FileStats.NewFiles, sn.FileStats.ModifiedFiles, sn.FileStats.UnmodifiedFiles} {
						if p != nil {
							files[i] += *p
						}
					}
				}
				series[order[3]] = append(series[order[3]], sample{hl, size})
				series[order[4]] = append(series[order[4]], sample{hl, up})
				series[order[5]] = append(series[order[5]], sample{hl, proc})
				for i := range files {
					series[order[6+i]] = append(series[order[6+i]], sample{hl, float64(files[i])})
				}
			}
		}
	}
	for _, name := range order {
		fmt.Fprintf(w, "# TYPE %s gauge\n", name)
		for _, smp := range series[name] {
			fmt.Fprintf(w, "%s{%s} %g\n", name, smp.labels, smp.v)
		}
	}
}

// parseBytes reads back a size as the stats render it ("12.345 MiB").
func parseBytes(s string) float64 {
	var v float64
	var unit string
	if _, err := fmt.Sscanf(s, "%g %s", &v, &unit); err != nil {
		return 0
	}
	mult := map[string]float64{"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50}[unit]
	return v * mult
}

// writeRepositoryMetrics renders Stash's repository metrics from the newest
// post-backup state of each repository.
func writeRepositoryMetrics(w io.Writer, sessions []Session) {
	latest := map[string]Session{}
	for _, s := range sessions {
		if s.Repository == nil {
			continue
		}
		k := s.Repository.Namespace + "/" + s.Repository.Name
		if cur, ok := latest[k]; !ok || s.Start.After(cur.Start) {
			latest[k] = s
		}
	}
	keys := make([]string, 0, len(latest))
	for k := range latest {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, name := range []string{"integrity", "size_bytes", "snapshot_count"} {
		metric := "stash_appscode_com_repository_" + name
		fmt.Fprintf(w, "# TYPE %s gauge\n", metric)
		for _, k := range keys {
			r := latest[k].Repository
			labels := fmt.Sprintf(`name=%q,namespace=%q,backend=%q,bucket=%q,prefix=%q`, r.Name, r.Namespace, r.Backend, r.Bucket, r.Prefix)
			var v float64
			switch name {
			case "integrity":
				if r.Integrity {
					v = 1
				}
			case "size_bytes":
				v = float64(r.SizeBytes)
			case "snapshot_count":
				v = float64(r.SnapshotCount)
			}
			fmt.Fprintf(w, "%s{%s} %g\n", metric, labels, v)
		}
	}
}
