package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BackupSession is one run of a backup invoker.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories={stash,appscode,all}
// +kubebuilder:printcolumn:name="Invoker-Type",type=string,JSONPath=`.spec.invoker.kind`
// +kubebuilder:printcolumn:name="Invoker-Name",type=string,JSONPath=`.spec.invoker.name`
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Duration",type=string,JSONPath=`.status.sessionDuration`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type BackupSession struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              BackupSessionSpec   `json:"spec,omitempty"`
	Status            BackupSessionStatus `json:"status,omitempty"`
}

// BackupSessionSpec names the invoker.
type BackupSessionSpec struct {
	// +optional
	Invoker BackupInvokerRef `json:"invoker,omitempty"`
	// +optional
	RetryLeft int32 `json:"retryLeft,omitempty"`
}

// BackupInvokerRef points at a BackupConfiguration or BackupBatch.
type BackupInvokerRef struct {
	// +optional
	APIGroup string `json:"apiGroup,omitempty"`
	// +kubebuilder:validation:Enum=BackupConfiguration;BackupBatch
	Kind string `json:"kind"`
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// BackupSessionPhase is a session's phase.
// +kubebuilder:validation:Enum=Pending;Skipped;Running;Succeeded;Failed;Unknown
type BackupSessionPhase string

// Session phases.
const (
	BackupSessionPending   BackupSessionPhase = "Pending"
	BackupSessionSkipped   BackupSessionPhase = "Skipped"
	BackupSessionRunning   BackupSessionPhase = "Running"
	BackupSessionSucceeded BackupSessionPhase = "Succeeded"
	BackupSessionFailed    BackupSessionPhase = "Failed"
	BackupSessionUnknown   BackupSessionPhase = "Unknown"
)

// TargetPhase is a target's phase within a session.
// +kubebuilder:validation:Enum=Pending;Running;Succeeded;Failed
type TargetPhase string

// HostPhase is a host's result.
// +kubebuilder:validation:Enum=Succeeded;Failed;Running;Unknown
type HostPhase string

// BackupSessionStatus is the observed state of a BackupSession.
type BackupSessionStatus struct {
	// +optional
	Phase BackupSessionPhase `json:"phase,omitempty"`
	// +optional
	SessionDuration string `json:"sessionDuration,omitempty"`
	// +optional
	SessionDeadline *metav1.Time `json:"sessionDeadline,omitempty"`
	// +optional
	Retried *bool `json:"retried,omitempty"`
	// +optional
	NextRetry *metav1.Time `json:"nextRetry,omitempty"`
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
	// +optional
	Targets []BackupTargetStatus `json:"targets,omitempty"`
	// Repository is what the session's post-backup actions found in the
	// repository. The step reports it here, to its own session only; the
	// operator copies it into the Repository's status, whose one writer
	// it is. (An addition to Stash's API: Stash's steps wrote the
	// Repository's status themselves.)
	// +optional
	Repository *RepositoryReport `json:"repository,omitempty"`
}

// RepositoryReport is a repository's state after a backup session.
type RepositoryReport struct {
	// Integrity is the result of the integrity check.
	// +optional
	Integrity *bool `json:"integrity,omitempty"`
	// +optional
	TotalSize string `json:"totalSize,omitempty"`
	// +optional
	SnapshotCount int64 `json:"snapshotCount,omitempty"`
	// SnapshotsRemovedOnLastCleanup counts what the session's retention
	// policy removed.
	// +optional
	SnapshotsRemovedOnLastCleanup int64 `json:"snapshotsRemovedOnLastCleanup,omitempty"`
	// Time is when the figures were taken.
	Time metav1.Time `json:"time"`
}

// BackupTargetStatus is one target's progress.
type BackupTargetStatus struct {
	Ref TargetRef `json:"ref"`
	// +optional
	TotalHosts *int32 `json:"totalHosts,omitempty"`
	// +optional
	Phase TargetPhase `json:"phase,omitempty"`
	// +optional
	Stats []HostBackupStats `json:"stats,omitempty"`
	// +optional
	PreBackupActions []string `json:"preBackupActions,omitempty"`
	// +optional
	PostBackupActions []string `json:"postBackupActions,omitempty"`
	// +optional
	Conditions []Condition `json:"conditions,omitempty"`
}

// HostBackupStats is one host's result.
type HostBackupStats struct {
	// +optional
	Hostname string `json:"hostname,omitempty"`
	// +optional
	Phase HostPhase `json:"phase,omitempty"`
	// +optional
	Snapshots []SnapshotStats `json:"snapshots,omitempty"`
	// +optional
	Duration string `json:"duration,omitempty"`
	// +optional
	Error string `json:"error,omitempty"`
}

// SnapshotStats is one snapshot's numbers.
type SnapshotStats struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Path string `json:"path,omitempty"`
	// +optional
	TotalSize string `json:"totalSize,omitempty"`
	// +optional
	Uploaded string `json:"uploaded,omitempty"`
	// +optional
	ProcessingTime string `json:"processingTime,omitempty"`
	// +optional
	FileStats FileStats `json:"fileStats,omitempty"`
}

// FileStats counts files.
type FileStats struct {
	// +optional
	TotalFiles *int64 `json:"totalFiles,omitempty"`
	// +optional
	NewFiles *int64 `json:"newFiles,omitempty"`
	// +optional
	ModifiedFiles *int64 `json:"modifiedFiles,omitempty"`
	// +optional
	UnmodifiedFiles *int64 `json:"unmodifiedFiles,omitempty"`
}

// BackupSessionList is a list of BackupSessions.
//
// +kubebuilder:object:root=true
type BackupSessionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BackupSession `json:"items"`
}
