package sidecar

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/source"
	"github.com/stash-backup/stash/internal/step"
)

// RestoreKey is the key of a restore channel's plan.
const RestoreKey = "restore.json"

// Restore is a RestoreSession as the operator hands it to a workload's
// init containers, through the channel plan.RestoreChannelName.
type Restore struct {
	Name       string                   `json:"name"`
	Target     stashv1beta1.TargetRef   `json:"target"`
	Alias      string                   `json:"alias,omitempty"`
	Rules      []stashv1beta1.Rule      `json:"rules,omitempty"`
	Repository stashv1alpha1.Repository `json:"repository"`
	TotalHosts int32                    `json:"totalHosts"`
	Deadline   metav1.Time              `json:"deadline"`
}

// RestoreResult is one host's report.
type RestoreResult struct {
	Session string                        `json:"session"`
	Pod     string                        `json:"pod"`
	PodUID  string                        `json:"podUID"`
	Stats   stashv1beta1.HostRestoreStats `json:"stats"`
}

// Final reports whether the host is done.
func (r RestoreResult) Final() bool {
	return r.Stats.Phase == PhaseSucceeded || r.Stats.Phase == PhaseFailed
}

// RestoreState is a restore channel as read.
type RestoreState struct {
	Restore *Restore
	Results map[string]RestoreResult
}

// ReadRestore decodes a restore channel.
func ReadRestore(cm *corev1.ConfigMap) (RestoreState, error) {
	st := RestoreState{Results: map[string]RestoreResult{}}
	raw, ok := cm.Data[RestoreKey]
	if !ok {
		return st, nil
	}
	var r Restore
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		return st, fmt.Errorf("ConfigMap %s/%s key %s: %w", cm.Namespace, cm.Name, RestoreKey, err)
	}
	st.Restore = &r
	results, err := readHosts[RestoreResult](cm, r.Name)
	if err != nil {
		return st, err
	}
	st.Results = results
	return st, nil
}

// WriteRestore puts a restore plan into a channel, keeping the results of
// the same session (the plan is written again when the operator restarts).
func WriteRestore(cm *corev1.ConfigMap, r Restore) error {
	st, err := ReadRestore(cm)
	if err != nil || st.Restore == nil || st.Restore.Name != r.Name {
		cm.Data = map[string]string{}
	}
	return set(cm, RestoreKey, r)
}

// SetRestoreResult writes one host's restore result into the channel.
func SetRestoreResult(cm *corev1.ConfigMap, r RestoreResult) error {
	return set(cm, HostKey(r.Stats.Hostname), r)
}

// FinalStats are the stats of the hosts that are done, by host name.
func (st RestoreState) FinalStats() []stashv1beta1.HostRestoreStats {
	var out []stashv1beta1.HostRestoreStats
	for _, r := range st.Results {
		if r.Final() {
			out = append(out, r.Stats)
		}
	}
	sortByHost(out, func(s stashv1beta1.HostRestoreStats) string { return s.Hostname })
	return out
}

// RestoreRunner is the restore init container (restore): it restores its
// pod's host by the RestoreSession's rules, once, and reports in the
// channel. A pod that starts again after its host is restored goes on at
// once; one whose host's restore failed stays stopped, so the application
// never starts on half-restored data.
type RestoreRunner struct {
	Client client.WithWatch
	// Namespace, Session (the RestoreSession), Kind and Name (the
	// workload) say what to restore.
	Namespace, Session, Kind, Name string
	Pod, PodUID, Node              string
	SecretDir, ScratchDir          string
	LeaseDuration, Poll            time.Duration
	// Wait bounds how long to wait for the operator's plan.
	Wait time.Duration
	Log  *slog.Logger
}

func (r *RestoreRunner) key() client.ObjectKey {
	return client.ObjectKey{Namespace: r.Namespace, Name: plan.RestoreChannelName(r.Session)}
}

// ErrRestoreFailed means this host's restore failed (now or before).
var ErrRestoreFailed = errors.New("restore failed")

// Run restores this pod's host if it is not done yet.
func (r *RestoreRunner) Run(ctx context.Context) error {
	if r.LeaseDuration == 0 {
		r.LeaseDuration = 30 * time.Second
	}
	if r.Poll == 0 {
		r.Poll = 5 * time.Second
	}
	if r.Wait == 0 {
		r.Wait = 10 * time.Minute
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	if r.ScratchDir == "" {
		r.ScratchDir = os.TempDir()
	}
	if err := os.MkdirAll(r.ScratchDir, 0o700); err != nil {
		return fmt.Errorf("--scratch-dir: %w", err)
	}
	for _, f := range []struct{ name, v string }{{"namespace", r.Namespace}, {"--invoker-name", r.Session}, {"--target-kind", r.Kind}, {"--target-name", r.Name}, {"POD_NAME", r.Pod}} {
		if f.v == "" {
			return fmt.Errorf("%s is empty: the restore init container needs it (the operator sets it when it injects the container)", f.name)
		}
	}
	st, err := r.waitPlan(ctx)
	if err != nil {
		return err
	}
	p := st.Restore
	host := plan.WorkloadHost(r.Kind, p.Alias, r.Pod, r.Node)
	if done, err := r.doneAlready(st, host); done || err != nil {
		return err
	}
	turn := &Turn{Client: r.Client, Key: client.ObjectKey{Namespace: r.Namespace, Name: plan.RestoreLeaseName(r.Kind, r.Name)},
		Holder: r.Pod, Duration: r.LeaseDuration, Poll: r.Poll}
	turnCtx, release, err := turn.Take(ctx, p.Deadline.Time)
	if err != nil {
		return fmt.Errorf("restore of host %s: %w", host, err)
	}
	defer release()
	var done bool
	err = r.update(turnCtx, func(cm *corev1.ConfigMap, st RestoreState) (bool, error) {
		if st.Restore == nil || st.Restore.Name != p.Name {
			return false, fmt.Errorf("RestoreSession %s is no longer in its channel: was it deleted?", p.Name)
		}
		if done, err = r.doneAlready(st, host); done || err != nil {
			return false, err
		}
		if cur, ok := st.Results[host]; ok {
			if cur.Pod != r.Pod || cur.PodUID != r.PodUID {
				return false, fmt.Errorf("host %s is being restored by pod %s; this pod starts once that is done", host, cur.Pod)
			}
			// This container started the restore in an earlier run and
			// was restarted before it finished (killed for memory, say):
			// the pod still waits for its data, so restore it again.
			r.Log.Warn("the restore init container restarted during the restore; restoring again", "session", p.Name, "host", host)
		}
		return true, SetRestoreResult(cm, RestoreResult{Session: p.Name, Pod: r.Pod, PodUID: r.PodUID,
			Stats: stashv1beta1.HostRestoreStats{Hostname: host, Phase: PhaseRunning}})
	})
	if err != nil || done {
		return err
	}
	r.Log.Info("restoring", "session", p.Name, "host", host)
	res := r.restore(turnCtx, p, host)
	if cause := context.Cause(turnCtx); cause != nil && ctx.Err() == nil && res.Stats.Phase != PhaseSucceeded {
		res.Stats.Phase, res.Stats.Error = PhaseFailed, cause.Error()
	}
	r.Log.Info("host restore done", "session", p.Name, "host", host, "phase", res.Stats.Phase, "error", res.Stats.Error)
	if err := r.update(context.WithoutCancel(ctx), func(cm *corev1.ConfigMap, st RestoreState) (bool, error) {
		if st.Restore == nil || st.Restore.Name != p.Name {
			return false, nil
		}
		return true, SetRestoreResult(cm, res)
	}); err != nil {
		return fmt.Errorf("report the restore of host %s: %w", host, err)
	}
	if res.Stats.Phase != PhaseSucceeded {
		return fmt.Errorf("%w: host %s: %s", ErrRestoreFailed, host, res.Stats.Error)
	}
	return nil
}

// doneAlready reports whether host's restore is over; a failed one is an
// error, which keeps the application from starting on partial data.
func (r *RestoreRunner) doneAlready(st RestoreState, host string) (bool, error) {
	res, ok := st.Results[host]
	if !ok || !res.Final() {
		return false, nil
	}
	if res.Stats.Phase == PhaseSucceeded {
		r.Log.Info("host already restored by this RestoreSession; starting the application", "host", host, "session", st.Restore.Name)
		return true, nil
	}
	return true, fmt.Errorf("%w: host %s: %s (the application does not start on data whose restore failed: delete RestoreSession %s to start it as it is, or create a new RestoreSession)",
		ErrRestoreFailed, host, res.Stats.Error, st.Restore.Name)
}

// waitPlan waits for the operator to put the RestoreSession's plan into
// the channel.
func (r *RestoreRunner) waitPlan(ctx context.Context) (RestoreState, error) {
	until := time.Now().Add(r.Wait)
	for {
		cm := &corev1.ConfigMap{}
		err := r.Client.Get(ctx, r.key(), cm)
		if err == nil {
			st, err := ReadRestore(cm)
			if err != nil {
				return st, err
			}
			if st.Restore != nil && st.Restore.Name == r.Session {
				return st, nil
			}
		} else if !apierrors.IsNotFound(err) {
			r.Log.Warn("read the restore channel", "configmap", r.key().String(), "error", err)
		}
		if time.Now().After(until) {
			return RestoreState{}, fmt.Errorf("RestoreSession %s: the operator did not hand its plan over within %s (ConfigMap %s): is the operator running, and is the RestoreSession valid?", r.Session, r.Wait, r.key())
		}
		select {
		case <-ctx.Done():
			return RestoreState{}, ctx.Err()
		case <-time.After(r.Poll):
		}
	}
}

func (r *RestoreRunner) update(ctx context.Context, change func(*corev1.ConfigMap, RestoreState) (bool, error)) error {
	return updateChannel(ctx, r.Client, r.key(), ReadRestore, change)
}

// restore restores host by the rule that applies to it; the outcome is
// the host's report.
func (r *RestoreRunner) restore(ctx context.Context, p *Restore, host string) RestoreResult {
	start := time.Now()
	res := RestoreResult{Session: p.Name, Pod: r.Pod, PodUID: r.PodUID, Stats: stashv1beta1.HostRestoreStats{Hostname: host}}
	fail := func(err error) RestoreResult {
		res.Stats.Phase, res.Stats.Error = PhaseFailed, err.Error()
		res.Stats.Duration = time.Since(start).Round(time.Millisecond).String()
		return res
	}
	rule := plan.RuleForHost(p.Rules, host)
	if rule == nil {
		if len(p.Rules) > 0 {
			// Rules that name other hosts only: this one has nothing to
			// restore, as in Stash.
			res.Stats.Phase = PhaseSucceeded
			res.Stats.Duration = "0s"
			return res
		}
		rule = &stashv1beta1.Rule{}
	}
	snapshots := rule.Snapshots
	if len(snapshots) == 0 && len(rule.Paths) == 0 {
		snapshots = []string{repository.Latest}
	}
	outDir, err := os.MkdirTemp(r.ScratchDir, "restore-")
	if err != nil {
		return fail(fmt.Errorf("scratch directory: %w", err))
	}
	defer os.RemoveAll(outDir) //nolint:errcheck
	repo := p.Repository
	o := step.Options{
		Repository: repo.Name, Namespace: repo.Namespace, Hostname: host, SourceHostname: rule.SourceHost,
		OutputDir: outDir, ScratchDir: r.ScratchDir, SecretDir: r.SecretDir,
		Source: func() (source.Source, error) { return channelSource{repo: &repo, secretDir: r.SecretDir}, nil },
	}
	if err := step.RestorePaths(ctx, o, step.PathsRestore{Paths: rule.Paths, Snapshots: snapshots, Include: rule.Include, Exclude: rule.Exclude}); err != nil {
		return fail(err)
	}
	out, err := step.ReadOutput(outDir)
	if err != nil {
		return fail(err)
	}
	for _, hs := range out.HostRestoreStats {
		res.Stats = hs
		res.Stats.Hostname = host
	}
	if res.Stats.Phase == "" {
		return fail(errors.New("the restore reported no result"))
	}
	return res
}
