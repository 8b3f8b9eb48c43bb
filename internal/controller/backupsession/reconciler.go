// Package backupsession reconciles BackupSessions of the job model: it
// decides whether a session runs or is skipped, creates its Job from the
// planner, and derives the session's phase from the Job and its pods, so
// a session never stays Running after its Job is gone, failed, or the
// operator restarted. Finished sessions get retries, history cleanup,
// events and metrics.
package backupsession

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/controller"
	"github.com/stash-backup/stash/internal/controller/jobstate"
	"github.com/stash-backup/stash/internal/controller/rbac"
	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/metrics"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/sidecar"
	"github.com/stash-backup/stash/internal/status"
)

// Session condition types (Stash's names).
const (
	CondBackupSkipped         = "BackupSkipped"
	CondHistoryCleaned        = "BackupHistoryCleaned"
	CondDeadlineExceeded      = "DeadlineExceeded"
	CondMetricsPushed         = "MetricsPushed"
	CondBackupExecutorEnsured = "BackupExecutorEnsured"
	CondBackupDisrupted       = "BackupDisrupted"
)

// InvokerObserveWait is how long a new session waits for the operator to
// check a changed BackupConfiguration before it is Skipped.
const InvokerObserveWait = time.Minute

// Reconciler reconciles BackupSessions.
type Reconciler struct {
	Client client.Client
	// APIReader reads past the cache, to confirm that a Job is really gone
	// before a session is failed for it.
	APIReader client.Reader
	Config    controller.Config
	Events    record.EventRecorder
	Metrics   *metrics.Metrics
}

// SetupWithManager registers the reconciler.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&stashv1beta1.BackupSession{}).
		Owns(&batchv1.Job{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(controller.SessionOfPod(mgr.GetClient(), "BackupSession"))).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(sessionOfChannel)).
		Named("backupsession").
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	bs := &stashv1beta1.BackupSession{}
	if err := r.Client.Get(ctx, req.NamespacedName, bs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !started(bs) {
		// The cache may not hold the session's new status yet: starting
		// writes its channel or Job, whose events wake this reconcile
		// again at once. Only what the API server says has not started
		// is started, or the sidecars would be handed the session twice.
		if err := r.APIReader.Get(ctx, req.NamespacedName, bs); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
	}
	if !bs.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	switch bs.Status.Phase {
	case stashv1beta1.BackupSessionSucceeded, stashv1beta1.BackupSessionFailed, stashv1beta1.BackupSessionSkipped:
		return r.finish(ctx, bs)
	case stashv1beta1.BackupSessionRunning:
		return r.track(ctx, bs)
	}
	// A session that could not start (its invoker's checks kept failing,
	// the API kept refusing) ends at the deadline like any other.
	if age := r.Config.Clock().Sub(bs.CreationTimestamp.Time); !bs.CreationTimestamp.IsZero() && age > r.Config.Timeout(nil) {
		return r.skip(ctx, bs, "NeverStarted", fmt.Sprintf("The session could not start within %s; see the operator's events for it.", r.Config.Timeout(nil)))
	}
	return r.start(ctx, bs)
}

// started says a session has left its first phase.
func started(bs *stashv1beta1.BackupSession) bool {
	switch bs.Status.Phase {
	case "", stashv1beta1.BackupSessionPending:
		return false
	}
	return true
}

func (r *Reconciler) setStatus(ctx context.Context, bs *stashv1beta1.BackupSession, st stashv1beta1.BackupSessionStatus) error {
	// Written only when it changed: an unchanged write still costs the
	// API server a request and every watcher an event.
	if equality.Semantic.DeepEqual(bs.Status, st) {
		return nil
	}
	bs.Status = st
	if err := r.Client.Status().Update(ctx, bs); err != nil {
		return fmt.Errorf("update status of BackupSession %s/%s: %w", bs.Namespace, bs.Name, err)
	}
	return nil
}

func (r *Reconciler) skip(ctx context.Context, bs *stashv1beta1.BackupSession, reason, msg string) (ctrl.Result, error) {
	st := bs.Status.DeepCopy()
	st.Conditions = status.SetCondition(st.Conditions, stashv1beta1.Condition{Type: CondBackupSkipped, Status: metav1.ConditionTrue, Reason: reason, Message: msg}, metav1.NewTime(r.Config.Clock()))
	st.Phase = stashv1beta1.BackupSessionSkipped
	r.Events.Event(bs, corev1.EventTypeWarning, controller.ReasonBackupSkipped, msg)
	return ctrl.Result{}, r.setStatus(ctx, bs, *st)
}

// fail ends a session as Failed, blaming host, and stops its Job.
func (r *Reconciler) fail(ctx context.Context, bs *stashv1beta1.BackupSession, target stashv1beta1.TargetRef, host, msg string) (ctrl.Result, error) {
	st := status.MergeBackup(bs.Status, target, 1, []stashv1beta1.HostBackupStats{{Hostname: host, Phase: "Failed", Error: msg}})
	if st.Phase != stashv1beta1.BackupSessionFailed {
		st.Phase = stashv1beta1.BackupSessionFailed
	}
	if err := r.setStatus(ctx, bs, st); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.stopJob(ctx, bs); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: controller.Soon}, nil
}

// stopJob deletes a failed session's Job, pods and all, unless the Job
// has ended (its pods' logs then stay for whoever looks into the
// failure). Left alone, a step that could not start (Pending past the
// limit, ImagePullBackOff) would run once its cause cleared, beside the
// sessions that came next. The session is Failed first, so that a pass
// that finds the Job gone never blames its absence instead.
func (r *Reconciler) stopJob(ctx context.Context, bs *stashv1beta1.BackupSession) error {
	if isSidecarSession(bs) {
		return nil
	}
	job := &batchv1.Job{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: bs.Namespace, Name: plan.BackupJobName(bs.Name)}, job); err != nil {
		return client.IgnoreNotFound(err)
	}
	if jobstate.Ended(job) || !job.DeletionTimestamp.IsZero() {
		return nil
	}
	if err := r.Client.Delete(ctx, job, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
		r.Events.Event(bs, corev1.EventTypeWarning, controller.ReasonBackupFailed, fmt.Sprintf("delete backup Job %s of the failed session: %v", job.Name, err))
		return fmt.Errorf("delete backup Job %s/%s of the failed session: %w", job.Namespace, job.Name, err)
	}
	return nil
}

func (r *Reconciler) invoker(ctx context.Context, bs *stashv1beta1.BackupSession) (*stashv1beta1.BackupConfiguration, error) {
	bc := &stashv1beta1.BackupConfiguration{}
	err := r.Client.Get(ctx, client.ObjectKey{Namespace: bs.Namespace, Name: bs.Spec.Invoker.Name}, bc)
	return bc, err
}

func targetOf(bc *stashv1beta1.BackupConfiguration) (stashv1beta1.TargetRef, string) {
	if bc == nil || bc.Spec.Target == nil {
		return stashv1beta1.TargetRef{}, "host-0"
	}
	ref := bc.Spec.Target.Ref
	if ref.Namespace == "" {
		ref.Namespace = bc.Namespace
	}
	host := bc.Spec.Target.Alias
	if host == "" {
		host = "host-0"
	}
	return ref, host
}

// start decides whether a new session runs and, if so, creates its Job.
func (r *Reconciler) start(ctx context.Context, bs *stashv1beta1.BackupSession) (ctrl.Result, error) {
	if bs.Spec.Invoker.Kind != "" && bs.Spec.Invoker.Kind != "BackupConfiguration" {
		return r.skip(ctx, bs, "InvokerNotSupported", bs.Spec.Invoker.Kind+" invokers are not supported by this operator yet; use a BackupConfiguration")
	}
	// The invoker is read past the cache: what it is now, not what it
	// was, decides what this session may be granted.
	bc := &stashv1beta1.BackupConfiguration{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: bs.Namespace, Name: bs.Spec.Invoker.Name}, bc)
	if apierrors.IsNotFound(err) {
		return r.skip(ctx, bs, "InvokerNotFound", fmt.Sprintf("BackupConfiguration %s/%s does not exist.", bs.Namespace, bs.Spec.Invoker.Name))
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if bc.Status.ObservedGeneration != bc.Generation {
		// A spec the operator has not checked yet (a Repository just
		// changed, say) is never run: wait for the check, within reason.
		if r.Config.Clock().Sub(bs.CreationTimestamp.Time) < InvokerObserveWait {
			return ctrl.Result{RequeueAfter: 2 * time.Second}, nil
		}
		return r.skip(ctx, bs, "InvokerNotObserved", fmt.Sprintf("BackupConfiguration %s changed (generation %d) and the operator has not checked the change yet (observed %d).", bc.Name, bc.Generation, bc.Status.ObservedGeneration))
	}
	if bc.Status.Phase != stashv1beta1.InvokerReady {
		return r.skip(ctx, bs, "InvokerNotReady", fmt.Sprintf("BackupConfiguration %s is %q, not Ready: see its conditions.", bc.Name, orStr(string(bc.Status.Phase), "new")))
	}
	var list stashv1beta1.BackupSessionList
	if err := r.Client.List(ctx, &list, client.InNamespace(bs.Namespace)); err != nil {
		return ctrl.Result{}, err
	}
	for _, o := range list.Items {
		if o.Name != bs.Name && o.Spec.Invoker.Name == bc.Name && o.Status.Phase == stashv1beta1.BackupSessionRunning {
			return r.skip(ctx, bs, "SkippedTakingNewBackup", fmt.Sprintf("Skipped taking new backup: BackupSession %s of the same BackupConfiguration is still running.", o.Name))
		}
	}

	ref, host := targetOf(bc)
	repo, err := controller.LiveRepository(ctx, r.APIReader, bc.Namespace, bc.Spec.Repository)
	if err != nil {
		if errors.Is(err, controller.ErrNotAllowed) {
			r.Events.Event(bs, corev1.EventTypeWarning, controller.ReasonBackupJobCreationFailed, err.Error())
			return r.fail(ctx, bs, ref, host, err.Error())
		}
		return ctrl.Result{}, err
	}
	if bc.Spec.Task.Name == "" && sidecar.NewWorkload(ref.Kind) != nil {
		return r.startSidecar(ctx, bs, bc, repo)
	}
	lookup := kube.Lookup{Ctx: ctx, Reader: r.Client, Catalog: r.Config.Catalog}
	var ab *appcatalogv1alpha1.AppBinding
	if ref.Kind == "AppBinding" {
		ab, _ = lookup.AppBinding(ref.Namespace, ref.Name)
	}
	job, err := plan.BackupJob(plan.BackupRequest{Config: bc, AppBinding: ab, Session: bs.Name, Repository: repo, Catalog: lookup, Image: r.Config.Image})
	if err != nil {
		r.Events.Event(bs, corev1.EventTypeWarning, controller.ReasonBackupJobCreationFailed, err.Error())
		return r.fail(ctx, bs, ref, host, "resolve the backup Job: "+err.Error())
	}
	if ref.Kind == "PersistentVolumeClaim" {
		if err := controller.PinToClaimNode(ctx, r.APIReader, &job.Spec.Template.Spec, ref.Namespace, ref.Name); err != nil {
			if errors.Is(err, controller.ErrReadWriteOncePod) {
				r.Events.Event(bs, corev1.EventTypeWarning, controller.ReasonBackupJobCreationFailed, err.Error())
				return r.fail(ctx, bs, ref, host, err.Error())
			}
			return ctrl.Result{}, err
		}
	}
	sa := job.Spec.Template.Spec.ServiceAccountName
	access := rbac.Access{Invoker: bc.Name, Session: bs.Name, Secrets: controller.StepSecrets(bc.Namespace, repo, ab)}
	if repo.Namespace == bc.Namespace {
		access.Repository = repo.Name
	}
	if ab != nil && ab.Namespace == bc.Namespace {
		access.AppBinding = ab.Name
	}
	if err := rbac.Ensure(ctx, r.Client, bc, bc.Namespace, sa, rbac.BackupRules(access)); err != nil {
		return r.ensureFailed(ctx, bs, ref, host, err)
	}
	if err := rbac.EnsureHookBinding(ctx, r.Client, bc, bc.Namespace, sa, sa, rbac.BackupHooksNeed(bc.Spec.Hooks)); err != nil {
		return r.ensureFailed(ctx, bs, ref, host, err)
	}
	if repo.Namespace != bc.Namespace {
		if err := rbac.EnsureGrant(ctx, r.Client, rbac.OwnerOf("BackupConfiguration", bc), sa, repo.Namespace, repo.Name,
			rbac.RepositoryRules(repo.Name, repo.Spec.Backend.StorageSecretName)); err != nil {
			return r.ensureFailed(ctx, bs, ref, host, err)
		}
	}
	if err := controller.EnsureInterimClaim(ctx, r.Client, bs, bc.Spec.InterimVolumeTemplate); err != nil {
		if controller.Permanent(err) {
			// An interimVolumeTemplate the API server refuses: the same
			// claim will be refused again, so the session ends with why.
			r.Events.Event(bs, corev1.EventTypeWarning, controller.ReasonBackupJobCreationFailed, err.Error())
			return r.fail(ctx, bs, ref, host, "spec.interimVolumeTemplate: "+err.Error())
		}
		return ctrl.Result{}, err
	}
	job.OwnerReferences = nil
	if err := controllerutil.SetControllerReference(bs, job, r.Client.Scheme()); err != nil {
		return ctrl.Result{}, err
	}
	if err := r.Client.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
		r.Events.Event(bs, corev1.EventTypeWarning, controller.ReasonBackupJobCreationFailed, err.Error())
		if controller.Permanent(err) {
			// A quota on Jobs, an admission policy: retrying the same Job
			// cannot help; the session ends and the next one runs.
			return r.fail(ctx, bs, ref, host, fmt.Sprintf("create backup Job %s: %v", job.Name, err))
		}
		return ctrl.Result{}, fmt.Errorf("create Job %s/%s: %w", job.Namespace, job.Name, err)
	}
	r.Events.Event(bs, corev1.EventTypeNormal, controller.ReasonBackupJobCreated, "Created backup Job "+job.Name)

	now := metav1.NewTime(r.Config.Clock())
	st := bs.Status.DeepCopy()
	one := int32(1)
	st.Targets = []stashv1beta1.BackupTargetStatus{{
		Ref: ref, TotalHosts: &one, Phase: "Running",
		PreBackupActions:  []string{"InitializeBackendRepository"},
		PostBackupActions: []string{"ApplyRetentionPolicy", "VerifyRepositoryIntegrity", "SendRepositoryMetrics"},
		Conditions: []stashv1beta1.Condition{{Type: CondBackupExecutorEnsured, Status: metav1.ConditionTrue, Reason: "SuccessfullyEnsuredBackupExecutor",
			Message: "Backup Job " + job.Name + " created.", LastTransitionTime: now}},
	}}
	st.Phase = stashv1beta1.BackupSessionRunning
	d := metav1.NewTime(bs.CreationTimestamp.Add(r.Config.Timeout(bc.Spec.TimeOut)))
	st.SessionDeadline = &d
	if err := r.setStatus(ctx, bs, *st); err != nil {
		return ctrl.Result{}, err
	}
	r.Events.Event(bs, corev1.EventTypeNormal, controller.ReasonBackupRunning, "Backup is running.")
	return r.requeueForDeadline(bs), nil
}

// ensureFailed fails the session when the step's ServiceAccount, Role or
// grant cannot be made because an object of that name is not Stash's
// (retrying cannot help); other errors are retried.
func (r *Reconciler) ensureFailed(ctx context.Context, bs *stashv1beta1.BackupSession, ref stashv1beta1.TargetRef, host string, err error) (ctrl.Result, error) {
	if errors.Is(err, rbac.ErrNotManaged) {
		r.Events.Event(bs, corev1.EventTypeWarning, controller.ReasonBackupJobCreationFailed, err.Error())
		return r.fail(ctx, bs, ref, host, err.Error())
	}
	return ctrl.Result{}, err
}

func (r *Reconciler) requeueForDeadline(bs *stashv1beta1.BackupSession) ctrl.Result {
	// Jobs and pods we own wake us; the periodic look is a safety net.
	after := time.Minute
	if d := bs.Status.SessionDeadline; d != nil {
		if until := d.Sub(r.Config.Clock()); until < after {
			after = until + time.Second
		}
	}
	return ctrl.Result{RequeueAfter: after}
}

// track derives a running session's outcome from its Job.
func (r *Reconciler) track(ctx context.Context, bs *stashv1beta1.BackupSession) (ctrl.Result, error) {
	bc, err := r.invoker(ctx, bs)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	if apierrors.IsNotFound(err) {
		bc = nil
	}
	ref, host := targetOf(bc)
	if len(bs.Status.Targets) > 0 {
		ref = bs.Status.Targets[0].Ref
	}
	if isSidecarSession(bs) {
		return r.trackSidecar(ctx, bs)
	}
	name := plan.BackupJobName(bs.Name)
	if d := bs.Status.SessionDeadline; d != nil && !r.Config.Clock().Before(d.Time) {
		bs.Status.Conditions = status.SetCondition(bs.Status.Conditions, stashv1beta1.Condition{Type: CondDeadlineExceeded, Status: metav1.ConditionTrue, Reason: "FailedToCompleteWithinDeadline",
			Message: "Failed to complete backup within the deadline " + d.UTC().Format(time.RFC3339) + " (spec.timeOut, or the operator's --default-session-timeout)."}, metav1.NewTime(r.Config.Clock()))
		return r.fail(ctx, bs, ref, host, "timeOut exceeded: the backup did not finish before "+d.UTC().Format(time.RFC3339)+" (spec.timeOut, or the operator's --default-session-timeout)")
	}
	job := &batchv1.Job{}
	err = r.Client.Get(ctx, client.ObjectKey{Namespace: bs.Namespace, Name: name}, job)
	if apierrors.IsNotFound(err) {
		err = r.APIReader.Get(ctx, client.ObjectKey{Namespace: bs.Namespace, Name: name}, job)
	}
	if apierrors.IsNotFound(err) {
		return r.fail(ctx, bs, ref, host, "backup Job "+name+" is gone before it reported a result (deleted, or never created)")
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	state, msg, err := jobstate.Of(ctx, r.APIReader, job, r.Config.Clock(), r.Config.Limits())
	if err != nil {
		return ctrl.Result{}, err
	}
	switch state {
	case jobstate.Failed:
		return r.fail(ctx, bs, ref, host, msg)
	case jobstate.Complete:
		// update-status, the Job's last container, records the result. If
		// the session still looks Running, read it past the cache before
		// concluding that it never did.
		fresh := &stashv1beta1.BackupSession{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(bs), fresh); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		if fresh.Status.Phase != stashv1beta1.BackupSessionRunning {
			return ctrl.Result{RequeueAfter: controller.Soon}, nil
		}
		return r.fail(ctx, fresh, ref, host, "backup Job "+name+" completed without recording a result in the session")
	}
	return r.requeueForDeadline(bs), nil
}

// finish runs once per finished session: retry, history cleanup, events
// and metrics. The BackupHistoryCleaned condition marks it done.
func (r *Reconciler) finish(ctx context.Context, bs *stashv1beta1.BackupSession) (ctrl.Result, error) {
	if status.FindCondition(bs.Status.Conditions, CondHistoryCleaned) != nil {
		return ctrl.Result{}, nil
	}
	bc, err := r.invoker(ctx, bs)
	if err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	if apierrors.IsNotFound(err) {
		bc = nil
	}
	st := bs.Status.DeepCopy()
	now := r.Config.Clock()
	if st.SessionDuration == "" {
		st.SessionDuration = now.Sub(bs.CreationTimestamp.Time).Round(time.Second).String()
	}

	// Retry a failed session after retryConfig.delay.
	if bc != nil && st.Phase == stashv1beta1.BackupSessionFailed && bc.Spec.RetryConfig != nil && bs.Spec.RetryLeft > 0 {
		if st.NextRetry == nil {
			next := metav1.NewTime(now.Add(bc.Spec.RetryConfig.Delay.Duration))
			st.NextRetry = &next
			return ctrl.Result{RequeueAfter: bc.Spec.RetryConfig.Delay.Duration}, r.setStatus(ctx, bs, *st)
		}
		if now.Before(st.NextRetry.Time) {
			return ctrl.Result{RequeueAfter: st.NextRetry.Sub(now)}, nil
		}
		if st.Retried == nil || !*st.Retried {
			retry := plan.NewBackupSession(bc, st.NextRetry.Time, bs.Spec.RetryLeft-1)
			if err := r.Client.Create(ctx, retry); err != nil && !apierrors.IsAlreadyExists(err) {
				return ctrl.Result{}, fmt.Errorf("create retry BackupSession: %w", err)
			}
			t := true
			st.Retried = &t
		}
	}

	limit := int32(1)
	if bc != nil && bc.Spec.BackupHistoryLimit != nil {
		limit = *bc.Spec.BackupHistoryLimit
	}
	if err := r.cleanHistory(ctx, bs, limit); err != nil {
		st.Conditions = status.SetCondition(st.Conditions, stashv1beta1.Condition{Type: CondHistoryCleaned, Status: metav1.ConditionFalse, Reason: "FailedToCleanBackupHistory", Message: err.Error()}, metav1.NewTime(now))
	} else {
		st.Conditions = status.SetCondition(st.Conditions, stashv1beta1.Condition{Type: CondHistoryCleaned, Status: metav1.ConditionTrue, Reason: "SuccessfullyCleanedBackupHistory",
			Message: fmt.Sprintf("Kept the newest %d finished sessions.", limit)}, metav1.NewTime(now))
	}
	if r.Metrics != nil && st.Phase != stashv1beta1.BackupSessionSkipped {
		r.Metrics.BackupSession(bs.Namespace, bs.Spec.Invoker.Name, repositoryName(bc), *st, bs.CreationTimestamp.Time, now)
		st.Conditions = status.SetCondition(st.Conditions, stashv1beta1.Condition{Type: CondMetricsPushed, Status: metav1.ConditionTrue, Reason: "SuccessfullyPushedMetrics", Message: "Exported by the operator's /metrics."}, metav1.NewTime(now))
	}
	if bc != nil && st.Repository != nil {
		if err := r.recordRepository(ctx, bc, st.Repository); err != nil {
			return ctrl.Result{}, err
		}
	}
	switch st.Phase {
	case stashv1beta1.BackupSessionSucceeded:
		r.Events.Event(bs, corev1.EventTypeNormal, controller.ReasonBackupSucceeded, "Backup session completed successfully.")
	case stashv1beta1.BackupSessionFailed:
		r.Events.Event(bs, corev1.EventTypeWarning, controller.ReasonBackupFailed, "Backup session failed: "+firstError(*st))
	}
	return ctrl.Result{}, r.setStatus(ctx, bs, *st)
}

// recordRepository copies what a session's post-backup actions found
// into its Repository's status. The operator is that status's one writer:
// steps report to their session only, and need no access to the
// Repository's status. A report older than the Repository's last backup
// (sessions finishing out of order) changes nothing.
func (r *Reconciler) recordRepository(ctx context.Context, bc *stashv1beta1.BackupConfiguration, rep *stashv1beta1.RepositoryReport) error {
	key := client.ObjectKey{Namespace: bc.Spec.Repository.Namespace, Name: bc.Spec.Repository.Name}
	if key.Namespace == "" {
		key.Namespace = bc.Namespace
	}
	// spec.repository may have changed while the session ran, to a
	// Repository the invoker may not use (with no webhook to refuse the
	// change): its status is not this session's to write.
	if _, err := controller.LiveRepository(ctx, r.APIReader, bc.Namespace, bc.Spec.Repository); errors.Is(err, controller.ErrNotAllowed) {
		return nil
	}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		repo := &stashv1alpha1.Repository{}
		if err := r.Client.Get(ctx, key, repo); err != nil {
			return err
		}
		st := repo.Status.DeepCopy()
		if st.LastBackupTime != nil && rep.Time.Before(st.LastBackupTime) {
			return nil
		}
		t := rep.Time
		if st.FirstBackupTime == nil {
			st.FirstBackupTime = &t
		}
		st.LastBackupTime = &t
		st.Integrity = rep.Integrity
		st.TotalSize = rep.TotalSize
		st.SnapshotCount = rep.SnapshotCount
		st.SnapshotsRemovedOnLastCleanup = rep.SnapshotsRemovedOnLastCleanup
		if equality.Semantic.DeepEqual(repo.Status, *st) {
			return nil
		}
		repo.Status = *st
		return r.Client.Status().Update(ctx, repo)
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("record the state of Repository %s: %w", key, err)
	}
	return nil
}

func repositoryName(bc *stashv1beta1.BackupConfiguration) string {
	if bc == nil {
		return ""
	}
	return bc.Spec.Repository.Name
}

func firstError(st stashv1beta1.BackupSessionStatus) string {
	for _, t := range st.Targets {
		for _, s := range t.Stats {
			if s.Error != "" {
				return s.Error
			}
		}
	}
	for _, c := range st.Conditions {
		if c.Status == metav1.ConditionFalse || c.Type == CondDeadlineExceeded {
			return c.Message
		}
	}
	return "see the session's status"
}

// cleanHistory deletes the invoker's finished sessions beyond the newest
// limit (never the session being finished, never a running one). Their
// Jobs go with them through owner references.
func (r *Reconciler) cleanHistory(ctx context.Context, bs *stashv1beta1.BackupSession, limit int32) error {
	var list stashv1beta1.BackupSessionList
	if err := r.Client.List(ctx, &list, client.InNamespace(bs.Namespace)); err != nil {
		return err
	}
	var done []stashv1beta1.BackupSession
	for _, o := range list.Items {
		if o.Spec.Invoker.Name != bs.Spec.Invoker.Name || !o.DeletionTimestamp.IsZero() {
			continue
		}
		switch o.Status.Phase {
		case stashv1beta1.BackupSessionSucceeded, stashv1beta1.BackupSessionFailed, stashv1beta1.BackupSessionSkipped:
			done = append(done, o)
		}
	}
	sort.Slice(done, func(i, j int) bool {
		a, b := done[i].CreationTimestamp, done[j].CreationTimestamp
		if a.Equal(&b) {
			return done[i].Name > done[j].Name
		}
		return b.Before(&a)
	})
	// The newest real outcome (Succeeded or Failed) stays even when
	// Skipped sessions are newer, so the last backup's result is visible.
	lastOutcome := -1
	for i, o := range done {
		if lastOutcome < 0 && (o.Status.Phase == stashv1beta1.BackupSessionSucceeded || o.Status.Phase == stashv1beta1.BackupSessionFailed) {
			lastOutcome = i
		}
	}
	var errs []string
	for i, o := range done {
		if int32(i) < limit || o.Name == bs.Name || i == lastOutcome {
			continue
		}
		if err := r.Client.Delete(ctx, &done[i], client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("delete old sessions: %s", strings.Join(errs, "; "))
	}
	return nil
}

func orStr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
