// Package metrics exports Stash's Prometheus metrics from either runtime:
// the names of Stash's pushed metrics (both the stash_appscode_com_ family
// and the legacy stash_ names), served on the operator's or the local
// runtime's /metrics instead of through a Pushgateway.
package metrics

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// Metrics holds the gauges. Create it with New and register it once.
type Metrics struct {
	gauges map[string]*prometheus.GaugeVec
}

var (
	sessionLabels = []string{"invoker_kind", "invoker_name", "namespace", "repository", "driver"}
	hostLabels    = append(append([]string{}, sessionLabels...), "kind", "name", "hostname")
	repoLabels    = []string{"name", "namespace", "backend", "bucket", "prefix"}
)

// Each metric is exported under both of Stash's names.
var families = []struct {
	name, legacy, help string
	labels             []string
}{
	{"stash_appscode_com_backupsession_success", "stash_backup_session_success", "1 when the last backup session succeeded, 0 when it failed", sessionLabels},
	{"stash_appscode_com_backupsession_duration_seconds", "stash_backup_session_duration_seconds", "duration of the last backup session", sessionLabels},
	{"stash_appscode_com_backupsession_target_count_total", "stash_backup_target_count_total", "targets of the last backup session", sessionLabels},
	{"stash_appscode_com_backupsession_last_success_time_seconds", "stash_backup_last_success_time_seconds", "unix time of the last successful backup session", sessionLabels},
	{"stash_appscode_com_backupsession_host_backup_success", "stash_backup_host_backup_success", "1 when the host's last backup succeeded", hostLabels},
	{"stash_appscode_com_backupsession_host_backup_duration_seconds", "stash_backup_host_backup_duration_seconds", "duration of the host's last backup", hostLabels},
	{"stash_appscode_com_backupsession_host_data_size_bytes", "stash_backup_host_data_size_bytes", "size of the host's data in the last backup", hostLabels},
	{"stash_appscode_com_backupsession_host_data_uploaded_bytes", "stash_backup_host_data_uploaded_bytes", "bytes the host's last backup uploaded", hostLabels},
	{"stash_appscode_com_backupsession_host_data_processing_time_seconds", "stash_backup_host_data_processing_time_seconds", "time the host's last backup spent processing data", hostLabels},
	{"stash_appscode_com_backupsession_host_files_total", "stash_backup_host_files_total", "files in the host's last backup", hostLabels},
	{"stash_appscode_com_backupsession_host_files_new", "stash_backup_host_files_new", "new files in the host's last backup", hostLabels},
	{"stash_appscode_com_backupsession_host_files_modified", "stash_backup_host_files_modified", "modified files in the host's last backup", hostLabels},
	{"stash_appscode_com_backupsession_host_files_unmodified", "stash_backup_host_files_unmodified", "unmodified files in the host's last backup", hostLabels},
	{"stash_appscode_com_restoresession_success", "stash_restore_session_success", "1 when the last restore session succeeded", sessionLabels},
	{"stash_appscode_com_restoresession_duration_seconds", "stash_restore_session_duration_seconds", "duration of the last restore session", sessionLabels},
	{"stash_appscode_com_restoresession_host_restore_success", "stash_restore_host_restore_success", "1 when the host's last restore succeeded", hostLabels},
	{"stash_appscode_com_repository_integrity", "stash_repository_integrity", "1 when the last integrity check passed", repoLabels},
	{"stash_appscode_com_repository_size_bytes", "stash_repository_size_bytes", "size of the repository", repoLabels},
	{"stash_appscode_com_repository_snapshot_count", "stash_repository_snapshot_count", "snapshots in the repository", repoLabels},
	{"stash_appscode_com_repository_snapshot_cleaned", "stash_repository_snapshot_cleaned", "snapshots removed by the last retention run", repoLabels},
}

// New creates the gauges.
func New() *Metrics {
	m := &Metrics{gauges: map[string]*prometheus.GaugeVec{}}
	for _, f := range families {
		m.gauges[f.name] = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: f.name, Help: f.help}, f.labels)
		m.gauges[f.legacy] = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: f.legacy, Help: f.help + " (legacy name)"}, f.labels)
	}
	return m
}

// Register adds every gauge to reg. Gauges reg already holds (an
// operator started twice in one process) are taken over.
func (m *Metrics) Register(reg prometheus.Registerer) error {
	for name, g := range m.gauges {
		err := reg.Register(g)
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.GaugeVec); ok {
				m.gauges[name] = existing
				continue
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (m *Metrics) set(name string, v float64, labels ...string) {
	for _, f := range families {
		if f.name == name {
			m.gauges[f.name].WithLabelValues(labels...).Set(v)
			m.gauges[f.legacy].WithLabelValues(labels...).Set(v)
			return
		}
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// BackupSession exports a finished backup session.
func (m *Metrics) BackupSession(ns, invoker, repo string, st stashv1beta1.BackupSessionStatus, start, end time.Time) {
	l := []string{"BackupConfiguration", invoker, ns, repo, "Restic"}
	ok := st.Phase == stashv1beta1.BackupSessionSucceeded
	m.set("stash_appscode_com_backupsession_success", boolValue(ok), l...)
	m.set("stash_appscode_com_backupsession_duration_seconds", end.Sub(start).Seconds(), l...)
	m.set("stash_appscode_com_backupsession_target_count_total", float64(len(st.Targets)), l...)
	if ok {
		m.BackupSucceededAt(ns, invoker, repo, end)
	}
	for _, t := range st.Targets {
		for _, h := range t.Stats {
			hl := append(append([]string{}, l...), t.Ref.Kind, t.Ref.Name, h.Hostname)
			m.set("stash_appscode_com_backupsession_host_backup_success", boolValue(h.Phase == "Succeeded"), hl...)
			m.set("stash_appscode_com_backupsession_host_backup_duration_seconds", ParseDuration(h.Duration), hl...)
			var size, up, proc, total, nw, mod, unmod float64
			for _, s := range h.Snapshots {
				size += ParseBytes(s.TotalSize)
				up += ParseBytes(s.Uploaded)
				proc += ParseDuration(s.ProcessingTime)
				total += deref(s.FileStats.TotalFiles)
				nw += deref(s.FileStats.NewFiles)
				mod += deref(s.FileStats.ModifiedFiles)
				unmod += deref(s.FileStats.UnmodifiedFiles)
			}
			m.set("stash_appscode_com_backupsession_host_data_size_bytes", size, hl...)
			m.set("stash_appscode_com_backupsession_host_data_uploaded_bytes", up, hl...)
			m.set("stash_appscode_com_backupsession_host_data_processing_time_seconds", proc, hl...)
			m.set("stash_appscode_com_backupsession_host_files_total", total, hl...)
			m.set("stash_appscode_com_backupsession_host_files_new", nw, hl...)
			m.set("stash_appscode_com_backupsession_host_files_modified", mod, hl...)
			m.set("stash_appscode_com_backupsession_host_files_unmodified", unmod, hl...)
		}
	}
}

// BackupSucceededAt exports when an invoker's last successful backup
// session ended, which may be older than its last session.
func (m *Metrics) BackupSucceededAt(ns, invoker, repo string, end time.Time) {
	m.set("stash_appscode_com_backupsession_last_success_time_seconds", float64(end.Unix()), "BackupConfiguration", invoker, ns, repo, "Restic")
}

// RestoreSession exports a finished restore session.
func (m *Metrics) RestoreSession(ns, name, repo string, st stashv1beta1.RestoreSessionStatus, start, end time.Time, target stashv1beta1.TargetRef) {
	l := []string{"RestoreSession", name, ns, repo, "Restic"}
	m.set("stash_appscode_com_restoresession_success", boolValue(st.Phase == stashv1beta1.RestoreSucceeded), l...)
	m.set("stash_appscode_com_restoresession_duration_seconds", end.Sub(start).Seconds(), l...)
	for _, h := range st.Stats {
		hl := append(append([]string{}, l...), target.Kind, target.Name, h.Hostname)
		m.set("stash_appscode_com_restoresession_host_restore_success", boolValue(h.Phase == "Succeeded"), hl...)
	}
}

// Repository exports a Repository's status.
func (m *Metrics) Repository(r *stashv1alpha1.Repository) {
	backend, bucket, prefix := "local", "", ""
	b := r.Spec.Backend
	switch {
	case b.S3 != nil:
		backend, bucket, prefix = "s3", b.S3.Bucket, b.S3.Prefix
	case b.GCS != nil:
		backend, bucket, prefix = "gcs", b.GCS.Bucket, b.GCS.Prefix
	case b.Azure != nil:
		backend, bucket, prefix = "azure", b.Azure.Container, b.Azure.Prefix
	case b.B2 != nil:
		backend, bucket, prefix = "b2", b.B2.Bucket, b.B2.Prefix
	case b.Local != nil:
		bucket = b.Local.MountPath
	}
	m.RepositoryState(RepositoryLabels{Name: r.Name, Namespace: r.Namespace, Backend: backend, Bucket: bucket, Prefix: prefix},
		r.Status.Integrity, ParseBytes(r.Status.TotalSize), r.Status.SnapshotCount, r.Status.SnapshotsRemovedOnLastCleanup)
}

// RepositoryLabels name a repository in its metrics.
type RepositoryLabels struct {
	Name, Namespace, Backend, Bucket, Prefix string
}

// RepositoryState exports a repository's figures: integrity (nil when
// never checked), size, snapshot count and what the last cleanup removed.
func (m *Metrics) RepositoryState(r RepositoryLabels, integrity *bool, sizeBytes float64, snapshots, cleaned int64) {
	l := []string{r.Name, r.Namespace, r.Backend, r.Bucket, r.Prefix}
	if integrity != nil {
		m.set("stash_appscode_com_repository_integrity", boolValue(*integrity), l...)
	}
	m.set("stash_appscode_com_repository_size_bytes", sizeBytes, l...)
	m.set("stash_appscode_com_repository_snapshot_count", float64(snapshots), l...)
	m.set("stash_appscode_com_repository_snapshot_cleaned", float64(cleaned), l...)
}

func deref(p *int64) float64 {
	if p == nil {
		return 0
	}
	return float64(*p)
}

// ParseBytes reads a size as Stash's status writes it ("1.500 MiB",
// "12 B", "3.2 GB"); an unreadable size is 0.
func ParseBytes(s string) float64 {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0
	}
	mult := map[string]float64{"": 1, "B": 1,
		"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40, "PiB": 1 << 50,
		"KB": 1e3, "MB": 1e6, "GB": 1e9, "TB": 1e12, "PB": 1e15}[unit]
	if mult == 0 {
		return 0
	}
	return math.Round(v * mult)
}

// ParseDuration reads a Go duration ("1m2.5s") as seconds; unreadable is 0.
func ParseDuration(s string) float64 {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0
	}
	return d.Seconds()
}
