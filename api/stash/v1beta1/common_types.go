package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// TaskRef names a Task and the parameters the invoker gives it.
type TaskRef struct {
	// Name of the Task; empty for workload (sidecar) backups, or when the
	// target AppBinding's parameters name it.
	// +optional
	Name string `json:"name,omitempty"`
	// Params override Task step params and operator variables.
	// +optional
	Params []Param `json:"params,omitempty"`
}

// Param is a named string value.
type Param struct {
	// +kubebuilder:validation:MinLength=1
	Name  string `json:"name"`
	Value string `json:"value"`
}

// TargetRef points at what is backed up or restored.
type TargetRef struct {
	// +optional
	APIVersion string `json:"apiVersion,omitempty"`
	// +kubebuilder:validation:Enum=Deployment;StatefulSet;DaemonSet;DeploymentConfig;ReplicaSet;ReplicationController;PersistentVolumeClaim;AppBinding;Pod;Namespace;Cluster
	Kind string `json:"kind"`
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// BackupTarget is what a backup covers.
type BackupTarget struct {
	// Alias replaces the host identifier.
	// +optional
	Alias string    `json:"alias,omitempty"`
	Ref   TargetRef `json:"ref"`
	// Paths to back up (sidecar and PVC models).
	// +optional
	Paths []string `json:"paths,omitempty"`
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// +optional
	VolumeSnapshotClassName string `json:"snapshotClassName,omitempty"`
	// Exclude holds patterns of files not to back up.
	// +optional
	Exclude []string `json:"exclude,omitempty"`
	// Args are extra arguments for the backup command.
	// +optional
	Args []string `json:"args,omitempty"`
}

// RestoreTarget is what a restore writes into.
type RestoreTarget struct {
	// +optional
	Alias string `json:"alias,omitempty"`
	// +optional
	Ref TargetRef `json:"ref,omitzero"` // no empty ref (refused by the kind's enum) when the defaulting webhook re-encodes a restore into volumeClaimTemplates
	// +optional
	VolumeMounts []corev1.VolumeMount `json:"volumeMounts,omitempty"`
	// +optional
	Replicas *int32 `json:"replicas,omitempty"`
	// VolumeClaimTemplates are PVCs created and restored into; names may
	// contain ${POD_ORDINAL}.
	// +optional
	VolumeClaimTemplates []PersistentVolumeClaim `json:"volumeClaimTemplates,omitempty"`
	// +optional
	// +kubebuilder:validation:MaxItems=100
	// +kubebuilder:validation:XValidation:rule="self.filter(r, !has(r.targetHosts) || size(r.targetHosts) == 0).size() <= 1",message="at most one rule may leave targetHosts empty"
	Rules []Rule `json:"rules,omitempty"`
	// +optional
	Args []string `json:"args,omitempty"`
}

// Rule says what to restore for which hosts.
// +kubebuilder:validation:XValidation:rule="!(has(self.snapshots) && size(self.snapshots) > 0 && has(self.paths) && size(self.paths) > 0)",message="set snapshots or paths, not both: a snapshot holds one path"
type Rule struct {
	// TargetHosts the rule applies to; empty means every host without a
	// rule of its own.
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	TargetHosts []string `json:"targetHosts,omitempty"`
	// SourceHost whose snapshots are restored; empty means the same host.
	// +optional
	SourceHost string `json:"sourceHost,omitempty"`
	// Snapshots are snapshot IDs or "latest".
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	Snapshots []string `json:"snapshots,omitempty"`
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	Paths []string `json:"paths,omitempty"`
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	Exclude []string `json:"exclude,omitempty"`
	// +kubebuilder:validation:MaxItems=1000
	// +optional
	Include []string `json:"include,omitempty"`
}

// PersistentVolumeClaim is a claim template: partial metadata and a spec.
type PersistentVolumeClaim struct {
	// +optional
	PartialObjectMeta `json:"metadata,omitempty"`
	// +optional
	Spec corev1.PersistentVolumeClaimSpec `json:"spec,omitempty"`
}

// PartialObjectMeta is the metadata a template may set.
type PartialObjectMeta struct {
	// +optional
	Name string `json:"name,omitempty"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
}

// EmptyDirSettings configure the scratch volume at /stash-tmp.
type EmptyDirSettings struct {
	// +optional
	Medium corev1.StorageMedium `json:"medium,omitempty"`
	// +optional
	SizeLimit *resource.Quantity `json:"sizeLimit,omitempty"`
	// DisableCaching turns the repository cache off (ENABLE_CACHE=false).
	// +optional
	DisableCaching bool `json:"disableCaching,omitempty"`
}

// RuntimeSettings apply to the pod and the containers that run a step.
type RuntimeSettings struct {
	// +optional
	Pod *PodRuntimeSettings `json:"pod,omitempty"`
	// +optional
	Container *ContainerRuntimeSettings `json:"container,omitempty"`
}

// PodRuntimeSettings are kmodules' offshoot pod settings.
type PodRuntimeSettings struct {
	// +optional
	PodLabels map[string]string `json:"podLabels,omitempty"`
	// +optional
	PodAnnotations map[string]string `json:"podAnnotations,omitempty"`
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// +optional
	ServiceAccountName string `json:"serviceAccountName,omitempty"`
	// +optional
	ServiceAccountAnnotations map[string]string `json:"serviceAccountAnnotations,omitempty"`
	// +optional
	AutomountServiceAccountToken *bool `json:"automountServiceAccountToken,omitempty"`
	// +optional
	NodeName string `json:"nodeName,omitempty"`
	// +optional
	SecurityContext *corev1.PodSecurityContext `json:"securityContext,omitempty"`
	// +optional
	ImagePullSecrets []corev1.LocalObjectReference `json:"imagePullSecrets,omitempty"`
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`
	// +optional
	SchedulerName string `json:"schedulerName,omitempty"`
	// +optional
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
	// +optional
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// +optional
	Priority *int32 `json:"priority,omitempty"`
	// +optional
	ReadinessGates []corev1.PodReadinessGate `json:"readinessGates,omitempty"`
	// +optional
	RuntimeClassName *string `json:"runtimeClassName,omitempty"`
	// +optional
	EnableServiceLinks *bool `json:"enableServiceLinks,omitempty"`
	// +optional
	TopologySpreadConstraints []corev1.TopologySpreadConstraint `json:"topologySpreadConstraints,omitempty"`
}

// ContainerRuntimeSettings are kmodules' offshoot container settings.
type ContainerRuntimeSettings struct {
	// +optional
	Resources corev1.ResourceRequirements `json:"resources,omitempty"`
	// +optional
	LivenessProbe *corev1.Probe `json:"livenessProbe,omitempty"`
	// +optional
	ReadinessProbe *corev1.Probe `json:"readinessProbe,omitempty"`
	// +optional
	Lifecycle *corev1.Lifecycle `json:"lifecycle,omitempty"`
	// +optional
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`
	// +optional
	Nice *NiceSettings `json:"nice,omitempty"`
	// +optional
	IONice *IONiceSettings `json:"ionice,omitempty"`
	// +optional
	EnvFrom []corev1.EnvFromSource `json:"envFrom,omitempty"`
	// +optional
	Env []corev1.EnvVar `json:"env,omitempty"`
}

// NiceSettings set the CPU priority of the step's command.
type NiceSettings struct {
	// +kubebuilder:validation:Minimum=-20
	// +kubebuilder:validation:Maximum=19
	// +optional
	Adjustment *int32 `json:"adjustment,omitempty"`
}

// IONiceSettings set the I/O priority of the step's command.
type IONiceSettings struct {
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=3
	// +optional
	Class *int32 `json:"class,omitempty"`
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=7
	// +optional
	ClassData *int32 `json:"classData,omitempty"`
}

// RetryConfig says how a failed backup is retried.
type RetryConfig struct {
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:default=1
	// +optional
	MaxRetry int32 `json:"maxRetry,omitempty"`
	// +optional
	Delay metav1.Duration `json:"delay,omitempty"`
}

// Handler is kmodules' prober.Handler: exactly one action.
// +kubebuilder:validation:XValidation:rule="(has(self.exec) ? 1 : 0) + (has(self.httpGet) ? 1 : 0) + (has(self.httpPost) ? 1 : 0) + (has(self.tcpSocket) ? 1 : 0) == 1",message="set exactly one of exec, httpGet, httpPost, tcpSocket"
type Handler struct {
	// +optional
	Exec *corev1.ExecAction `json:"exec,omitempty"`
	// +optional
	HTTPGet *corev1.HTTPGetAction `json:"httpGet,omitempty"`
	// +optional
	HTTPPost *HTTPPostAction `json:"httpPost,omitempty"`
	// +optional
	TCPSocket *corev1.TCPSocketAction `json:"tcpSocket,omitempty"`
	// ContainerName is the container of the target pod that runs an exec
	// hook.
	// +optional
	ContainerName string `json:"containerName,omitempty"`
}

// HTTPPostAction posts a body or a form.
type HTTPPostAction struct {
	// +optional
	Path string             `json:"path,omitempty"`
	Port intstr.IntOrString `json:"port"`
	// +optional
	Host string `json:"host,omitempty"`
	// +optional
	Scheme corev1.URIScheme `json:"scheme,omitempty"`
	// +optional
	HTTPHeaders []corev1.HTTPHeader `json:"httpHeaders,omitempty"`
	// +optional
	Body string `json:"body,omitempty"`
	// +optional
	Form []FormEntry `json:"form,omitempty"`
}

// FormEntry is one form field.
type FormEntry struct {
	Key    string   `json:"key"`
	Values []string `json:"values,omitempty"`
}

// HookExecutionPolicy says when a post hook runs.
// +kubebuilder:validation:Enum=Always;OnFailure;OnSuccess;OnFinalRetryFailure
type HookExecutionPolicy string

// Hook execution policies.
const (
	ExecuteAlways              HookExecutionPolicy = "Always"
	ExecuteOnFailure           HookExecutionPolicy = "OnFailure"
	ExecuteOnSuccess           HookExecutionPolicy = "OnSuccess"
	ExecuteOnFinalRetryFailure HookExecutionPolicy = "OnFinalRetryFailure"
)

// PostHook is a Handler with an execution policy.
type PostHook struct {
	Handler `json:",inline"`
	// +kubebuilder:default=Always
	// +optional
	ExecutionPolicy HookExecutionPolicy `json:"executionPolicy,omitempty"`
}

// BackupHooks run around a backup.
type BackupHooks struct {
	// +optional
	PreBackup *Handler `json:"preBackup,omitempty"`
	// +optional
	PostBackup *PostHook `json:"postBackup,omitempty"`
}

// RestoreHooks run around a restore.
type RestoreHooks struct {
	// +optional
	PreRestore *Handler `json:"preRestore,omitempty"`
	// +optional
	PostRestore *PostHook `json:"postRestore,omitempty"`
}

// ObjectReference is kmodules' kmapi.ObjectReference.
type ObjectReference struct {
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
}

// Snapshotter drivers.
// +kubebuilder:validation:Enum=Restic;VolumeSnapshotter
type Snapshotter string

// Drivers.
const (
	DriverRestic            Snapshotter = "Restic"
	DriverVolumeSnapshotter Snapshotter = "VolumeSnapshotter"
)

// Condition is kmodules' kmapi.Condition.
type Condition struct {
	Type   string                 `json:"type"`
	Status metav1.ConditionStatus `json:"status"`
	// +optional
	Severity string `json:"severity,omitempty"`
	// +optional
	LastTransitionTime metav1.Time `json:"lastTransitionTime,omitempty"`
	// +optional
	Reason string `json:"reason,omitempty"`
	// +optional
	Message string `json:"message,omitempty"`
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
}
