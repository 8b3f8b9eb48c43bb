package plan

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// The sidecar model's names in a workload's pod template.
const (
	// SidecarContainer is the injected backup container (Stash's name).
	SidecarContainer = "stash"
	// SidecarSecretVolume holds the Repository's storage Secret, mounted
	// into the sidecar alone at SidecarSecretDir: the workload's
	// ServiceAccount is granted no Secret.
	SidecarSecretVolume = "stash-repository-secret"
	SidecarSecretDir    = "/etc/stash/repository"
	// SidecarTokenVolume is the sidecar's own projected API token, so the
	// sidecar reaches the API even where the workload turns the token off
	// (automountServiceAccountToken: false).
	SidecarTokenVolume = "stash-api-token"
	// ServiceAccountTokenDir is where client-go looks for the in-cluster
	// token.
	ServiceAccountTokenDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	// LabelInjected marks a workload whose pod template the operator
	// changed (a backup sidecar, a restore init container); its value is
	// "true". The mutating webhook sees only workloads that carry it.
	LabelInjected = "stash.appscode.com/injected"
)

// Sidecar is what a workload's backup sidecar is made from.
type Sidecar struct {
	Config     *stashv1beta1.BackupConfiguration
	Repository *stashv1alpha1.Repository
	Image      Image
	// Resources, when set, replace the default requests (the operator's
	// --sidecar-resources); the invoker's runtime settings still win.
	Resources *corev1.ResourceRequirements
}

// SidecarLeaseName is the Lease the pods of a workload take turns on
// (Stash's lock-<kind>-<name>-backup).
func SidecarLeaseName(kind, name string) string {
	return BoundedName("lock-"+lower(kind)+"-", name, "-backup", 253)
}

func lower(s string) string { return strings.ToLower(s) }

// SidecarChannelName is the ConfigMap through which the operator hands a
// BackupConfiguration's sessions to its sidecars and they report back.
func SidecarChannelName(bc string) string {
	return BoundedName("stash-sidecar-", bc, "", 253)
}

// SidecarRoleName is the Role (and RoleBinding) that lets a workload's
// ServiceAccount reach its channel and Lease, and nothing else.
func SidecarRoleName(bc string) string {
	return BoundedName("stash-sidecar-", bc, "", MaxNameLength)
}

// InjectSidecar adds the backup sidecar to a workload's pod template,
// replacing one injected before. The result depends only on s, never on
// time or on what the template held, so that injecting twice, or again
// after a user re-applies the original manifest, leaves the template as
// it was and starts no rollout. Nothing in it follows spec.paused: pausing
// a backup changes no pod.
func InjectSidecar(tpl *corev1.PodTemplateSpec, s Sidecar) {
	RemoveSidecar(tpl)
	bc := s.Config
	c, volumes := workloadContainer(workloadStep{
		name: SidecarContainer, command: "run-backup", invokerKind: "BackupConfiguration", invokerName: bc.Name,
		invokerNamespace: bc.Namespace, ref: bc.Spec.Target.Ref, mounts: bc.Spec.Target.VolumeMounts,
		// The sidecar only reads the workload's data.
		readOnly: true,
		volumes:  [4]string{ScratchVolume, SidecarSecretVolume, SidecarTokenVolume, LocalBackendVolume},
		tempDir:  bc.Spec.TempDir, repository: s.Repository, image: s.Image,
	})
	if s.Resources != nil {
		c.Resources = *s.Resources.DeepCopy()
	}
	if cs := bc.Spec.RuntimeSettings.Container; cs != nil {
		applyContainerSettings(&c, cs)
	}
	workloadUser(&c, &tpl.Spec)
	if sc := c.SecurityContext; sc.RunAsUser != nil && *sc.RunAsUser == 0 && sc.Capabilities != nil && len(sc.Capabilities.Add) == 0 {
		// Root is asked for to read every owner's files (Stash's advice);
		// without this capability root reads only its own.
		sc.Capabilities.Add = []corev1.Capability{"DAC_READ_SEARCH"}
	}
	tpl.Spec.Containers = append(tpl.Spec.Containers, c)
	tpl.Spec.Volumes = append(tpl.Spec.Volumes, volumes...)
}

// workloadStep is a Stash container in a workload's pod: the backup
// sidecar or the restore init container.
type workloadStep struct {
	name, command                              string
	invokerKind, invokerName, invokerNamespace string
	ref                                        stashv1beta1.TargetRef
	mounts                                     []corev1.VolumeMount
	readOnly                                   bool
	// volumes names its scratch, Secret, token and local-backend volumes.
	volumes    [4]string
	tempDir    stashv1beta1.EmptyDirSettings
	repository *stashv1alpha1.Repository
	image      Image
}

// workloadContainer is a workload step's container, before its runtime
// settings and user, and the volumes it alone mounts: scratch, the
// Repository's Secret, its own API token, a local backend.
func workloadContainer(w workloadStep) (corev1.Container, []corev1.Volume) {
	ns := w.ref.Namespace
	if ns == "" {
		ns = w.invokerNamespace
	}
	scratch, secret, token, backend := w.volumes[0], w.volumes[1], w.volumes[2], w.volumes[3]
	c := corev1.Container{
		Name:            w.name,
		Image:           orImage(w.image).String(),
		ImagePullPolicy: corev1.PullIfNotPresent,
		Args: []string{w.command,
			"--invoker-kind=" + w.invokerKind, "--invoker-name=" + w.invokerName,
			"--target-kind=" + w.ref.Kind, "--target-name=" + w.ref.Name, "--target-namespace=" + ns,
			"--secret-dir=" + SidecarSecretDir},
		Env: append(downwardEnv(""),
			corev1.EnvVar{Name: "POD_UID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}},
			corev1.EnvVar{Name: "TMPDIR", Value: StepTempDir}, corev1.EnvVar{Name: "HOME", Value: StepHomeDir}),
		Resources:                defaultResources(),
		SecurityContext:          defaultContainerSecurity(true),
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	for _, m := range w.mounts {
		m.ReadOnly = m.ReadOnly || w.readOnly
		c.VolumeMounts = append(c.VolumeMounts, m)
	}
	c.VolumeMounts = append(c.VolumeMounts,
		corev1.VolumeMount{Name: scratch, MountPath: ScratchDir},
		corev1.VolumeMount{Name: secret, MountPath: SidecarSecretDir, ReadOnly: true},
		corev1.VolumeMount{Name: token, MountPath: ServiceAccountTokenDir, ReadOnly: true})
	volumes := []corev1.Volume{
		{Name: scratch, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: w.tempDir.Medium, SizeLimit: w.tempDir.SizeLimit}}},
		{Name: secret, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName: w.repository.Spec.Backend.StorageSecretName, DefaultMode: ptr(int32(0o444)),
		}}},
		{Name: token, VolumeSource: tokenVolume()},
	}
	if l := localBackend(w.repository); l != nil {
		volumes = append(volumes, corev1.Volume{Name: backend, VolumeSource: l.VolumeSource})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: backend, MountPath: l.MountPath, SubPath: l.SubPath})
	}
	return c, volumes
}

// workloadUser makes a Stash container of a workload's pod run as the
// workload does: as the user its first container names, when the pod
// names none, so it reads and writes the files the application does; as
// non-root with the runtime's seccomp profile unless the pod runs as root,
// which the restricted Pod Security Standard asks of every container.
func workloadUser(c *corev1.Container, p *corev1.PodSpec) {
	if c.SecurityContext == nil {
		c.SecurityContext = &corev1.SecurityContext{}
	}
	sc := c.SecurityContext
	if sc.SeccompProfile == nil {
		sc.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}
	}
	podUser := p.SecurityContext != nil && p.SecurityContext.RunAsUser != nil
	if !podUser && sc.RunAsUser == nil && len(p.Containers) > 0 {
		if app := p.Containers[0].SecurityContext; app != nil {
			sc.RunAsUser, sc.RunAsGroup = app.RunAsUser, app.RunAsGroup
		}
	}
	root := (sc.RunAsUser != nil && *sc.RunAsUser == 0) || (sc.RunAsUser == nil && podUser && *p.SecurityContext.RunAsUser == 0)
	if !root && sc.RunAsNonRoot == nil {
		sc.RunAsNonRoot = ptr(true)
	}
}

// tokenVolume is a projected API token with the cluster's CA and the
// pod's namespace, as the kubelet would mount it, for one container.
func tokenVolume() corev1.VolumeSource {
	return corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
		DefaultMode: ptr(int32(0o444)),
		Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: ptr(int64(3607))}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
				Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{
				{Path: "namespace", FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
		},
	}}
}

// sidecarVolumes are the volumes InjectSidecar adds.
var sidecarVolumes = []string{ScratchVolume, SidecarSecretVolume, SidecarTokenVolume, LocalBackendVolume}

// RemoveSidecar takes out of a pod template what InjectSidecar added, and
// only that: a user's container that happens to be named "stash" but does
// not run run-backup stays.
func RemoveSidecar(tpl *corev1.PodTemplateSpec) {
	removed := false
	tpl.Spec.Containers = slices.DeleteFunc(tpl.Spec.Containers, func(c corev1.Container) bool {
		if IsSidecar(c) {
			removed = true
			return true
		}
		return false
	})
	if !removed {
		return
	}
	tpl.Spec.Volumes = slices.DeleteFunc(tpl.Spec.Volumes, func(v corev1.Volume) bool {
		return slices.Contains(sidecarVolumes, v.Name)
	})
	if len(tpl.Spec.Volumes) == 0 {
		tpl.Spec.Volumes = nil
	}
}

// IsSidecar reports whether c is the injected backup sidecar.
func IsSidecar(c corev1.Container) bool {
	return c.Name == SidecarContainer && len(c.Args) > 0 && c.Args[0] == "run-backup"
}

// HasSidecar reports whether a pod template holds the backup sidecar.
func HasSidecar(tpl *corev1.PodTemplateSpec) bool {
	return slices.ContainsFunc(tpl.Spec.Containers, IsSidecar)
}

// WorkloadHost is the snapshot host of one pod of a workload (Stash's
// rules): the StatefulSet pod's ordinal, the DaemonSet pod's node, host-0
// for the kinds whose replicas share their data; alias, when set,
// replaces "host".
func WorkloadHost(kind, alias, podName, nodeName string) string {
	prefix := "host"
	if alias != "" {
		prefix = alias
	}
	switch kind {
	case "StatefulSet":
		if i := strings.LastIndex(podName, "-"); i >= 0 {
			return prefix + "-" + podName[i+1:]
		}
		return prefix + "-0"
	case "DaemonSet":
		if alias != "" {
			return alias + "-" + nodeName
		}
		return nodeName
	}
	if alias != "" {
		return alias
	}
	return "host-0"
}
