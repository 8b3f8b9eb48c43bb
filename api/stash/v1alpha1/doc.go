// Package v1alpha1 holds the stash.appscode.com/v1alpha1 API types that
// survived Stash's v1beta1 redesign: Repository and the RetentionPolicy it
// shares with v1beta1 invokers. Field names and JSON tags follow Stash so
// that existing manifests decode unchanged.
//
// +kubebuilder:object:generate=true
// +groupName=stash.appscode.com
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of the types in this package.
	GroupVersion = schema.GroupVersion{Group: "stash.appscode.com", Version: "v1alpha1"}
	// SchemeBuilder registers the types of this package.
	SchemeBuilder = runtime.NewSchemeBuilder(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &Repository{}, &RepositoryList{})
		metav1.AddToGroupVersion(s, GroupVersion)
		return nil
	})
	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
