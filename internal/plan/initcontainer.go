package plan

import (
	"slices"

	corev1 "k8s.io/api/core/v1"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// The restore init container's names in a workload's pod template. Its
// volumes are its own, apart from a backup sidecar's: the two may use
// different Repositories.
const (
	RestoreInitContainer = "stash-init"
	restoreScratchVolume = "stash-init-tmp"
	restoreSecretVolume  = "stash-init-secret"
	restoreTokenVolume   = "stash-init-token"
	restoreBackendVolume = "stash-init-backend"
)

// RestoreInit is what a workload's restore init container is made from.
type RestoreInit struct {
	Session    *stashv1beta1.RestoreSession
	Repository *stashv1alpha1.Repository
	Image      Image
	// Resources, when set, replace the default requests (as Sidecar's).
	Resources *corev1.ResourceRequirements
}

// RestoreLeaseName is the Lease a workload's pods take turns on to
// restore (Stash's lock-<kind>-<name>-restore).
func RestoreLeaseName(kind, name string) string {
	return BoundedName("lock-"+lower(kind)+"-", name, "-restore", 253)
}

// RestoreChannelName is the ConfigMap through which the operator hands a
// RestoreSession to a workload's init containers and they report back.
func RestoreChannelName(rs string) string {
	return BoundedName("stash-restore-", rs, "", 253)
}

// RestoreRoleName is the Role (and RoleBinding) that lets a workload's
// ServiceAccount reach its restore channel and Lease.
func RestoreRoleName(rs string) string {
	return BoundedName("stash-restore-init-", rs, "", MaxNameLength)
}

// restoreCapabilities are what restoring files of every owner needs as
// root: writing into their directories, setting their owners, modes and
// times.
var restoreCapabilities = []corev1.Capability{"CHOWN", "DAC_OVERRIDE", "FOWNER"}

// InjectRestoreInit puts the restore init container first among a pod
// template's init containers, replacing one injected before. Like
// InjectSidecar, the result depends only on ri. It runs as root with the
// capabilities a restore needs (as Stash's does), unless the pod runs as
// non-root or the RestoreSession's runtime settings choose a user: then
// it runs as that user with no capability added, as the restricted Pod
// Security Standard requires.
func InjectRestoreInit(tpl *corev1.PodTemplateSpec, ri RestoreInit) {
	RemoveRestoreInit(tpl)
	rs := ri.Session
	c, volumes := workloadContainer(workloadStep{
		name: RestoreInitContainer, command: "restore", invokerKind: "RestoreSession", invokerName: rs.Name,
		invokerNamespace: rs.Namespace, ref: rs.Spec.Target.Ref, mounts: rs.Spec.Target.VolumeMounts,
		volumes: [4]string{restoreScratchVolume, restoreSecretVolume, restoreTokenVolume, restoreBackendVolume},
		tempDir: rs.Spec.TempDir, repository: ri.Repository, image: ri.Image,
	})
	if ri.Resources != nil {
		c.Resources = *ri.Resources.DeepCopy()
	}
	cs := rs.Spec.RuntimeSettings.Container
	nonRoot := podRunsAsNonRoot(&tpl.Spec) || (cs != nil && cs.SecurityContext != nil && cs.SecurityContext.RunAsUser != nil && *cs.SecurityContext.RunAsUser != 0)
	if !nonRoot {
		c.SecurityContext.RunAsUser, c.SecurityContext.RunAsGroup = ptr(int64(0)), ptr(int64(0))
		c.SecurityContext.Capabilities.Add = restoreCapabilities
	}
	if cs != nil {
		applyContainerSettings(&c, cs)
	}
	workloadUser(&c, &tpl.Spec)
	tpl.Spec.InitContainers = append([]corev1.Container{c}, tpl.Spec.InitContainers...)
	tpl.Spec.Volumes = append(tpl.Spec.Volumes, volumes...)
}

// podRunsAsNonRoot reports whether a pod's own settings keep it from
// running as root.
func podRunsAsNonRoot(p *corev1.PodSpec) bool {
	sc := p.SecurityContext
	if sc == nil {
		return false
	}
	return (sc.RunAsNonRoot != nil && *sc.RunAsNonRoot) || (sc.RunAsUser != nil && *sc.RunAsUser != 0)
}

var restoreVolumes = []string{restoreScratchVolume, restoreSecretVolume, restoreTokenVolume, restoreBackendVolume}

// RemoveRestoreInit takes out what InjectRestoreInit added.
func RemoveRestoreInit(tpl *corev1.PodTemplateSpec) {
	if !HasRestoreInit(tpl) {
		return
	}
	tpl.Spec.InitContainers = slices.DeleteFunc(tpl.Spec.InitContainers, IsRestoreInit)
	if len(tpl.Spec.InitContainers) == 0 {
		tpl.Spec.InitContainers = nil
	}
	tpl.Spec.Volumes = slices.DeleteFunc(tpl.Spec.Volumes, func(v corev1.Volume) bool {
		return slices.Contains(restoreVolumes, v.Name)
	})
	if len(tpl.Spec.Volumes) == 0 {
		tpl.Spec.Volumes = nil
	}
}

// IsRestoreInit reports whether c is the injected restore init container.
func IsRestoreInit(c corev1.Container) bool {
	return c.Name == RestoreInitContainer && len(c.Args) > 0 && c.Args[0] == "restore"
}

// HasRestoreInit reports whether a pod template holds the restore init
// container.
func HasRestoreInit(tpl *corev1.PodTemplateSpec) bool {
	return slices.ContainsFunc(tpl.Spec.InitContainers, IsRestoreInit)
}
