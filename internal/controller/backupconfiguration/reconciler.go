// Package backupconfiguration reconciles BackupConfigurations: it checks
// their references, keeps Stash's conditions and phase, and owns the
// trigger CronJob that creates a BackupSession on schedule.
package backupconfiguration

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/controller"
	"github.com/stash-backup/stash/internal/controller/jobstate"
	"github.com/stash-backup/stash/internal/controller/rbac"
	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/sidecar"
	"github.com/stash-backup/stash/internal/status"
	"github.com/stash-backup/stash/internal/validation"
)

// Condition types of a BackupConfiguration (Stash's names).
const (
	CondRepositoryFound    = "RepositoryFound"
	CondBackendSecretFound = "BackendSecretFound"
	CondBackupTargetFound  = "BackupTargetFound"
	CondCronJobCreated     = "CronJobCreated"
	CondValidationPassed   = "ValidationPassed"
	// CondStashSidecarInjected says whether the target workload's pod
	// template holds the backup sidecar (sidecar model only).
	CondStashSidecarInjected = "StashSidecarInjected"
	// CondTriggerSucceeded says whether the trigger CronJob's last run
	// created its BackupSession: a trigger that cannot (its pod refused,
	// its ServiceAccount lacking rights) shows here, not only in a Job.
	CondTriggerSucceeded = "TriggerSucceeded"
)

// Finalizer is the finalizer earlier versions put on invokers; it is
// removed where found.
const Finalizer = "stash.appscode.com"

// TriggerJobDeadline bounds a trigger Job's life (activeDeadlineSeconds).
// The CronJob forbids concurrent runs, so a trigger pod that never
// finishes (Pending, ImagePullBackOff) would skip every later schedule;
// creating a BackupSession takes seconds, and a few minutes leave room for
// a slow image pull and the Job's retries.
const TriggerJobDeadline = 5 * time.Minute

// TriggerName is the name of a BackupConfiguration's trigger CronJob and
// of its ServiceAccount, within the CronJob name limit (plan.TriggerName).
func TriggerName(bc string) string { return plan.TriggerName(bc) }

// Reconciler reconciles BackupConfigurations.
type Reconciler struct {
	Client client.Client
	// APIReader reads the trigger Jobs' pods past the cache (the
	// operator caches no pods).
	APIReader client.Reader
	Config    controller.Config
	Events    record.EventRecorder
}

// SetupWithManager registers the reconciler.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	// A Repository's usagePolicy or a Namespace's labels decide whether a
	// BackupConfiguration of another namespace may use it: look again when
	// either changes, so a revoked policy turns it Invalid at once.
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &stashv1beta1.BackupConfiguration{}, IndexRepository, func(o client.Object) []string {
		bc := o.(*stashv1beta1.BackupConfiguration)
		return []string{repositoryKey(bc)}
	}); err != nil {
		return fmt.Errorf("index BackupConfigurations by Repository: %w", err)
	}
	byRepository := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.requests(ctx, client.MatchingFields{IndexRepository: o.GetNamespace() + "/" + o.GetName()})
	})
	byTriggerJob := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		l := o.GetLabels()
		if l[plan.LabelComponent] != "stash-trigger" || l[plan.LabelInvokerName] == "" {
			return nil
		}
		// The label holds a bounded form of the name (long names are
		// hashed), so match it against the namespace's invokers.
		var out []reconcile.Request
		for _, req := range r.requests(ctx, client.InNamespace(o.GetNamespace())) {
			if plan.LabelValue(req.Name) == l[plan.LabelInvokerName] {
				out = append(out, req)
			}
		}
		return out
	})
	byNamespace := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.requests(ctx, client.InNamespace(o.GetName()))
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(&stashv1beta1.BackupConfiguration{}).
		Owns(&batchv1.CronJob{}).
		Watches(&stashv1alpha1.Repository{}, byRepository).
		Watches(&batchv1.Job{}, byTriggerJob).
		Watches(&corev1.Namespace{}, byNamespace, builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Named("backupconfiguration").
		Complete(r)
}

// IndexRepository indexes BackupConfigurations by the namespace/name of
// their Repository.
const IndexRepository = "spec.repository"

func repositoryKey(bc *stashv1beta1.BackupConfiguration) string {
	ns := bc.Spec.Repository.Namespace
	if ns == "" {
		ns = bc.Namespace
	}
	return ns + "/" + bc.Spec.Repository.Name
}

func (r *Reconciler) requests(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	var list stashv1beta1.BackupConfigurationList
	if err := r.Client.List(ctx, &list, opts...); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for _, bc := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&bc)})
	}
	return out
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	bc := &stashv1beta1.BackupConfiguration{}
	if err := r.Client.Get(ctx, req.NamespacedName, bc); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	repoNS := bc.Spec.Repository.Namespace
	if repoNS == "" {
		repoNS = bc.Namespace
	}
	// Earlier versions kept a finalizer to remove grants in a shared
	// Repository's namespace; the grant sweeper (internal/controller/grant)
	// does that now without blocking deletion, so the finalizer goes.
	if controllerutil.ContainsFinalizer(bc, Finalizer) {
		controllerutil.RemoveFinalizer(bc, Finalizer)
		if err := r.Client.Update(ctx, bc); err != nil {
			return ctrl.Result{}, client.IgnoreNotFound(err)
		}
		return ctrl.Result{RequeueAfter: controller.Soon}, nil
	}
	if !bc.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	lookup := kube.Lookup{Ctx: ctx, Reader: r.Client, Catalog: r.Config.Catalog}
	st := bc.Status.DeepCopy()
	now := metav1.NewTime(r.Config.Clock())
	set := func(t string, ok bool, reason, msg string) {
		s := metav1.ConditionFalse
		if ok {
			s = metav1.ConditionTrue
		}
		st.Conditions = status.SetCondition(st.Conditions, stashv1beta1.Condition{Type: t, Status: s, Reason: reason, Message: msg, ObservedGeneration: bc.Generation}, now)
	}

	repo, repoFound := lookup.Repository(repoNS, bc.Spec.Repository.Name)
	set(CondRepositoryFound, repoFound, pick(repoFound, "RepositoryAvailable", "RepositoryNotAvailable"),
		pick(repoFound, "Repository "+repoNS+"/"+bc.Spec.Repository.Name+" exists.", "Repository "+repoNS+"/"+bc.Spec.Repository.Name+" does not exist."))
	secretFound := false
	if repoFound {
		_, secretFound = lookup.SecretData(repo.Namespace, repo.Spec.Backend.StorageSecretName)
		set(CondBackendSecretFound, secretFound, pick(secretFound, "BackendSecretAvailable", "BackendSecretNotAvailable"),
			pick(secretFound, "Secret "+repo.Namespace+"/"+repo.Spec.Backend.StorageSecretName+" exists.", "Secret "+repo.Namespace+"/"+repo.Spec.Backend.StorageSecretName+" does not exist."))
	}
	targetFound, targetMsg := r.targetExists(ctx, bc)
	set(CondBackupTargetFound, targetFound, pick(targetFound, "TargetAvailable", "TargetNotAvailable"), targetMsg)

	errs := validation.BackupConfiguration(bc, lookup)
	var invalid field.ErrorList
	for _, e := range errs {
		if e.Type != field.ErrorTypeNotFound {
			invalid = append(invalid, e)
		}
	}
	if t := bc.Spec.Target; t != nil && bc.Spec.Task.Name == "" && validation.IsWorkload(t.Ref.Kind) && sidecar.NewWorkload(t.Ref.Kind) == nil {
		invalid = append(invalid, field.Invalid(field.NewPath("spec", "target", "ref", "kind"), t.Ref.Kind,
			"a "+t.Ref.Kind+" cannot be backed up by sidecar here: use Deployment, StatefulSet, DaemonSet, ReplicaSet or ReplicationController"))
	}
	if t := bc.Spec.Target; t != nil && bc.Spec.Task.Name == "" && sidecar.NewWorkload(t.Ref.Kind) != nil && targetFound {
		if other, err := sidecar.Invoker(ctx, r.Client, t.Ref.Kind, bc.Namespace, t.Ref.Name); err == nil && other != nil && other.Name != bc.Name {
			invalid = append(invalid, field.Duplicate(field.NewPath("spec", "target", "ref"),
				"BackupConfiguration "+other.Name+" already backs up "+t.Ref.Kind+" "+t.Ref.Name+" by sidecar: a workload has one backup sidecar; back up all its paths in one BackupConfiguration"))
		}
	}
	privileged := validation.PrivilegedBackup(bc)
	if repoFound {
		privileged = append(privileged, validation.PrivilegedRepository(repo)...)
	}
	if err := controller.UnverifiedSettings(ctx, r.apiReader(), privileged); err != nil {
		if !errors.Is(err, controller.ErrNotAllowed) {
			return ctrl.Result{}, err
		}
		invalid = append(invalid, field.Forbidden(field.NewPath("spec"), err.Error()))
	}
	switch {
	case len(invalid) > 0:
		set(CondValidationPassed, false, "ResourceValidationFailed", invalid.ToAggregate().Error())
	case len(errs) > 0:
		set(CondValidationPassed, false, "ReferencesNotFound", errs.ToAggregate().Error())
	default:
		set(CondValidationPassed, true, "ResourceValidationPassed", "Validation has been passed successfully.")
	}

	var requeue time.Duration
	switch {
	case len(invalid) > 0:
		st.Phase = stashv1beta1.InvokerInvalid
	case !repoFound || !secretFound || !targetFound || len(errs) > 0:
		st.Phase = stashv1beta1.InvokerNotReady
		// References may appear later; look again without waiting for
		// an event on an object this controller does not watch.
		requeue = 15 * time.Second
	default:
		if err := r.ensureCronJob(ctx, bc); err != nil {
			set(CondCronJobCreated, false, "CronJobCreationFailed", err.Error())
			r.Events.Event(bc, corev1.EventTypeWarning, controller.ReasonCronJobCreationFailed, err.Error())
			st.Phase = stashv1beta1.InvokerNotReady
			requeue = 10 * time.Second
		} else {
			set(CondCronJobCreated, true, "CronJobCreationSucceeded", "Successfully created backup triggering CronJob.")
			st.Phase = stashv1beta1.InvokerReady
		}
		if t := bc.Spec.Target; bc.Spec.Task.Name == "" && sidecar.NewWorkload(t.Ref.Kind) != nil {
			if !r.sidecarInjected(ctx, bc, set) {
				// The workload controller adds it; look again soon.
				requeue = 5 * time.Second
			}
		}
	}
	if st.Phase == stashv1beta1.InvokerReady && strings.TrimSpace(bc.Spec.Schedule) != "" {
		if err := r.triggerCondition(ctx, bc, set); err != nil {
			return ctrl.Result{}, err
		}
	}
	st.ObservedGeneration = bc.Generation
	if !equalStatus(bc.Status, *st) {
		bc.Status = *st
		if err := r.Client.Status().Update(ctx, bc); err != nil {
			return ctrl.Result{}, fmt.Errorf("update status of BackupConfiguration %s/%s: %w", bc.Namespace, bc.Name, err)
		}
	}
	return ctrl.Result{RequeueAfter: requeue}, nil
}

func equalStatus(a, b stashv1beta1.BackupConfigurationStatus) bool {
	if a.Phase != b.Phase || a.ObservedGeneration != b.ObservedGeneration || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message || x.ObservedGeneration != y.ObservedGeneration {
			return false
		}
	}
	return true
}

func pick[T any](c bool, a, b T) T {
	if c {
		return a
	}
	return b
}

// targetExists says whether the object the BackupConfiguration backs up
// exists.
func (r *Reconciler) targetExists(ctx context.Context, bc *stashv1beta1.BackupConfiguration) (bool, string) {
	t := bc.Spec.Target
	if t == nil {
		return false, "spec.target is not set."
	}
	ns := t.Ref.Namespace
	if ns == "" {
		ns = bc.Namespace
	}
	var obj client.Object
	reader := client.Reader(r.Client)
	switch t.Ref.Kind {
	case "AppBinding":
		obj = &appcatalogv1alpha1.AppBinding{}
	case "PersistentVolumeClaim":
		obj = &corev1.PersistentVolumeClaim{}
	default:
		if obj = sidecar.NewWorkload(t.Ref.Kind); obj == nil {
			// Other kinds are checked by validation.
			return true, fmt.Sprintf("%s %s/%s", t.Ref.Kind, ns, t.Ref.Name)
		}
		// The cache holds only workloads that have the sidecar already.
		reader = r.apiReader()
	}
	if err := reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: t.Ref.Name}, obj); err != nil {
		return false, fmt.Sprintf("%s %s/%s does not exist.", t.Ref.Kind, ns, t.Ref.Name)
	}
	return true, fmt.Sprintf("%s %s/%s exists.", t.Ref.Kind, ns, t.Ref.Name)
}

// sidecarInjected sets CondStashSidecarInjected from the target
// workload's pod template and reports it.
func (r *Reconciler) sidecarInjected(ctx context.Context, bc *stashv1beta1.BackupConfiguration, set func(t string, ok bool, reason, msg string)) bool {
	t := bc.Spec.Target
	obj := sidecar.NewWorkload(t.Ref.Kind)
	if err := r.apiReader().Get(ctx, client.ObjectKey{Namespace: bc.Namespace, Name: t.Ref.Name}, obj); err != nil {
		set(CondStashSidecarInjected, false, "SidecarInjectionFailed", err.Error())
		return false
	}
	if tpl := sidecar.Template(obj); tpl != nil && plan.HasSidecar(tpl) {
		set(CondStashSidecarInjected, true, "SidecarInjectionSucceeded", "The backup sidecar is in the pod template of "+t.Ref.Kind+" "+t.Ref.Name+".")
		return true
	}
	set(CondStashSidecarInjected, false, "SidecarNotInjectedYet", "The operator is adding the backup sidecar to the pod template of "+t.Ref.Kind+" "+t.Ref.Name+".")
	return false
}

func (r *Reconciler) apiReader() client.Reader {
	if r.APIReader != nil {
		return r.APIReader
	}
	return r.Client
}

// triggerCondition sets CondTriggerSucceeded from the newest Job of the
// trigger CronJob, when there is one.
func (r *Reconciler) triggerCondition(ctx context.Context, bc *stashv1beta1.BackupConfiguration, set func(t string, ok bool, reason, msg string)) error {
	var jobs batchv1.JobList
	if err := r.Client.List(ctx, &jobs, client.InNamespace(bc.Namespace), client.MatchingLabels{plan.LabelComponent: "stash-trigger", plan.LabelInvokerName: plan.LabelValue(bc.Name)}); err != nil {
		return fmt.Errorf("list trigger Jobs of BackupConfiguration %s/%s: %w", bc.Namespace, bc.Name, err)
	}
	var last *batchv1.Job
	for i := range jobs.Items {
		if j := &jobs.Items[i]; last == nil || last.CreationTimestamp.Before(&j.CreationTimestamp) {
			last = j
		}
	}
	if last == nil {
		return nil
	}
	state, msg, err := jobstate.Of(ctx, r.apiReader(), last, r.Config.Clock(), r.Config.Limits())
	if err != nil {
		return err
	}
	switch state {
	case jobstate.Complete:
		set(CondTriggerSucceeded, true, "BackupSessionCreated", "The trigger Job "+last.Name+" created a BackupSession.")
	case jobstate.Failed:
		m := "The trigger Job " + last.Name + " could not create a BackupSession: " + msg
		set(CondTriggerSucceeded, false, "TriggerFailed", m)
		r.Events.Event(bc, corev1.EventTypeWarning, controller.ReasonBackupTriggerFailed, m)
	}
	return nil
}

// ensureCronJob creates or updates the trigger CronJob (or removes it when
// the BackupConfiguration has no schedule).
func (r *Reconciler) ensureCronJob(ctx context.Context, bc *stashv1beta1.BackupConfiguration) error {
	name := TriggerName(bc.Name)
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: bc.Namespace}}
	if strings.TrimSpace(bc.Spec.Schedule) == "" {
		return client.IgnoreNotFound(r.Client.Delete(ctx, cj))
	}
	if err := rbac.Ensure(ctx, r.Client, bc, bc.Namespace, name, rbac.TriggerRules(bc.Name)); err != nil {
		return err
	}
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, cj, func() error {
		labels := map[string]string{
			plan.LabelInvokerType: "BackupConfiguration", plan.LabelInvokerName: plan.LabelValue(bc.Name),
			plan.LabelComponent: "stash-trigger", plan.LabelManagedBy: plan.ManagedBy,
		}
		cj.Labels = labels
		cj.Spec.Schedule = bc.Spec.Schedule
		cj.Spec.Suspend = &bc.Spec.Paused
		cj.Spec.ConcurrencyPolicy = batchv1.ForbidConcurrent
		cj.Spec.SuccessfulJobsHistoryLimit = ptr(int32(1))
		cj.Spec.FailedJobsHistoryLimit = ptr(int32(1))
		jt := &cj.Spec.JobTemplate
		jt.Labels = map[string]string{"stash.appscode.com/delete-job-on-completion": "true"}
		for k, v := range labels {
			jt.Labels[k] = v
		}
		jt.Spec.BackoffLimit = ptr(int32(3))
		jt.Spec.ActiveDeadlineSeconds = ptr(int64(TriggerJobDeadline.Seconds()))
		jt.Spec.TTLSecondsAfterFinished = ptr(int32(300))
		pod := &jt.Spec.Template
		pod.Labels = labels
		pod.Spec.ServiceAccountName = name
		pod.Spec.RestartPolicy = corev1.RestartPolicyNever
		c := corev1.Container{
			Name:            "stash-trigger",
			Image:           r.Config.Image.String(),
			ImagePullPolicy: corev1.PullIfNotPresent,
			Args: []string{"create-backupsession", "--invoker-kind=BackupConfiguration",
				"--invoker-name=" + bc.Name, "--namespace=" + bc.Namespace},
			TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		}
		if rs := bc.Spec.RuntimeSettings.Container; rs != nil {
			c.Resources = rs.Resources
			c.SecurityContext = rs.SecurityContext
		}
		spec := corev1.PodSpec{Containers: []corev1.Container{c}}
		if rs := bc.Spec.RuntimeSettings.Pod; rs != nil {
			spec.SecurityContext = rs.SecurityContext
		}
		plan.HardenPod(&spec)
		c = spec.Containers[0]
		if len(pod.Spec.Containers) == 1 {
			// Keep fields the API server defaulted so the update is a no-op
			// when nothing of ours changed.
			old := pod.Spec.Containers[0]
			old.Name, old.Image, old.Args, old.ImagePullPolicy = c.Name, c.Image, c.Args, c.ImagePullPolicy
			old.Resources, old.SecurityContext, old.TerminationMessagePolicy = c.Resources, c.SecurityContext, c.TerminationMessagePolicy
			old.Env, old.VolumeMounts = c.Env, c.VolumeMounts
			c = old
		}
		pod.Spec.Containers = []corev1.Container{c}
		pod.Spec.Volumes = spec.Volumes
		pod.Spec.SecurityContext = spec.SecurityContext
		return controllerutil.SetControllerReference(bc, cj, r.Client.Scheme())
	})
	if err != nil {
		return fmt.Errorf("CronJob %s/%s: %w", bc.Namespace, name, err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }
