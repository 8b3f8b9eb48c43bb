// Package kube is Stash's view of a Kubernetes cluster: the scheme with
// Stash's types and the built-in ones, and lookups of the objects that
// validation and planning need, read through a controller-runtime client
// (the manager's cache in the operator, the API server in a step).
package kube

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/catalog"
)

// NewScheme returns a scheme holding Kubernetes' built-in types and all of
// Stash's API groups.
func NewScheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		stashv1alpha1.AddToScheme,
		stashv1beta1.AddToScheme,
		appcatalogv1alpha1.AddToScheme,
	} {
		if err := add(s); err != nil {
			// Registration only fails on programming errors (a type
			// registered twice under different names).
			panic(fmt.Sprintf("build scheme: %v", err))
		}
	}
	return s
}

// Lookup implements validation.Lookup and plan.Catalog over a cluster:
// objects come from Reader; Functions and Tasks from the cluster first,
// then from the embedded catalog, so a cluster without installed addon
// charts still resolves every shipped Task.
type Lookup struct {
	Ctx     context.Context
	Reader  client.Reader
	Catalog *catalog.Catalog
}

func (l Lookup) get(namespace, name string, obj client.Object) bool {
	ctx := l.Ctx
	if ctx == nil {
		ctx = context.Background()
	}
	err := l.Reader.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, obj)
	return err == nil
}

// Repository implements validation.Lookup.
func (l Lookup) Repository(ns, name string) (*stashv1alpha1.Repository, bool) {
	r := &stashv1alpha1.Repository{}
	return r, l.get(ns, name, r)
}

// SecretData implements validation.Lookup.
func (l Lookup) SecretData(ns, name string) (map[string][]byte, bool) {
	s := &corev1.Secret{}
	if !l.get(ns, name, s) {
		return nil, false
	}
	data := map[string][]byte{}
	for k, v := range s.Data {
		data[k] = v
	}
	for k, v := range s.StringData {
		data[k] = []byte(v)
	}
	return data, true
}

// AppBinding implements validation.Lookup.
func (l Lookup) AppBinding(ns, name string) (*appcatalogv1alpha1.AppBinding, bool) {
	a := &appcatalogv1alpha1.AppBinding{}
	return a, l.get(ns, name, a)
}

// Task implements validation.Lookup and plan.Catalog.
func (l Lookup) Task(name string) (*stashv1beta1.Task, bool) {
	t := &stashv1beta1.Task{}
	if l.get("", name, t) {
		return t, true
	}
	if l.Catalog != nil {
		return l.Catalog.Task(name)
	}
	return nil, false
}

// Function implements validation.Lookup and plan.Catalog.
func (l Lookup) Function(name string) (*stashv1beta1.Function, bool) {
	f := &stashv1beta1.Function{}
	if l.get("", name, f) {
		return f, true
	}
	if l.Catalog != nil {
		return l.Catalog.Function(name)
	}
	return nil, false
}

// NamespaceLabels implements validation.Lookup.
func (l Lookup) NamespaceLabels(name string) (map[string]string, bool) {
	n := &corev1.Namespace{}
	if !l.get("", name, n) {
		return nil, false
	}
	return n.Labels, true
}
