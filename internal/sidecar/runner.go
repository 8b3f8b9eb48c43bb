package sidecar

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/hook"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/source"
	"github.com/stash-backup/stash/internal/step"
)

// Runner is the backup sidecar (run-backup): it waits for sessions in its
// BackupConfiguration's channel, takes its turn on the workload's Lease,
// backs up its host's paths, and reports in the channel. It never writes
// a BackupSession: the operator copies the reports there.
type Runner struct {
	Client client.WithWatch
	// Namespace, Invoker (the BackupConfiguration), Kind and Name (the
	// workload) say whose sessions to run.
	Namespace, Invoker, Kind, Name string
	// Pod, PodUID and Node are this pod's (the downward API's).
	Pod, PodUID, Node string
	// SecretDir holds the Repository's storage Secret, mounted.
	SecretDir string
	// ScratchDir is where results are staged.
	ScratchDir string
	// LeaseDuration bounds how long a stalled pod holds the turn.
	LeaseDuration time.Duration
	// Poll is how often a waiting pod looks again (turns, a missing
	// channel); Resync bounds a channel watch.
	Poll, Resync time.Duration
	Log          *slog.Logger
	// Exec runs an exec hook's command in a container of this pod (in a
	// cluster, through pods/exec); nil runs it here, in the sidecar.
	Exec hook.ExecFunc

	// run tells this process's results from those of an earlier run of
	// the same container in the same pod, which the kubelet restarted.
	run string
}

func (r *Runner) defaults() {
	if r.LeaseDuration == 0 {
		r.LeaseDuration = 30 * time.Second
	}
	if r.Poll == 0 {
		r.Poll = 5 * time.Second
	}
	if r.Resync == 0 {
		r.Resync = time.Minute
	}
	if r.Log == nil {
		r.Log = slog.Default()
	}
	if r.ScratchDir == "" {
		r.ScratchDir = os.TempDir()
	}
	if r.run == "" {
		r.run = rand.Text()
	}
}

func (r *Runner) channelKey() client.ObjectKey {
	return client.ObjectKey{Namespace: r.Namespace, Name: plan.SidecarChannelName(r.Invoker)}
}

// Run serves sessions until ctx ends.
func (r *Runner) Run(ctx context.Context) error {
	r.defaults()
	for _, f := range []struct{ name, v string }{{"namespace", r.Namespace}, {"--invoker-name", r.Invoker}, {"--target-kind", r.Kind}, {"--target-name", r.Name}, {"POD_NAME", r.Pod}} {
		if f.v == "" {
			return fmt.Errorf("%s is empty: the backup sidecar needs it (the operator sets it when it injects the sidecar)", f.name)
		}
	}
	if err := os.MkdirAll(r.ScratchDir, 0o700); err != nil {
		return fmt.Errorf("--scratch-dir: %w", err)
	}
	r.Log.Info("backup sidecar started", "invoker", r.Invoker, "target", r.Kind+"/"+r.Name, "pod", r.Pod)
	for ctx.Err() == nil {
		cm := &corev1.ConfigMap{}
		if err := r.Client.Get(ctx, r.channelKey(), cm); err != nil {
			if !apierrors.IsNotFound(err) && ctx.Err() == nil {
				r.Log.Warn("read the session channel", "configmap", r.channelKey().String(), "error", err)
			}
			sleep(ctx, r.Poll)
			continue
		}
		if err := r.Handle(ctx, cm); err != nil && ctx.Err() == nil {
			r.Log.Error("session", "error", err)
			sleep(ctx, r.Poll)
		}
		r.waitChange(ctx, cm.ResourceVersion)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// waitChange returns when the channel changes after resourceVersion, or
// after Resync.
func (r *Runner) waitChange(ctx context.Context, resourceVersion string) {
	wctx, cancel := context.WithTimeout(ctx, r.Resync)
	defer cancel()
	w, err := r.Client.Watch(wctx, &corev1.ConfigMapList{}, client.InNamespace(r.Namespace),
		client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", r.channelKey().Name)},
		&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: resourceVersion}})
	if err != nil {
		sleep(ctx, r.Poll)
		return
	}
	defer w.Stop()
	select {
	case <-wctx.Done():
	case <-w.ResultChan():
	}
}

// Host is this pod's snapshot host in a session.
func (r *Runner) Host(s *Session) string {
	return plan.WorkloadHost(r.Kind, s.Alias, r.Pod, r.Node)
}

// Handle runs this pod's part of the session the channel carries, if it
// has one left: waits for its turn, backs up, reports.
func (r *Runner) Handle(ctx context.Context, cm *corev1.ConfigMap) error {
	st, err := Read(cm)
	if err != nil || st.Session == nil {
		return err
	}
	s := st.Session
	host := r.Host(s)
	if !time.Now().Before(s.Deadline.Time) {
		return nil
	}
	if cur, ok := st.Results[host]; ok {
		if r.diedHere(cur) {
			return r.failDied(ctx, s, host)
		}
		return nil
	}
	turn := &Turn{Client: r.Client, Key: client.ObjectKey{Namespace: r.Namespace, Name: plan.SidecarLeaseName(r.Kind, r.Name)},
		Holder: r.Pod, Duration: r.LeaseDuration, Poll: r.Poll}
	turnCtx, release, err := turn.Take(ctx, s.Deadline.Time)
	if err != nil {
		return fmt.Errorf("session %s, host %s: %w", s.Name, host, err)
	}
	defer release()
	// Another replica of a Deployment may have run it while this one
	// waited; a newer session may have replaced it.
	started := false
	err = r.update(turnCtx, func(cm *corev1.ConfigMap, st State) (bool, error) {
		if st.Session == nil || st.Session.Name != s.Name {
			return false, nil
		}
		if _, ok := st.Results[host]; ok {
			return false, nil
		}
		started = true
		return true, SetResult(cm, Result{Session: s.Name, Pod: r.Pod, PodUID: r.PodUID, Run: r.run,
			Stats: stashv1beta1.HostBackupStats{Hostname: host, Phase: PhaseRunning}})
	})
	if err != nil || !started {
		return err
	}
	r.Log.Info("backing up", "session", s.Name, "host", host, "paths", s.Paths)
	var (
		res Result
		ret *step.RetentionOutput
	)
	if err := r.hook(turnCtx, s, "preBackup", host, ""); err != nil {
		res = Result{Session: s.Name, Pod: r.Pod, PodUID: r.PodUID, Run: r.run, Stats: stashv1beta1.HostBackupStats{Hostname: host, Phase: PhaseFailed, Error: err.Error()}}
	} else {
		res, ret = r.backup(turnCtx, s, host)
		if err := r.hook(turnCtx, s, "postBackup", host, res.Stats.Phase); err != nil {
			res.Stats.Phase = PhaseFailed
			res.Stats.Error = strings.TrimPrefix(res.Stats.Error+"; "+err.Error(), "; ")
		}
	}
	if cause := context.Cause(turnCtx); cause != nil && ctx.Err() == nil && res.Stats.Phase != PhaseSucceeded {
		res.Stats.Phase, res.Stats.Error = PhaseFailed, cause.Error()
	}
	r.Log.Info("host backup done", "session", s.Name, "host", host, "phase", res.Stats.Phase, "error", res.Stats.Error)
	// Reports are written even when the turn was lost: they are this
	// host's, and the channel's resourceVersion keeps writers apart.
	wctx := context.WithoutCancel(ctx)
	var post *Post
	return r.update(wctx, func(cm *corev1.ConfigMap, st State) (bool, error) {
		if st.Session == nil || st.Session.Name != s.Name {
			return false, nil
		}
		if cur, ok := st.Results[host]; ok && cur.Final() {
			// The operator failed this host meanwhile (it thought the
			// pod gone): its verdict stands.
			return false, nil
		}
		if res.Stats.Phase == PhaseSucceeded && st.Last(host) && allSucceeded(st, host) {
			if post == nil {
				post = r.postBackup(wctx, s, st, ret)
			}
			if err := SetPost(cm, *post); err != nil {
				return false, err
			}
		}
		return true, SetResult(cm, res)
	})
}

// diedHere reports whether res is a backup this pod's sidecar started in
// an earlier run, before the kubelet restarted it (killed for memory, a
// failed probe): nobody else will finish or fail it, and the pod is still
// there, so the operator sees nothing gone.
func (r *Runner) diedHere(res Result) bool {
	return !res.Final() && res.Pod == r.Pod && res.PodUID == r.PodUID && res.Run != r.run
}

// failDied fails host's backup that an earlier run of this sidecar did not
// finish. It is not run again: a sidecar killed for its memory would be
// killed again, and the session would stay Running to its deadline; the
// next session backs up afresh.
func (r *Runner) failDied(ctx context.Context, s *Session, host string) error {
	r.Log.Warn("the sidecar restarted during a backup; failing it", "session", s.Name, "host", host)
	return r.update(ctx, func(cm *corev1.ConfigMap, st State) (bool, error) {
		cur, ok := st.Results[host]
		if st.Session == nil || st.Session.Name != s.Name || !ok || !r.diedHere(cur) {
			return false, nil
		}
		cur.Run = r.run
		cur.Stats.Phase = PhaseFailed
		cur.Stats.Error = fmt.Sprintf("the backup sidecar of pod %s restarted during the backup of host %s, which did not finish "+
			"(see the container's lastState in the pod's status: OOMKilled means its memory limit is too low)", r.Pod, host)
		return true, SetResult(cm, cur)
	})
}

// hook runs the session's preBackup or postBackup hook, if it has one,
// in this pod: exec hooks in the application's container, HTTP and TCP
// hooks without a host on the pod's loopback, which the application
// shares. A postBackup hook follows its executionPolicy with this host's
// outcome.
func (r *Runner) hook(ctx context.Context, s *Session, typ, host string, phase stashv1beta1.HostPhase) error {
	if s.Hooks == nil {
		return nil
	}
	var h *stashv1beta1.Handler
	switch {
	case typ == "preBackup":
		h = s.Hooks.PreBackup
	case s.Hooks.PostBackup != nil:
		if !hook.ShouldRun(s.Hooks.PostBackup.ExecutionPolicy, string(phase), s.FinalRetry) {
			return nil
		}
		h = &s.Hooks.PostBackup.Handler
	}
	if h == nil {
		return nil
	}
	var sum hook.Summary
	sum.Name, sum.Namespace = s.Name, r.Namespace
	sum.Invoker.Kind, sum.Invoker.Name = "BackupConfiguration", s.Invoker
	sum.Target.Kind, sum.Target.Name = s.Target.Kind, s.Target.Name
	sum.Status.Phase = string(phase)
	target := hook.Target{Host: "127.0.0.1"}
	if r.Exec != nil {
		target.Exec = func(ctx context.Context, container string, argv []string, out io.Writer) error {
			if container == "" {
				container = s.Container
			}
			return r.Exec(ctx, container, argv, out)
		}
	}
	var out strings.Builder
	err := hook.Execute(ctx, h, sum, target, &out)
	r.Log.Info("hook", "type", typ, "host", host, "output", strings.TrimSpace(out.String()), "error", err)
	if err != nil {
		return fmt.Errorf("%s hook: %w", typ, err)
	}
	return nil
}

func allSucceeded(st State, except string) bool {
	for h, r := range st.Results {
		if h != except && r.Final() && r.Stats.Phase != PhaseSucceeded {
			return false
		}
	}
	return true
}

// update reads the channel, applies change and writes it, retrying on
// conflicts with the other pods and the operator.
func (r *Runner) update(ctx context.Context, change func(*corev1.ConfigMap, State) (bool, error)) error {
	return updateChannel(ctx, r.Client, r.channelKey(), Read, change)
}

// updateChannel reads a channel with read, applies change and writes the
// channel when change says so, retrying on conflicts: a channel has
// several writers.
func updateChannel[S any](ctx context.Context, c client.Client, key client.ObjectKey, read func(*corev1.ConfigMap) (S, error), change func(*corev1.ConfigMap, S) (bool, error)) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cm := &corev1.ConfigMap{}
		if err := c.Get(ctx, key, cm); err != nil {
			return err
		}
		st, err := read(cm)
		if err != nil {
			return err
		}
		write, err := change(cm, st)
		if err != nil || !write {
			return err
		}
		return c.Update(ctx, cm)
	})
}

func (r *Runner) options(s *Session, host, outDir string) step.Options {
	repo := s.Repository
	return step.Options{
		Repository: repo.Name, Namespace: repo.Namespace, Hostname: host,
		BackupSession: s.Name, InvokerKind: "BackupConfiguration", InvokerName: s.Invoker,
		OutputDir: outDir, ScratchDir: r.ScratchDir, Retention: s.Retention,
		Source: func() (source.Source, error) { return channelSource{repo: &repo, secretDir: r.SecretDir}, nil },
	}
}

// backup backs up the session's paths as host; the result is never an
// error, it is the host's report.
func (r *Runner) backup(ctx context.Context, s *Session, host string) (Result, *step.RetentionOutput) {
	start := time.Now()
	res := Result{Session: s.Name, Pod: r.Pod, PodUID: r.PodUID, Run: r.run, Stats: stashv1beta1.HostBackupStats{Hostname: host}}
	fail := func(err error) (Result, *step.RetentionOutput) {
		res.Stats.Phase, res.Stats.Error = PhaseFailed, err.Error()
		res.Stats.Duration = time.Since(start).Round(time.Millisecond).String()
		return res, nil
	}
	outDir, err := os.MkdirTemp(r.ScratchDir, "backup-")
	if err != nil {
		return fail(fmt.Errorf("scratch directory: %w", err))
	}
	defer os.RemoveAll(outDir) //nolint:errcheck
	if err := step.BackupPaths(ctx, r.options(s, host, outDir), s.Paths, s.Exclude); err != nil {
		return fail(err)
	}
	out, err := step.ReadOutput(outDir)
	if err != nil {
		return fail(err)
	}
	for _, hs := range out.HostBackupStats {
		if hs.Hostname == host || len(out.HostBackupStats) == 1 {
			res.Stats = hs
			res.Stats.Hostname = host
		}
	}
	if res.Stats.Phase == "" {
		return fail(errors.New("the backup reported no result"))
	}
	if out.Retention != nil && out.Retention.Error != "" {
		res.RetentionError = out.Retention.Error
	}
	return res, out.Retention
}

// postBackup runs the session's post-backup actions, as the host that
// completed it: retention's outcome over every host, the repository's
// integrity and its figures.
func (r *Runner) postBackup(ctx context.Context, s *Session, st State, ret *step.RetentionOutput) *Post {
	agg := ret
	var errs []string
	for h, res := range st.Results {
		if res.RetentionError != "" {
			errs = append(errs, h+": "+res.RetentionError)
		}
	}
	if len(errs) > 0 {
		agg = &step.RetentionOutput{Error: strings.Join(errs, "; ")}
		if ret != nil && ret.Error != "" {
			agg.Error += "; " + ret.Error
		}
	}
	o := r.options(s, r.Host(s), "")
	conds := []stashv1beta1.Condition{step.RetentionCondition(agg, metav1.Now())}
	src, _ := o.Source()
	pc, report := o.PostBackup(ctx, src, ret)
	return &Post{Session: s.Name, Conditions: append(conds, pc...), Report: report}
}

// channelSource gives the backup step the Repository the operator put in
// the session and the Secret mounted into the sidecar: the sidecar reads
// neither from the API.
type channelSource struct {
	repo      *stashv1alpha1.Repository
	secretDir string
}

func (c channelSource) AppBinding(context.Context, string, string) (*appcatalogv1alpha1.AppBinding, error) {
	return nil, errors.New("a workload's backup sidecar has no AppBinding")
}

func (c channelSource) Repository(_ context.Context, ns, name string) (*stashv1alpha1.Repository, error) {
	if ns != c.repo.Namespace || name != c.repo.Name {
		return nil, fmt.Errorf("Repository %s/%s is not this session's", ns, name)
	}
	return c.repo, nil
}

func (c channelSource) SecretData(_ context.Context, _, name string) (map[string][]byte, error) {
	if name != c.repo.Spec.Backend.StorageSecretName {
		return nil, fmt.Errorf("Secret %s is not the Repository's storage Secret %s", name, c.repo.Spec.Backend.StorageSecretName)
	}
	data, err := step.ReadSecretDir(c.secretDir)
	if err != nil {
		return nil, fmt.Errorf("the Repository's storage Secret %s, mounted at %s: %w", name, c.secretDir, err)
	}
	return data, nil
}
