package plan

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// A user who may create a BackupConfiguration or RestoreSession must gain
// nothing through it: the step Job runs with a ServiceAccount the operator
// grants access to the Repository's Secret (possibly in another
// namespace), the target's AppBinding Secret and the session's status. So
// task.params, which Stash lets override any variable, may not set the
// variables that choose what those grants were computed from: the image,
// the repository, the namespaces and the objects the step reads or writes.
// Everything else (paths, hostnames, tool args, retention, caching) stays
// overridable, as in Stash.

// protectedVariables maps a variable the invoker may not set to why.
var protectedVariables = map[string]string{
	"STASH_DOCKER_REGISTRY": "chooses the registry of the step's image",
	"STASH_DOCKER_IMAGE":    "chooses the step's image",
	"STASH_IMAGE_TAG":       "chooses the tag of the step's image",
	"ADDON_IMAGE":           "is the step's image",
	"NAMESPACE":             "chooses the namespace whose session, ServiceAccount and Secrets the step uses",
	"TARGET_NAMESPACE":      "chooses the namespace of the target (the AppBinding and its Secret)",
	"TARGET_NAME":           "chooses the target (the AppBinding whose Secret, or the PVC whose volume, the step uses): set spec.target.ref instead",
	"BACKUP_SESSION":        "chooses the BackupSession whose status the step's ServiceAccount writes",
	"RESTORE_SESSION":       "chooses the RestoreSession whose status the step's ServiceAccount writes",
	"INVOKER_KIND":          "chooses the invoker whose session status the step's ServiceAccount writes",
	"INVOKER_NAME":          "chooses the invoker whose session status the step's ServiceAccount writes",
}

// repositoryPrefix covers every REPOSITORY_* variable, present and future:
// backend, bucket, prefix, endpoint, TLS verification, storage Secret and
// its namespace all come from the Repository the usage policy admitted.
const repositoryPrefix = "REPOSITORY_"

// ProtectedVariable says whether an invoker's task.params may not set
// name, and why. It covers the names alone; CheckTaskParams also refuses
// variables a Task uses in its volume sources.
func ProtectedVariable(name string) (reason string, protected bool) {
	if r, ok := protectedVariables[name]; ok {
		return r, true
	}
	if strings.HasPrefix(name, repositoryPrefix) {
		return "chooses the repository (backend, bucket, prefix, endpoint, TLS verification, storage Secret or its namespace)", true
	}
	return "", false
}

// ProtectedVariables lists the names ProtectedVariable refuses, sorted,
// with REPOSITORY_* standing for the whole prefix (for docs and errors).
func ProtectedVariables() []string {
	names := []string{repositoryPrefix + "*"}
	for n := range protectedVariables {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// placeholderName matches the variable of every ${NAME...} in a string,
// defaults included. It also matches the escaped "$${NAME}", which only
// makes the volume-source check below refuse more, never less.
var placeholderName = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)`)

// referencedVariables returns the variables v's JSON mentions.
func referencedVariables(v any) map[string]bool {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	out := map[string]bool{}
	for _, m := range placeholderName.FindAllStringSubmatch(string(raw), -1) {
		out[m[1]] = true
	}
	return out
}

// volumeSourceVariables maps each variable a Task's volume sources use to
// the volume: such a variable decides which PVC, Secret, ConfigMap or host
// path the Job's pod mounts, so the invoker may not set it.
func volumeSourceVariables(task *stashv1beta1.Task) map[string]string {
	out := map[string]string{}
	if task == nil {
		return out
	}
	for _, vol := range task.Spec.Volumes {
		for name := range referencedVariables(vol.VolumeSource) {
			if _, seen := out[name]; !seen {
				out[name] = vol.Name
			}
		}
	}
	return out
}

// mountNameVariables returns the variables the Functions of a Task use in
// the names of their volume mounts and devices.
func mountNameVariables(task *stashv1beta1.Task, cat Catalog) map[string]bool {
	out := map[string]bool{}
	if task == nil || cat == nil {
		return out
	}
	for _, step := range task.Spec.Steps {
		fn, ok := cat.Function(step.Name)
		if !ok {
			continue
		}
		for _, m := range fn.Spec.VolumeMounts {
			for n := range referencedVariables(m.Name) {
				out[n] = true
			}
		}
		for _, d := range fn.Spec.VolumeDevices {
			for n := range referencedVariables(d.Name) {
				out[n] = true
			}
		}
	}
	return out
}

// CheckParams refuses the params (at path p, an invoker's
// spec.task.params) that would set a protected variable, a variable of the
// Task's volume sources, or point a Function's volume mount at the
// repository's own volume. task and cat may be nil (the Task is not known):
// then only the names are checked.
func CheckParams(p *field.Path, params []stashv1beta1.Param, task *stashv1beta1.Task, cat Catalog) field.ErrorList {
	var errs field.ErrorList
	volVars := volumeSourceVariables(task)
	mountVars := mountNameVariables(task, cat)
	for i, prm := range params {
		at := p.Index(i).Child("name")
		if reason, ok := ProtectedVariable(prm.Name); ok {
			errs = append(errs, field.Forbidden(at, fmt.Sprintf("%s %s and cannot be overridden; remove the param", prm.Name, reason)))
			continue
		}
		if vol, ok := volVars[prm.Name]; ok {
			errs = append(errs, field.Forbidden(at, fmt.Sprintf("%s chooses the source of Task %s's volume %s (which PVC, Secret or host path the pod mounts) and cannot be overridden; remove the param", prm.Name, task.Name, vol)))
			continue
		}
		if mountVars[prm.Name] && prm.Value == LocalBackendVolume {
			errs = append(errs, field.Forbidden(at, fmt.Sprintf("%s would mount the Repository's volume %s whole, without the Repository's subPath; only Stash mounts it: remove the param", prm.Name, LocalBackendVolume)))
		}
	}
	return errs
}

// CheckTaskParams checks every user-controlled source of task params of a
// session: the invoker's spec.task.params and, when the invoker names no
// Task, the StashAddon params of its target AppBinding (which anyone who
// may edit the AppBinding controls). cat may be nil.
func CheckTaskParams(ab *appcatalogv1alpha1.AppBinding, restore bool, invoker stashv1beta1.TaskRef, cat Catalog) field.ErrorList {
	ref, err := AddonTask(ab, restore, invoker)
	if err != nil {
		// AddonTask's own error is reported by its callers.
		return nil
	}
	var task *stashv1beta1.Task
	if cat != nil && ref.Name != "" {
		task, _ = cat.Task(ref.Name)
	}
	errs := CheckParams(field.NewPath("spec", "task", "params"), invoker.Params, task, cat)
	if invoker.Name != "" || ab == nil {
		return errs
	}
	addon, _ := AddonTask(ab, restore, stashv1beta1.TaskRef{})
	key := "backupTask"
	if restore {
		key = "restoreTask"
	}
	abPath := field.NewPath("spec", "parameters", "stash", "addon", key, "params")
	for _, e := range CheckParams(abPath, addon.Params, task, cat) {
		// Reported on the invoker (that is what is being admitted), naming
		// the AppBinding field to fix.
		errs = append(errs, field.Forbidden(field.NewPath("spec", "target", "ref"),
			fmt.Sprintf("AppBinding %s/%s %s: %s", ab.Namespace, ab.Name, e.Field, e.Detail)))
	}
	return errs
}

// checkMounts refuses a resolved Function that mounts the volume Stash adds
// for a local backend: Stash mounts it with the Repository's subPath, and a
// mount of its own (from the Function or a param) would expose the whole
// volume, other repositories' data included.
func checkMounts(mounts []corev1.VolumeMount, devices []corev1.VolumeDevice) error {
	for i, m := range mounts {
		if m.Name == LocalBackendVolume {
			return fmt.Errorf("spec.volumeMounts[%d].name: %s is the Repository's volume, which only Stash mounts (with the Repository's subPath): mount a Task volume instead", i, LocalBackendVolume)
		}
	}
	for i, d := range devices {
		if d.Name == LocalBackendVolume {
			return fmt.Errorf("spec.volumeDevices[%d].name: %s is the Repository's volume, which only Stash mounts: use a Task volume instead", i, LocalBackendVolume)
		}
	}
	return nil
}
