package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
)

// BackupConfiguration schedules backups of one target into a Repository.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=bc,categories={stash,appscode,all}
// +kubebuilder:printcolumn:name="Task",type=string,JSONPath=`.spec.task.name`
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Paused",type=boolean,JSONPath=`.spec.paused`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BackupConfigurationSpec   `json:"spec,omitempty"`
	Status            BackupConfigurationStatus `json:"status,omitempty"`
}

// BackupConfigurationTemplateSpec is what a backup of one target needs; a
// BackupBatch member has the same shape.
type BackupConfigurationTemplateSpec struct {
	// +optional
	Task TaskRef `json:"task,omitempty"`
	// +optional
	Target *BackupTarget `json:"target,omitempty"`
	// +optional
	RuntimeSettings RuntimeSettings `json:"runtimeSettings,omitempty"`
	// +optional
	TempDir EmptyDirSettings `json:"tempDir,omitempty"`
	// +optional
	InterimVolumeTemplate *PersistentVolumeClaim `json:"interimVolumeTemplate,omitempty"`
	// +optional
	Hooks *BackupHooks `json:"hooks,omitempty"`
}

// BackupConfigurationSpec is the desired state of a BackupConfiguration.
type BackupConfigurationSpec struct {
	BackupConfigurationTemplateSpec `json:",inline"`
	// Schedule is a cron expression.
	// +optional
	Schedule string `json:"schedule,omitempty"`
	// +kubebuilder:default=Restic
	// +optional
	Driver     Snapshotter     `json:"driver,omitempty"`
	Repository ObjectReference `json:"repository"`
	// +kubebuilder:validation:Required
	RetentionPolicy stashv1alpha1.RetentionPolicy `json:"retentionPolicy"`
	// +optional
	Paused bool `json:"paused,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=1
	// +optional
	BackupHistoryLimit *int32 `json:"backupHistoryLimit,omitempty"`
	// +optional
	TimeOut *metav1.Duration `json:"timeOut,omitempty"`
	// +optional
	RetryConfig *RetryConfig `json:"retryConfig,omitempty"`
}

// BackupInvokerPhase is the readiness of a backup invoker.
// +kubebuilder:validation:Enum=Invalid;Ready;NotReady
type BackupInvokerPhase string

// Invoker phases.
const (
	InvokerInvalid  BackupInvokerPhase = "Invalid"
	InvokerReady    BackupInvokerPhase = "Ready"
	InvokerNotReady BackupInvokerPhase = "NotReady"
)

// BackupConfigurationStatus is the observed state of a BackupConfiguration.
type BackupConfigurationStatus struct {
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
	// +optional
	Phase BackupInvokerPhase `json:"phase,omitempty"`
}

// BackupConfigurationList is a list of BackupConfigurations.
//
// +kubebuilder:object:root=true
type BackupConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupConfiguration `json:"items"`
}
