package plan

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// Catalog finds Tasks and Functions by name.
type Catalog interface {
	Task(name string) (*stashv1beta1.Task, bool)
	Function(name string) (*stashv1beta1.Function, bool)
}

// Labels Stash puts on the objects it creates.
const (
	LabelInvokerType = "stash.appscode.com/invoker-type"
	LabelInvokerName = "stash.appscode.com/invoker-name"
	LabelComponent   = "app.kubernetes.io/component"
	LabelManagedBy   = "app.kubernetes.io/managed-by"
	ManagedBy        = "stash.appscode.com"
	// AnnotationHostname on a step Job names the host whose stats it
	// reports, so a runtime can fail that host when the Job fails.
	AnnotationHostname = "stash.appscode.com/hostname"
)

// BackupRequest is what the Job of one BackupSession is built from.
type BackupRequest struct {
	Config *stashv1beta1.BackupConfiguration
	// AppBinding is the target, when it is one; its StashAddon parameters
	// name the Task when the invoker names none.
	AppBinding *appcatalogv1alpha1.AppBinding
	Session    string
	Repository *stashv1alpha1.Repository
	Catalog    Catalog
	Image      Image
}

// BackupJob resolves the BackupConfiguration's Task into the Job that runs
// a new BackupSession, as Stash's resolver does.
func BackupJob(req BackupRequest) (*batchv1.Job, error) {
	bc := req.Config
	taskRef, err := AddonTask(req.AppBinding, false, bc.Spec.Task)
	if err != nil {
		return nil, err
	}
	if taskRef.Name == "" {
		return nil, fmt.Errorf("BackupConfiguration %s/%s: spec.task.name is empty: the job model needs a Task (sidecar backups of workloads have none)", bc.Namespace, bc.Name)
	}
	// Validation refuses these too; the planner refuses again so that a
	// runtime that skipped validation still cannot build the Job.
	if errs := CheckTaskParams(req.AppBinding, false, bc.Spec.Task, req.Catalog); len(errs) > 0 {
		return nil, fmt.Errorf("BackupConfiguration %s/%s: %w", bc.Namespace, bc.Name, errs.ToAggregate())
	}
	if bc.Spec.Target == nil {
		return nil, fmt.Errorf("BackupConfiguration %s/%s: spec.target is required", bc.Namespace, bc.Name)
	}
	t := bc.Spec.Target
	tgt := Target{Ref: t.Ref, Alias: t.Alias, Paths: t.Paths, Exclude: t.Exclude, Args: t.Args, Replicas: t.Replicas}
	if len(t.VolumeMounts) > 0 {
		tgt.MountPath = t.VolumeMounts[0].MountPath
	}
	inv := Invocation{
		Namespace: bc.Namespace, Session: req.Session,
		InvokerKind: "BackupConfiguration", InvokerName: bc.Name,
		Repository: req.Repository, Target: tgt, Retention: bc.Spec.RetentionPolicy,
		TempDir: bc.Spec.TempDir, Interim: bc.Spec.InterimVolumeTemplate != nil,
		Image: orImage(req.Image), Hostname: orDefault(t.Alias, "host-0"),
	}
	js := jobSpec{
		inv: inv, task: taskRef, runtime: bc.Spec.RuntimeSettings, tempDir: bc.Spec.TempDir,
		interim: bc.Spec.InterimVolumeTemplate, owner: "BackupSession", ownerName: req.Session,
		name: BackupJobName(req.Session), component: "stash-backup",
		serviceAccount: BackupServiceAccount(bc.Name),
	}
	if h := bc.Spec.Hooks; h != nil {
		js.preHook, js.postHook = h.PreBackup, h.PostBackup
		js.preType, js.postType = "preBackup", "postBackup"
	}
	return build(js, req.Catalog)
}

// RestoreRequest is what the Jobs of one RestoreSession are built from.
type RestoreRequest struct {
	Session *stashv1beta1.RestoreSession
	// AppBinding is the target, when it is one (see BackupRequest).
	AppBinding *appcatalogv1alpha1.AppBinding
	Repository *stashv1alpha1.Repository
	Catalog    Catalog
	Image      Image
}

// restorePerReplica says whether a restore target gets one Job per
// replica.
func restorePerReplica(t *stashv1beta1.RestoreTarget) bool {
	return t != nil && len(t.VolumeClaimTemplates) > 0 && t.Replicas != nil
}

// RestoreHosts are the hosts whose data a RestoreSession of the job model
// restores, in the order of its Jobs (each Job's AnnotationHostname): the
// target's alias or host-0, or with volumeClaimTemplates and replicas one
// per replica, host-<ordinal> (<alias>-<ordinal>). A runtime knows from
// them which hosts can still report.
func RestoreHosts(rs *stashv1beta1.RestoreSession) []string {
	t := rs.Spec.Target
	alias := ""
	if t != nil {
		alias = t.Alias
	}
	if !restorePerReplica(t) {
		return []string{orDefault(alias, "host-0")}
	}
	return OrdinalHosts(alias, 0, *t.Replicas)
}

// OrdinalHosts are the hosts of the replicas with ordinals from to to-1
// (a StatefulSet's pods, a per-replica restore's Jobs): <alias>-<ordinal>,
// host-<ordinal> without an alias, as WorkloadHost names them.
func OrdinalHosts(alias string, from, to int32) []string {
	prefix := orDefault(alias, "host")
	hosts := make([]string, 0, max(to-max(from, 0), 0))
	for ord := max(from, 0); ord < to; ord++ {
		hosts = append(hosts, prefix+"-"+strconv.Itoa(int(ord)))
	}
	return hosts
}

// RestoreJobs resolves the RestoreSession's Task into its Jobs: one, or
// one per replica when the target has volumeClaimTemplates and replicas
// (host-<ordinal> each, ${POD_ORDINAL} substituted).
func RestoreJobs(req RestoreRequest) ([]*batchv1.Job, error) {
	rs := req.Session
	taskRef, err := AddonTask(req.AppBinding, true, rs.Spec.Task)
	if err != nil {
		return nil, err
	}
	if taskRef.Name == "" {
		return nil, fmt.Errorf("RestoreSession %s/%s: spec.task.name is empty: the job model needs a Task", rs.Namespace, rs.Name)
	}
	if errs := CheckTaskParams(req.AppBinding, true, rs.Spec.Task, req.Catalog); len(errs) > 0 {
		return nil, fmt.Errorf("RestoreSession %s/%s: %w", rs.Namespace, rs.Name, errs.ToAggregate())
	}
	t := rs.Spec.Target
	if t == nil {
		t = &stashv1beta1.RestoreTarget{}
	}
	rules := t.Rules
	if len(rules) == 0 {
		rules = rs.Spec.Rules
	}
	perReplica := restorePerReplica(t)
	var jobs []*batchv1.Job
	for ord, host := range RestoreHosts(rs) {
		name := RestoreJobName(rs.Name, -1)
		if perReplica {
			name = RestoreJobName(rs.Name, ord)
		}
		rule := RuleForHost(rules, host)
		ref := t.Ref
		if ref.Name == "" && len(t.VolumeClaimTemplates) > 0 {
			ref.Name = t.VolumeClaimTemplates[0].Name
		}
		// A claim name such as data-${POD_ORDINAL} names this replica's
		// claim; the value of ${TARGET_NAME} is not substituted again.
		if n, err := Substitute(ref.Name, map[string]string{"POD_ORDINAL": strconv.Itoa(ord)}); err == nil {
			ref.Name = n
		}
		tgt := Target{Ref: ref, Alias: t.Alias, Args: t.Args, Replicas: t.Replicas}
		if len(t.VolumeMounts) > 0 {
			tgt.MountPath = t.VolumeMounts[0].MountPath
		}
		if rule != nil {
			tgt.SourceHost, tgt.Snapshots, tgt.RestorePaths = rule.SourceHost, rule.Snapshots, rule.Paths
			tgt.Include, tgt.Exclude = rule.Include, rule.Exclude
		}
		inv := Invocation{
			Restore: true, Namespace: rs.Namespace, Session: rs.Name,
			InvokerKind: "RestoreSession", InvokerName: rs.Name,
			Repository: req.Repository, Target: tgt,
			TempDir: rs.Spec.TempDir, Interim: rs.Spec.InterimVolumeTemplate != nil,
			Image: orImage(req.Image), Hostname: host,
		}
		js := jobSpec{
			inv: inv, task: taskRef, runtime: rs.Spec.RuntimeSettings, tempDir: rs.Spec.TempDir,
			interim: rs.Spec.InterimVolumeTemplate, owner: "RestoreSession", ownerName: rs.Name,
			name: name, component: "stash-restore", serviceAccount: RestoreServiceAccount(rs.Name),
		}
		if perReplica {
			js.ordinal = strconv.Itoa(ord)
			js.claimVolumes, js.claimMounts = replicaClaims(t, ord)
		}
		if h := rs.Spec.Hooks; h != nil {
			js.preHook, js.postHook = h.PreRestore, h.PostRestore
			js.preType, js.postType = "preRestore", "postRestore"
		}
		job, err := build(js, req.Catalog)
		if err != nil {
			return nil, err
		}
		jobs = append(jobs, job)
	}
	return jobs, nil
}

// replicaClaims returns the volumes of replica ord's claims that the
// target's volumeMounts name, and those mounts, as Stash mounts them for a
// database restored into new claims (a Galera replica's data directory):
// the template data-db-${POD_ORDINAL} is the volume data-db, and replica
// 1's claim data-db-1.
func replicaClaims(t *stashv1beta1.RestoreTarget, ord int) ([]corev1.Volume, []corev1.VolumeMount) {
	var vols []corev1.Volume
	var mounts []corev1.VolumeMount
	for _, tpl := range t.VolumeClaimTemplates {
		vol := strings.TrimSuffix(strings.TrimSuffix(tpl.Name, "${POD_ORDINAL}"), "-")
		claim, err := Substitute(tpl.Name, map[string]string{"POD_ORDINAL": strconv.Itoa(ord)})
		if err != nil {
			continue
		}
		for _, m := range t.VolumeMounts {
			if m.Name == vol {
				vols = append(vols, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: claim},
				}})
				mounts = append(mounts, m)
				break
			}
		}
	}
	return vols, mounts
}

// RuleForHost picks the restore rule for a host as Stash does: a rule that
// lists the host wins; otherwise the last rule with no targetHosts.
func RuleForHost(rules []stashv1beta1.Rule, host string) *stashv1beta1.Rule {
	var fallback *stashv1beta1.Rule
	for i := range rules {
		r := &rules[i]
		if len(r.TargetHosts) == 0 {
			fallback = r
			continue
		}
		for _, h := range r.TargetHosts {
			if h == host {
				return r
			}
		}
	}
	return fallback
}

func orImage(i Image) Image {
	if i.Name == "" {
		return DefaultImage
	}
	return i
}

type jobSpec struct {
	inv            Invocation
	task           stashv1beta1.TaskRef
	runtime        stashv1beta1.RuntimeSettings
	tempDir        stashv1beta1.EmptyDirSettings
	interim        *stashv1beta1.PersistentVolumeClaim
	owner          string
	ownerName      string
	name           string
	component      string
	serviceAccount string
	ordinal        string
	// claimVolumes and claimMounts are a replica's claims and where the
	// target's volumeMounts put them in the restore steps.
	claimVolumes []corev1.Volume
	claimMounts  []corev1.VolumeMount
	preHook      *stashv1beta1.Handler
	postHook     *stashv1beta1.PostHook
	preType      string
	postType     string
}

// substituteInto substitutes vars into in (via JSON) and decodes into out.
func substituteInto(in any, vars map[string]string, out any) error {
	raw, err := json.Marshal(in)
	if err != nil {
		return err
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return err
	}
	tree, err = SubstituteAll(tree, vars)
	if err != nil {
		return err
	}
	raw, err = json.Marshal(tree)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

func build(js jobSpec, cat Catalog) (*batchv1.Job, error) {
	vars := Variables(js.inv)
	if js.ordinal != "" {
		vars["POD_ORDINAL"] = js.ordinal
	}
	task, ok := cat.Task(js.task.Name)
	if !ok {
		return nil, fmt.Errorf("Task %q not found: install the addon that provides it (stash addons list)", js.task.Name)
	}
	// The one place params meet the variables: whatever the caller checked,
	// none may replace a variable that chooses image, repository,
	// namespace or a volume source.
	if errs := CheckParams(field.NewPath("task", "params"), js.task.Params, task, cat); len(errs) > 0 {
		return nil, fmt.Errorf("%s %s/%s: %w", js.inv.InvokerKind, js.inv.Namespace, js.inv.InvokerName, errs.ToAggregate())
	}
	for _, p := range js.task.Params {
		vars[p.Name] = p.Value
	}
	var taskSpec stashv1beta1.TaskSpec
	if err := substituteInto(task.Spec, vars, &taskSpec); err != nil {
		return nil, fmt.Errorf("Task %q: %w", task.Name, err)
	}
	var containers []corev1.Container
	// Steps run as StepUser under the restricted Pod Security Standard
	// unless a Function asks for root; then the whole pod does, because
	// its steps share /stash-tmp (baseline, with the Function's
	// capabilities).
	podSecurity := restrictedPodSecurity()
	root := false
	if js.preHook != nil {
		containers = append(containers, hookContainer(js, js.preType))
	}
	for i, step := range taskSpec.Steps {
		fn, ok := cat.Function(step.Name)
		if !ok {
			return nil, fmt.Errorf("Task %q step %d: Function %q not found", task.Name, i, step.Name)
		}
		inputs := map[string]string{}
		for _, p := range step.Params {
			inputs[p.Name] = p.Value
		}
		for k, v := range vars {
			inputs[k] = v
		}
		// The image as the step will run it: catalog images are templates
		// (${STASH_DOCKER_REGISTRY:=…}/stash-postgres:${STASH_IMAGE_TAG:=…}).
		img, err := Substitute(fn.Spec.Image, inputs)
		if err != nil {
			return nil, fmt.Errorf("Task %q step %d: Function %q: spec.image: %w", task.Name, i, fn.Name, err)
		}
		inputs["ADDON_IMAGE"] = img
		var spec stashv1beta1.FunctionSpec
		if err := substituteInto(fn.Spec, inputs, &spec); err != nil {
			return nil, fmt.Errorf("Task %q step %d: Function %q: %w", task.Name, i, fn.Name, err)
		}
		if err := checkMounts(spec.VolumeMounts, spec.VolumeDevices); err != nil {
			return nil, fmt.Errorf("Task %q step %d: Function %q: %w", task.Name, i, fn.Name, err)
		}
		containers = append(containers, stepContainer(js, fn.Name, i, spec))
		if rs := spec.RuntimeSettings; rs != nil && rs.SecurityContext != nil {
			if asksForRoot(rs) {
				root = true
			}
			podSecurity = MergePodSecurityContext(podSecurity, &corev1.PodSecurityContext{
				RunAsUser: rs.SecurityContext.RunAsUser, RunAsGroup: rs.SecurityContext.RunAsGroup, RunAsNonRoot: rs.SecurityContext.RunAsNonRoot,
			})
		}
	}
	if js.postHook != nil {
		containers = append(containers, hookContainer(js, js.postType))
	}
	volumes := append([]corev1.Volume{}, taskSpec.Volumes...)
	for _, v := range js.claimVolumes {
		if !slices.ContainsFunc(volumes, func(x corev1.Volume) bool { return x.Name == v.Name }) {
			volumes = append(volumes, v)
		}
	}
	for i := range containers {
		for _, m := range js.claimMounts {
			if !slices.ContainsFunc(containers[i].VolumeMounts, func(x corev1.VolumeMount) bool { return x.Name == m.Name || x.MountPath == m.MountPath }) {
				containers[i].VolumeMounts = append(containers[i].VolumeMounts, m)
			}
		}
	}
	volumes = append(volumes, corev1.Volume{Name: ScratchVolume, VolumeSource: corev1.VolumeSource{
		EmptyDir: &corev1.EmptyDirVolumeSource{Medium: js.tempDir.Medium, SizeLimit: js.tempDir.SizeLimit},
	}})
	if js.interim != nil {
		volumes = append(volumes, corev1.Volume{Name: InterimVolume, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: js.ownerName + "-" + js.interim.Name},
		}})
	}
	if l := localBackend(js.inv.Repository); l != nil {
		// Steps reach a local backend through its volume, mounted where
		// the Function's --bucket (REPOSITORY_BUCKET) points.
		volumes = append(volumes, corev1.Volume{Name: LocalBackendVolume, VolumeSource: l.VolumeSource})
		for i := range containers {
			containers[i].VolumeMounts = append(containers[i].VolumeMounts, corev1.VolumeMount{Name: LocalBackendVolume, MountPath: l.MountPath, SubPath: l.SubPath})
		}
	}
	if root {
		podSecurity = rootPodSecurity()
	}
	labels := map[string]string{
		LabelComponent: js.component, LabelManagedBy: ManagedBy,
		LabelInvokerType: js.inv.InvokerKind, LabelInvokerName: LabelValue(js.inv.InvokerName),
	}
	pod := corev1.PodSpec{
		InitContainers:     containers[:len(containers)-1],
		Containers:         containers[len(containers)-1:],
		RestartPolicy:      corev1.RestartPolicyNever,
		Volumes:            volumes,
		ServiceAccountName: js.serviceAccount,
		SecurityContext:    podSecurity,
	}
	if len(pod.InitContainers) == 0 {
		pod.InitContainers = nil
	}
	podLabels := map[string]string{}
	for k, v := range labels {
		podLabels[k] = v
	}
	var podAnnotations map[string]string
	if p := js.runtime.Pod; p != nil {
		applyPodSettings(&pod, p)
		for k, v := range p.PodLabels {
			podLabels[k] = v
		}
		podAnnotations = p.PodAnnotations
	}
	job := &batchv1.Job{
		TypeMeta: metav1.TypeMeta{APIVersion: "batch/v1", Kind: "Job"},
		ObjectMeta: metav1.ObjectMeta{
			Name: js.name, Namespace: js.inv.Namespace, Labels: labels,
			Annotations: map[string]string{AnnotationHostname: js.inv.Hostname},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: stashv1beta1.GroupVersion.String(), Kind: js.owner, Name: js.ownerName,
				Controller: ptr(true), BlockOwnerDeletion: ptr(true),
			}},
		},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr(int32(0)),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: podLabels, Annotations: podAnnotations},
				Spec:       pod,
			},
		},
	}
	return job, nil
}

func ptr[T any](v T) *T { return &v }

// localBackend returns the Repository's local backend when it names a
// volume (hostPath, PVC, NFS, …) that a pod must mount.
func localBackend(r *stashv1alpha1.Repository) *stashv1alpha1.LocalSpec {
	if r == nil || r.Spec.Backend.Local == nil {
		return nil
	}
	l := r.Spec.Backend.Local
	if reflect.DeepEqual(l.VolumeSource, corev1.VolumeSource{}) {
		return nil
	}
	return l
}

// containerName is Stash's: the Function name with dots replaced, and the
// step index.
func containerName(fn string, i int) string {
	return strings.ReplaceAll(fn, ".", "-") + "-" + strconv.Itoa(i)
}

func stepContainer(js jobSpec, fnName string, i int, spec stashv1beta1.FunctionSpec) corev1.Container {
	// A step of Stash's own image (or the operator's, whatever its name)
	// writes only where the planner mounts volumes.
	stash := IsStashImage(spec.Image) || spec.Image == js.inv.Image.String()
	c := corev1.Container{
		Name:            containerName(fnName, i),
		Image:           spec.Image,
		Command:         spec.Command,
		Args:            spec.Args,
		WorkingDir:      spec.WorkingDir,
		Ports:           spec.Ports,
		VolumeMounts:    append(append([]corev1.VolumeMount{}, spec.VolumeMounts...), corev1.VolumeMount{Name: ScratchVolume, MountPath: ScratchDir}),
		VolumeDevices:   spec.VolumeDevices,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Env:             append(scratchEnv(stash), downwardEnv(js.ordinal)...),
		Resources:       defaultResources(),
		SecurityContext: defaultContainerSecurity(stash),
		// The last log lines of a failed step become its termination
		// message, which the operator copies into the session's error.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	if js.interim != nil {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: InterimVolume, MountPath: InterimMountPath})
	}
	if spec.RuntimeSettings != nil {
		// The Function's user and group are the pod's (see build).
		fs := *spec.RuntimeSettings
		fs.SecurityContext = functionContainerSecurity(fs.SecurityContext)
		applyContainerSettings(&c, &fs)
	}
	if js.runtime.Container != nil {
		applyContainerSettings(&c, js.runtime.Container)
	}
	return c
}

// downwardEnv gives every step its pod and node name, and the ordinal of a
// per-replica restore.
func downwardEnv(ordinal string) []corev1.EnvVar {
	env := []corev1.EnvVar{
		{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	}
	if ordinal != "" {
		env = append(env, corev1.EnvVar{Name: "POD_ORDINAL", Value: ordinal})
	}
	return env
}

func applyContainerSettings(c *corev1.Container, s *stashv1beta1.ContainerRuntimeSettings) {
	// Resources a user sets replace the default requests as a whole: a
	// limit below a default request would make the pod invalid, and the
	// API server fills requests from limits.
	if len(s.Resources.Limits) > 0 || len(s.Resources.Requests) > 0 {
		c.Resources = s.Resources
	}
	if s.LivenessProbe != nil {
		c.LivenessProbe = s.LivenessProbe
	}
	if s.ReadinessProbe != nil {
		c.ReadinessProbe = s.ReadinessProbe
	}
	if s.Lifecycle != nil {
		c.Lifecycle = s.Lifecycle
	}
	// Field by field, as Stash's UpsertSecurityContext: a user who sets
	// runAsUser keeps the dropped capabilities.
	c.SecurityContext = MergeSecurityContext(c.SecurityContext, s.SecurityContext)
	c.Env = append(c.Env, s.Env...)
	c.EnvFrom = append(c.EnvFrom, s.EnvFrom...)
	// Stash wraps restic in nice and ionice; here the step's own process
	// applies them at start (the stash binary reads these variables, whose
	// names are Stash's), which works whatever the image's entrypoint.
	if s.Nice != nil && s.Nice.Adjustment != nil {
		c.Env = setEnv(c.Env, "NICE_ADJUSTMENT", strconv.Itoa(int(*s.Nice.Adjustment)))
	}
	if s.IONice != nil && s.IONice.Class != nil {
		c.Env = setEnv(c.Env, "IONICE_CLASS", strconv.Itoa(int(*s.IONice.Class)))
		if s.IONice.ClassData != nil {
			c.Env = setEnv(c.Env, "IONICE_CLASS_DATA", strconv.Itoa(int(*s.IONice.ClassData)))
		}
	}
}

func setEnv(env []corev1.EnvVar, name, value string) []corev1.EnvVar {
	for i := range env {
		if env[i].Name == name {
			env[i].Value = value
			return env
		}
	}
	return append(env, corev1.EnvVar{Name: name, Value: value})
}

func applyPodSettings(p *corev1.PodSpec, s *stashv1beta1.PodRuntimeSettings) {
	if s.NodeSelector != nil {
		p.NodeSelector = s.NodeSelector
	}
	if s.ServiceAccountName != "" {
		p.ServiceAccountName = s.ServiceAccountName
	}
	p.AutomountServiceAccountToken = s.AutomountServiceAccountToken
	p.NodeName = s.NodeName
	p.SecurityContext = MergePodSecurityContext(p.SecurityContext, s.SecurityContext)
	p.ImagePullSecrets = s.ImagePullSecrets
	p.Affinity = s.Affinity
	p.SchedulerName = s.SchedulerName
	p.Tolerations = s.Tolerations
	p.PriorityClassName = s.PriorityClassName
	p.Priority = s.Priority
	p.ReadinessGates = s.ReadinessGates
	p.RuntimeClassName = s.RuntimeClassName
	p.EnableServiceLinks = s.EnableServiceLinks
	p.TopologySpreadConstraints = s.TopologySpreadConstraints
}

// hookContainer runs a hook through `stash run-hook`.
func hookContainer(js jobSpec, hookType string) corev1.Container {
	sessionFlag := "--backupsession=" + js.inv.Session
	if js.inv.Restore {
		sessionFlag = "--restoresession=" + js.inv.Session
	}
	return corev1.Container{
		Name:  strings.ToLower(hookType) + "-hook",
		Image: js.inv.Image.String(),
		Args: []string{
			"run-hook", "--hook-type=" + hookType, sessionFlag,
			"--namespace=" + js.inv.Namespace,
			"--invoker-kind=" + js.inv.InvokerKind, "--invoker-name=" + js.inv.InvokerName,
			"--target-kind=" + js.inv.Target.Ref.Kind, "--target-name=" + js.inv.Target.Ref.Name,
			"--hostname=" + js.inv.Hostname,
		},
		ImagePullPolicy: corev1.PullIfNotPresent,
		VolumeMounts:    []corev1.VolumeMount{{Name: ScratchVolume, MountPath: ScratchDir}},
		Env:             append(scratchEnv(true), downwardEnv(js.ordinal)...),
		Resources:       defaultResources(),
		SecurityContext: defaultContainerSecurity(true),
	}
}
