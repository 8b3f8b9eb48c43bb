// Package v1alpha1 holds the stash.appscode.com/v1alpha1 API types that
// survived Stash's v1beta1 redesign: Repository and the RetentionPolicy it
// shares with v1beta1 invokers. Field names and JSON tags follow Stash so
// that existing manifests decode unchanged.
package v1alpha1

import "k8s.io/apimachinery/pkg/runtime/schema"

// GroupVersion is the API group and version of the types in this package.
var GroupVersion = schema.GroupVersion{Group: "stash.appscode.com", Version: "v1alpha1"}
