// Package repository reconciles Repositories: it validates their backend
// and Secret, exports their status as metrics, and carries out wipeOut
// through a finalizer: when a Repository with wipeOut is deleted, a Job
// deletes the backend data first. Without wipeOut, deleting a Repository
// never touches the data.
package repository

import (
	"context"
	"errors"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	"github.com/stash-backup/stash/internal/controller"
	"github.com/stash-backup/stash/internal/controller/jobstate"
	"github.com/stash-backup/stash/internal/controller/rbac"
	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/metrics"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/validation"
)

// Finalizer is Stash's finalizer name.
const Finalizer = "stash.appscode.com"

// WipeJobName is the name of the Job (and its ServiceAccount) that wipes
// a Repository's backend, within a Job name's limit: a Repository's name
// may be far longer than the 63 characters its pods' job-name label holds.
func WipeJobName(repo string) string {
	return plan.BoundedName("stash-wipeout-", repo, "", plan.MaxNameLength)
}

// Reconciler reconciles Repositories.
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
		For(&stashv1alpha1.Repository{}).
		Owns(&batchv1.Job{}).
		Named("repository").
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	repo := &stashv1alpha1.Repository{}
	if err := r.Client.Get(ctx, req.NamespacedName, repo); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !repo.DeletionTimestamp.IsZero() {
		return r.delete(ctx, repo)
	}
	// wipeOut is opt-in and may be withdrawn: the finalizer follows it.
	if repo.Spec.WipeOut != controllerutil.ContainsFinalizer(repo, Finalizer) {
		if repo.Spec.WipeOut {
			controllerutil.AddFinalizer(repo, Finalizer)
		} else {
			controllerutil.RemoveFinalizer(repo, Finalizer)
		}
		if err := r.Client.Update(ctx, repo); err != nil {
			return ctrl.Result{}, fmt.Errorf("update finalizers of Repository %s/%s: %w", repo.Namespace, repo.Name, err)
		}
	}
	if errs := validation.Repository(repo, kube.Lookup{Ctx: ctx, Reader: r.Client}); len(errs) > 0 {
		r.Events.Event(repo, corev1.EventTypeWarning, "Repository Invalid", errs.ToAggregate().Error())
	}
	if r.Metrics != nil {
		r.Metrics.Repository(repo)
	}
	if repo.Status.ObservedGeneration != repo.Generation {
		repo.Status.ObservedGeneration = repo.Generation
		if err := r.Client.Status().Update(ctx, repo); err != nil {
			return ctrl.Result{}, err
		}
	}
	return ctrl.Result{}, nil
}

// delete wipes the backend through a Job when the Repository asks for it,
// then lets the Repository go. A failed wipe keeps the finalizer (and the
// Job, for its logs): the data may still be there, and the user decides.
func (r *Reconciler) delete(ctx context.Context, repo *stashv1alpha1.Repository) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(repo, Finalizer) {
		return ctrl.Result{}, nil
	}
	name := WipeJobName(repo.Name)
	release := func() (ctrl.Result, error) {
		r.cleanup(ctx, repo.Namespace, name)
		controllerutil.RemoveFinalizer(repo, Finalizer)
		return ctrl.Result{}, client.IgnoreNotFound(r.Client.Update(ctx, repo))
	}
	if !repo.Spec.WipeOut {
		return release()
	}
	job := &batchv1.Job{}
	err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: repo.Namespace, Name: name}, job)
	if apierrors.IsNotFound(err) {
		// The wipe Job mounts a local backend's volume as root: one the
		// admission policy could not vouch for is never wiped.
		if err := controller.UnverifiedSettings(ctx, r.APIReader, validation.PrivilegedRepository(repo)); err != nil {
			if !errors.Is(err, controller.ErrNotAllowed) {
				return ctrl.Result{}, err
			}
			return r.wipeFailed(repo, err.Error())
		}
		if err := rbac.Ensure(ctx, r.Client, nil, repo.Namespace, name, rbac.RepositoryRules(repo.Name, repo.Spec.Backend.StorageSecretName)); err != nil {
			if errors.Is(err, rbac.ErrNotManaged) || controller.Permanent(err) {
				return r.wipeFailed(repo, fmt.Sprintf("make the wipe Job's ServiceAccount %s: %v", name, err))
			}
			return ctrl.Result{}, fmt.Errorf("make the wipe Job's ServiceAccount %s/%s: %w", repo.Namespace, name, err)
		}
		job = WipeJob(repo, r.Config.Image)
		if err := r.Client.Create(ctx, job); err != nil && !apierrors.IsAlreadyExists(err) {
			if controller.Permanent(err) {
				// An admission policy or quota refusing the Job refuses it
				// again: a failed wipe, with the same escape as a Job that
				// failed, rather than a retry for ever that keeps the
				// Repository, and its namespace, terminating.
				return r.wipeFailed(repo, fmt.Sprintf("create wipe Job %s: %v", name, err))
			}
			return ctrl.Result{}, fmt.Errorf("create wipe Job %s/%s: %w", repo.Namespace, name, err)
		}
		r.Events.Event(repo, corev1.EventTypeNormal, controller.ReasonRepositoryWipeOut, "Deleting the backend data (spec.wipeOut) with Job "+name)
		return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	state, msg, err := jobstate.Of(ctx, r.APIReader, job, r.Config.Clock(), r.Config.Limits())
	if err != nil {
		return ctrl.Result{}, err
	}
	switch state {
	case jobstate.Complete:
		r.Events.Event(repo, corev1.EventTypeNormal, controller.ReasonRepositoryWipeOut, "Backend data deleted.")
		return release()
	case jobstate.Failed:
		return r.wipeFailed(repo, msg)
	}
	return ctrl.Result{RequeueAfter: 10 * time.Second}, nil
}

// wipeFailed reports a wipe that did not happen and looks again later; the
// Repository stays, since its data may still be there, until the user
// withdraws wipeOut.
func (r *Reconciler) wipeFailed(repo *stashv1alpha1.Repository, msg string) (ctrl.Result, error) {
	r.Events.Event(repo, corev1.EventTypeWarning, controller.ReasonRepositoryWipeOutFailed,
		msg+" (the Repository stays until the data is deleted; set spec.wipeOut: false to delete it and keep the data)")
	return ctrl.Result{RequeueAfter: 5 * time.Minute}, nil
}

func (r *Reconciler) cleanup(ctx context.Context, ns, name string) {
	bg := client.PropagationPolicy(metav1.DeletePropagationBackground)
	for _, o := range []client.Object{
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}},
	} {
		_ = r.Client.Delete(ctx, o, bg)
	}
	rbac.Remove(ctx, r.Client, ns, name)
}

// WipeJob is the Job that deletes a Repository's backend data with
// `stash repo wipe`, reading the Repository and its Secret from the API.
func WipeJob(repo *stashv1alpha1.Repository, image plan.Image) *batchv1.Job {
	name := WipeJobName(repo.Name)
	c := corev1.Container{
		Name: "wipe", Image: image.String(), ImagePullPolicy: corev1.PullIfNotPresent,
		Args:                     []string{"repo", "wipe", "--yes", "--namespace=" + repo.Namespace, "--repository=" + repo.Name},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	pod := corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, ServiceAccountName: name, Containers: []corev1.Container{c}}
	if l := repo.Spec.Backend.Local; l != nil {
		// The repository directory is hostPath.path/subPath when the
		// backend is a hostPath (that is how `stash` resolves it), else
		// mountPath: mount the volume so that the same path exists here.
		m := corev1.VolumeMount{Name: plan.LocalBackendVolume, MountPath: l.MountPath, SubPath: l.SubPath}
		if l.HostPath != nil {
			m = corev1.VolumeMount{Name: plan.LocalBackendVolume, MountPath: l.HostPath.Path}
		}
		pod.Volumes = []corev1.Volume{{Name: plan.LocalBackendVolume, VolumeSource: l.VolumeSource}}
		pod.Containers[0].VolumeMounts = []corev1.VolumeMount{m}
		// PVC steps write a local backend as root: the wipe must be able
		// to delete what they wrote.
		root := int64(0)
		pod.SecurityContext = &corev1.PodSecurityContext{RunAsUser: &root, RunAsGroup: &root}
	}
	// Object-store backends need nothing of the node: the wipe meets the
	// restricted Pod Security Standard, as the steps do.
	plan.HardenPod(&pod)
	backoff := int32(1)
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: repo.Namespace, Labels: map[string]string{
			plan.LabelComponent: "stash-wipeout", plan.LabelManagedBy: plan.ManagedBy,
		}},
		Spec: batchv1.JobSpec{BackoffLimit: &backoff, Template: corev1.PodTemplateSpec{Spec: pod}},
	}
}
