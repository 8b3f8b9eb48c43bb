package validation

import (
	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/manifest"
)

// ManifestLookup resolves references within a set of manifests, with
// Functions and Tasks also found in the catalog.
type ManifestLookup struct {
	Set     *manifest.Set
	Catalog *catalog.Catalog
}

// Repository implements Lookup.
func (m ManifestLookup) Repository(ns, name string) (*stashv1alpha1.Repository, bool) {
	r, ok := m.Set.Repositories[manifest.Key(ns, name)]
	return r, ok
}

// SecretData implements Lookup.
func (m ManifestLookup) SecretData(ns, name string) (map[string][]byte, bool) {
	s, ok := m.Set.Secrets[manifest.Key(ns, name)]
	if !ok {
		return nil, false
	}
	return s.Data, true
}

// Task implements Lookup.
func (m ManifestLookup) Task(name string) (*stashv1beta1.Task, bool) {
	if t, ok := m.Set.Tasks[name]; ok {
		return t, true
	}
	if m.Catalog != nil {
		return m.Catalog.Task(name)
	}
	return nil, false
}

// Function implements Lookup.
func (m ManifestLookup) Function(name string) (*stashv1beta1.Function, bool) {
	if f, ok := m.Set.Functions[name]; ok {
		return f, true
	}
	if m.Catalog != nil {
		return m.Catalog.Function(name)
	}
	return nil, false
}

// AppBinding implements Lookup.
func (m ManifestLookup) AppBinding(ns, name string) (*appcatalogv1alpha1.AppBinding, bool) {
	a, ok := m.Set.AppBindings[manifest.Key(ns, name)]
	return a, ok
}

// NamespaceLabels implements Lookup from the manifests' Namespace objects.
func (m ManifestLookup) NamespaceLabels(name string) (map[string]string, bool) {
	n, ok := m.Set.Namespaces[name]
	if !ok {
		return nil, false
	}
	return n.Labels, true
}
