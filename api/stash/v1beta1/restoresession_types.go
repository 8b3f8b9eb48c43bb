package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RestoreSession is one restore of a target from a Repository.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=restore,categories={stash,appscode,all}
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.repository.name`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.status.sessionDuration`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RestoreSession struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              RestoreSessionSpec   `json:"spec,omitempty"`
	Status            RestoreSessionStatus `json:"status,omitempty"`
}

// RestoreTargetSpec is what a restore of one target needs; a RestoreBatch
// member has the same shape.
type RestoreTargetSpec struct {
	// +optional
	Task TaskRef `json:"task,omitempty"`
	// +optional
	Target *RestoreTarget `json:"target,omitempty"`
	// +optional
	RuntimeSettings RuntimeSettings `json:"runtimeSettings,omitempty"`
	// +optional
	TempDir EmptyDirSettings `json:"tempDir,omitempty"`
	// +optional
	InterimVolumeTemplate *PersistentVolumeClaim `json:"interimVolumeTemplate,omitempty"`
	// +optional
	Hooks *RestoreHooks `json:"hooks,omitempty"`
}

// RestoreSessionSpec is the desired restore.
type RestoreSessionSpec struct {
	RestoreTargetSpec `json:",inline"`
	// +kubebuilder:default=Restic
	// +optional
	Driver     Snapshotter     `json:"driver,omitempty"`
	Repository ObjectReference `json:"repository"`
	// Rules is deprecated: use target.rules.
	// +kubebuilder:validation:MaxItems=100
	// +optional
	Rules []Rule `json:"rules,omitempty"`
	// +optional
	TimeOut *metav1.Duration `json:"timeOut,omitempty"`
}

// RestorePhase is a restore's phase.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed;Unknown;Invalid
type RestorePhase string

// Restore phases.
const (
	RestorePending   RestorePhase = "Pending"
	RestoreRunning   RestorePhase = "Running"
	RestoreSucceeded RestorePhase = "Succeeded"
	RestoreFailed    RestorePhase = "Failed"
	RestoreUnknown   RestorePhase = "Unknown"
	RestoreInvalid   RestorePhase = "Invalid"
)

// RestoreSessionStatus is the observed state of a RestoreSession.
type RestoreSessionStatus struct {
	// +optional
	Phase RestorePhase `json:"phase,omitempty"`
	// +optional
	TotalHosts *int32 `json:"totalHosts,omitempty"`
	// +optional
	SessionDuration string `json:"sessionDuration,omitempty"`
	// +optional
	SessionDeadline *metav1.Time `json:"sessionDeadline,omitempty"`
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
	// +optional
	Stats []HostRestoreStats `json:"stats,omitempty"`
}

// HostRestoreStats is one host's restore result.
type HostRestoreStats struct {
	// +optional
	Hostname string `json:"hostname,omitempty"`
	// +optional
	Phase HostPhase `json:"phase,omitempty"`
	// +optional
	Duration string `json:"duration,omitempty"`
	// +optional
	Error string `json:"error,omitempty"`
}

// RestoreSessionList is a list of RestoreSessions.
//
// +kubebuilder:object:root=true
type RestoreSessionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RestoreSession `json:"items"`
}
