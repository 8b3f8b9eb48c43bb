package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Task orders Functions: every step but the last runs as an init
// container, the last as the main container.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=task,categories={stash,appscode}
type Task struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              TaskSpec `json:"spec,omitempty"`
}

// TaskSpec lists the steps and the volumes they share.
type TaskSpec struct {
	// +kubebuilder:validation:MinItems=1
	Steps []FunctionRef `json:"steps"`
	// +optional
	Volumes []corev1.Volume `json:"volumes,omitempty"`
}

// FunctionRef is one step: a Function and its params.
type FunctionRef struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +optional
	Params []Param `json:"params,omitempty"`
}

// TaskList is a list of Tasks.
//
// +kubebuilder:object:root=true
type TaskList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Task `json:"items"`
}
