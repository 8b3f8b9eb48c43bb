package source

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
)

// Kube is a Source over the Kubernetes API, used by steps running in a
// cluster.
type Kube struct {
	Reader client.Reader
}

func (k Kube) get(ctx context.Context, kind, ns, name string, obj client.Object) error {
	if err := k.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
		return fmt.Errorf("get %s %s/%s: %w", kind, ns, name, err)
	}
	return nil
}

// AppBinding implements Source.
func (k Kube) AppBinding(ctx context.Context, ns, name string) (*appcatalogv1alpha1.AppBinding, error) {
	ab := &appcatalogv1alpha1.AppBinding{}
	return ab, k.get(ctx, "AppBinding", ns, name, ab)
}

// SecretData implements Source.
func (k Kube) SecretData(ctx context.Context, ns, name string) (map[string][]byte, error) {
	s := &corev1.Secret{}
	if err := k.get(ctx, "Secret", ns, name, s); err != nil {
		return nil, err
	}
	return s.Data, nil
}

// Repository implements Source.
func (k Kube) Repository(ctx context.Context, ns, name string) (*stashv1alpha1.Repository, error) {
	r := &stashv1alpha1.Repository{}
	return r, k.get(ctx, "Repository", ns, name, r)
}
