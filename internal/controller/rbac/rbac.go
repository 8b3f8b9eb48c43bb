// Package rbac creates the least-privilege ServiceAccounts, Roles and
// RoleBindings that the operator's Jobs and CronJobs run with, and the
// grants that let a step read a Repository shared from another namespace.
//
// Every rule names its objects (resourceNames) except where Kubernetes
// cannot (create). The operator only ever updates or deletes objects that
// carry its managed-by label, so a name it chooses can never take over a
// user's own Role, RoleBinding or ServiceAccount.
package rbac

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

const (
	stashGroup      = "stash.appscode.com"
	appcatalogGroup = "appcatalog.appscode.com"
)

// Labels and annotations of the objects this package makes.
const (
	// LabelManagedBy marks every object the operator made; it touches
	// no other.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedBy is LabelManagedBy's value.
	ManagedBy = "stash.appscode.com"
	// LabelGrantOwnerKind, LabelGrantOwnerNamespace and LabelGrantOwnerUID
	// name the invoker a grant in another namespace was made for.
	LabelGrantOwnerKind      = "stash.appscode.com/grant-owner-kind"
	LabelGrantOwnerNamespace = "stash.appscode.com/grant-owner-namespace"
	LabelGrantOwnerUID       = "stash.appscode.com/grant-owner-uid"
	// AnnotationGrantOwnerName is the invoker's name (names may exceed a
	// label value's 63 characters).
	AnnotationGrantOwnerName = "stash.appscode.com/grant-owner-name"
	// AnnotationGrantRepository is the Repository a grant opens.
	AnnotationGrantRepository = "stash.appscode.com/grant-repository"
)

// ErrNotManaged is returned when an object of the name the operator would
// use exists and is not the operator's.
var ErrNotManaged = errors.New("exists and is not managed by Stash")

// Access is what one step Job reads and writes: every name here becomes a
// resourceNames entry. Empty names are left out.
type Access struct {
	// Invoker is the BackupConfiguration (backup) the step reads.
	Invoker string
	// Session is the BackupSession or RestoreSession whose status the
	// step writes.
	Session string
	// Repository is the Repository of the step's namespace, when it is
	// there (a shared one is reached through a grant).
	Repository string
	// AppBinding is the target AppBinding.
	AppBinding string
	// Secrets are the Secrets of the step's namespace it reads: the
	// storage Secret (own-namespace Repository), the AppBinding's
	// credentials, TLS and transform Secrets.
	Secrets []string
}

// HookAccess is what hooks need in a cluster. Pods cannot be named ahead
// (a Deployment's pods get new names), so these grants cover the
// namespace's pods: they are made (EnsureHookBinding) only for invokers
// whose hooks need them.
type HookAccess struct {
	// Pods: find the target's pod (an exec hook's, or the host of an HTTP
	// or TCP hook that names none).
	Pods bool
	// Exec: run an exec hook in it (pods/exec).
	Exec bool
}

// BackupHooksNeed says what a BackupConfiguration's hooks need.
func BackupHooksNeed(h *stashv1beta1.BackupHooks) HookAccess {
	if h == nil {
		return HookAccess{}
	}
	var post *stashv1beta1.Handler
	if h.PostBackup != nil {
		post = &h.PostBackup.Handler
	}
	return HooksNeed(h.PreBackup, post)
}

// RestoreHooksNeed says what a RestoreSession's hooks need.
func RestoreHooksNeed(h *stashv1beta1.RestoreHooks) HookAccess {
	if h == nil {
		return HookAccess{}
	}
	var post *stashv1beta1.Handler
	if h.PostRestore != nil {
		post = &h.PostRestore.Handler
	}
	return HooksNeed(h.PreRestore, post)
}

// HooksNeed says what a set of hooks needs of the target's pod.
func HooksNeed(handlers ...*stashv1beta1.Handler) HookAccess {
	var a HookAccess
	for _, h := range handlers {
		if h == nil {
			continue
		}
		switch {
		case h.Exec != nil:
			a.Pods, a.Exec = true, true
		case h.HTTPGet != nil && h.HTTPGet.Host == "", h.HTTPPost != nil && h.HTTPPost.Host == "", h.TCPSocket != nil && h.TCPSocket.Host == "":
			a.Pods = true
		}
	}
	return a
}

// The ClusterRoles the chart ships for hooks. The operator may bind them
// (it holds "bind" on these two names) but does not hold their
// permissions: it never needs to exec into a pod itself.
const (
	// HookExecClusterRole: pods get/list, pods/exec create/get, services
	// get.
	HookExecClusterRole = "stash-hook-exec"
	// HookPodsClusterRole: pods get/list, services get.
	HookPodsClusterRole = "stash-hook-pods"
)

// EnsureHookBinding binds ServiceAccount sa of namespace to the hook
// ClusterRole a HookAccess needs, in that namespace only (a RoleBinding
// named name+"-hooks", owned by owner), or removes the binding when the
// hooks need none. A ClusterRole bound by a RoleBinding grants nothing
// outside the binding's namespace.
func EnsureHookBinding(ctx context.Context, c client.Client, owner client.Object, namespace, name, sa string, h HookAccess) error {
	bname := BoundedHookName(name)
	role := ""
	switch {
	case h.Exec:
		role = HookExecClusterRole
	case h.Pods:
		role = HookPodsClusterRole
	}
	if role == "" {
		return deleteManaged(ctx, c, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: bname, Namespace: namespace}})
	}
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: bname, Namespace: namespace}}
	err := createOrUpdate(ctx, c, rb, func() error {
		if rb.RoleRef.Name != "" && rb.RoleRef.Name != role {
			return errRoleRefChanged
		}
		rb.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role}
		rb.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: namespace}}
		return setOwner(owner, rb, c.Scheme())
	})
	if errors.Is(err, errRoleRefChanged) {
		// roleRef is immutable: the hooks changed kind; make it anew.
		_ = deleteManaged(ctx, c, rb)
		return fmt.Errorf("RoleBinding %s/%s is being replaced for a changed hook", namespace, bname)
	}
	return err
}

var errRoleRefChanged = errors.New("roleRef changed")

// BoundedHookName is the name of the hook RoleBinding of a step Role.
func BoundedHookName(name string) string {
	if len(name) > 63-len("-hooks") {
		sum := sha256.Sum256([]byte(name))
		name = name[:63-len("-hooks")-11] + "-" + hex.EncodeToString(sum[:])[:10]
	}
	return name + "-hooks"
}

func rule(group, resource string, names []string, verbs ...string) (rbacv1.PolicyRule, bool) {
	var n []string
	for _, x := range names {
		if x != "" {
			n = append(n, x)
		}
	}
	sort.Strings(n)
	n = dedupe(n)
	if len(n) == 0 {
		return rbacv1.PolicyRule{}, false
	}
	return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, ResourceNames: n, Verbs: verbs}, true
}

func dedupe(s []string) []string {
	out := s[:0]
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

func rules(rs ...func() (rbacv1.PolicyRule, bool)) []rbacv1.PolicyRule {
	var out []rbacv1.PolicyRule
	for _, f := range rs {
		if r, ok := f(); ok {
			out = append(out, r)
		}
	}
	return out
}

var events = rbacv1.PolicyRule{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create", "patch"}}

// BackupRules are what a backup Job's steps need: read the invoker, the
// AppBinding and their Secrets, the Repository when it is local, and write
// their own session's status and the Repository's.
func BackupRules(a Access) []rbacv1.PolicyRule {
	return append(rules(
		func() (rbacv1.PolicyRule, bool) {
			return rule(stashGroup, "backupconfigurations", []string{a.Invoker}, "get")
		},
		func() (rbacv1.PolicyRule, bool) {
			return rule(stashGroup, "backupsessions", []string{a.Session}, "get")
		},
		func() (rbacv1.PolicyRule, bool) {
			return rule(stashGroup, "backupsessions/status", []string{a.Session}, "get", "update", "patch")
		},
		func() (rbacv1.PolicyRule, bool) {
			return rule(stashGroup, "repositories", []string{a.Repository}, "get")
		},
		func() (rbacv1.PolicyRule, bool) {
			return rule(appcatalogGroup, "appbindings", []string{a.AppBinding}, "get")
		},
		func() (rbacv1.PolicyRule, bool) { return rule("", "secrets", a.Secrets, "get") },
	), events)
}

// RestoreRules are what a restore Job's steps need.
func RestoreRules(a Access) []rbacv1.PolicyRule {
	return append(rules(
		func() (rbacv1.PolicyRule, bool) {
			return rule(stashGroup, "restoresessions", []string{a.Session}, "get")
		},
		func() (rbacv1.PolicyRule, bool) {
			return rule(stashGroup, "restoresessions/status", []string{a.Session}, "get", "update", "patch")
		},
		func() (rbacv1.PolicyRule, bool) {
			return rule(stashGroup, "repositories", []string{a.Repository}, "get")
		},
		func() (rbacv1.PolicyRule, bool) {
			return rule(appcatalogGroup, "appbindings", []string{a.AppBinding}, "get")
		},
		func() (rbacv1.PolicyRule, bool) { return rule("", "secrets", a.Secrets, "get") },
	), events)
}

// TriggerRules are what the trigger CronJob needs to start a session:
// read its BackupConfiguration and create sessions (create cannot be
// limited to names in Kubernetes).
func TriggerRules(bc string) []rbacv1.PolicyRule {
	r, _ := rule(stashGroup, "backupconfigurations", []string{bc}, "get")
	return []rbacv1.PolicyRule{r,
		{APIGroups: []string{stashGroup}, Resources: []string{"backupsessions"}, Verbs: []string{"create"}},
		events,
	}
}

// SidecarRules are what a workload's backup sidecar needs, granted to the
// workload's ServiceAccount: its channel ConfigMap (read the session,
// write its host's result) and the Lease its pods take turns on, by name.
// No session, Repository or Secret: the operator copies results into the
// session, and the Secret reaches the sidecar as a volume.
func SidecarRules(channel, lease string) []rbacv1.PolicyRule {
	return append(rules(
		func() (rbacv1.PolicyRule, bool) {
			return rule("", "configmaps", []string{channel}, "get", "list", "watch", "update", "patch")
		},
		func() (rbacv1.PolicyRule, bool) {
			return rule("coordination.k8s.io", "leases", []string{lease}, "get", "update", "patch")
		},
	), events)
}

// RepositoryRules let a ServiceAccount read one Repository and its storage
// Secret: a grant in the Repository's namespace, or the wipe Job's Role.
// The Repository's status is the operator's to write; steps report to
// their session.
func RepositoryRules(repo, secret string) []rbacv1.PolicyRule {
	return rules(
		func() (rbacv1.PolicyRule, bool) { return rule(stashGroup, "repositories", []string{repo}, "get") },
		func() (rbacv1.PolicyRule, bool) { return rule("", "secrets", []string{secret}, "get") },
	)
}

// Ensure creates or updates ServiceAccount name in namespace, a Role of
// the same name with rules, and the RoleBinding between them, all owned by
// owner (when not nil) so that they go when it goes. An existing object of
// that name that is not the operator's is left alone and reported.
func Ensure(ctx context.Context, c client.Client, owner client.Object, namespace, name string, rules []rbacv1.PolicyRule) error {
	scheme := c.Scheme()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if err := createOrUpdate(ctx, c, sa, func() error { return setOwner(owner, sa, scheme) }); err != nil {
		return err
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if err := createOrUpdate(ctx, c, role, func() error {
		role.Rules = rules
		return setOwner(owner, role, scheme)
	}); err != nil {
		return err
	}
	return ensureBinding(ctx, c, namespace, name, name, namespace, func(rb *rbacv1.RoleBinding) error { return setOwner(owner, rb, scheme) })
}

// EnsureBinding creates or updates a Role name in namespace with rules,
// bound to an existing ServiceAccount sa (a workload's, which the operator
// neither makes nor changes), both owned by owner.
func EnsureBinding(ctx context.Context, c client.Client, owner client.Object, namespace, name, sa string, rules []rbacv1.PolicyRule) error {
	scheme := c.Scheme()
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	if err := createOrUpdate(ctx, c, role, func() error {
		role.Rules = rules
		return setOwner(owner, role, scheme)
	}); err != nil {
		return err
	}
	return ensureBinding(ctx, c, namespace, name, sa, namespace, func(rb *rbacv1.RoleBinding) error { return setOwner(owner, rb, scheme) })
}

// Owner is the invoker a grant in another namespace is made for.
type Owner struct {
	Kind, Namespace, Name string
	UID                   types.UID
}

// OwnerOf returns the grant owner of a BackupConfiguration or RestoreSession.
func OwnerOf(kind string, o client.Object) Owner {
	return Owner{Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName(), UID: o.GetUID()}
}

var nonName = regexp.MustCompile(`[^a-z0-9-]+`)

// GrantName is the name of the Role and RoleBinding that open a Repository
// in another namespace to owner's step ServiceAccount. It starts with
// "stash-grant-", which no name the operator gives in a namespace's own
// objects does, and ends with a hash of the owner's namespace, kind and
// name, so that grants of different owners never share a name.
func GrantName(o Owner) string {
	sum := sha256.Sum256([]byte(o.Namespace + "/" + o.Kind + "/" + o.Name))
	h := hex.EncodeToString(sum[:])[:10]
	readable := nonName.ReplaceAllString(strings.ToLower(o.Namespace+"-"+o.Name), "-")
	const max = 63 - len("stash-grant-") - 1 - 10
	if len(readable) > max {
		readable = readable[:max]
	}
	return "stash-grant-" + strings.Trim(readable, "-") + "-" + h
}

// EnsureGrant creates or updates, in repoNamespace, a Role with rules and a
// RoleBinding of it to ServiceAccount sa of owner's namespace. It carries
// labels naming the owner, so that the sweeper (Sweep) removes it when the
// owner goes or the Repository stops allowing its namespace; it has no
// owner reference (they cannot cross namespaces) and no finalizer (an
// operator outage must never block a namespace's deletion).
func EnsureGrant(ctx context.Context, c client.Client, o Owner, sa, repoNamespace, repo string, rules []rbacv1.PolicyRule) error {
	name := GrantName(o)
	mark := func(obj client.Object) {
		l := obj.GetLabels()
		if l == nil {
			l = map[string]string{}
		}
		l[LabelGrantOwnerKind], l[LabelGrantOwnerNamespace], l[LabelGrantOwnerUID] = o.Kind, o.Namespace, string(o.UID)
		obj.SetLabels(l)
		a := obj.GetAnnotations()
		if a == nil {
			a = map[string]string{}
		}
		a[AnnotationGrantOwnerName], a[AnnotationGrantRepository] = o.Name, repo
		obj.SetAnnotations(a)
	}
	role := &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: repoNamespace}}
	if err := createOrUpdate(ctx, c, role, func() error {
		mark(role)
		role.Rules = rules
		return nil
	}); err != nil {
		return err
	}
	return ensureBinding(ctx, c, repoNamespace, name, sa, o.Namespace, func(rb *rbacv1.RoleBinding) error {
		mark(rb)
		return nil
	})
}

func ensureBinding(ctx context.Context, c client.Client, namespace, name, sa, saNamespace string, mutate func(*rbacv1.RoleBinding) error) error {
	rb := &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}}
	err := createOrUpdate(ctx, c, rb, func() error {
		rb.RoleRef = rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}
		rb.Subjects = []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: sa, Namespace: saNamespace}}
		return mutate(rb)
	})
	if err != nil && apierrors.IsInvalid(err) {
		// roleRef is immutable: replace a binding of ours made for
		// another role; the next reconcile creates it anew.
		_ = c.Delete(ctx, rb, client.Preconditions{UID: &rb.UID})
	}
	return err
}

// createOrUpdate is controllerutil.CreateOrUpdate that refuses to adopt an
// object the operator did not make.
func createOrUpdate(ctx context.Context, c client.Client, o client.Object, mutate func() error) error {
	kind := fmt.Sprintf("%T", o)
	kind = kind[strings.LastIndex(kind, ".")+1:]
	_, err := controllerutil.CreateOrUpdate(ctx, c, o, func() error {
		if o.GetResourceVersion() != "" && o.GetLabels()[LabelManagedBy] != ManagedBy {
			return fmt.Errorf("%w: rename or delete it, Stash needs the name", ErrNotManaged)
		}
		setLabels(o)
		return mutate()
	})
	if apierrors.IsAlreadyExists(err) {
		// The cache holds only the operator's own objects: a create that
		// finds one is a user's object of that name.
		err = fmt.Errorf("%w: rename or delete it, Stash needs the name", ErrNotManaged)
	}
	if err != nil {
		return fmt.Errorf("%s %s/%s: %w", kind, o.GetNamespace(), o.GetName(), err)
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
// namespace (those Ensure made without an owner), if they are the
// operator's.
func Remove(ctx context.Context, c client.Client, namespace, name string) {
	meta := metav1.ObjectMeta{Name: name, Namespace: namespace}
	for _, o := range []client.Object{&rbacv1.RoleBinding{ObjectMeta: meta}, &rbacv1.Role{ObjectMeta: meta}, &corev1.ServiceAccount{ObjectMeta: meta}} {
		_ = deleteManaged(ctx, c, o)
	}
}

// deleteManaged deletes o if it carries the operator's label; the UID
// precondition keeps a look-then-delete race from removing an object that
// replaced it.
func deleteManaged(ctx context.Context, c client.Client, o client.Object) error {
	if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
		return client.IgnoreNotFound(err)
	}
	if o.GetLabels()[LabelManagedBy] != ManagedBy {
		return nil
	}
	uid := o.GetUID()
	return client.IgnoreNotFound(c.Delete(ctx, o, client.Preconditions{UID: &uid}))
}

// RemoveGrant deletes the grant (Role and RoleBinding) named name in
// namespace, if it is the operator's.
func RemoveGrant(ctx context.Context, c client.Client, namespace, name string) error {
	meta := metav1.ObjectMeta{Name: name, Namespace: namespace}
	var errs []error
	for _, o := range []client.Object{&rbacv1.RoleBinding{ObjectMeta: meta}, &rbacv1.Role{ObjectMeta: meta}} {
		if err := deleteManaged(ctx, c, o); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func setLabels(o client.Object) {
	l := o.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	l[LabelManagedBy] = ManagedBy
	o.SetLabels(l)
}
