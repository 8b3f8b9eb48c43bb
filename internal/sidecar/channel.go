// Package sidecar is the sidecar model: what the operator injects into a
// workload's pod template (Apply, shared by the workload controller and
// the mutating webhook), the channel through which the operator hands a
// BackupSession to the workload's sidecars and they report back, and the
// sidecar's own loop (Runner, the run-backup command).
//
// The channel is one ConfigMap per BackupConfiguration, named by
// plan.SidecarChannelName. The operator writes the session (what to back
// up, where) under SessionKey; each host writes its result under
// HostKey(host), and the last host the post-backup actions' findings under
// PostKey. The operator alone copies them into the BackupSession: the
// workload's ServiceAccount, often shared with other pods, is granted this
// ConfigMap and the workload's Lease, and no session, Repository or Secret.
package sidecar

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// Keys of the channel ConfigMap.
const (
	SessionKey = "session.json"
	PostKey    = "post.json"
	hostPrefix = "host."
	hostSuffix = ".json"
)

// Host phases as Stash writes them.
const (
	PhaseRunning   stashv1beta1.HostPhase = "Running"
	PhaseSucceeded stashv1beta1.HostPhase = "Succeeded"
	PhaseFailed    stashv1beta1.HostPhase = "Failed"
)

// HostKey is the key of one host's result.
func HostKey(host string) string { return hostPrefix + host + hostSuffix }

// Session is a BackupSession as the operator hands it to the sidecars.
type Session struct {
	// Name is the BackupSession's.
	Name string `json:"name"`
	// Invoker is the BackupConfiguration's name.
	Invoker string `json:"invoker"`
	// Target is the workload; Alias replaces "host" in host names.
	Target stashv1beta1.TargetRef `json:"target"`
	Alias  string                 `json:"alias,omitempty"`
	// Paths are backed up as one snapshot each, without Exclude.
	Paths   []string `json:"paths"`
	Exclude []string `json:"exclude,omitempty"`
	// Repository is the Repository as the operator checked it: the
	// sidecar reads no Repository object.
	Repository stashv1alpha1.Repository      `json:"repository"`
	Retention  stashv1alpha1.RetentionPolicy `json:"retention"`
	// TotalHosts is how many hosts back up in this session; the one that
	// completes it runs the post-backup actions.
	TotalHosts int32 `json:"totalHosts"`
	// Deadline is when the operator fails the session; a host that has
	// not started by then does not start.
	Deadline metav1.Time `json:"deadline"`
	// Hooks run in each host's pod around its backup; Container is the
	// application container an exec hook that names none runs in, and
	// FinalRetry whether a failure here is the session's last try (for
	// executionPolicy onFinalRetryFailure).
	Hooks      *stashv1beta1.BackupHooks `json:"hooks,omitempty"`
	Container  string                    `json:"container,omitempty"`
	FinalRetry bool                      `json:"finalRetry,omitempty"`
}

// Result is one host's report for a session.
type Result struct {
	Session string `json:"session"`
	// Pod and PodUID name the pod that ran (or runs) it, so the operator
	// can fail a host whose pod went away mid-backup.
	Pod    string `json:"pod"`
	PodUID string `json:"podUID"`
	// Run names the sidecar process that wrote it, which tells a
	// restarted container from the run before it.
	Run   string                       `json:"run,omitempty"`
	Stats stashv1beta1.HostBackupStats `json:"stats"`
	// RetentionError is what the host's retention run reported, if it
	// failed (its snapshots are committed either way).
	RetentionError string `json:"retentionError,omitempty"`
}

// Final reports whether the host is done, one way or the other.
func (r Result) Final() bool {
	return r.Stats.Phase == PhaseSucceeded || r.Stats.Phase == PhaseFailed
}

// Post is what the host that completed a session found in its post-backup
// actions.
type Post struct {
	Session    string                         `json:"session"`
	Conditions []stashv1beta1.Condition       `json:"conditions,omitempty"`
	Report     *stashv1beta1.RepositoryReport `json:"report,omitempty"`
}

// State is a channel as read: the session, host results and post-backup
// findings that belong to it (entries of earlier sessions are dropped).
type State struct {
	Session *Session
	Results map[string]Result
	Post    *Post
}

// Read decodes a channel ConfigMap. Entries that do not decode are
// reported, so a hand-edited channel fails loudly, not silently.
func Read(cm *corev1.ConfigMap) (State, error) {
	st := State{Results: map[string]Result{}}
	raw, ok := cm.Data[SessionKey]
	if !ok {
		return st, nil
	}
	var s Session
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return st, fmt.Errorf("ConfigMap %s/%s key %s: %w", cm.Namespace, cm.Name, SessionKey, err)
	}
	st.Session = &s
	if v, ok := cm.Data[PostKey]; ok {
		var p Post
		if err := json.Unmarshal([]byte(v), &p); err != nil {
			return st, fmt.Errorf("ConfigMap %s/%s key %s: %w", cm.Namespace, cm.Name, PostKey, err)
		}
		if p.Session == s.Name {
			st.Post = &p
		}
	}
	results, err := readHosts[Result](cm, s.Name)
	if err != nil {
		return st, err
	}
	st.Results = results
	return st, nil
}

// WriteSession hands session s to a channel: results of earlier sessions
// go, and those of s itself stay. The operator may hand a session over
// twice, when a reconcile runs before the session's new status reaches
// its cache; wiping what the hosts reported meanwhile would have them
// back up again, and a host in its hook would lose its Running entry.
func WriteSession(cm *corev1.ConfigMap, s Session) error {
	if st, err := Read(cm); err != nil || st.Session == nil || st.Session.Name != s.Name {
		cm.Data = map[string]string{}
	}
	return set(cm, SessionKey, s)
}

// SetResult writes one host's result into the channel.
func SetResult(cm *corev1.ConfigMap, r Result) error {
	return set(cm, HostKey(r.Stats.Hostname), r)
}

// SetPost writes the post-backup findings into the channel.
func SetPost(cm *corev1.ConfigMap, p Post) error { return set(cm, PostKey, p) }

func set(cm *corev1.ConfigMap, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if cm.Data == nil {
		cm.Data = map[string]string{}
	}
	cm.Data[key] = string(b)
	return nil
}

// FinalStats are the stats of the hosts that are done, by host name.
func (st State) FinalStats() []stashv1beta1.HostBackupStats {
	var out []stashv1beta1.HostBackupStats
	for _, r := range st.Results {
		if r.Final() {
			out = append(out, r.Stats)
		}
	}
	sortByHost(out, func(s stashv1beta1.HostBackupStats) string { return s.Hostname })
	return out
}

func sortByHost[T any](s []T, host func(T) string) {
	sort.Slice(s, func(i, j int) bool { return host(s[i]) < host(s[j]) })
}

// Done reports whether every host of the session is done and, when all
// succeeded, the post-backup findings are in: the session's outcome is
// then known.
func (st State) Done() bool {
	if st.Session == nil {
		return false
	}
	final, failed := 0, 0
	for _, r := range st.Results {
		if r.Final() {
			final++
			if r.Stats.Phase == PhaseFailed {
				failed++
			}
		}
	}
	if int32(final) < st.Session.TotalHosts {
		return false
	}
	return failed > 0 || st.Post != nil
}

// Last reports whether the host that is about to finish is the session's
// last: every other host is done.
func (st State) Last(host string) bool {
	if st.Session == nil {
		return false
	}
	others := 0
	for h, r := range st.Results {
		if h != host && r.Final() {
			others++
		}
	}
	return int32(others+1) >= st.Session.TotalHosts
}

// PodGone reports whether the pod that said it was working on a host is
// gone, or is another pod of the same name now: that host will never
// report, and the operator fails it.
func PodGone(ctx context.Context, r client.Reader, namespace, pod, uid string) (bool, error) {
	p := &corev1.Pod{}
	err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: pod}, p)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return string(p.UID) != uid || p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded, nil
}
