package grant

import (
	"context"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/controller/rbac"
	"github.com/stash-backup/stash/internal/kube"
)

// TestKeep: a grant in a shared Repository's namespace stays while its
// invoker exists (the same object, by UID), still uses that Repository,
// has not finished (a RestoreSession), and the Repository still allows
// the invoker's namespace; otherwise it goes, with the reason.
func TestKeep(t *testing.T) {
	all := stashv1alpha1.NamespacesFromAll
	same := stashv1alpha1.NamespacesFromSame
	repo := func(from *stashv1alpha1.FromNamespaces) *stashv1alpha1.Repository {
		return &stashv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "backups"},
			Spec: stashv1alpha1.RepositorySpec{UsagePolicy: &stashv1alpha1.UsagePolicy{AllowedNamespaces: stashv1alpha1.AllowedNamespaces{From: from}}}}
	}
	bc := func(uid, repoName string) *stashv1beta1.BackupConfiguration {
		return &stashv1beta1.BackupConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "app", UID: types.UID("uid-" + uid)},
			Spec: stashv1beta1.BackupConfigurationSpec{Repository: stashv1beta1.ObjectReference{Name: repoName, Namespace: "backups"}}}
	}
	rs := func(phase stashv1beta1.RestorePhase) *stashv1beta1.RestoreSession {
		return &stashv1beta1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "once", Namespace: "app", UID: "uid-1"},
			Spec:   stashv1beta1.RestoreSessionSpec{Repository: stashv1beta1.ObjectReference{Name: "shared", Namespace: "backups"}},
			Status: stashv1beta1.RestoreSessionStatus{Phase: phase}}
	}
	grant := func(kind, owner, uid string) *rbacv1.Role {
		return &rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Name: "stash-grant-x", Namespace: "backups",
			Labels:      map[string]string{rbac.LabelGrantOwnerKind: kind, rbac.LabelGrantOwnerNamespace: "app", rbac.LabelGrantOwnerUID: uid},
			Annotations: map[string]string{rbac.AnnotationGrantOwnerName: owner, rbac.AnnotationGrantRepository: "shared"}}}
	}
	for _, tc := range []struct {
		name  string
		objs  []client.Object
		grant *rbacv1.Role
		keep  bool
		why   string
	}{
		{"allowed", []client.Object{repo(&all), bc("1", "shared")}, grant("BackupConfiguration", "nightly", "uid-1"), true, ""},
		{"invoker gone", []client.Object{repo(&all)}, grant("BackupConfiguration", "nightly", "uid-1"), false, "is gone"},
		{"invoker recreated", []client.Object{repo(&all), bc("1", "shared")}, grant("BackupConfiguration", "nightly", "uid-0"), false, "is gone"},
		{"another repository now", []client.Object{repo(&all), bc("1", "other")}, grant("BackupConfiguration", "nightly", "uid-1"), false, "no longer uses"},
		{"policy revoked", []client.Object{repo(&same), bc("1", "shared")}, grant("BackupConfiguration", "nightly", "uid-1"), false, ""},
		{"repository gone", []client.Object{bc("1", "shared")}, grant("BackupConfiguration", "nightly", "uid-1"), false, "is gone"},
		{"restore running", []client.Object{repo(&all), rs(stashv1beta1.RestoreRunning)}, grant("RestoreSession", "once", "uid-1"), true, ""},
		{"restore finished", []client.Object{repo(&all), rs(stashv1beta1.RestoreSucceeded)}, grant("RestoreSession", "once", "uid-1"), false, "has finished"},
		{"unknown owner", []client.Object{repo(&all)}, grant("Pod", "x", "uid-1"), false, "unknown owner kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(kube.NewScheme()).WithObjects(tc.objs...).Build()
			r := &Reconciler{Client: c, APIReader: c}
			keep, why, err := r.Keep(context.Background(), tc.grant)
			if err != nil {
				t.Fatal(err)
			}
			if keep != tc.keep || !strings.Contains(why, tc.why) || (!keep && why == "") {
				t.Errorf("keep %t (%q), want %t (%q)", keep, why, tc.keep, tc.why)
			}
		})
	}
}
