// Package v1alpha1 holds appcatalog.appscode.com/v1alpha1 AppBinding: how to
// connect to an application (a database), as kmodules/custom-resources
// defines it.
//
// +kubebuilder:object:generate=true
// +groupName=appcatalog.appscode.com
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the API group and version of this package.
	GroupVersion = schema.GroupVersion{Group: "appcatalog.appscode.com", Version: "v1alpha1"}
	// SchemeBuilder registers the types of this package.
	SchemeBuilder = runtime.NewSchemeBuilder(func(s *runtime.Scheme) error {
		s.AddKnownTypes(GroupVersion, &AppBinding{}, &AppBindingList{})
		metav1.AddToGroupVersion(s, GroupVersion)
		return nil
	})
	// AddToScheme adds the types of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

// AppBinding tells backup tools how to reach an application.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:categories={catalog,appscode,all}
// +kubebuilder:printcolumn:name="Type",type=string,JSONPath=`.spec.type`
// +kubebuilder:printcolumn:name="Version",type=string,JSONPath=`.spec.version`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type AppBinding struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              AppBindingSpec `json:"spec,omitempty"`
}

// AppBindingSpec is the connection information.
type AppBindingSpec struct {
	// Type is <group>/<resource> of the application, e.g. kubedb.com/postgres.
	// +optional
	Type string `json:"type,omitempty"`
	// +optional
	AppRef *TypedObjectReference `json:"appRef,omitempty"`
	// +optional
	Version      string       `json:"version,omitempty"`
	ClientConfig ClientConfig `json:"clientConfig"`
	// +optional
	Secret *TypedLocalObjectReference `json:"secret,omitempty"`
	// +optional
	SecretTransforms []SecretTransform `json:"secretTransforms,omitempty"`
	// Parameters are free-form; Stash reads a StashAddon here.
	// +kubebuilder:pruning:PreserveUnknownFields
	// +kubebuilder:validation:Schemaless
	// +optional
	Parameters *runtime.RawExtension `json:"parameters,omitempty"`
	// +optional
	TLSSecret *TypedLocalObjectReference `json:"tlsSecret,omitempty"`
}

// ClientConfig says where the application listens: a URL or a Service.
// +kubebuilder:validation:XValidation:rule="has(self.url) || has(self.service)",message="set clientConfig.url or clientConfig.service"
type ClientConfig struct {
	// URL is [scheme://]host:port/path, without user info.
	// +optional
	URL *string `json:"url,omitempty"`
	// +optional
	Service *ServiceReference `json:"service,omitempty"`
	// +optional
	InsecureSkipTLSVerify bool `json:"insecureSkipTLSVerify,omitempty"`
	// +optional
	CABundle []byte `json:"caBundle,omitempty"`
	// +optional
	ServerName string `json:"serverName,omitempty"`
}

// ServiceReference is a Service and port.
type ServiceReference struct {
	// +optional
	Scheme string `json:"scheme,omitempty"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	Port int32  `json:"port"`
	// +optional
	Path string `json:"path,omitempty"`
	// +optional
	Query string `json:"query,omitempty"`
}

// TypedObjectReference points at an object of a given kind.
type TypedObjectReference struct {
	// +optional
	APIGroup string `json:"apiGroup,omitempty"`
	Kind     string `json:"kind"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// TypedLocalObjectReference points at an object in the same namespace.
type TypedLocalObjectReference struct {
	// +optional
	APIGroup string `json:"apiGroup,omitempty"`
	// +optional
	Kind string `json:"kind,omitempty"`
	Name string `json:"name"`
}

// SecretTransform changes the keys of the credentials Secret.
type SecretTransform struct {
	// +optional
	RenameKey *RenameKeyTransform `json:"renameKey,omitempty"`
	// +optional
	AddKey *AddKeyTransform `json:"addKey,omitempty"`
	// +optional
	AddKeysFrom *AddKeysFromTransform `json:"addKeysFrom,omitempty"`
	// +optional
	RemoveKey *RemoveKeyTransform `json:"removeKey,omitempty"`
}

// RenameKeyTransform renames a key.
type RenameKeyTransform struct {
	From string `json:"from"`
	To   string `json:"to"`
}

// AddKeyTransform adds a key.
type AddKeyTransform struct {
	Key string `json:"key"`
	// +optional
	Value []byte `json:"value,omitempty"`
	// +optional
	StringValue *string `json:"stringValue,omitempty"`
}

// AddKeysFromTransform copies the keys of another Secret.
type AddKeysFromTransform struct {
	// +optional
	SecretRef *LocalObjectReference `json:"secretRef,omitempty"`
}

// LocalObjectReference names an object in the same namespace.
type LocalObjectReference struct {
	Name string `json:"name"`
}

// RemoveKeyTransform removes a key.
type RemoveKeyTransform struct {
	Key string `json:"key"`
}

// AppBindingList is a list of AppBindings.
//
// +kubebuilder:object:root=true
type AppBindingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []AppBinding `json:"items"`
}
