package restoresession

import (
	"context"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/controller"
	"github.com/stash-backup/stash/internal/controller/rbac"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/sidecar"
	"github.com/stash-backup/stash/internal/status"
)

// CondInitContainerInjected marks a RestoreSession of the init-container
// model (Stash's name): its plan is in the channel, and the workload
// controller puts the init container into the pod template.
const CondInitContainerInjected = "StashInitContainerInjected"

const initPoll = 10 * time.Second

func isInitSession(rs *stashv1beta1.RestoreSession) bool {
	return status.FindCondition(rs.Status.Conditions, CondInitContainerInjected) != nil
}

// sessionOfChannel maps a restore channel to its RestoreSession.
func sessionOfChannel(_ context.Context, o client.Object) []reconcile.Request {
	cm, ok := o.(*corev1.ConfigMap)
	if !ok {
		return nil
	}
	st, err := sidecar.ReadRestore(cm)
	if err != nil || st.Restore == nil {
		return nil
	}
	return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: cm.Namespace, Name: st.Restore.Name}}}
}

func workloadHosts(obj client.Object) int32 {
	switch w := obj.(type) {
	case *appsv1.StatefulSet:
		if w.Spec.Replicas != nil {
			return *w.Spec.Replicas
		}
	case *appsv1.DaemonSet:
		return w.Status.DesiredNumberScheduled
	}
	return 1
}

// startInit plans a restore into a workload: the plan goes into the
// restore channel, the init container's Role and Lease are made, and the
// workload controller adds the init container, which rolls the pods.
func (r *Reconciler) startInit(ctx context.Context, rs *stashv1beta1.RestoreSession, st *stashv1beta1.RestoreSessionStatus, repo *stashv1alpha1.Repository) (ctrl.Result, error) {
	t := rs.Spec.Target
	obj := sidecar.NewWorkload(t.Ref.Kind)
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: rs.Namespace, Name: t.Ref.Name}, obj); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, err
		}
		r.cond(st, rs.Generation, CondRestoreTargetFound, false, "TargetNotAvailable", fmt.Sprintf("%s %s/%s does not exist yet.", t.Ref.Kind, rs.Namespace, t.Ref.Name))
		st.Phase = stashv1beta1.RestorePending
		return ctrl.Result{RequeueAfter: 15 * time.Second}, r.setStatus(ctx, rs, *st)
	}
	total := workloadHosts(obj)
	if total < 1 {
		r.cond(st, rs.Generation, CondRestoreTargetFound, false, "TargetHasNoPods", fmt.Sprintf("%s %s has no pods to restore into.", t.Ref.Kind, t.Ref.Name))
		st.Phase = stashv1beta1.RestorePending
		return ctrl.Result{RequeueAfter: 15 * time.Second}, r.setStatus(ctx, rs, *st)
	}
	deadline := metav1.NewTime(rs.CreationTimestamp.Add(r.Config.Timeout(rs.Spec.TimeOut)))
	rules := t.Rules
	if len(rules) == 0 {
		rules = rs.Spec.Rules
	}
	p := sidecar.Restore{
		Name: rs.Name, Target: stashv1beta1.TargetRef{APIVersion: t.Ref.APIVersion, Kind: t.Ref.Kind, Name: t.Ref.Name, Namespace: rs.Namespace},
		Alias: t.Alias, Rules: rules, TotalHosts: total, Deadline: deadline,
		Repository: stashv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: repo.Name, Namespace: repo.Namespace}, Spec: repo.Spec},
	}
	labels := map[string]string{
		rbac.LabelManagedBy: rbac.ManagedBy, plan.LabelInvokerType: "RestoreSession", plan.LabelInvokerName: plan.LabelValue(rs.Name),
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: plan.RestoreChannelName(rs.Name), Namespace: rs.Namespace}}
	if _, err := controllerutil.CreateOrUpdate(ctx, r.Client, cm, func() error {
		if cm.ResourceVersion != "" && cm.Labels[rbac.LabelManagedBy] != rbac.ManagedBy {
			return fmt.Errorf("ConfigMap %s %w", cm.Name, rbac.ErrNotManaged)
		}
		cm.Labels = labels
		if err := controllerutil.SetControllerReference(rs, cm, r.Client.Scheme()); err != nil {
			return err
		}
		return sidecar.WriteRestore(cm, p)
	}); err != nil {
		return r.ensureFailed(ctx, rs, st, err)
	}
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: plan.RestoreLeaseName(t.Ref.Kind, t.Ref.Name), Namespace: rs.Namespace, Labels: labels}}
	if err := controllerutil.SetControllerReference(rs, lease, r.Client.Scheme()); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.Client.Create(ctx, lease); err != nil && !apierrors.IsAlreadyExists(err) {
		return ctrl.Result{}, fmt.Errorf("create Lease %s: %w", lease.Name, err)
	}
	sa := sidecar.Template(obj).Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	if err := rbac.EnsureBinding(ctx, r.Client, rs, rs.Namespace, plan.RestoreRoleName(rs.Name), sa, rbac.SidecarRules(cm.Name, lease.Name)); err != nil {
		return r.ensureFailed(ctx, rs, st, err)
	}
	st.TotalHosts = &total
	st.Phase = stashv1beta1.RestoreRunning
	st.SessionDeadline = &deadline
	r.cond(st, rs.Generation, CondValidationPassed, true, "ResourceValidationPassed", "Validation has been passed successfully.")
	r.cond(st, rs.Generation, CondRestoreTargetFound, true, "TargetAvailable", "Restore target found.")
	r.cond(st, rs.Generation, CondInitContainerInjected, true, "InitContainerInjectionSucceeded",
		fmt.Sprintf("The restore init container goes into %s %s; its %d pod(s) restart and restore before the application starts.", t.Ref.Kind, t.Ref.Name, total))
	if err := r.setStatus(ctx, rs, *st); err != nil {
		return ctrl.Result{}, err
	}
	r.Events.Event(rs, corev1.EventTypeNormal, "InitContainerInjected", "Restoring into "+t.Ref.Kind+" "+t.Ref.Name+" through its init container.")
	return ctrl.Result{RequeueAfter: initPoll}, nil
}

// trackInit copies the hosts' reports into the session; a host whose pod
// went away mid-restore is Failed.
func (r *Reconciler) trackInit(ctx context.Context, rs *stashv1beta1.RestoreSession) (ctrl.Result, error) {
	st := rs.Status.DeepCopy()
	total := int32(1)
	if st.TotalHosts != nil {
		total = *st.TotalHosts
	}
	if d := st.SessionDeadline; d != nil && !r.Config.Clock().Before(d.Time) {
		r.cond(st, rs.Generation, CondDeadlineExceeded, true, "FailedToCompleteWithinDeadline",
			"Failed to complete restore within the deadline "+d.UTC().Format(time.RFC3339)+" (spec.timeOut, or the operator's --default-session-timeout); pods that have not restored yet keep waiting until the RestoreSession is deleted.")
		st.Phase = stashv1beta1.RestoreFailed
		return ctrl.Result{}, r.setStatus(ctx, rs, *st)
	}
	cm := &corev1.ConfigMap{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: rs.Namespace, Name: plan.RestoreChannelName(rs.Name)}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			return r.failInit(ctx, rs, total, "the restore channel (ConfigMap "+plan.RestoreChannelName(rs.Name)+") is gone: no host can report")
		}
		return ctrl.Result{}, err
	}
	ch, err := sidecar.ReadRestore(cm)
	if err != nil {
		return r.failInit(ctx, rs, total, "the restore channel cannot be read, so no host can report: "+err.Error())
	}
	lost, err := ch.FailLost(ctx, r.APIReader, cm)
	if err != nil {
		return ctrl.Result{}, err
	}
	if lost {
		if err := r.Client.Update(ctx, cm); err != nil {
			return ctrl.Result{}, err
		}
	}
	known := map[string]bool{}
	for _, s := range rs.Status.Stats {
		known[s.Hostname] = true
	}
	stats := ch.FinalStats()
	merged := status.MergeRestore(*st, total, stats)
	if err := r.setStatus(ctx, rs, merged); err != nil {
		return ctrl.Result{}, err
	}
	for _, s := range stats {
		if known[s.Hostname] {
			continue
		}
		if s.Phase == sidecar.PhaseFailed {
			r.Events.Event(rs, corev1.EventTypeWarning, "Host Restore Failed", fmt.Sprintf("Restore of host %s failed: %s", s.Hostname, s.Error))
		} else {
			r.Events.Event(rs, corev1.EventTypeNormal, "Host Restore Succeeded", fmt.Sprintf("Restore of host %s succeeded.", s.Hostname))
		}
	}
	if merged.Phase == stashv1beta1.RestoreRunning {
		return ctrl.Result{RequeueAfter: initPoll}, nil
	}
	return ctrl.Result{Requeue: true}, nil
}

// initHosts are the hosts of an init-container restore into a workload of
// total hosts, as its pods name themselves (plan.WorkloadHost): nil for a
// DaemonSet, whose hosts are its nodes.
func initHosts(rs *stashv1beta1.RestoreSession, total int32) []string {
	t := rs.Spec.Target
	if t == nil {
		return nil
	}
	switch t.Ref.Kind {
	case "DaemonSet":
		return nil
	case "StatefulSet":
		return plan.OrdinalHosts(t.Alias, 0, total)
	}
	return []string{plan.WorkloadHost(t.Ref.Kind, t.Alias, "", "")}
}

// failInit ends an init-container session whose channel is gone or cannot
// be read: no host can report any more. Every host that has not reported
// is failed by its name, when its name is known, and the session is
// Failed either way; failing one host would leave it Running, the others
// never reporting, until its deadline.
func (r *Reconciler) failInit(ctx context.Context, rs *stashv1beta1.RestoreSession, total int32, msg string) (ctrl.Result, error) {
	reported := map[string]bool{}
	for _, s := range rs.Status.Stats {
		reported[s.Hostname] = true
	}
	var stats []stashv1beta1.HostRestoreStats
	for _, h := range initHosts(rs, total) {
		if !reported[h] {
			stats = append(stats, stashv1beta1.HostRestoreStats{Hostname: h, Phase: sidecar.PhaseFailed, Error: msg})
		}
	}
	st := status.MergeRestore(rs.Status, 0, stats)
	st.Phase = stashv1beta1.RestoreFailed
	if err := r.setStatus(ctx, rs, st); err != nil {
		return ctrl.Result{}, err
	}
	r.Events.Event(rs, corev1.EventTypeWarning, controller.ReasonRestoreFailed, msg)
	return ctrl.Result{RequeueAfter: controller.Soon}, nil
}
