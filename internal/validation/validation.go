// Package validation checks Stash objects beyond what a CRD schema can
// see: references between objects (the Task and its Functions exist, the
// Repository exists and its Secret matches its backend), restore rules,
// schedules. Errors are field.ErrorList with the path at fault and a hint
// at the fix; a reference to an object the Lookup does not hold is a
// NotFound error whose value is a Ref naming it. The same checks back
// `stash validate` (where a Ref is a warning that a check was not made),
// the local runtime, the reconcilers and the admission webhook (where it
// means "wait for it").
package validation

import (
	"github.com/stash-backup/stash/internal/repository/location"

	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/robfig/cron/v3"
	"k8s.io/apimachinery/pkg/util/validation/field"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/plan"
)

// Lookup finds the objects a reference may point to. Implementations: the
// manifests of the local runtime, the API server's cache in a cluster.
type Lookup interface {
	Repository(namespace, name string) (*stashv1alpha1.Repository, bool)
	SecretData(namespace, name string) (map[string][]byte, bool)
	Task(name string) (*stashv1beta1.Task, bool)
	Function(name string) (*stashv1beta1.Function, bool)
	AppBinding(namespace, name string) (*appcatalogv1alpha1.AppBinding, bool)
	// NamespaceLabels returns the labels of a namespace; known is false
	// when the lookup cannot tell (no such namespace, or no Namespace
	// object among the manifests).
	NamespaceLabels(name string) (labels map[string]string, known bool)
}

// Repository validates a Repository; with a Lookup it also checks that the
// storage Secret exists and holds the keys its backend needs.
func Repository(r *stashv1alpha1.Repository, l Lookup) field.ErrorList {
	var errs field.ErrorList
	b := r.Spec.Backend
	p := field.NewPath("spec", "backend")
	if b.StorageSecretName == "" {
		errs = append(errs, field.Required(p.Child("storageSecretName"), "name the Secret that holds RESTIC_PASSWORD and the backend's credentials"))
	}
	var secret map[string][]byte
	if l != nil && b.StorageSecretName != "" {
		data, ok := l.SecretData(r.Namespace, b.StorageSecretName)
		if !ok {
			errs = append(errs, notFound(p.Child("storageSecretName"),
				Ref{Object: Object{Kind: "Secret", Namespace: r.Namespace, Name: b.StorageSecretName}, Unchecked: "nor whether it holds RESTIC_PASSWORD and the keys the backend needs"},
				fmt.Sprintf("Secret %s/%s", r.Namespace, b.StorageSecretName)))
		} else {
			secret = data
			if len(data[location.KeyPassword]) == 0 {
				errs = append(errs, field.Invalid(p.Child("storageSecretName"), b.StorageSecretName,
					"the Secret has no RESTIC_PASSWORD: add the repository's encryption password under that key"))
			}
		}
	}
	if _, err := location.Resolve(b, secret); err != nil {
		msg := err.Error()
		// ResolveLocation names Secret keys it misses; without the Secret
		// (no lookup) those are not errors of the Repository itself.
		if secret != nil || !strings.Contains(msg, "storage Secret") {
			errs = append(errs, field.Invalid(p, backendKinds(b), msg))
		}
	}
	if up := r.Spec.UsagePolicy; up != nil && up.AllowedNamespaces.From != nil &&
		*up.AllowedNamespaces.From == stashv1alpha1.NamespacesFromSelector && up.AllowedNamespaces.Selector == nil {
		errs = append(errs, field.Required(field.NewPath("spec", "usagePolicy", "allowedNamespaces", "selector"), "from: Selector needs a selector"))
	}
	return errs
}

func backendKinds(b stashv1alpha1.Backend) string {
	var k []string
	for name, set := range map[string]bool{"local": b.Local != nil, "s3": b.S3 != nil, "gcs": b.GCS != nil, "azure": b.Azure != nil,
		"b2": b.B2 != nil, "swift": b.Swift != nil, "rest": b.Rest != nil} {
		if set {
			k = append(k, name)
		}
	}
	return strings.Join(k, ",")
}

var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// Schedule checks a cron expression as Kubernetes CronJobs take it.
func Schedule(p *field.Path, s string) field.ErrorList {
	if s == "" {
		return field.ErrorList{field.Required(p, `give a cron expression such as "*/30 * * * *"`)}
	}
	if _, err := cronParser.Parse(s); err != nil {
		return field.ErrorList{field.Invalid(p, s, fmt.Sprintf("not a cron expression (%v): use five fields, minute hour day-of-month month day-of-week, or @hourly/@daily", err))}
	}
	return nil
}

// taskRef checks that a Task and every Function of its steps exist.
func taskRef(p *field.Path, t stashv1beta1.TaskRef, l Lookup, required bool) field.ErrorList {
	var errs field.ErrorList
	if t.Name == "" {
		if required {
			errs = append(errs, field.Required(p.Child("name"), "name the Task to run (stash addons list shows the catalog), or give the target AppBinding StashAddon parameters"))
		}
		return errs
	}
	if l == nil {
		return nil
	}
	task, ok := l.Task(t.Name)
	if !ok {
		return append(errs, notFound(p.Child("name"), Ref{Object: Object{Kind: "Task", Name: t.Name}, Catalog: true, Unchecked: "nor its Functions"}, t.Name))
	}
	for i, s := range task.Spec.Steps {
		if _, ok := l.Function(s.Name); !ok {
			errs = append(errs, notFound(p.Child("name"),
				Ref{Object: Object{Kind: "Function", Name: s.Name}, Catalog: true, Unchecked: fmt.Sprintf("step %d of Task %s runs it", i, t.Name)},
				fmt.Sprintf("Task %s step %d: Function %s", t.Name, i, s.Name)))
		}
	}
	for i, prm := range t.Params {
		if prm.Name == "" {
			errs = append(errs, field.Required(p.Child("params").Index(i).Child("name"), ""))
		}
	}
	return errs
}

// repositoryRef checks a reference to a Repository and returns the
// Repository when the lookup has it.
func repositoryRef(p *field.Path, ref stashv1beta1.ObjectReference, ns string, l Lookup) (*stashv1alpha1.Repository, field.ErrorList) {
	if ref.Name == "" {
		return nil, field.ErrorList{field.Required(p.Child("name"), "name the Repository to back up into")}
	}
	if l == nil {
		return nil, nil
	}
	repoNS := ref.Namespace
	if repoNS == "" {
		repoNS = ns
	}
	r, ok := l.Repository(repoNS, ref.Name)
	if !ok {
		missing := Ref{Object: Object{Kind: "Repository", Namespace: repoNS, Name: ref.Name}}
		if repoNS != ns {
			missing.Unchecked = "nor whether its usagePolicy lets namespace " + ns + " use it"
		}
		return nil, field.ErrorList{notFound(p, missing, repoNS+"/"+ref.Name)}
	}
	if repoNS != ns {
		repo := *r
		repo.Namespace, repo.Name = repoNS, ref.Name
		var nsLabels map[string]string
		if NeedsNamespaceLabels(&repo) {
			l, known := l.NamespaceLabels(ns)
			if !known {
				return r, field.ErrorList{notFound(p, Ref{Object: Object{Kind: "Namespace", Name: ns},
					Unchecked: fmt.Sprintf("nor whether its labels match the usagePolicy selector of Repository %s/%s", repoNS, ref.Name)},
					"Namespace "+ns+": its labels are needed to check the Repository's usagePolicy selector, and they could not be read")}
			}
			nsLabels = l
		}
		if ok, why := UsageAllowed(&repo, ns, nsLabels); !ok {
			return r, field.ErrorList{field.Forbidden(p, why)}
		}
	}
	return r, nil
}

// backupBackend refuses a backup into a Repository whose backend only
// reads (Swift, a restic REST server): every session would fail at its
// first step, so the BackupConfiguration is wrong from the start.
func backupBackend(p *field.Path, r *stashv1alpha1.Repository, ref stashv1beta1.ObjectReference, ns string) field.ErrorList {
	if r == nil {
		return nil
	}
	kind := ""
	switch {
	case r.Spec.Backend.Swift != nil:
		kind = "swift"
	case r.Spec.Backend.Rest != nil:
		kind = "rest"
	default:
		return nil
	}
	repoNS := ref.Namespace
	if repoNS == "" {
		repoNS = ns
	}
	return field.ErrorList{field.Invalid(p, ref.Name, fmt.Sprintf(
		"Repository %s/%s has a %s backend, which restores, lists, checks and imports Stash's restic backups but takes no new ones: back up into a Repository on s3 (Swift has an S3 API), gcs, azure, b2 or local (stash repo import copies the old snapshots there; docs/migrating-from-stash.md)",
		repoNS, ref.Name, kind))}
}

func hook(p *field.Path, h *stashv1beta1.Handler) field.ErrorList {
	if h == nil {
		return nil
	}
	n := 0
	for _, set := range []bool{h.Exec != nil, h.HTTPGet != nil, h.HTTPPost != nil, h.TCPSocket != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return field.ErrorList{field.Invalid(p, n, "set exactly one of exec, httpGet, httpPost, tcpSocket")}
	}
	if h.Exec != nil && len(h.Exec.Command) == 0 {
		return field.ErrorList{field.Required(p.Child("exec", "command"), "")}
	}
	return nil
}

// BackupConfiguration validates a BackupConfiguration and its references.
func BackupConfiguration(bc *stashv1beta1.BackupConfiguration, l Lookup) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	if !bc.Spec.Paused || bc.Spec.Schedule != "" {
		errs = append(errs, Schedule(spec.Child("schedule"), bc.Spec.Schedule)...)
	}
	repo, rerrs := repositoryRef(spec.Child("repository"), bc.Spec.Repository, bc.Namespace, l)
	errs = append(errs, rerrs...)
	errs = append(errs, backupBackend(spec.Child("repository", "name"), repo, bc.Spec.Repository, bc.Namespace)...)
	t := bc.Spec.Target
	if t == nil {
		errs = append(errs, field.Required(spec.Child("target"), "set target.ref to the workload, PVC or AppBinding to back up"))
	} else {
		errs = append(errs, targetRef(spec.Child("target", "ref"), t.Ref, bc.Namespace, bc.Spec.Task.Name != "", l)...)
		workload := IsWorkload(t.Ref.Kind)
		task, err := plan.AddonTask(appBinding(t.Ref, bc.Namespace, l), false, bc.Spec.Task)
		if err != nil {
			errs = append(errs, field.Invalid(spec.Child("target", "ref"), t.Ref.Name, err.Error()))
		}
		errs = append(errs, taskRef(spec.Child("task"), task, l, !workload && !appBindingMissing(t.Ref, bc.Namespace, l))...)
		errs = append(errs, plan.CheckTaskParams(appBinding(t.Ref, bc.Namespace, l), false, bc.Spec.Task, planCatalog(l))...)
		if err == nil {
			errs = append(errs, invokerVariables(spec.Child("task", "params"), task, appBinding(t.Ref, bc.Namespace, l), bc.Spec.Task.Name == "", false, l)...)
		}
		if workload && bc.Spec.Task.Name == "" {
			errs = append(errs, sidecarTarget(spec, bc)...)
		}
		errs = append(errs, targetPaths(spec.Child("target", "paths"), bc, repo)...)
		if bc.Spec.Driver == stashv1beta1.DriverVolumeSnapshotter && t.VolumeSnapshotClassName == "" {
			errs = append(errs, field.Required(spec.Child("target", "snapshotClassName"), "the VolumeSnapshotter driver needs a VolumeSnapshotClass"))
		}
	}
	rp := bc.Spec.RetentionPolicy
	if rp.Name == "" {
		errs = append(errs, field.Required(spec.Child("retentionPolicy", "name"), "name the policy, e.g. keep-last-5"))
	}
	for name, v := range map[string]int64{"keepLast": rp.KeepLast, "keepHourly": rp.KeepHourly, "keepDaily": rp.KeepDaily,
		"keepWeekly": rp.KeepWeekly, "keepMonthly": rp.KeepMonthly, "keepYearly": rp.KeepYearly} {
		if v < 0 {
			errs = append(errs, field.Invalid(spec.Child("retentionPolicy", name), v, "must be 0 or more"))
		}
	}
	if h := bc.Spec.BackupHistoryLimit; h != nil && *h < 0 {
		errs = append(errs, field.Invalid(spec.Child("backupHistoryLimit"), *h, "must be 0 or more"))
	}
	if bc.Spec.Hooks != nil {
		errs = append(errs, hook(spec.Child("hooks", "preBackup"), bc.Spec.Hooks.PreBackup)...)
		if pb := bc.Spec.Hooks.PostBackup; pb != nil {
			errs = append(errs, hook(spec.Child("hooks", "postBackup"), &pb.Handler)...)
		}
	}
	if rc := bc.Spec.RetryConfig; rc != nil && rc.MaxRetry < 0 {
		errs = append(errs, field.Invalid(spec.Child("retryConfig", "maxRetry"), rc.MaxRetry, "must be 0 or more"))
	}
	return errs
}

// targetPaths checks that a backup reads only the target's volumes: each
// path must lie on one of them (for a PVC, where the step mounts it; for a
// workload, target.volumeMounts), and none may hold or lie in what Stash
// itself mounts beside them (the API token, the Repository's Secret,
// scratch, the local backend): a path there would copy credentials into a
// repository its author can read.
func targetPaths(p *field.Path, bc *stashv1beta1.BackupConfiguration, repo *stashv1alpha1.Repository) field.ErrorList {
	t := bc.Spec.Target
	var mounts []string
	switch {
	case t.Ref.Kind == "PersistentVolumeClaim":
		mounts = []string{plan.DefaultTargetMount}
		if len(t.VolumeMounts) > 0 {
			mounts[0] = t.VolumeMounts[0].MountPath
		}
	case IsWorkload(t.Ref.Kind) && bc.Spec.Task.Name == "":
		for _, m := range t.VolumeMounts {
			mounts = append(mounts, m.MountPath)
		}
	default:
		return nil
	}
	reserved := []string{"/var/run/secrets", "/run/secrets", plan.SidecarSecretDir, plan.ScratchDir, plan.InterimMountPath}
	if repo != nil && repo.Spec.Backend.Local != nil {
		reserved = append(reserved, repo.Spec.Backend.Local.MountPath)
	}
	var errs field.ErrorList
	for i, raw := range t.Paths {
		if !path.IsAbs(raw) {
			errs = append(errs, field.Invalid(p.Index(i), raw, "must be an absolute path"))
			continue
		}
		dir := path.Clean(raw)
		if !slices.ContainsFunc(mounts, func(m string) bool { return within(dir, path.Clean(m)) }) {
			errs = append(errs, field.Invalid(p.Index(i), raw, fmt.Sprintf("is on none of the target's volumes (mounted at %s): back up paths on them only", strings.Join(mounts, ", "))))
			continue
		}
		for _, r := range reserved {
			if r = path.Clean(r); within(dir, r) || within(r, dir) {
				errs = append(errs, field.Invalid(p.Index(i), raw, "holds or lies in "+r+", which Stash mounts for itself (credentials, scratch, the repository): back up the application's data only"))
				break
			}
		}
	}
	return errs
}

// within reports whether dir is root or lies beneath it (both clean).
func within(dir, root string) bool {
	return dir == root || root == "/" || strings.HasPrefix(dir, root+"/")
}

// sidecarTarget checks what backing up a workload by sidecar needs: the
// directories, the volumes they are on, and everything in the workload's
// namespace (the sidecar mounts the Repository's Secret, and a Secret
// cannot be mounted across namespaces).
func sidecarTarget(spec *field.Path, bc *stashv1beta1.BackupConfiguration) field.ErrorList {
	var errs field.ErrorList
	t := bc.Spec.Target
	if len(t.Paths) == 0 {
		errs = append(errs, field.Required(spec.Child("target", "paths"), "list the directories to back up"))
	}
	if len(t.VolumeMounts) == 0 {
		errs = append(errs, field.Required(spec.Child("target", "volumeMounts"), "mount the workload's volumes that hold target.paths into the backup sidecar (name and mountPath, as in the workload's container)"))
	}
	if t.Ref.Namespace != "" && t.Ref.Namespace != bc.Namespace {
		errs = append(errs, field.Invalid(spec.Child("target", "ref", "namespace"), t.Ref.Namespace,
			"a workload backed up by sidecar must be in the BackupConfiguration's namespace "+bc.Namespace+": create the BackupConfiguration there"))
	}
	if ns := bc.Spec.Repository.Namespace; ns != "" && ns != bc.Namespace {
		errs = append(errs, field.Invalid(spec.Child("repository", "namespace"), ns,
			"a workload's sidecar mounts the Repository's storage Secret, which cannot cross namespaces: use a Repository in namespace "+bc.Namespace))
	}
	return errs
}

// planCatalog returns l as the planner's Catalog, or nil without a Lookup (a
// nil Lookup inside a non-nil interface would be called).
func planCatalog(l Lookup) plan.Catalog {
	if l == nil {
		return nil
	}
	return l
}

// appBinding returns the AppBinding a target points to, if any.
func appBinding(ref stashv1beta1.TargetRef, ns string, l Lookup) *appcatalogv1alpha1.AppBinding {
	if ref.Kind != "AppBinding" || l == nil {
		return nil
	}
	if ref.Namespace != "" {
		ns = ref.Namespace
	}
	ab, _ := l.AppBinding(ns, ref.Name)
	return ab
}

// IsWorkload says whether kind is a workload, backed up through the
// sidecar model rather than a Task.
func IsWorkload(kind string) bool {
	switch kind {
	case "Deployment", "StatefulSet", "DaemonSet", "DeploymentConfig", "ReplicaSet", "ReplicationController":
		return true
	}
	return false
}

// appBindingMissing says whether ref is an AppBinding the Lookup does not
// hold: then its StashAddon parameters, which may name the Task, are
// unknown, and a missing task name is not an error.
func appBindingMissing(ref stashv1beta1.TargetRef, ns string, l Lookup) bool {
	return ref.Kind == "AppBinding" && ref.Name != "" && l != nil && appBinding(ref, ns, l) == nil
}

// targetRef checks a target reference; taskNamed says whether the invoker
// names its Task (otherwise an AppBinding's StashAddon parameters do).
func targetRef(p *field.Path, ref stashv1beta1.TargetRef, ns string, taskNamed bool, l Lookup) field.ErrorList {
	var errs field.ErrorList
	if ref.Kind == "" {
		errs = append(errs, field.Required(p.Child("kind"), "Deployment, StatefulSet, DaemonSet, PersistentVolumeClaim or AppBinding"))
	}
	if ref.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	if ref.Kind == "AppBinding" && l != nil && ref.Name != "" {
		tns := ref.Namespace
		if tns == "" {
			tns = ns
		}
		if _, ok := l.AppBinding(tns, ref.Name); !ok {
			missing := Ref{Object: Object{Kind: "AppBinding", Namespace: tns, Name: ref.Name}}
			if !taskNamed {
				missing.Unchecked = "nor the Task its StashAddon parameters name"
			}
			errs = append(errs, notFound(p, missing, "AppBinding "+tns+"/"+ref.Name))
		}
	}
	return errs
}

// RestoreSession validates a RestoreSession and its references.
func RestoreSession(rs *stashv1beta1.RestoreSession, l Lookup) field.ErrorList {
	spec := field.NewPath("spec")
	var errs field.ErrorList
	_, rerrs := repositoryRef(spec.Child("repository"), rs.Spec.Repository, rs.Namespace, l)
	errs = append(errs, rerrs...)
	t := rs.Spec.Target
	if t == nil {
		errs = append(errs, field.Required(spec.Child("target"), "set target.ref, or target.volumeClaimTemplates to restore into new PVCs"))
		return errs
	}
	if t.Ref.Kind != "" {
		for _, e := range targetRef(spec.Child("target", "ref"), t.Ref, rs.Namespace, rs.Spec.Task.Name != "", l) {
			// A database restored into new claims (a Galera cluster's
			// replicas) is created after the restore, with its
			// AppBinding, from those claims: Stash's guide names the
			// AppBinding-to-be.
			if e.Type == field.ErrorTypeNotFound && t.Ref.Kind == "AppBinding" && len(t.VolumeClaimTemplates) > 0 {
				continue
			}
			errs = append(errs, e)
		}
	} else if len(t.VolumeClaimTemplates) == 0 {
		errs = append(errs, field.Required(spec.Child("target", "ref"), "set target.ref, or target.volumeClaimTemplates"))
	}
	workload := IsWorkload(t.Ref.Kind)
	task, err := plan.AddonTask(appBinding(t.Ref, rs.Namespace, l), true, rs.Spec.Task)
	if err != nil {
		errs = append(errs, field.Invalid(spec.Child("target", "ref"), t.Ref.Name, err.Error()))
	}
	// An AppBinding-to-be (restored into new claims) has no StashAddon
	// parameters yet: the RestoreSession must name the Task.
	toBe := t.Ref.Kind == "AppBinding" && len(t.VolumeClaimTemplates) > 0
	errs = append(errs, taskRef(spec.Child("task"), task, l, !workload && (toBe || !appBindingMissing(t.Ref, rs.Namespace, l)))...)
	errs = append(errs, plan.CheckTaskParams(appBinding(t.Ref, rs.Namespace, l), true, rs.Spec.Task, planCatalog(l))...)
	if err == nil {
		errs = append(errs, invokerVariables(spec.Child("task", "params"), task, appBinding(t.Ref, rs.Namespace, l), rs.Spec.Task.Name == "", true, l)...)
	}
	if workload && rs.Spec.Task.Name == "" {
		if len(t.VolumeMounts) == 0 {
			errs = append(errs, field.Required(spec.Child("target", "volumeMounts"), "mount the workload's volumes to restore into the init container (name and mountPath, as in the workload's container)"))
		}
		if t.Ref.Namespace != "" && t.Ref.Namespace != rs.Namespace {
			errs = append(errs, field.Invalid(spec.Child("target", "ref", "namespace"), t.Ref.Namespace,
				"a workload restored by init container must be in the RestoreSession's namespace "+rs.Namespace))
		}
		if ns := rs.Spec.Repository.Namespace; ns != "" && ns != rs.Namespace {
			errs = append(errs, field.Invalid(spec.Child("repository", "namespace"), ns,
				"the init container mounts the Repository's storage Secret, which cannot cross namespaces: use a Repository in namespace "+rs.Namespace))
		}
		if h := rs.Spec.Hooks; h != nil && (h.PreRestore != nil || h.PostRestore != nil) {
			errs = append(errs, field.Forbidden(spec.Child("hooks"),
				"a restore into a "+t.Ref.Kind+" runs in its pods' init container, before the application's containers start, so a hook could not reach them: remove spec.hooks (run what you need in the application's own start-up, or restore into a PVC with the pvc-restore Task and its hooks)"))
		}
	}
	rulesPath := spec.Child("target", "rules")
	rules := t.Rules
	if len(rules) == 0 && len(rs.Spec.Rules) > 0 {
		rules, rulesPath = rs.Spec.Rules, spec.Child("rules")
	}
	errs = append(errs, Rules(rulesPath, rules)...)
	if rs.Spec.Hooks != nil {
		errs = append(errs, hook(spec.Child("hooks", "preRestore"), rs.Spec.Hooks.PreRestore)...)
		if pr := rs.Spec.Hooks.PostRestore; pr != nil {
			errs = append(errs, hook(spec.Child("hooks", "postRestore"), &pr.Handler)...)
		}
	}
	return errs
}

// Rules checks restore rules: at most one without targetHosts, no host in
// two rules, snapshots xor paths.
func Rules(p *field.Path, rules []stashv1beta1.Rule) field.ErrorList {
	var errs field.ErrorList
	catchAll := -1
	seen := map[string]int{}
	for i, r := range rules {
		rp := p.Index(i)
		if len(r.TargetHosts) == 0 {
			if catchAll >= 0 {
				errs = append(errs, field.Duplicate(rp.Child("targetHosts"), fmt.Sprintf("rules %d and %d both leave targetHosts empty: only one rule may apply to all other hosts", catchAll, i)))
			}
			catchAll = i
		}
		for j, h := range r.TargetHosts {
			if prev, dup := seen[h]; dup {
				errs = append(errs, field.Duplicate(rp.Child("targetHosts").Index(j), fmt.Sprintf("host %s is already in rule %d", h, prev)))
			}
			seen[h] = i
		}
		if len(r.Snapshots) > 0 && len(r.Paths) > 0 {
			errs = append(errs, field.Invalid(rp.Child("paths"), r.Paths, "set snapshots or paths, not both: a snapshot holds one path"))
		}
	}
	return errs
}

// Function validates a Function: it has an image, and its placeholders
// are well-formed.
func Function(f *stashv1beta1.Function) field.ErrorList {
	if f.Spec.Image == "" {
		return field.ErrorList{field.Required(field.NewPath("spec", "image"), "the container image the step runs")}
	}
	return placeholderSyntax(f.Spec)
}

// Task validates a Task: its Functions exist, it ends with update-status,
// and every variable it and its Functions use will have a value (see
// taskVariables). A parameter its invokers must set is a warning
// (IsWarning).
func Task(t *stashv1beta1.Task, l Lookup) field.ErrorList {
	p := field.NewPath("spec", "steps")
	if len(t.Spec.Steps) == 0 {
		return field.ErrorList{field.Required(p, "a Task runs at least one Function")}
	}
	var errs field.ErrorList
	for i, s := range t.Spec.Steps {
		if s.Name == "" {
			errs = append(errs, field.Required(p.Index(i).Child("name"), "name the Function"))
		} else if l != nil {
			if _, ok := l.Function(s.Name); !ok {
				errs = append(errs, notFound(p.Index(i).Child("name"), Ref{Object: Object{Kind: "Function", Name: s.Name}, Catalog: true}, s.Name))
			}
		}
	}
	if e := lastStep(p, t.Spec.Steps); e != nil {
		errs = append(errs, e)
	}
	return append(errs, taskVariables(t, l)...)
}

// AppBinding validates an AppBinding.
func AppBinding(a *appcatalogv1alpha1.AppBinding, l Lookup) field.ErrorList {
	p := field.NewPath("spec", "clientConfig")
	var errs field.ErrorList
	cc := a.Spec.ClientConfig
	if (cc.URL == nil || *cc.URL == "") && cc.Service == nil {
		errs = append(errs, field.Required(p, "set clientConfig.url or clientConfig.service"))
	}
	if cc.Service != nil {
		if cc.Service.Name == "" {
			errs = append(errs, field.Required(p.Child("service", "name"), ""))
		}
		if cc.Service.Port <= 0 || cc.Service.Port > 65535 {
			errs = append(errs, field.Invalid(p.Child("service", "port"), cc.Service.Port, "must be 1-65535"))
		}
	}
	if s := a.Spec.Secret; s != nil && l != nil {
		if _, ok := l.SecretData(a.Namespace, s.Name); !ok {
			errs = append(errs, notFound(field.NewPath("spec", "secret", "name"),
				Ref{Object: Object{Kind: "Secret", Namespace: a.Namespace, Name: s.Name}, Unchecked: "nor whether it holds the credentials"}, "Secret "+a.Namespace+"/"+s.Name))
		}
	}
	return errs
}
