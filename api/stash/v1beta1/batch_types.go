package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
)

// ExecutionOrder says how batch members run.
// +kubebuilder:validation:Enum=Parallel;Sequential
type ExecutionOrder string

// BackupBatch backs up several targets on one schedule into one Repository.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories={stash,appscode,all}
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Paused",type=boolean,JSONPath=`.spec.paused`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupBatch struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BackupBatchSpec   `json:"spec,omitempty"`
	Status            BackupBatchStatus `json:"status,omitempty"`
}

// BackupBatchSpec is the desired state of a BackupBatch.
type BackupBatchSpec struct {
	// +kubebuilder:validation:MaxItems=100
	// +optional
	Members []BackupConfigurationTemplateSpec `json:"members,omitempty"`
	// +optional
	Schedule string `json:"schedule,omitempty"`
	// +optional
	RuntimeSettings RuntimeSettings `json:"runtimeSettings,omitempty"`
	// +kubebuilder:default=Restic
	// +optional
	Driver     Snapshotter     `json:"driver,omitempty"`
	Repository ObjectReference `json:"repository"`
	// +optional
	RetentionPolicy stashv1alpha1.RetentionPolicy `json:"retentionPolicy,omitempty"`
	// +optional
	Paused bool `json:"paused,omitempty"`
	// +optional
	BackupHistoryLimit *int32 `json:"backupHistoryLimit,omitempty"`
	// +optional
	Hooks *BackupHooks `json:"hooks,omitempty"`
	// +kubebuilder:default=Parallel
	// +optional
	ExecutionOrder ExecutionOrder `json:"executionOrder,omitempty"`
	// +optional
	TimeOut *metav1.Duration `json:"timeOut,omitempty"`
	// +optional
	RetryConfig *RetryConfig `json:"retryConfig,omitempty"`
}

// BackupBatchStatus is the observed state of a BackupBatch.
type BackupBatchStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
	// +optional
	MemberConditions []MemberConditions `json:"memberConditions,omitempty"`
	// +optional
	Phase BackupInvokerPhase `json:"phase,omitempty"`
}

// MemberConditions are one member's conditions.
type MemberConditions struct {
	Target TargetRef `json:"target"`
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
}

// BackupBatchList is a list of BackupBatches.
//
// +kubebuilder:object:root=true
type BackupBatchList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupBatch `json:"items"`
}

// RestoreBatch restores several targets from one Repository.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories={stash,appscode,all}
// +kubebuilder:printcolumn:name="Repository",type=string,JSONPath=`.spec.repository.name`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.status.sessionDuration`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type RestoreBatch struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              RestoreBatchSpec   `json:"spec,omitempty"`
	Status            RestoreBatchStatus `json:"status,omitempty"`
}

// RestoreBatchSpec is the desired state of a RestoreBatch.
type RestoreBatchSpec struct {
	// +kubebuilder:default=Restic
	// +optional
	Driver     Snapshotter     `json:"driver,omitempty"`
	Repository ObjectReference `json:"repository"`
	// +kubebuilder:validation:MaxItems=100
	// +optional
	Members []RestoreTargetSpec `json:"members,omitempty"`
	// +kubebuilder:default=Parallel
	// +optional
	ExecutionOrder ExecutionOrder `json:"executionOrder,omitempty"`
	// +optional
	Hooks *RestoreHooks `json:"hooks,omitempty"`
	// +optional
	TimeOut *metav1.Duration `json:"timeOut,omitempty"`
}

// RestoreBatchStatus is the observed state of a RestoreBatch.
type RestoreBatchStatus struct {
	// +optional
	Phase RestorePhase `json:"phase,omitempty"`
	// +optional
	SessionDuration string `json:"sessionDuration,omitempty"`
	// +optional
	SessionDeadline *metav1.Time `json:"sessionDeadline,omitempty"`
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
	// +optional
	Members []RestoreMemberStatus `json:"members,omitempty"`
}

// RestoreMemberStatus is one member's restore status.
type RestoreMemberStatus struct {
	Ref TargetRef `json:"ref"`
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
	// +optional
	TotalHosts *int32 `json:"totalHosts,omitempty"`
	// +optional
	Phase string `json:"phase,omitempty"`
	// +optional
	Stats []HostRestoreStats `json:"stats,omitempty"`
}

// RestoreBatchList is a list of RestoreBatches.
//
// +kubebuilder:object:root=true
type RestoreBatchList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []RestoreBatch `json:"items"`
}
