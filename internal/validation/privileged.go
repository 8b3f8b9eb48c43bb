package validation

import (
	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// AdmissionPolicy is the name of the ValidatingAdmissionPolicy (and its
// binding) that admits privileged fields only for users who could do the
// same without Stash (config/admission/runtime-settings.yaml).
const AdmissionPolicy = "stash-runtime-settings"

// PrivilegedBackup lists the fields of a BackupConfiguration that a user
// who may create Stash objects but not pods must not set, since through
// them a Stash Job or sidecar would do what that user cannot: choose who it
// runs as, where, with what privileges or environment, run commands in it
// or in the namespace's pods, or change a workload. What AdmissionPolicy
// checks, but for Secret names and targets in other namespaces, which
// Stash's manifests have long used: a reconciler refuses these fields
// while the policy is not installed, since it cannot know who set them,
// and accepts those two.
func PrivilegedBackup(bc *stashv1beta1.BackupConfiguration) []string {
	out := privilegedRuntime(bc.Spec.RuntimeSettings)
	if h := bc.Spec.Hooks; h != nil && (execHook(h.PreBackup) || h.PostBackup != nil && execHook(&h.PostBackup.Handler)) {
		out = append(out, "spec.hooks (exec)")
	}
	if t := bc.Spec.Target; t != nil && bc.Spec.Task.Name == "" && IsWorkload(t.Ref.Kind) {
		out = append(out, "spec.target.ref (a "+t.Ref.Kind+", which gets a backup sidecar)")
	}
	return out
}

// PrivilegedRestore is PrivilegedBackup for a RestoreSession, which may
// also have the operator create PVCs.
func PrivilegedRestore(rs *stashv1beta1.RestoreSession) []string {
	out := privilegedRuntime(rs.Spec.RuntimeSettings)
	if h := rs.Spec.Hooks; h != nil && (execHook(h.PreRestore) || h.PostRestore != nil && execHook(&h.PostRestore.Handler)) {
		out = append(out, "spec.hooks (exec)")
	}
	if t := rs.Spec.Target; t != nil {
		if len(t.VolumeClaimTemplates) > 0 {
			out = append(out, "spec.target.volumeClaimTemplates")
		}
		if rs.Spec.Task.Name == "" && IsWorkload(t.Ref.Kind) {
			out = append(out, "spec.target.ref (a "+t.Ref.Kind+", which gets a restore init container)")
		}
	}
	return out
}

// PrivilegedRepository lists the fields of a Repository that only a user
// who may create pods may set: a local backend on any volume but a
// PersistentVolumeClaim (a hostPath, NFS or CSI volume reaches storage
// beyond the namespace, and Stash's steps mount it with the privileges to
// read every file).
func PrivilegedRepository(repo *stashv1alpha1.Repository) []string {
	if l := repo.Spec.Backend.Local; l != nil && l.PersistentVolumeClaim == nil {
		return []string{"spec.backend.local (a volume other than a persistentVolumeClaim)"}
	}
	return nil
}

func execHook(h *stashv1beta1.Handler) bool {
	return h != nil && h.Exec != nil
}

// privilegedRuntime lists the runtimeSettings that need the right to
// create pods: all but those that only size or label the pod (resources,
// nice, ionice, labels and annotations, readiness gates, service links,
// whether the token is mounted).
func privilegedRuntime(rs stashv1beta1.RuntimeSettings) []string {
	var out []string
	add := func(set bool, name string) {
		if set {
			out = append(out, name)
		}
	}
	if p := rs.Pod; p != nil {
		add(p.ServiceAccountName != "", "spec.runtimeSettings.pod.serviceAccountName")
		add(len(p.ServiceAccountAnnotations) > 0, "spec.runtimeSettings.pod.serviceAccountAnnotations")
		add(p.NodeName != "", "spec.runtimeSettings.pod.nodeName")
		add(len(p.NodeSelector) > 0, "spec.runtimeSettings.pod.nodeSelector")
		add(p.Affinity != nil, "spec.runtimeSettings.pod.affinity")
		add(len(p.Tolerations) > 0, "spec.runtimeSettings.pod.tolerations")
		add(len(p.TopologySpreadConstraints) > 0, "spec.runtimeSettings.pod.topologySpreadConstraints")
		add(p.SchedulerName != "", "spec.runtimeSettings.pod.schedulerName")
		add(p.SecurityContext != nil, "spec.runtimeSettings.pod.securityContext")
		add(len(p.ImagePullSecrets) > 0, "spec.runtimeSettings.pod.imagePullSecrets")
		add(p.PriorityClassName != "", "spec.runtimeSettings.pod.priorityClassName")
		add(p.Priority != nil, "spec.runtimeSettings.pod.priority")
		add(p.RuntimeClassName != nil, "spec.runtimeSettings.pod.runtimeClassName")
	}
	if c := rs.Container; c != nil {
		add(c.SecurityContext != nil, "spec.runtimeSettings.container.securityContext")
		add(c.Lifecycle != nil, "spec.runtimeSettings.container.lifecycle")
		add(c.LivenessProbe != nil, "spec.runtimeSettings.container.livenessProbe")
		add(c.ReadinessProbe != nil, "spec.runtimeSettings.container.readinessProbe")
		add(len(c.Env) > 0, "spec.runtimeSettings.container.env")
		add(len(c.EnvFrom) > 0, "spec.runtimeSettings.container.envFrom")
	}
	return out
}
