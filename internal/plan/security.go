package plan

import (
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// StepUser is the user and group every step runs as unless a Function asks
// for root: the USER of Stash's images (build/*/Dockerfile,
// hack/images.sh), and the user Stash's backup pods always ran as.
// Keeping it means files a step leaves in /stash-tmp or on the interim
// volume belong to the same user in every container of the pod, and in the
// next session's pod.
const StepUser int64 = 65535

// Directories under ScratchDir that a Stash step gets as TMPDIR and HOME:
// the root filesystem is read-only, so every write must land on the
// scratch emptyDir. The stash binary creates them at start (the emptyDir
// starts empty).
const (
	StepTempDir = ScratchDir + "/tmp"
	StepHomeDir = ScratchDir + "/home"
)

// Default resource requests of every step container: enough for the
// scheduler to place the pod honestly on a shared node. No limits: a
// memory limit that kills a large restore half way is worse than none, and
// the data mover sizes its buffers from the cgroup, so a limit a user sets
// (runtimeSettings.container.resources) is respected rather than needed.
var (
	DefaultCPURequest    = resource.MustParse("100m")
	DefaultMemoryRequest = resource.MustParse("128Mi")
)

// stashImages are the image names that run the stash binary itself.
var stashImages = map[string]bool{
	"stash": true, "stash-postgres": true, "stash-mysql": true, "stash-mongodb": true, "stash-elasticsearch": true,
	"stash-percona-xtradb": true, "stash-mariadb-galera": true,
}

// IsStashImage reports whether an image is one of Stash's own, whose
// entrypoint is the stash binary: such a step writes only under
// ScratchDir, the interim volume and its target, so it runs with a
// read-only root filesystem.
func IsStashImage(image string) bool {
	name := image
	if i := strings.LastIndex(name, "@"); i >= 0 {
		name = name[:i]
	}
	if i := strings.LastIndex(name, ":"); i > strings.LastIndex(name, "/") {
		name = name[:i]
	}
	return stashImages[path.Base(name)]
}

// defaultResources are the requests of a step container (see
// DefaultCPURequest).
func defaultResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{Requests: corev1.ResourceList{
		corev1.ResourceCPU: DefaultCPURequest, corev1.ResourceMemory: DefaultMemoryRequest,
	}}
}

// restrictedPodSecurity is the pod securityContext of a step pod that
// meets the restricted Pod Security Standard. fsGroup makes the interim
// PVC writable by StepUser (an emptyDir is writable by anyone anyway).
func restrictedPodSecurity() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr(true),
		RunAsUser:      ptr(StepUser),
		RunAsGroup:     ptr(StepUser),
		FSGroup:        ptr(StepUser),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// rootPodSecurity is the pod securityContext of a pod one of whose steps
// asked for root (PVC backup and restore). It meets baseline: root, but
// with the runtime's seccomp profile and, per container, only the
// capabilities the Function named. No fsGroup: the kubelet would change
// the group of every file on the user's volume to apply it.
func rootPodSecurity() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsUser:      ptr(int64(0)),
		RunAsGroup:     ptr(int64(0)),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// defaultContainerSecurity is the securityContext of every step container
// before its Function's and the invoker's settings are merged over it.
// stash says whether the container runs the stash binary (see
// IsStashImage).
func defaultContainerSecurity(stash bool) *corev1.SecurityContext {
	sc := &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
	if stash {
		sc.ReadOnlyRootFilesystem = ptr(true)
	}
	return sc
}

// scratchEnv points a Stash step's temporary files and home directory at
// the scratch emptyDir (its root filesystem is read-only). Other images
// keep what their Function says: their tools may expect the image's HOME.
func scratchEnv(stash bool) []corev1.EnvVar {
	if !stash {
		return nil
	}
	return []corev1.EnvVar{{Name: "TMPDIR", Value: StepTempDir}, {Name: "HOME", Value: StepHomeDir}}
}

// asksForRoot reports whether a Function's own settings ask for root: the
// catalog's PVC Functions do, to read and write files of every owner.
func asksForRoot(s *stashv1beta1.ContainerRuntimeSettings) bool {
	return s != nil && s.SecurityContext != nil && s.SecurityContext.RunAsUser != nil && *s.SecurityContext.RunAsUser == 0
}

// functionContainerSecurity is the part of a Function's securityContext
// that applies to its own container: its user and group choose the pod's
// (every step of a pod shares /stash-tmp, so they run as one user), and a
// user's runtimeSettings.pod.securityContext can still change them.
func functionContainerSecurity(sc *corev1.SecurityContext) *corev1.SecurityContext {
	if sc == nil {
		return nil
	}
	out := sc.DeepCopy()
	out.RunAsUser, out.RunAsGroup, out.RunAsNonRoot = nil, nil, nil
	return out
}

// MergeSecurityContext returns cur with every field that over sets
// replaced by over's, as Stash's UpsertSecurityContext does: a user who
// sets runAsUser keeps the other defaults. Asking for root (runAsUser: 0)
// without saying runAsNonRoot also sets runAsNonRoot to false, which the
// pod's runAsNonRoot default would otherwise refuse.
func MergeSecurityContext(cur, over *corev1.SecurityContext) *corev1.SecurityContext {
	if over == nil {
		return cur
	}
	out := &corev1.SecurityContext{}
	if cur != nil {
		out = cur.DeepCopy()
	}
	o := over.DeepCopy()
	if o.Capabilities != nil {
		out.Capabilities = o.Capabilities
	}
	if o.Privileged != nil {
		out.Privileged = o.Privileged
	}
	if o.SELinuxOptions != nil {
		out.SELinuxOptions = o.SELinuxOptions
	}
	if o.WindowsOptions != nil {
		out.WindowsOptions = o.WindowsOptions
	}
	if o.RunAsUser != nil {
		out.RunAsUser = o.RunAsUser
	}
	if o.RunAsGroup != nil {
		out.RunAsGroup = o.RunAsGroup
	}
	if o.RunAsNonRoot != nil {
		out.RunAsNonRoot = o.RunAsNonRoot
	} else if o.RunAsUser != nil && *o.RunAsUser == 0 {
		out.RunAsNonRoot = ptr(false)
	}
	if o.ReadOnlyRootFilesystem != nil {
		out.ReadOnlyRootFilesystem = o.ReadOnlyRootFilesystem
	}
	if o.AllowPrivilegeEscalation != nil {
		out.AllowPrivilegeEscalation = o.AllowPrivilegeEscalation
	}
	if o.ProcMount != nil {
		out.ProcMount = o.ProcMount
	}
	if o.SeccompProfile != nil {
		out.SeccompProfile = o.SeccompProfile
	}
	if o.AppArmorProfile != nil {
		out.AppArmorProfile = o.AppArmorProfile
	}
	return out
}

// MergePodSecurityContext is MergeSecurityContext for a pod, as Stash's
// UpsertPodSecurityContext: runtimeSettings.pod.securityContext overrides
// the planner's defaults field by field. Asking for root without saying
// runAsNonRoot drops the runAsNonRoot default.
func MergePodSecurityContext(cur, over *corev1.PodSecurityContext) *corev1.PodSecurityContext {
	if over == nil {
		return cur
	}
	out := &corev1.PodSecurityContext{}
	if cur != nil {
		out = cur.DeepCopy()
	}
	o := over.DeepCopy()
	if o.SELinuxOptions != nil {
		out.SELinuxOptions = o.SELinuxOptions
	}
	if o.WindowsOptions != nil {
		out.WindowsOptions = o.WindowsOptions
	}
	if o.RunAsUser != nil {
		out.RunAsUser = o.RunAsUser
	}
	if o.RunAsGroup != nil {
		out.RunAsGroup = o.RunAsGroup
	}
	if o.RunAsNonRoot != nil {
		out.RunAsNonRoot = o.RunAsNonRoot
	} else if o.RunAsUser != nil && *o.RunAsUser == 0 {
		out.RunAsNonRoot = nil
	}
	if o.SupplementalGroups != nil {
		out.SupplementalGroups = o.SupplementalGroups
	}
	if o.SupplementalGroupsPolicy != nil {
		out.SupplementalGroupsPolicy = o.SupplementalGroupsPolicy
	}
	if o.FSGroup != nil {
		out.FSGroup = o.FSGroup
	}
	if o.FSGroupChangePolicy != nil {
		out.FSGroupChangePolicy = o.FSGroupChangePolicy
	}
	if o.Sysctls != nil {
		out.Sysctls = o.Sysctls
	}
	if o.SeccompProfile != nil {
		out.SeccompProfile = o.SeccompProfile
	}
	if o.AppArmorProfile != nil {
		out.AppArmorProfile = o.AppArmorProfile
	}
	if o.SELinuxChangePolicy != nil {
		out.SELinuxChangePolicy = o.SELinuxChangePolicy
	}
	return out
}

// HardenPod makes a pod the operator builds itself (the trigger CronJob's,
// the wipe Job's) meet the restricted Pod Security Standard as step pods
// do: StepUser, RuntimeDefault seccomp, no privilege escalation, no
// capabilities, a read-only root filesystem with TMPDIR and HOME on a
// scratch emptyDir, and the default requests. Settings already on the pod
// or its containers (a user's runtimeSettings) are merged over the
// defaults field by field.
func HardenPod(p *corev1.PodSpec) {
	pod := restrictedPodSecurity()
	pod.FSGroup = nil
	p.SecurityContext = MergePodSecurityContext(pod, p.SecurityContext)
	p.Volumes = append(p.Volumes, corev1.Volume{Name: ScratchVolume, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}})
	for i := range p.Containers {
		c := &p.Containers[i]
		c.SecurityContext = MergeSecurityContext(defaultContainerSecurity(true), c.SecurityContext)
		if len(c.Resources.Requests) == 0 && len(c.Resources.Limits) == 0 {
			c.Resources = defaultResources()
		}
		c.Env = append(c.Env, scratchEnv(true)...)
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: ScratchVolume, MountPath: ScratchDir})
	}
}
