// Package workload reconciles the workloads backed up by sidecar
// (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController):
// it adds the backup sidecar to the pod template of a workload that a
// BackupConfiguration targets without a Task, and the restore init
// container while a RestoreSession restores it, and removes them when
// their invoker goes; it keeps what the sidecar needs (its Role, bound to
// the workload's ServiceAccount; its channel ConfigMap; its Lease). The
// RestoreSession reconciler makes the init container's.
package workload

import (
	"context"
	"fmt"
	"strings"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/controller"
	"github.com/stash-backup/stash/internal/controller/rbac"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/sidecar"
)

// Reconciler reconciles the workloads of one kind.
type Reconciler struct {
	Client client.Client
	// APIReader reads workloads past the cache, which holds only those
	// the operator labelled.
	APIReader client.Reader
	Config    controller.Config
	Kind      string
}

// SetupWithManager registers the reconciler.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	byInvoker := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		bc, ok := o.(*stashv1beta1.BackupConfiguration)
		if !ok || bc.Spec.Target == nil || bc.Spec.Target.Ref.Kind != r.Kind {
			return nil
		}
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: bc.Namespace, Name: bc.Spec.Target.Ref.Name}}}
	})
	byRestore := handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
		rs, ok := o.(*stashv1beta1.RestoreSession)
		if !ok || rs.Spec.Target == nil || rs.Spec.Target.Ref.Kind != r.Kind {
			return nil
		}
		return []reconcile.Request{{NamespacedName: client.ObjectKey{Namespace: rs.Namespace, Name: rs.Spec.Target.Ref.Name}}}
	})
	byRepository := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		var list stashv1beta1.BackupConfigurationList
		if err := r.Client.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
			return nil
		}
		var out []reconcile.Request
		for _, bc := range list.Items {
			if bc.Spec.Repository.Name == o.GetName() && bc.Spec.Task.Name == "" && bc.Spec.Target != nil && bc.Spec.Target.Ref.Kind == r.Kind {
				out = append(out, reconcile.Request{NamespacedName: client.ObjectKey{Namespace: bc.Namespace, Name: bc.Spec.Target.Ref.Name}})
			}
		}
		return out
	})
	return ctrl.NewControllerManagedBy(mgr).
		For(sidecar.NewWorkload(r.Kind)).
		Watches(&stashv1beta1.BackupConfiguration{}, byInvoker).
		Watches(&stashv1beta1.RestoreSession{}, byRestore).
		Watches(&stashv1alpha1.Repository{}, byRepository).
		Named("workload-" + strings.ToLower(r.Kind)).
		Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := sidecar.NewWorkload(r.Kind)
	if err := r.APIReader.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, nil
	}
	changed, err := sidecar.Apply(ctx, r.Client, sidecar.Injection{Image: r.Config.Image, Resources: r.Config.SidecarResources}, obj)
	if err != nil {
		return ctrl.Result{}, err
	}
	if changed {
		if err := r.Client.Update(ctx, obj); err != nil {
			return ctrl.Result{}, fmt.Errorf("update %s %s/%s: %w", r.Kind, obj.GetNamespace(), obj.GetName(), err)
		}
	}
	bc, err := sidecar.Invoker(ctx, r.Client, r.Kind, obj.GetNamespace(), obj.GetName())
	if err != nil || bc == nil {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, r.ensureAccess(ctx, bc, obj)
}

// ensureAccess makes the sidecar's channel and Lease, and the Role that
// names them, bound to the workload's ServiceAccount. All are owned by the
// BackupConfiguration and go with it.
func (r *Reconciler) ensureAccess(ctx context.Context, bc *stashv1beta1.BackupConfiguration, obj client.Object) error {
	channel := plan.SidecarChannelName(bc.Name)
	lease := plan.SidecarLeaseName(r.Kind, obj.GetName())
	labels := map[string]string{
		rbac.LabelManagedBy: rbac.ManagedBy, plan.LabelInvokerType: "BackupConfiguration", plan.LabelInvokerName: plan.LabelValue(bc.Name),
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: channel, Namespace: bc.Namespace, Labels: labels}}
	if err := r.create(ctx, bc, cm); err != nil {
		return err
	}
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: lease, Namespace: bc.Namespace, Labels: labels}}
	if err := r.create(ctx, bc, l); err != nil {
		return err
	}
	sa := sidecar.Template(obj).Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	// The sidecar runs exec hooks in its own pod (pods/exec); HTTP and
	// TCP hooks reach the application on the pod's loopback.
	hooks := rbac.HookAccess{Exec: rbac.BackupHooksNeed(bc.Spec.Hooks).Exec}
	if err := rbac.EnsureBinding(ctx, r.Client, bc, bc.Namespace, plan.SidecarRoleName(bc.Name), sa, rbac.SidecarRules(channel, lease)); err != nil {
		return err
	}
	return rbac.EnsureHookBinding(ctx, r.Client, bc, bc.Namespace, plan.SidecarRoleName(bc.Name), sa, hooks)
}

// create makes o, owned by bc, unless it exists. An object of that name
// that is not Stash's is reported, never adopted.
func (r *Reconciler) create(ctx context.Context, bc *stashv1beta1.BackupConfiguration, o client.Object) error {
	if err := controllerutil.SetControllerReference(bc, o, r.Client.Scheme()); err != nil {
		return err
	}
	err := r.Client.Create(ctx, o)
	if !apierrors.IsAlreadyExists(err) {
		return err
	}
	existing := o.DeepCopyObject().(client.Object)
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(o), existing); err != nil {
		return err
	}
	if existing.GetLabels()[rbac.LabelManagedBy] != rbac.ManagedBy {
		return fmt.Errorf("%T %s/%s %w", o, o.GetNamespace(), o.GetName(), rbac.ErrNotManaged)
	}
	return nil
}
