package repository

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	"github.com/stash-backup/stash/internal/kube"
)

// TestFinalizerFollowsWipeOut: the finalizer that makes deletion wipe the
// backend is there exactly while spec.wipeOut asks for it, so a withdrawn
// wipeOut never deletes data; the status records the generation seen.
func TestFinalizerFollowsWipeOut(t *testing.T) {
	ctx := context.Background()
	repo := &stashv1alpha1.Repository{
		ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: "demo", Generation: 1},
		Spec:       stashv1alpha1.RepositorySpec{WipeOut: true, Backend: stashv1alpha1.Backend{StorageSecretName: "s", Local: &stashv1alpha1.LocalSpec{MountPath: "/backup"}}},
	}
	c := fake.NewClientBuilder().WithScheme(kube.NewScheme()).WithObjects(repo).WithStatusSubresource(repo).Build()
	r := &Reconciler{Client: c, APIReader: c, Events: record.NewFakeRecorder(10)}
	reconcile := func() *stashv1alpha1.Repository {
		t.Helper()
		if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(repo)}); err != nil {
			t.Fatal(err)
		}
		got := &stashv1alpha1.Repository{}
		if err := c.Get(ctx, client.ObjectKeyFromObject(repo), got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	got := reconcile()
	if !controllerutil.ContainsFinalizer(got, Finalizer) || got.Status.ObservedGeneration != got.Generation {
		t.Fatalf("wipeOut true: finalizers %v, observedGeneration %d", got.Finalizers, got.Status.ObservedGeneration)
	}
	got.Spec.WipeOut = false
	if err := c.Update(ctx, got); err != nil {
		t.Fatal(err)
	}
	if got := reconcile(); controllerutil.ContainsFinalizer(got, Finalizer) {
		t.Errorf("wipeOut withdrawn: finalizer still there: %v", got.Finalizers)
	}
}
