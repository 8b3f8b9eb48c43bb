// Package restoresession reconciles RestoreSessions of the job model: it
// validates them, creates the PVCs of volumeClaimTemplates and one restore
// Job per host from the planner, and derives the session's phase from the
// Jobs, so that no session stays Running after its Jobs are gone or failed.
package restoresession

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/controller"
	"github.com/stash-backup/stash/internal/controller/jobstate"
	"github.com/stash-backup/stash/internal/controller/rbac"
	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/metrics"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/sidecar"
	"github.com/stash-backup/stash/internal/status"
	"github.com/stash-backup/stash/internal/validation"
)

// Condition types of a RestoreSession (Stash's names).
const (
	CondRestoreTargetFound = "RestoreTargetFound"
	CondRestoreJobCreated  = "RestoreJobCreated"
	CondMetricsPushed      = "MetricsPushed"
	CondDeadlineExceeded   = "DeadlineExceeded"
	CondValidationPassed   = "ValidationPassed"
)

// Reconciler reconciles RestoreSessions.
type Reconciler struct {
	Client    client.Client
	APIReader client.Reader
	Config    controller.Config
	Events    record.EventRecorder
	Metrics   *metrics.Metrics
}

// SetupWithManager registers the reconciler.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&stashv1beta1.RestoreSession{}).
		Owns(&batchv1.Job{}).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(controller.SessionOfPod(mgr.GetClient(), "RestoreSession"))).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(sessionOfChannel)).
		Named("restoresession").
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	rs := &stashv1beta1.RestoreSession{}
	if err := r.Client.Get(ctx, req.NamespacedName, rs); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !rs.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	switch rs.Status.Phase {
	case stashv1beta1.RestoreSucceeded, stashv1beta1.RestoreFailed:
		return r.finish(ctx, rs)
	case stashv1beta1.RestoreInvalid:
		if status.FindCondition(rs.Status.Conditions, CondValidationPassed) != nil &&
			status.FindCondition(rs.Status.Conditions, CondValidationPassed).ObservedGeneration == rs.Generation {
			return ctrl.Result{}, nil
		}
	case stashv1beta1.RestoreRunning:
		if isInitSession(rs) {
			return r.trackInit(ctx, rs)
		}
		return r.track(ctx, rs)
	}
	return r.start(ctx, rs)
}

func (r *Reconciler) setStatus(ctx context.Context, rs *stashv1beta1.RestoreSession, st stashv1beta1.RestoreSessionStatus) error {
	// Written only when it changed: an unchanged write still costs the
	// API server a request and every watcher an event.
	if equality.Semantic.DeepEqual(rs.Status, st) {
		return nil
	}
	rs.Status = st
	if err := r.Client.Status().Update(ctx, rs); err != nil {
		return fmt.Errorf("update status of RestoreSession %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	return nil
}

func (r *Reconciler) cond(st *stashv1beta1.RestoreSessionStatus, gen int64, t string, ok bool, reason, msg string) {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	st.Conditions = status.SetCondition(st.Conditions, stashv1beta1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: gen}, metav1.NewTime(r.Config.Clock()))
}

func (r *Reconciler) start(ctx context.Context, rs *stashv1beta1.RestoreSession) (ctrl.Result, error) {
	// Read past the cache: an Invalid RestoreSession is final (nothing
	// watched re-validates it), so a Repository's usage policy granted a
	// moment ago must not be judged from a cache that has not seen it yet.
	lookup := kube.Lookup{Ctx: ctx, Reader: r.APIReader, Catalog: r.Config.Catalog}
	st := rs.Status.DeepCopy()
	errs := validation.RestoreSession(rs, lookup)
	var invalid, missing field.ErrorList
	for _, e := range errs {
		if e.Type == field.ErrorTypeNotFound {
			missing = append(missing, e)
		} else {
			invalid = append(invalid, e)
		}
	}
	if len(invalid) > 0 {
		r.cond(st, rs.Generation, CondValidationPassed, false, "ResourceValidationFailed", invalid.ToAggregate().Error())
		st.Phase = stashv1beta1.RestoreInvalid
		return ctrl.Result{}, r.setStatus(ctx, rs, *st)
	}
	if len(missing) > 0 {
		r.cond(st, rs.Generation, CondRestoreTargetFound, false, "ReferencesNotFound", missing.ToAggregate().Error())
		st.Phase = stashv1beta1.RestorePending
		if err := r.setStatus(ctx, rs, *st); err != nil {
			return ctrl.Result{}, err
		}
		return ctrl.Result{RequeueAfter: 15 * time.Second}, nil
	}
	if err := controller.UnverifiedSettings(ctx, r.APIReader, validation.PrivilegedRestore(rs)); err != nil {
		if !errors.Is(err, controller.ErrNotAllowed) {
			return ctrl.Result{}, err
		}
		r.cond(st, rs.Generation, CondValidationPassed, false, "ResourceValidationFailed", err.Error())
		st.Phase = stashv1beta1.RestoreInvalid
		return ctrl.Result{}, r.setStatus(ctx, rs, *st)
	}
	// Past the cache: a policy revoked a moment ago is never honoured.
	repo, err := controller.LiveRepository(ctx, r.APIReader, rs.Namespace, rs.Spec.Repository)
	if err != nil {
		if !errors.Is(err, controller.ErrNotAllowed) {
			return ctrl.Result{}, err
		}
		r.cond(st, rs.Generation, CondValidationPassed, false, "ResourceValidationFailed", err.Error())
		st.Phase = stashv1beta1.RestoreInvalid
		return ctrl.Result{}, r.setStatus(ctx, rs, *st)
	}
	if t := rs.Spec.Target; t != nil && rs.Spec.Task.Name == "" && sidecar.NewWorkload(t.Ref.Kind) != nil {
		return r.startInit(ctx, rs, st, repo)
	}
	var ab *appcatalogv1alpha1.AppBinding
	var ref stashv1beta1.TargetRef
	if t := rs.Spec.Target; t != nil {
		ref = t.Ref
		if ref.Namespace == "" {
			ref.Namespace = rs.Namespace
		}
		if ref.Kind == "AppBinding" {
			ab, _ = lookup.AppBinding(ref.Namespace, ref.Name)
		}
	}
	jobs, err := plan.RestoreJobs(plan.RestoreRequest{Session: rs, AppBinding: ab, Repository: repo, Catalog: lookup, Image: r.Config.Image})
	if err != nil {
		return r.jobFailed(ctx, rs, st, err)
	}
	if ref.Kind == "PersistentVolumeClaim" {
		for _, job := range jobs {
			if err := controller.PinToClaimNode(ctx, r.APIReader, &job.Spec.Template.Spec, ref.Namespace, ref.Name); err != nil {
				if errors.Is(err, controller.ErrReadWriteOncePod) {
					return r.jobFailed(ctx, rs, st, err)
				}
				return ctrl.Result{}, err
			}
		}
	}
	sa := jobs[0].Spec.Template.Spec.ServiceAccountName
	access := rbac.Access{Session: rs.Name, Secrets: controller.StepSecrets(rs.Namespace, repo, ab)}
	if repo.Namespace == rs.Namespace {
		access.Repository = repo.Name
	}
	if ab != nil && ab.Namespace == rs.Namespace {
		access.AppBinding = ab.Name
	}
	if err := rbac.Ensure(ctx, r.Client, rs, rs.Namespace, sa, rbac.RestoreRules(access)); err != nil {
		return r.ensureFailed(ctx, rs, st, err)
	}
	if err := rbac.EnsureHookBinding(ctx, r.Client, rs, rs.Namespace, sa, sa, rbac.RestoreHooksNeed(rs.Spec.Hooks)); err != nil {
		return r.ensureFailed(ctx, rs, st, err)
	}
	if repo.Namespace != rs.Namespace {
		if err := rbac.EnsureGrant(ctx, r.Client, rbac.OwnerOf("RestoreSession", rs), sa, repo.Namespace, repo.Name,
			rbac.RepositoryRules(repo.Name, repo.Spec.Backend.StorageSecretName)); err != nil {
			return r.ensureFailed(ctx, rs, st, err)
		}
	}
	if err := r.ensureClaims(ctx, rs, jobs); err != nil {
		return r.configFailed(ctx, rs, st, err)
	}
	// The Jobs mount it (one claim shared by the replicas' Jobs).
	if err := controller.EnsureInterimClaim(ctx, r.Client, rs, rs.Spec.InterimVolumeTemplate); err != nil {
		return r.configFailed(ctx, rs, st, fmt.Errorf("spec.interimVolumeTemplate: %w", err))
	}
	for _, job := range jobs {
		job.OwnerReferences = nil
		if err := controllerutil.SetControllerReference(rs, job, r.Client.Scheme()); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.Client.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
			if controller.Permanent(err) {
				return r.jobFailed(ctx, rs, st, err)
			}
			r.Events.Event(rs, corev1.EventTypeWarning, controller.ReasonRestoreJobFailed, err.Error())
			return ctrl.Result{}, fmt.Errorf("create Job %s/%s: %w", job.Namespace, job.Name, err)
		}
		r.Events.Event(rs, corev1.EventTypeNormal, controller.ReasonRestoreJobCreated, "Created restore Job "+job.Name)
	}
	n := int32(len(jobs))
	st.TotalHosts = &n
	st.Phase = stashv1beta1.RestoreRunning
	r.cond(st, rs.Generation, CondValidationPassed, true, "ResourceValidationPassed", "Validation has been passed successfully.")
	r.cond(st, rs.Generation, CondRestoreTargetFound, true, "TargetAvailable", "Restore target found.")
	r.cond(st, rs.Generation, CondRestoreJobCreated, true, "RestoreJobCreationSucceeded", fmt.Sprintf("Created %d restore Job(s).", n))
	d := metav1.NewTime(rs.CreationTimestamp.Add(r.Config.Timeout(rs.Spec.TimeOut)))
	st.SessionDeadline = &d
	if err := r.setStatus(ctx, rs, *st); err != nil {
		return ctrl.Result{}, err
	}
	return r.requeue(rs), nil
}

// ensureFailed fails the session when its ServiceAccount, Role or grant
// cannot be made because an object of that name is not Stash's (retrying
// cannot help); other errors are retried.
func (r *Reconciler) ensureFailed(ctx context.Context, rs *stashv1beta1.RestoreSession, st *stashv1beta1.RestoreSessionStatus, err error) (ctrl.Result, error) {
	if !errors.Is(err, rbac.ErrNotManaged) {
		return ctrl.Result{}, err
	}
	return r.jobFailed(ctx, rs, st, err)
}

// jobFailed ends the session: its Jobs cannot be made, and asking again
// would not help. The reason goes to an event and the RestoreJobCreated
// condition.
func (r *Reconciler) jobFailed(ctx context.Context, rs *stashv1beta1.RestoreSession, st *stashv1beta1.RestoreSessionStatus, err error) (ctrl.Result, error) {
	r.Events.Event(rs, corev1.EventTypeWarning, controller.ReasonRestoreJobFailed, err.Error())
	r.cond(st, rs.Generation, CondRestoreJobCreated, false, "RestoreJobCreationFailed", err.Error())
	st.Phase = stashv1beta1.RestoreFailed
	if err := r.setStatus(ctx, rs, *st); err != nil {
		return ctrl.Result{}, err
	}
	// The replicas' Jobs made before the one refused would restore on.
	if err := r.stopJobs(ctx, rs, nil); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: controller.Soon}, nil
}

// stopJobs deletes, pods and all, the Jobs of the failed hosts (all of
// the session's Jobs when hosts is nil) that have not ended: an ended
// Job's pods run no more, and their logs stay for whoever looks into the
// failure. Left alone, a step that could
// not start (Pending past the limit, ImagePullBackOff) would restore once
// its cause cleared: into a volume the user may be restoring again, and
// over the failure the session reported.
func (r *Reconciler) stopJobs(ctx context.Context, rs *stashv1beta1.RestoreSession, hosts map[string]bool) error {
	var jobs batchv1.JobList
	if err := r.APIReader.List(ctx, &jobs, client.InNamespace(rs.Namespace), client.MatchingLabels{plan.LabelInvokerName: plan.LabelValue(rs.Name), plan.LabelInvokerType: "RestoreSession"}); err != nil {
		return fmt.Errorf("list restore Jobs of RestoreSession %s/%s: %w", rs.Namespace, rs.Name, err)
	}
	for i := range jobs.Items {
		j := &jobs.Items[i]
		if !metav1.IsControlledBy(j, rs) || (hosts != nil && !hosts[j.Annotations[plan.AnnotationHostname]]) || !j.DeletionTimestamp.IsZero() || jobstate.Ended(j) {
			continue
		}
		if err := r.Client.Delete(ctx, j, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
			r.Events.Event(rs, corev1.EventTypeWarning, controller.ReasonRestoreFailed, fmt.Sprintf("delete restore Job %s of a failed host: %v", j.Name, err))
			return fmt.Errorf("delete restore Job %s/%s: %w", j.Namespace, j.Name, err)
		}
	}
	return nil
}

// errTemplate is a volumeClaimTemplate that cannot be resolved: a
// configuration error, which no retry mends.
var errTemplate = errors.New("invalid template")

// configFailed fails the session when err comes from its configuration
// (a template that does not resolve, a claim the API server refuses as
// invalid or forbidden): the same request would fail again. Other errors
// are retried.
func (r *Reconciler) configFailed(ctx context.Context, rs *stashv1beta1.RestoreSession, st *stashv1beta1.RestoreSessionStatus, err error) (ctrl.Result, error) {
	if !errors.Is(err, errTemplate) && !controller.Permanent(err) {
		return ctrl.Result{}, err
	}
	return r.jobFailed(ctx, rs, st, err)
}

// ensureClaims creates the PVCs of volumeClaimTemplates (one per replica,
// ${POD_ORDINAL} substituted in names) that the restore Jobs mount. They
// are not owned by the session: the restored data outlives it.
func (r *Reconciler) ensureClaims(ctx context.Context, rs *stashv1beta1.RestoreSession, jobs []*batchv1.Job) error {
	t := rs.Spec.Target
	if t == nil || len(t.VolumeClaimTemplates) == 0 {
		return nil
	}
	replicas := 1
	if t.Replicas != nil {
		replicas = int(*t.Replicas)
	}
	for ord := 0; ord < replicas; ord++ {
		vars := map[string]string{"POD_ORDINAL": strconv.Itoa(ord)}
		for _, tpl := range t.VolumeClaimTemplates {
			name, err := plan.Substitute(tpl.Name, vars)
			if err != nil {
				return fmt.Errorf("spec.target.volumeClaimTemplates %q: %w: %w", tpl.Name, errTemplate, err)
			}
			pvc := &corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: rs.Namespace, Labels: tpl.Labels, Annotations: tpl.Annotations},
				Spec:       *tpl.Spec.DeepCopy(),
			}
			if err := r.Client.Create(ctx, pvc); err != nil && !apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("spec.target.volumeClaimTemplates %q: create PVC %s/%s: %w", tpl.Name, rs.Namespace, name, err)
			}
			// The Task mounts ${TARGET_NAME}, which is the template's
			// name: point each Job at its own replica's claim.
			if ord < len(jobs) {
				for i, v := range jobs[ord].Spec.Template.Spec.Volumes {
					if c := v.PersistentVolumeClaim; c != nil && strings.Contains(c.ClaimName, "${") {
						if n, err := plan.Substitute(c.ClaimName, vars); err == nil {
							jobs[ord].Spec.Template.Spec.Volumes[i].PersistentVolumeClaim.ClaimName = n
						}
					}
				}
			}
		}
	}
	return nil
}

func (r *Reconciler) requeue(rs *stashv1beta1.RestoreSession) ctrl.Result {
	after := time.Minute
	if d := rs.Status.SessionDeadline; d != nil {
		if until := d.Sub(r.Config.Clock()); until < after {
			after = until + time.Second
		}
	}
	return ctrl.Result{RequeueAfter: after}
}

// fail marks hosts Failed with their reasons and stops their Jobs, and
// every Job of the session once it has ended.
func (r *Reconciler) fail(ctx context.Context, rs *stashv1beta1.RestoreSession, hosts map[string]string) (ctrl.Result, error) {
	var stats []stashv1beta1.HostRestoreStats
	failed := map[string]bool{}
	for h, msg := range hosts {
		stats = append(stats, stashv1beta1.HostRestoreStats{Hostname: h, Phase: "Failed", Error: msg})
		failed[h] = true
	}
	sortHosts(stats)
	st := status.MergeRestore(rs.Status, 0, stats)
	if err := r.setStatus(ctx, rs, st); err != nil {
		return ctrl.Result{}, err
	}
	if status.RestoreEnded(st.Phase) {
		failed = nil
	}
	if err := r.stopJobs(ctx, rs, failed); err != nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{RequeueAfter: controller.Soon}, nil
}

// restoreHosts are the hosts of a job-model session's Jobs. The status's
// host count was taken when the Jobs were made; should the spec say
// otherwise now, the count's host-<ordinal> names stand in.
func restoreHosts(rs *stashv1beta1.RestoreSession) []string {
	hosts := plan.RestoreHosts(rs)
	if n := rs.Status.TotalHosts; n != nil && int(*n) != len(hosts) {
		hosts = make([]string, 0, max(int(*n), 0))
		for i := range int(*n) {
			hosts = append(hosts, "host-"+strconv.Itoa(i))
		}
	}
	return hosts
}

// sortHosts orders stats by host name: a map's order would make each pass
// write a different status.
func sortHosts(stats []stashv1beta1.HostRestoreStats) {
	sort.Slice(stats, func(i, j int) bool { return stats[i].Hostname < stats[j].Hostname })
}

func (r *Reconciler) track(ctx context.Context, rs *stashv1beta1.RestoreSession) (ctrl.Result, error) {
	var jobs batchv1.JobList
	if err := r.APIReader.List(ctx, &jobs, client.InNamespace(rs.Namespace), client.MatchingLabels{plan.LabelInvokerName: plan.LabelValue(rs.Name), plan.LabelInvokerType: "RestoreSession"}); err != nil {
		return ctrl.Result{}, err
	}
	reported := map[string]bool{}
	for _, s := range rs.Status.Stats {
		reported[s.Hostname] = true
	}
	failed := map[string]string{}
	if d := rs.Status.SessionDeadline; d != nil && !r.Config.Clock().Before(d.Time) {
		for _, h := range restoreHosts(rs) {
			if !reported[h] {
				failed[h] = "timeOut exceeded: the restore did not finish before " + d.UTC().Format(time.RFC3339)
			}
		}
		// The condition fails the session whichever hosts reported.
		r.cond(&rs.Status, rs.Generation, CondDeadlineExceeded, true, "FailedToCompleteWithinDeadline", "Failed to complete restore within the deadline (spec.timeOut).")
		return r.fail(ctx, rs, failed)
	}
	// A host whose Job is gone before it reported never will. Each is
	// failed by its own name: blaming another host would overwrite that
	// host's real result, and leave the session Running to its deadline.
	withJob := map[string]bool{}
	for _, j := range jobs.Items {
		withJob[j.Annotations[plan.AnnotationHostname]] = true
	}
	for _, h := range restoreHosts(rs) {
		if !withJob[h] && !reported[h] {
			failed[h] = "the restore Job of host " + h + " is gone before it reported a result (deleted, or never created)"
		}
	}
	if len(failed) > 0 {
		return r.fail(ctx, rs, failed)
	}
	completedUnreported := false
	for i := range jobs.Items {
		j := &jobs.Items[i]
		h := j.Annotations[plan.AnnotationHostname]
		if reported[h] {
			continue
		}
		state, msg, err := jobstate.Of(ctx, r.APIReader, j, r.Config.Clock(), r.Config.Limits())
		if err != nil {
			return ctrl.Result{}, err
		}
		switch state {
		case jobstate.Failed:
			failed[h] = msg
		case jobstate.Complete:
			completedUnreported = true
		}
	}
	if completedUnreported {
		fresh := &stashv1beta1.RestoreSession{}
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(rs), fresh); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		got := map[string]bool{}
		for _, s := range fresh.Status.Stats {
			got[s.Hostname] = true
		}
		for i := range jobs.Items {
			j := &jobs.Items[i]
			h := j.Annotations[plan.AnnotationHostname]
			if got[h] {
				continue
			}
			if s, _ := jobstate.FromPods(j, nil, r.Config.Clock()); s == jobstate.Complete {
				failed[h] = "restore Job " + j.Name + " completed without recording a result in the session"
			}
		}
		rs = fresh
	}
	if len(failed) > 0 {
		return r.fail(ctx, rs, failed)
	}
	return r.requeue(rs), nil
}

func (r *Reconciler) finish(ctx context.Context, rs *stashv1beta1.RestoreSession) (ctrl.Result, error) {
	if status.FindCondition(rs.Status.Conditions, CondMetricsPushed) != nil {
		return ctrl.Result{}, nil
	}
	st := rs.Status.DeepCopy()
	now := r.Config.Clock()
	if st.SessionDuration == "" {
		st.SessionDuration = now.Sub(rs.CreationTimestamp.Time).Round(time.Second).String()
	}
	var ref stashv1beta1.TargetRef
	if rs.Spec.Target != nil {
		ref = rs.Spec.Target.Ref
	}
	if r.Metrics != nil {
		r.Metrics.RestoreSession(rs.Namespace, rs.Name, rs.Spec.Repository.Name, *st, rs.CreationTimestamp.Time, now, ref)
	}
	r.cond(st, rs.Generation, CondMetricsPushed, true, "SuccessfullyPushedMetrics", "Exported by the operator's /metrics.")
	if st.Phase == stashv1beta1.RestoreSucceeded {
		r.Events.Event(rs, corev1.EventTypeNormal, controller.ReasonRestoreSucceeded, "Restore session completed successfully.")
	} else {
		msg := "see the session's status"
		for _, s := range st.Stats {
			if s.Error != "" {
				msg = s.Error
				break
			}
		}
		r.Events.Event(rs, corev1.EventTypeWarning, controller.ReasonRestoreFailed, "Restore session failed: "+msg)
	}
	return ctrl.Result{}, r.setStatus(ctx, rs, *st)
}
