package backupsession

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/controller"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/sidecar"
	"github.com/stash-backup/stash/internal/status"
)

// ReasonSidecarNotified marks, on the target's BackupExecutorEnsured
// condition, a session whose hosts are a workload's sidecars.
const ReasonSidecarNotified = "SidecarNotified"

// sidecarPoll is how often a sidecar session looks at its hosts' pods:
// their deletion sends no event the operator watches.
const sidecarPoll = 10 * time.Second

func isSidecarSession(bs *stashv1beta1.BackupSession) bool {
	for _, t := range bs.Status.Targets {
		if c := status.FindCondition(t.Conditions, CondBackupExecutorEnsured); c != nil && c.Reason == ReasonSidecarNotified {
			return true
		}
	}
	return false
}

// sessionOfChannel maps a sidecar channel to the session it carries.
func sessionOfChannel(_ context.Context, o client.Object) []reconcile.Request {
	cm, ok := o.(*corev1.ConfigMap)
	if !ok {
		return nil
	}
	st, err := sidecar.Read(cm)
	if err != nil || st.Session == nil {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: cm.Namespace, Name: st.Session.Name}}}
}

// replicas is how many pods a workload asks for; a DaemonSet's, how many
// nodes it is scheduled on.
func replicas(obj client.Object) int32 {
	var n *int32
	switch w := obj.(type) {
	case *appsv1.StatefulSet:
		n = w.Spec.Replicas
	case *appsv1.Deployment:
		n = w.Spec.Replicas
	case *appsv1.ReplicaSet:
		n = w.Spec.Replicas
	case *corev1.ReplicationController:
		n = w.Spec.Replicas
	case *appsv1.DaemonSet:
		return w.Status.DesiredNumberScheduled
	}
	if n == nil {
		// The API server defaults it to one.
		return 1
	}
	return *n
}

// totalHosts counts the hosts of a workload: a StatefulSet's replicas, a
// DaemonSet's nodes, one for the kinds whose replicas share their data.
// A workload with no pod is refused, whatever its kind: no host would
// ever take the session, which would hold every later one Skipped until
// its deadline.
func totalHosts(obj client.Object) (int32, error) {
	n := replicas(obj)
	kind := sidecar.KindOf(obj)
	if n <= 0 {
		if kind == "DaemonSet" {
			return 0, fmt.Errorf("DaemonSet %s runs on no node: no pod to back up", obj.GetName())
		}
		return 0, fmt.Errorf("%s %s has 0 replicas: no pod to back up", kind, obj.GetName())
	}
	switch kind {
	case "StatefulSet", "DaemonSet":
		return n, nil
	}
	return 1, nil
}

// failScaledDown fails, in ch and cm, the hosts that lost their pod to a
// scale-down (or the workload's deletion) before they started: no pod of
// theirs is left to report. Hosts that started are left to FailLost,
// which sees their pod go. It reports whether cm changed.
func (r *Reconciler) failScaledDown(ctx context.Context, ref stashv1beta1.TargetRef, ch sidecar.State, cm *corev1.ConfigMap) (bool, error) {
	obj := sidecar.NewWorkload(ref.Kind)
	if obj == nil || ch.Session == nil {
		return false, nil
	}
	now, why := int32(0), fmt.Sprintf("%s %s was deleted during the session", ref.Kind, ref.Name)
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, obj); err != nil {
		if !apierrors.IsNotFound(err) {
			return false, fmt.Errorf("read %s %s/%s: %w", ref.Kind, ref.Namespace, ref.Name, err)
		}
	} else {
		now = replicas(obj)
		why = fmt.Sprintf("%s %s was scaled to %d replicas during the session", ref.Kind, ref.Name, now)
	}
	gone := sidecar.HostsBeyond(ref.Kind, ch.Session.Alias, ch.Session.TotalHosts, now)
	return ch.FailUnstarted(cm, gone, func(host string) string {
		return why + ": host " + host + " has no pod left to back it up"
	})
}

// startSidecar hands a session to the sidecars of the workload bc backs
// up: the session goes into their channel, and each host reports there.
func (r *Reconciler) startSidecar(ctx context.Context, bs *stashv1beta1.BackupSession, bc *stashv1beta1.BackupConfiguration, repo *stashv1alpha1.Repository) (ctrl.Result, error) {
	ref, host := targetOf(bc)
	obj := sidecar.NewWorkload(ref.Kind)
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: ref.Namespace, Name: ref.Name}, obj); err != nil {
		if apierrors.IsNotFound(err) {
			return r.fail(ctx, bs, ref, host, fmt.Sprintf("%s %s/%s does not exist", ref.Kind, ref.Namespace, ref.Name))
		}
		return ctrl.Result{}, err
	}
	if !plan.HasSidecar(sidecar.Template(obj)) {
		return r.fail(ctx, bs, ref, host, fmt.Sprintf("%s %s/%s has no backup sidecar in its pod template yet: the operator adds it when it sees the BackupConfiguration; the next session runs once its pods restarted with it", ref.Kind, ref.Namespace, ref.Name))
	}
	total, err := totalHosts(obj)
	if err != nil {
		return r.fail(ctx, bs, ref, host, err.Error())
	}
	deadline := metav1.NewTime(bs.CreationTimestamp.Add(r.Config.Timeout(bc.Spec.TimeOut)))
	s := sidecar.Session{
		Name: bs.Name, Invoker: bc.Name, Target: ref, Alias: bc.Spec.Target.Alias,
		Paths: bc.Spec.Target.Paths, Exclude: bc.Spec.Target.Exclude,
		Repository: stashv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: repo.Name, Namespace: repo.Namespace}, Spec: repo.Spec},
		Retention:  bc.Spec.RetentionPolicy, TotalHosts: total, Deadline: deadline,
		Hooks: bc.Spec.Hooks, FinalRetry: bc.Spec.RetryConfig == nil || bs.Spec.RetryLeft == 0,
	}
	for _, c := range sidecar.Template(obj).Spec.Containers {
		if !plan.IsSidecar(c) {
			s.Container = c.Name
			break
		}
	}
	cm := &corev1.ConfigMap{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: bc.Namespace, Name: plan.SidecarChannelName(bc.Name)}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			// The workload controller makes it with the sidecar's Role.
			return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
		}
		return ctrl.Result{}, err
	}
	if err := sidecar.WriteSession(cm, s); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.Client.Update(ctx, cm); err != nil {
		return ctrl.Result{}, fmt.Errorf("hand BackupSession %s to the sidecars through ConfigMap %s: %w", bs.Name, cm.Name, err)
	}
	now := metav1.NewTime(r.Config.Clock())
	st := bs.Status.DeepCopy()
	st.Targets = []stashv1beta1.BackupTargetStatus{{
		Ref: ref, TotalHosts: &total, Phase: "Running",
		PostBackupActions: []string{"ApplyRetentionPolicy", "VerifyRepositoryIntegrity", "SendRepositoryMetrics"},
		Conditions: []stashv1beta1.Condition{{Type: CondBackupExecutorEnsured, Status: metav1.ConditionTrue, Reason: ReasonSidecarNotified,
			Message: fmt.Sprintf("The backup sidecars of %s %s were handed the session.", ref.Kind, ref.Name), LastTransitionTime: now}},
	}}
	st.Phase = stashv1beta1.BackupSessionRunning
	st.SessionDeadline = &deadline
	if err := r.setStatus(ctx, bs, *st); err != nil {
		return ctrl.Result{}, err
	}
	r.Events.Event(bs, corev1.EventTypeNormal, controller.ReasonBackupRunning, "Backup is running in the sidecars of "+ref.Kind+" "+ref.Name+".")
	return ctrl.Result{RequeueAfter: sidecarPoll}, nil
}

// trackSidecar copies what the hosts reported into the session. A host
// whose pod went away mid-backup is Failed, so the session ends and the
// next one runs.
func (r *Reconciler) trackSidecar(ctx context.Context, bs *stashv1beta1.BackupSession) (ctrl.Result, error) {
	ref := bs.Status.Targets[0].Ref
	total := int32(1)
	if t := bs.Status.Targets[0].TotalHosts; t != nil {
		total = *t
	}
	if d := bs.Status.SessionDeadline; d != nil && !r.Config.Clock().Before(d.Time) {
		bs.Status.Conditions = status.SetCondition(bs.Status.Conditions, stashv1beta1.Condition{Type: CondDeadlineExceeded, Status: metav1.ConditionTrue, Reason: "FailedToCompleteWithinDeadline",
			Message: "Failed to complete backup within the deadline " + d.UTC().Format(time.RFC3339) + " (spec.timeOut, or the operator's --default-session-timeout)."}, metav1.NewTime(r.Config.Clock()))
		st := status.MergeBackup(bs.Status, ref, total, nil)
		st.Phase = stashv1beta1.BackupSessionFailed
		return ctrl.Result{}, r.setStatus(ctx, bs, st)
	}
	cm := &corev1.ConfigMap{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: bs.Namespace, Name: plan.SidecarChannelName(bs.Spec.Invoker.Name)}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return r.fail(ctx, bs, ref, "host-0", "the sidecar channel (ConfigMap "+plan.SidecarChannelName(bs.Spec.Invoker.Name)+") is gone: was the BackupConfiguration deleted?")
		}
		return ctrl.Result{}, err
	}
	ch, err := sidecar.Read(cm)
	if err != nil {
		return r.fail(ctx, bs, ref, "host-0", err.Error())
	}
	if ch.Session == nil || ch.Session.Name != bs.Name {
		return r.fail(ctx, bs, ref, "host-0", "the sidecar channel carries another session: this one was replaced")
	}
	// A host whose pod is gone, or is another pod now, will never report.
	lost, err := ch.FailLost(ctx, r.APIReader, cm)
	if err != nil {
		return ctrl.Result{}, err
	}
	scaled, err := r.failScaledDown(ctx, ref, ch, cm)
	if err != nil {
		return ctrl.Result{}, err
	}
	if lost || scaled {
		if err := r.Client.Update(ctx, cm); err != nil {
			return ctrl.Result{}, err
		}
	}
	stats := ch.FinalStats()
	if int32(len(stats)) >= total && !ch.Done() {
		// Every host succeeded; the last one is running the post-backup
		// actions.
		return ctrl.Result{RequeueAfter: sidecarPoll}, nil
	}
	st := status.MergeBackup(bs.Status, ref, total, stats)
	if ch.Post != nil {
		st = status.MergeBackup(st, ref, total, nil, ch.Post.Conditions...)
		st.Repository = ch.Post.Report
	}
	known := map[string]bool{}
	for _, s := range bs.Status.Targets[0].Stats {
		known[s.Hostname] = true
	}
	if equality.Semantic.DeepEqual(bs.Status, st) {
		return r.sidecarRequeue(bs), nil
	}
	if err := r.setStatus(ctx, bs, st); err != nil {
		return ctrl.Result{}, err
	}
	for _, s := range stats {
		if !known[s.Hostname] {
			if s.Phase == sidecar.PhaseFailed {
				r.Events.Event(bs, corev1.EventTypeWarning, "Host Backup Failed", fmt.Sprintf("Backup of host %s failed: %s", s.Hostname, s.Error))
			} else {
				r.Events.Event(bs, corev1.EventTypeNormal, "Host Backup Succeeded", fmt.Sprintf("Backup of host %s succeeded.", s.Hostname))
			}
		}
	}
	if st.Phase == stashv1beta1.BackupSessionRunning {
		return r.sidecarRequeue(bs), nil
	}
	return ctrl.Result{RequeueAfter: controller.Soon}, nil
}

func (r *Reconciler) sidecarRequeue(bs *stashv1beta1.BackupSession) ctrl.Result {
	res := r.requeueForDeadline(bs)
	if res.RequeueAfter > sidecarPoll {
		res.RequeueAfter = sidecarPoll
	}
	return res
}
