// Package source is where a step finds the objects it needs (AppBinding,
// Secrets, Repository): the Kubernetes API in a cluster, manifest files
// when running locally. One small interface, two implementations.
package source

import (
	"context"
	"fmt"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	"github.com/stash-backup/stash/internal/manifest"
)

// Source finds objects by namespace and name.
type Source interface {
	AppBinding(ctx context.Context, namespace, name string) (*appcatalogv1alpha1.AppBinding, error)
	SecretData(ctx context.Context, namespace, name string) (map[string][]byte, error)
	Repository(ctx context.Context, namespace, name string) (*stashv1alpha1.Repository, error)
}

// Manifests is a Source over manifest files.
type Manifests struct {
	Set *manifest.Set
}

// AppBinding implements Source.
func (m Manifests) AppBinding(_ context.Context, ns, name string) (*appcatalogv1alpha1.AppBinding, error) {
	if ab, ok := m.Set.AppBindings[manifest.Key(ns, name)]; ok {
		return ab, nil
	}
	return nil, fmt.Errorf("AppBinding %s not found in the manifests", manifest.Key(ns, name))
}

// SecretData implements Source.
func (m Manifests) SecretData(_ context.Context, ns, name string) (map[string][]byte, error) {
	if s, ok := m.Set.Secrets[manifest.Key(ns, name)]; ok {
		return s.Data, nil
	}
	return nil, fmt.Errorf("Secret %s not found in the manifests", manifest.Key(ns, name))
}

// Repository implements Source.
func (m Manifests) Repository(_ context.Context, ns, name string) (*stashv1alpha1.Repository, error) {
	if r, ok := m.Set.Repositories[manifest.Key(ns, name)]; ok {
		return r, nil
	}
	return nil, fmt.Errorf("Repository %s not found in the manifests", manifest.Key(ns, name))
}
