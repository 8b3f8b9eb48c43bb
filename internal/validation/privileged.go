package validation

import (
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// AdmissionPolicy is the name of the ValidatingAdmissionPolicy (and its
// binding) that admits PrivilegedSettings only for users who may create
// pods themselves (config/admission/runtime-settings.yaml).
const AdmissionPolicy = "stash-runtime-settings"

// PrivilegedSettings lists the fields of an invoker that choose who a
// Stash Job runs as, where, or with what privileges, or that make the
// operator create objects for the user: exactly what AdmissionPolicy
// checks. Only someone who could create such pods (or PVCs) directly may
// set them; the API server checks that, and a reconciler refuses them when
// the policy is not installed, since it cannot know who set them.
func PrivilegedSettings(rs stashv1beta1.RuntimeSettings, target *stashv1beta1.RestoreTarget) []string {
	var out []string
	if p := rs.Pod; p != nil {
		if p.ServiceAccountName != "" {
			out = append(out, "spec.runtimeSettings.pod.serviceAccountName")
		}
		if p.NodeName != "" {
			out = append(out, "spec.runtimeSettings.pod.nodeName")
		}
		if p.SecurityContext != nil {
			out = append(out, "spec.runtimeSettings.pod.securityContext")
		}
	}
	if c := rs.Container; c != nil && c.SecurityContext != nil {
		out = append(out, "spec.runtimeSettings.container.securityContext")
	}
	if target != nil && len(target.VolumeClaimTemplates) > 0 {
		out = append(out, "spec.target.volumeClaimTemplates")
	}
	return out
}
