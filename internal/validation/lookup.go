package validation

import (
	"sort"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

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

// Result is the verdict on one object.
type Result struct {
	Kind   string   `json:"kind"`
	Name   string   `json:"name"`
	Source string   `json:"source,omitempty"`
	Errors []string `json:"errors,omitempty"`
	// Warnings are checks that could not be made from the manifests
	// alone (a usagePolicy selector without the Namespace object).
	Warnings []string `json:"warnings,omitempty"`
}

// All validates every Stash object of a manifest set, sorted by kind and
// name.
func All(set *manifest.Set, cat *catalog.Catalog) []Result {
	l := ManifestLookup{Set: set, Catalog: cat}
	var out []Result
	add := func(kind, key string, errs field.ErrorList) {
		r := Result{Kind: kind, Name: key, Source: set.Source(kind, key)}
		for _, e := range errs {
			if unknownNamespace(e) {
				r.Warnings = append(r.Warnings, "could not check: "+e.Error()+"; add the Namespace manifest with its labels to check it")
				continue
			}
			r.Errors = append(r.Errors, e.Error())
		}
		out = append(out, r)
	}
	for _, k := range sortedKeys(set.Repositories) {
		add("Repository", k, Repository(set.Repositories[k], l))
	}
	for _, k := range sortedKeys(set.BackupConfigurations) {
		add("BackupConfiguration", k, BackupConfiguration(set.BackupConfigurations[k], l))
	}
	for _, k := range sortedKeys(set.RestoreSessions) {
		add("RestoreSession", k, RestoreSession(set.RestoreSessions[k], l))
	}
	for _, k := range sortedKeys(set.Functions) {
		add("Function", k, Function(set.Functions[k]))
	}
	for _, k := range sortedKeys(set.Tasks) {
		add("Task", k, Task(set.Tasks[k], l))
	}
	for _, k := range sortedKeys(set.AppBindings) {
		add("AppBinding", k, AppBinding(set.AppBindings[k], l))
	}
	for _, k := range sortedKeys(set.BackupBlueprints) {
		bb := set.BackupBlueprints[k]
		errs := Repository(&stashv1alpha1.Repository{Spec: bb.Spec.RepositorySpec}, nil)
		if bb.Spec.Schedule != "" {
			errs = append(errs, Schedule(nil, bb.Spec.Schedule)...)
		}
		add("BackupBlueprint", k, errs)
	}
	return out
}

func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// unknownNamespace says whether e is repositoryRef's report that a
// namespace's labels were not available.
func unknownNamespace(e *field.Error) bool {
	v, ok := e.BadValue.(string)
	return e.Type == field.ErrorTypeNotFound && ok && strings.HasPrefix(v, NamespaceUnknown)
}
