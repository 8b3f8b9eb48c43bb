// Package rbac creates the least-privilege ServiceAccounts, Roles and
// RoleBindings that the operator's Jobs and CronJobs run with.
package rbac

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
)

const (
	stashGroup      = "stash.appscode.com"
	appcatalogGroup = "appcatalog.appscode.com"
)

// BackupRules are what a backup Job's steps need: read the AppBinding and
// Secrets, read the invoker and Repository, write session and Repository
// status, emit events.
func BackupRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{stashGroup}, Resources: []string{"backupconfigurations", "backupsessions", "repositories", "functions", "tasks"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{stashGroup}, Resources: []string{"backupsessions/status", "repositories/status"}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{appcatalogGroup}, Resources: []string{"appbindings"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
}

// RestoreRules are what a restore Job's steps need.
func RestoreRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{stashGroup}, Resources: []string{"restoresessions", "repositories", "functions", "tasks"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{stashGroup}, Resources: []string{"restoresessions/status"}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{appcatalogGroup}, Resources: []string{"appbindings"}, Verbs: []string{"get", "list"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
}

// TriggerRules are what the trigger CronJob needs to start a session.
func TriggerRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{stashGroup}, Resources: []string{"backupconfigurations"}, Verbs: []string{"get"}},
		{APIGroups: []string{stashGroup}, Resources: []string{"backupsessions"}, Verbs: []string{"create", "get"}},
		{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}},
	}
}

// RepositoryReadRules let a ServiceAccount of another namespace read a
// Repository and its Secret (a Repository shared through usagePolicy).
func RepositoryReadRules() []rbacv1.PolicyRule {
	return []rbacv1.PolicyRule{
		{APIGroups: []string{stashGroup}, Resources: []string{"repositories"}, Verbs: []string{"get"}},
		{APIGroups: []string{stashGroup}, Resources: []string{"repositories/status"}, Verbs: []string{"get", "update", "patch"}},
		{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}},
	}
}

// Ensure creates or updates ServiceAccount name in namespace, a Role of
// the same name with rules, and the RoleBinding between them, all owned by
// owner (when not nil) so that they go when it goes. roleNamespace, when different from
// namespace, puts the Role and RoleBinding there (cross-namespace
// Repository); then they are not owned, since owners cannot cross
// namespaces, and are labelled for cleanup instead.
func Ensure(ctx context.Context, c client.Client, owner client.Object, namespace, roleNamespace, name string, rules []rbacv1.PolicyRule) error {
	scheme := c.Scheme()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if _, err := controllerutil.CreateOrUpdate(ctx, c, sa, func() error {
		setLabels(sa)
		return setOwner(owner, sa, scheme)
	}); err != nil {
		return fmt.Errorf("ServiceAccount %s/%s: %w", namespace, name, err)
	}
	if roleNamespace == "" {
		roleNamespace = namespace
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: roleNamespace}}
	if _, err := controllerutil.CreateOrUpdate(ctx, c, role, func() error {
		setLabels(role)
		role.Rules = rules
		if roleNamespace == namespace {
			return setOwner(owner, role, scheme)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("Role %s/%s: %w", roleNamespace, name, err)
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: roleNamespace}}
	if _, err := controllerutil.CreateOrUpdate(ctx, c, rb, func() error {
		setLabels(rb)
		rb.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}
		rb.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: namespace}}
		if roleNamespace == namespace {
			return setOwner(owner, rb, scheme)
		}
		return nil
	}); err != nil {
		if apierrors.IsInvalid(err) {
			// roleRef is immutable: replace a binding made for another role.
			_ = c.Delete(ctx, rb)
		}
		return fmt.Errorf("RoleBinding %s/%s: %w", roleNamespace, name, err)
	}
	return nil
}

// setOwner makes owner (when there is one) an owner of o.
func setOwner(owner, o client.Object, scheme *runtime.Scheme) error {
	if owner == nil {
		return nil
	}
	return controllerutil.SetOwnerReference(owner, o, scheme)
}

// Remove deletes the ServiceAccount, Role and RoleBinding named name in
// namespace (those Ensure made without an owner).
func Remove(ctx context.Context, c client.Client, namespace, name string) {
	meta := metav1.ObjectMeta{Name: name, Namespace: namespace}
	for _, o := range []client.Object{&rbacv1.RoleBinding{ObjectMeta: meta}, &rbacv1.Role{ObjectMeta: meta}, &corev1.ServiceAccount{ObjectMeta: meta}} {
		_ = c.Delete(ctx, o)
	}
}

func setLabels(o client.Object) {
	l := o.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l["app.kubernetes.io/managed-by"] = "stash.appscode.com"
	o.SetLabels(l)
}
