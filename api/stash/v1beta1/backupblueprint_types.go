package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
)

// BackupBlueprint is a template for auto-backup: a Repository and a
// BackupConfiguration made for each annotated target.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,shortName=bb,categories={stash,appscode}
// +kubebuilder:printcolumn:name="Task",type=string,JSONPath=`.spec.task.name`
// +kubebuilder:printcolumn:name="Schedule",type=string,JSONPath=`.spec.schedule`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupBlueprint struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BackupBlueprintSpec `json:"spec,omitempty"`
}

// BackupBlueprintSpec is the template.
type BackupBlueprintSpec struct {
	stashv1alpha1.RepositorySpec `json:",inline"`
	// +optional
	RepoNamespace string `json:"repoNamespace,omitempty"`
	// +optional
	BackupNamespace string `json:"backupNamespace,omitempty"`
	// +optional
	Schedule string `json:"schedule,omitempty"`
	// +optional
	Task TaskRef `json:"task,omitempty"`
	// +optional
	RetentionPolicy stashv1alpha1.RetentionPolicy `json:"retentionPolicy,omitempty"`
	// +optional
	RuntimeSettings RuntimeSettings `json:"runtimeSettings,omitempty"`
	// +optional
	TempDir EmptyDirSettings `json:"tempDir,omitempty"`
	// +optional
	InterimVolumeTemplate *PersistentVolumeClaim `json:"interimVolumeTemplate,omitempty"`
	// +optional
	BackupHistoryLimit *int32 `json:"backupHistoryLimit,omitempty"`
	// +optional
	Hooks *BackupHooks `json:"hooks,omitempty"`
	// +optional
	TimeOut *metav1.Duration `json:"timeOut,omitempty"`
	// +optional
	RetryConfig *RetryConfig `json:"retryConfig,omitempty"`
}

// BackupBlueprintList is a list of BackupBlueprints.
//
// +kubebuilder:object:root=true
type BackupBlueprintList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupBlueprint `json:"items"`
}
