package plan_test

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/plan"
)

// TestCatalogPodSecurity checks every Job of the catalog against the Pod
// Security Standards: database backups and restores meet restricted; the
// PVC steps, which ask for root, meet baseline and are refused by
// restricted. Every step has resource requests and, being the stash
// binary, a read-only root filesystem with TMPDIR and HOME on /stash-tmp.
func TestCatalogPodSecurity(t *testing.T) {
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	names := cat.TaskNames()
	if len(names) < 10 {
		t.Fatalf("catalog has %d Tasks", len(names))
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			for _, job := range catalogJobs(t, cat, name, goldenRepo) {
				pod := &job.Spec.Template.Spec
				want := plan.LevelRestricted
				if strings.HasPrefix(name, "pvc-") {
					want = plan.LevelBaseline
					if v := plan.PodSecurityViolations(plan.LevelRestricted, pod); len(v) == 0 {
						t.Errorf("%s meets restricted, but it must run as root", job.Name)
					}
					if sc := pod.SecurityContext; sc.FSGroup != nil {
						t.Errorf("%s sets fsGroup %d: the kubelet would change the group of the user's volume", job.Name, *sc.FSGroup)
					}
				}
				if v := plan.PodSecurityViolations(want, pod); len(v) > 0 {
					t.Errorf("%s does not meet %s: %s", job.Name, want, strings.Join(v, "; "))
				}
				if got := plan.PodSecurityLevel(pod); got != want {
					t.Errorf("%s: level %s, want %s", job.Name, got, want)
				}
				for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
					checkStepContainer(t, c)
				}
			}
		})
	}
}

func checkStepContainer(t *testing.T, c corev1.Container) {
	t.Helper()
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
		t.Errorf("%s has no cpu/memory requests: %v", c.Name, c.Resources.Requests)
	}
	if len(c.Resources.Limits) > 0 {
		t.Errorf("%s has default limits %v", c.Name, c.Resources.Limits)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("%s: root filesystem not read-only", c.Name)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	for _, k := range []string{"TMPDIR", "HOME"} {
		if !strings.HasPrefix(env[k], plan.ScratchDir+"/") {
			t.Errorf("%s: %s=%q is not under %s", c.Name, k, env[k], plan.ScratchDir)
		}
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool {
		return m.Name == plan.ScratchVolume && m.MountPath == plan.ScratchDir && !m.ReadOnly
	}) {
		t.Errorf("%s does not mount %s", c.Name, plan.ScratchDir)
	}
}

// TestPodSecurityChecker shows the checker refuses what each rule forbids:
// a pod that meets restricted, broken one rule at a time.
func TestPodSecurityChecker(t *testing.T) {
	good := func() *corev1.PodSpec {
		return &corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot: ptr(true), RunAsUser: ptr(int64(1000)),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			InitContainers: []corev1.Container{{Name: "init", SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			}}},
			Containers: []corev1.Container{{Name: "main", SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: ptr(false),
				Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_BIND_SERVICE"}},
			}}},
			Volumes: []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		}
	}
	if v := plan.PodSecurityViolations(plan.LevelRestricted, good()); len(v) > 0 {
		t.Fatalf("the good pod breaks restricted: %v", v)
	}
	main := func(p *corev1.PodSpec) *corev1.SecurityContext { return p.Containers[0].SecurityContext }
	cases := []struct {
		name     string
		break_   func(p *corev1.PodSpec)
		baseline bool // still meets baseline
	}{
		{"no runAsNonRoot", func(p *corev1.PodSpec) { p.SecurityContext.RunAsNonRoot = nil }, true},
		{"container runAsNonRoot false", func(p *corev1.PodSpec) { main(p).RunAsNonRoot = ptr(false) }, true},
		{"pod runAsUser 0", func(p *corev1.PodSpec) { p.SecurityContext.RunAsUser = ptr(int64(0)) }, true},
		{"container runAsUser 0", func(p *corev1.PodSpec) { main(p).RunAsUser = ptr(int64(0)) }, true},
		{"no seccomp", func(p *corev1.PodSpec) { p.SecurityContext.SeccompProfile = nil }, true},
		{"unconfined seccomp", func(p *corev1.PodSpec) {
			main(p).SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
		}, false},
		{"escalation allowed", func(p *corev1.PodSpec) { main(p).AllowPrivilegeEscalation = ptr(true) }, true},
		{"escalation unset in an init container", func(p *corev1.PodSpec) {
			p.InitContainers[0].SecurityContext.AllowPrivilegeEscalation = nil
		}, true},
		{"capabilities not dropped", func(p *corev1.PodSpec) { main(p).Capabilities.Drop = nil }, true},
		{"baseline capability added", func(p *corev1.PodSpec) { main(p).Capabilities.Add = []corev1.Capability{"CHOWN"} }, true},
		{"SYS_ADMIN added", func(p *corev1.PodSpec) { main(p).Capabilities.Add = []corev1.Capability{"SYS_ADMIN"} }, false},
		{"privileged", func(p *corev1.PodSpec) { main(p).Privileged = ptr(true) }, false},
		{"hostPath", func(p *corev1.PodSpec) {
			p.Volumes = append(p.Volumes, corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}})
		}, false},
		{"nfs volume", func(p *corev1.PodSpec) {
			p.Volumes = append(p.Volumes, corev1.Volume{Name: "nfs", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "s", Path: "/"}}})
		}, true},
		{"hostNetwork", func(p *corev1.PodSpec) { p.HostNetwork = true }, false},
		{"hostPID", func(p *corev1.PodSpec) { p.HostPID = true }, false},
		{"hostPort", func(p *corev1.PodSpec) {
			p.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 80, HostPort: 80}}
		}, false},
		{"unsafe sysctl", func(p *corev1.PodSpec) {
			p.SecurityContext.Sysctls = []corev1.Sysctl{{Name: "kernel.msgmax", Value: "1"}}
		}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := good()
			tc.break_(p)
			if v := plan.PodSecurityViolations(plan.LevelRestricted, p); len(v) == 0 {
				t.Errorf("restricted admits it")
			}
			v := plan.PodSecurityViolations(plan.LevelBaseline, p)
			if tc.baseline && len(v) > 0 {
				t.Errorf("baseline refuses it: %v", v)
			}
			if !tc.baseline && len(v) == 0 {
				t.Errorf("baseline admits it")
			}
		})
	}
}

// TestSecurityOverrides: a user's runtimeSettings still win, field by
// field, as in Stash.
func TestSecurityOverrides(t *testing.T) {
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	// A restore as a chosen user (Stash users set this to own restored
	// files): the pod's user changes, the rest of the defaults stay.
	rs := &stashv1beta1.RestoreSession{ObjectMeta: metaNS("r", "demo")}
	rs.Spec.Task = stashv1beta1.TaskRef{Name: "pvc-restore"}
	rs.Spec.Repository = stashv1beta1.ObjectReference{Name: goldenRepo.Name}
	rs.Spec.Target = &stashv1beta1.RestoreTarget{Ref: stashv1beta1.TargetRef{Kind: "PersistentVolumeClaim", Name: "data"}}
	rs.Spec.RuntimeSettings.Pod = &stashv1beta1.PodRuntimeSettings{SecurityContext: &corev1.PodSecurityContext{
		RunAsUser: ptr(int64(1000)), RunAsNonRoot: ptr(true), FSGroup: ptr(int64(2000)),
	}}
	jobs, err := plan.RestoreJobs(plan.RestoreRequest{Session: rs, Repository: goldenRepo, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	psc := jobs[0].Spec.Template.Spec.SecurityContext
	if *psc.RunAsUser != 1000 || *psc.RunAsGroup != 0 || *psc.FSGroup != 2000 || !*psc.RunAsNonRoot || psc.SeccompProfile == nil {
		t.Errorf("pod securityContext %+v", psc)
	}
	for _, c := range jobs[0].Spec.Template.Spec.InitContainers {
		if c.SecurityContext.RunAsUser != nil {
			t.Errorf("%s sets runAsUser %d over the user's pod setting", c.Name, *c.SecurityContext.RunAsUser)
		}
	}

	// Stash's documented fix for files a non-root backup cannot read:
	// runAsUser 0 on the container. It must start (runAsNonRoot false over
	// the pod's true) and keep the other defaults.
	bc := &stashv1beta1.BackupConfiguration{ObjectMeta: metaNS("b", "demo")}
	bc.Spec.Task = stashv1beta1.TaskRef{Name: "postgres-backup-16.1"}
	bc.Spec.Target = &stashv1beta1.BackupTarget{Ref: stashv1beta1.TargetRef{Kind: "AppBinding", Name: "db"}}
	bc.Spec.Repository = stashv1beta1.ObjectReference{Name: goldenRepo.Name}
	bc.Spec.RuntimeSettings.Container = &stashv1beta1.ContainerRuntimeSettings{
		SecurityContext: &corev1.SecurityContext{RunAsUser: ptr(int64(0))},
		Resources:       corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}},
	}
	job, err := plan.BackupJob(plan.BackupRequest{Config: bc, Session: "s", Repository: goldenRepo, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	c := job.Spec.Template.Spec.InitContainers[0]
	sc := c.SecurityContext
	if *sc.RunAsUser != 0 || sc.RunAsNonRoot == nil || *sc.RunAsNonRoot || *sc.AllowPrivilegeEscalation || sc.Capabilities.Drop[0] != "ALL" || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("container securityContext %+v", sc)
	}
	// Resources a user sets replace the default requests: a 64Mi limit
	// under a 128Mi default request would be an invalid pod.
	if len(c.Resources.Requests) != 0 || c.Resources.Limits.Memory().String() != "64Mi" {
		t.Errorf("resources %+v", c.Resources)
	}
}

// TestHostPathRepositoryNeedsPrivileged: a local backend on a hostPath
// puts a hostPath volume in every step pod, which no Pod Security level
// but privileged admits: the one exception to the defaults, documented.
func TestHostPathRepositoryNeedsPrivileged(t *testing.T) {
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	hostRepo := &stashv1alpha1.Repository{ObjectMeta: metaNS("local", "demo"), Spec: stashv1alpha1.RepositorySpec{Backend: stashv1alpha1.Backend{
		StorageSecretName: "s",
		Local: &stashv1alpha1.LocalSpec{MountPath: "/repo", VolumeSource: corev1.VolumeSource{
			HostPath: &corev1.HostPathVolumeSource{Path: "/srv/backup"},
		}},
	}}}
	for _, j := range catalogJobs(t, cat, "postgres-backup-16.1", hostRepo) {
		if got := plan.PodSecurityLevel(&j.Spec.Template.Spec); got != plan.LevelPrivileged {
			t.Errorf("hostPath repository: level %s", got)
		}
	}
	pvcRepo := hostRepo.DeepCopy()
	pvcRepo.Spec.Backend.Local.VolumeSource = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "repo"}}
	for _, j := range catalogJobs(t, cat, "postgres-backup-16.1", pvcRepo) {
		if got := plan.PodSecurityLevel(&j.Spec.Template.Spec); got != plan.LevelRestricted {
			t.Errorf("PVC repository: level %s", got)
		}
	}
}

func ptr[T any](v T) *T { return &v }
