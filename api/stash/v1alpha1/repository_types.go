package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// KindRepository is the kind of a Repository object.
const KindRepository = "Repository"

// Repository describes where backups are stored and which Secret holds the
// credentials and the encryption password for that storage.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=repo,categories={stash,appscode}
// +kubebuilder:printcolumn:name="Integrity",type=boolean,JSONPath=`.status.integrity`
// +kubebuilder:printcolumn:name="Size",type=string,JSONPath=`.status.totalSize`
// +kubebuilder:printcolumn:name="Snapshot-Count",type=integer,JSONPath=`.status.snapshotCount`
// +kubebuilder:printcolumn:name="Last-Successful-Backup",type=date,JSONPath=`.status.lastBackupTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Repository struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   RepositorySpec   `json:"spec,omitempty"`
	Status RepositoryStatus `json:"status,omitempty"`
}

// RepositoryList is a list of Repositories.
//
// +kubebuilder:object:root=true
type RepositoryList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Repository `json:"items"`
}

// RepositorySpec is the desired state of a Repository.
type RepositorySpec struct {
	// Backend is the storage that holds the repository's data.
	Backend Backend `json:"backend,omitempty"`
	// WipeOut deletes the backend data when the Repository is deleted.
	WipeOut bool `json:"wipeOut,omitempty"`
	// UsagePolicy says which namespaces may reference this Repository.
	UsagePolicy *UsagePolicy `json:"usagePolicy,omitempty"`
}

// Backend is kmodules' store.Backend: exactly one provider and the Secret
// holding its credentials and RESTIC_PASSWORD.
//
// +kubebuilder:validation:XValidation:rule="(has(self.local) ? 1 : 0) + (has(self.s3) ? 1 : 0) + (has(self.gcs) ? 1 : 0) + (has(self.azure) ? 1 : 0) + (has(self.swift) ? 1 : 0) + (has(self.b2) ? 1 : 0) + (has(self.rest) ? 1 : 0) == 1",message="set exactly one backend: local, s3, gcs, azure, swift, b2 or rest"
type Backend struct {
	StorageSecretName string          `json:"storageSecretName,omitempty"`
	Local             *LocalSpec      `json:"local,omitempty"`
	S3                *S3Spec         `json:"s3,omitempty"`
	GCS               *GCSSpec        `json:"gcs,omitempty"`
	Azure             *AzureSpec      `json:"azure,omitempty"`
	Swift             *SwiftSpec      `json:"swift,omitempty"`
	B2                *B2Spec         `json:"b2,omitempty"`
	Rest              *RestServerSpec `json:"rest,omitempty"`
}

// LocalSpec is a volume mounted into the backup container; the repository
// lives at MountPath (the volume's SubPath directory).
type LocalSpec struct {
	corev1.VolumeSource `json:",inline"`
	// +kubebuilder:validation:MinLength=1
	MountPath string `json:"mountPath"`
	SubPath   string `json:"subPath,omitempty"`
}

// S3Spec is an S3 or S3-compatible bucket.
type S3Spec struct {
	// +kubebuilder:validation:MinLength=1
	Endpoint string `json:"endpoint"`
	// +kubebuilder:validation:MinLength=1
	Bucket      string `json:"bucket"`
	Prefix      string `json:"prefix,omitempty"`
	Region      string `json:"region,omitempty"`
	InsecureTLS bool   `json:"insecureTLS,omitempty"`
}

// GCSSpec is a Google Cloud Storage bucket.
type GCSSpec struct {
	// +kubebuilder:validation:MinLength=1
	Bucket         string `json:"bucket"`
	Prefix         string `json:"prefix,omitempty"`
	MaxConnections int64  `json:"maxConnections,omitempty"`
}

// AzureSpec is an Azure Blob Storage container.
type AzureSpec struct {
	// +kubebuilder:validation:MinLength=1
	Container      string `json:"container"`
	Prefix         string `json:"prefix,omitempty"`
	MaxConnections int64  `json:"maxConnections,omitempty"`
}

// SwiftSpec is an OpenStack Swift container.
type SwiftSpec struct {
	Container string `json:"container,omitempty"`
	Prefix    string `json:"prefix,omitempty"`
}

// B2Spec is a Backblaze B2 bucket.
type B2Spec struct {
	// +kubebuilder:validation:MinLength=1
	Bucket         string `json:"bucket"`
	Prefix         string `json:"prefix,omitempty"`
	MaxConnections int64  `json:"maxConnections,omitempty"`
}

// RestServerSpec is a restic REST server.
type RestServerSpec struct {
	URL string `json:"url,omitempty"`
}

// UsagePolicy restricts which namespaces may use a Repository.
type UsagePolicy struct {
	AllowedNamespaces AllowedNamespaces `json:"allowedNamespaces,omitempty"`
}

// FromNamespaces says where references to a Repository may come from.
type FromNamespaces string

// Values of FromNamespaces.
const (
	NamespacesFromAll      FromNamespaces = "All"
	NamespacesFromSame     FromNamespaces = "Same"
	NamespacesFromSelector FromNamespaces = "Selector"
)

// AllowedNamespaces selects the namespaces allowed to use a Repository.
type AllowedNamespaces struct {
	// +kubebuilder:validation:Enum=All;Same;Selector
	// +kubebuilder:default=Same
	From     *FromNamespaces       `json:"from,omitempty"`
	Selector *metav1.LabelSelector `json:"selector,omitempty"`
}

// RepositoryStatus is the observed state of a Repository.
type RepositoryStatus struct {
	ObservedGeneration            int64        `json:"observedGeneration,omitempty"`
	FirstBackupTime               *metav1.Time `json:"firstBackupTime,omitempty"`
	LastBackupTime                *metav1.Time `json:"lastBackupTime,omitempty"`
	Integrity                     *bool        `json:"integrity,omitempty"`
	TotalSize                     string       `json:"totalSize,omitempty"`
	SnapshotCount                 int64        `json:"snapshotCount,omitempty"`
	SnapshotsRemovedOnLastCleanup int64        `json:"snapshotsRemovedOnLastCleanup,omitempty"`
}

// RetentionPolicy says which snapshots to keep; everything else is forgotten.
// It is shared by BackupConfiguration and the addon commands' flags.
type RetentionPolicy struct {
	Name        string   `json:"name"`
	KeepLast    int64    `json:"keepLast,omitempty"`
	KeepHourly  int64    `json:"keepHourly,omitempty"`
	KeepDaily   int64    `json:"keepDaily,omitempty"`
	KeepWeekly  int64    `json:"keepWeekly,omitempty"`
	KeepMonthly int64    `json:"keepMonthly,omitempty"`
	KeepYearly  int64    `json:"keepYearly,omitempty"`
	KeepTags    []string `json:"keepTags,omitempty"`
	Prune       bool     `json:"prune"`
	DryRun      bool     `json:"dryRun,omitempty"`
}
