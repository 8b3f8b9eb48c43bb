// Package grant sweeps the grants the operator made in other namespaces:
// the Roles and RoleBindings that let one namespace's step read a
// Repository shared from another. A grant lives only while its invoker
// exists, still uses that Repository, and the live Repository still allows
// the invoker's namespace; a RestoreSession's grant goes when it finishes.
// The sweep runs for every grant when the operator starts and whenever a
// BackupConfiguration, RestoreSession, Repository, Namespace or the grant
// itself changes. There is no finalizer: an operator outage never blocks a
// namespace's deletion, and the first sweep after it catches up.
package grant

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/controller/rbac"
	"github.com/stash-backup/stash/internal/validation"
)

// Resync is how often a kept grant is looked at again without an event.
const Resync = 10 * time.Minute

// Reconciler removes grants that are no longer allowed.
type Reconciler struct {
	// Client reads the operator's cache (grants) and deletes.
	Client client.Client
	// APIReader reads invokers, Repositories and Namespaces live, so a
	// revoked policy is never judged from a stale cache.
	APIReader client.Reader
}

// SetupWithManager registers the reconciler.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	ours := predicate.NewPredicateFuncs(func(o client.Object) bool { return o.GetLabels()[rbac.LabelManagedBy] == rbac.ManagedBy })
	return ctrl.NewControllerManagedBy(mgr).
		For(&rbacv1.Role{}, builder.WithPredicates(ours)).
		Watches(&rbacv1.RoleBinding{}, handler.EnqueueRequestsFromMapFunc(func(_ context.Context, o client.Object) []reconcile.Request {
			if o.GetLabels()[rbac.LabelManagedBy] != rbac.ManagedBy {
				return nil
			}
			return []reconcile.Request{{NamespacedName: client.ObjectKeyFromObject(o)}}
		})).
		// Only what can revoke a grant wakes the sweep: a spec change or
		// deletion of an invoker or Repository (not their status writes),
		// any change of a RestoreSession (it finishes in its status), a
		// Namespace's labels.
		Watches(&stashv1beta1.BackupConfiguration{}, handler.EnqueueRequestsFromMapFunc(r.byOwner("BackupConfiguration")), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&stashv1beta1.RestoreSession{}, handler.EnqueueRequestsFromMapFunc(r.byOwner("RestoreSession"))).
		Watches(&stashv1alpha1.Repository{}, handler.EnqueueRequestsFromMapFunc(r.byRepository), builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.byNamespace), builder.WithPredicates(predicate.LabelChangedPredicate{})).
		Named("grant").
		Complete(r)
}

func (r *Reconciler) grants(ctx context.Context, opts ...client.ListOption) []reconcile.Request {
	var roles rbacv1.RoleList
	if err := r.Client.List(ctx, &roles, append(opts, client.HasLabels{rbac.LabelGrantOwnerUID})...); err != nil {
		log.FromContext(ctx).Error(err, "list grants")
		return nil
	}
	out := make([]reconcile.Request, 0, len(roles.Items))
	for _, g := range roles.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&g)})
	}
	return out
}

func (r *Reconciler) byOwner(kind string) handler.MapFunc {
	return func(ctx context.Context, o client.Object) []reconcile.Request {
		return r.grants(ctx, client.MatchingLabels{rbac.LabelGrantOwnerKind: kind, rbac.LabelGrantOwnerNamespace: o.GetNamespace()})
	}
}

func (r *Reconciler) byRepository(ctx context.Context, o client.Object) []reconcile.Request {
	return r.grants(ctx, client.InNamespace(o.GetNamespace()))
}

func (r *Reconciler) byNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	return r.grants(ctx, client.MatchingLabels{rbac.LabelGrantOwnerNamespace: o.GetName()})
}

// Reconcile implements reconcile.Reconciler.
func (r *Reconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	role := &rbacv1.Role{}
	err := r.Client.Get(ctx, req.NamespacedName, role)
	if apierrors.IsNotFound(err) {
		// A binding whose Role is gone grants nothing, but it is ours
		// and half of a grant: remove it too.
		rb := &rbacv1.RoleBinding{}
		if err := r.Client.Get(ctx, req.NamespacedName, rb); err == nil && rb.Labels[rbac.LabelGrantOwnerUID] != "" {
			return ctrl.Result{}, rbac.RemoveGrant(ctx, r.Client, req.Namespace, req.Name)
		}
		return ctrl.Result{}, nil
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	if role.Labels[rbac.LabelGrantOwnerUID] == "" {
		return r.legacy(ctx, role)
	}
	keep, why, err := r.Keep(ctx, role)
	if err != nil {
		return ctrl.Result{}, err
	}
	if keep {
		return ctrl.Result{RequeueAfter: Resync}, nil
	}
	log.FromContext(ctx).Info("removing grant", "namespace", role.Namespace, "name", role.Name, "reason", why)
	return ctrl.Result{}, rbac.RemoveGrant(ctx, r.Client, role.Namespace, role.Name)
}

// legacy removes cross-namespace grants of earlier versions, which were
// named like a namespace's own step Role and carried no owner labels: a
// Role of ours whose binding names a ServiceAccount of another namespace.
// The next session of its invoker grants again under the new name, after
// checking the policy.
func (r *Reconciler) legacy(ctx context.Context, role *rbacv1.Role) (ctrl.Result, error) {
	rb := &rbacv1.RoleBinding{}
	if err := r.Client.Get(ctx, client.ObjectKeyFromObject(role), rb); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	for _, s := range rb.Subjects {
		if s.Namespace != "" && s.Namespace != role.Namespace {
			log.FromContext(ctx).Info("removing an unlabelled cross-namespace grant of an earlier version", "namespace", role.Namespace, "name", role.Name)
			return ctrl.Result{}, rbac.RemoveGrant(ctx, r.Client, role.Namespace, role.Name)
		}
	}
	return ctrl.Result{}, nil
}

// Keep says whether grant (a Role EnsureGrant made) is still allowed, and
// if not, why.
func (r *Reconciler) Keep(ctx context.Context, grant *rbacv1.Role) (bool, string, error) {
	kind := grant.Labels[rbac.LabelGrantOwnerKind]
	ns := grant.Labels[rbac.LabelGrantOwnerNamespace]
	uid := types.UID(grant.Labels[rbac.LabelGrantOwnerUID])
	name := grant.Annotations[rbac.AnnotationGrantOwnerName]
	repoName := grant.Annotations[rbac.AnnotationGrantRepository]
	key := client.ObjectKey{Namespace: ns, Name: name}
	var ref stashv1beta1.ObjectReference
	switch kind {
	case "BackupConfiguration":
		bc := &stashv1beta1.BackupConfiguration{}
		if err := r.APIReader.Get(ctx, key, bc); err != nil {
			return gone(err, kind, key)
		}
		if bc.UID != uid || !bc.DeletionTimestamp.IsZero() {
			return false, fmt.Sprintf("%s %s is gone", kind, key), nil
		}
		ref = bc.Spec.Repository
	case "RestoreSession":
		rs := &stashv1beta1.RestoreSession{}
		if err := r.APIReader.Get(ctx, key, rs); err != nil {
			return gone(err, kind, key)
		}
		if rs.UID != uid || !rs.DeletionTimestamp.IsZero() {
			return false, fmt.Sprintf("%s %s is gone", kind, key), nil
		}
		switch rs.Status.Phase {
		case stashv1beta1.RestoreSucceeded, stashv1beta1.RestoreFailed, stashv1beta1.RestoreInvalid:
			return false, fmt.Sprintf("%s %s has finished", kind, key), nil
		}
		ref = rs.Spec.Repository
	default:
		return false, fmt.Sprintf("unknown owner kind %q", kind), nil
	}
	if ref.Namespace == "" {
		ref.Namespace = ns
	}
	if ref.Namespace != grant.Namespace || ref.Name != repoName {
		return false, fmt.Sprintf("%s %s no longer uses Repository %s/%s", kind, key, grant.Namespace, repoName), nil
	}
	repo := &stashv1alpha1.Repository{}
	if err := r.APIReader.Get(ctx, client.ObjectKey{Namespace: grant.Namespace, Name: repoName}, repo); err != nil {
		return gone(err, "Repository", client.ObjectKey{Namespace: grant.Namespace, Name: repoName})
	}
	var labels map[string]string
	if validation.NeedsNamespaceLabels(repo) {
		n := &corev1.Namespace{}
		if err := r.APIReader.Get(ctx, client.ObjectKey{Name: ns}, n); err != nil {
			return gone(err, "Namespace", client.ObjectKey{Name: ns})
		}
		labels = n.Labels
	}
	if ok, why := validation.UsageAllowed(repo, ns, labels); !ok {
		return false, why, nil
	}
	return true, "", nil
}

func gone(err error, kind string, key client.ObjectKey) (bool, string, error) {
	if apierrors.IsNotFound(err) {
		return false, fmt.Sprintf("%s %s is gone", kind, key), nil
	}
	return false, "", fmt.Errorf("read %s %s: %w", kind, key, err)
}
