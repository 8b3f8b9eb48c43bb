package plan_test

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/plan"
)

func sidecarFixture() plan.Sidecar {
	return plan.Sidecar{
		Config: &stashv1beta1.BackupConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "app-backup", Namespace: "demo"},
			Spec: stashv1beta1.BackupConfigurationSpec{BackupConfigurationTemplateSpec: stashv1beta1.BackupConfigurationTemplateSpec{
				Target: &stashv1beta1.BackupTarget{
					Ref:          stashv1beta1.TargetRef{APIVersion: "apps/v1", Kind: "Deployment", Name: "app"},
					Paths:        []string{"/source/data"},
					VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/source/data"}},
				},
				RuntimeSettings: stashv1beta1.RuntimeSettings{Container: &stashv1beta1.ContainerRuntimeSettings{
					SecurityContext: &corev1.SecurityContext{RunAsUser: ptrTo(int64(0))},
				}},
			}},
		},
		Repository: &stashv1alpha1.Repository{
			ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: "demo"},
			Spec: stashv1alpha1.RepositorySpec{Backend: stashv1alpha1.Backend{
				StorageSecretName: "repo-secret",
				Local:             &stashv1alpha1.LocalSpec{MountPath: "/safe/data", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/stash"}}},
			}},
		},
		Image: plan.Image{Registry: "localhost", Name: "stash", Tag: "t"},
	}
}

func ptrTo[T any](v T) *T { return &v }

func appTemplate() corev1.PodTemplateSpec {
	return corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "app", Image: "busybox", VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/source/data"}}}},
		Volumes:    []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "app-data"}}}},
	}}
}

func TestInjectSidecar(t *testing.T) {
	s := sidecarFixture()
	orig := appTemplate()
	tpl := *orig.DeepCopy()
	plan.InjectSidecar(&tpl, s)
	if !plan.HasSidecar(&tpl) || len(tpl.Spec.Containers) != 2 {
		t.Fatalf("containers %+v", tpl.Spec.Containers)
	}
	c := tpl.Spec.Containers[1]
	wantArgs := []string{"run-backup", "--invoker-kind=BackupConfiguration", "--invoker-name=app-backup",
		"--target-kind=Deployment", "--target-name=app", "--target-namespace=demo", "--secret-dir=" + plan.SidecarSecretDir}
	if !reflect.DeepEqual(c.Args, wantArgs) {
		t.Errorf("args %v, want %v", c.Args, wantArgs)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.Name] = m
	}
	if m := mounts["data"]; !m.ReadOnly || m.MountPath != "/source/data" {
		t.Errorf("target mount %+v: want it read-only at the target's path", m)
	}
	if mounts[plan.SidecarSecretVolume].MountPath != plan.SidecarSecretDir || mounts[plan.SidecarTokenVolume].MountPath != plan.ServiceAccountTokenDir ||
		mounts[plan.LocalBackendVolume].MountPath != "/safe/data" {
		t.Errorf("mounts %+v", c.VolumeMounts)
	}
	// The Secret reaches the sidecar alone.
	for _, other := range tpl.Spec.Containers[:1] {
		for _, m := range other.VolumeMounts {
			if m.Name == plan.SidecarSecretVolume {
				t.Errorf("container %s mounts the repository Secret", other.Name)
			}
		}
	}
	if sc := c.SecurityContext; sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.Capabilities == nil || len(sc.Capabilities.Add) != 1 || sc.Capabilities.Add[0] != "DAC_READ_SEARCH" {
		t.Errorf("securityContext %+v: want the runtime settings' user over the hardened default", sc)
	}
	// Injecting again, or over a template that has it, changes nothing.
	again := *tpl.DeepCopy()
	plan.InjectSidecar(&again, s)
	if !reflect.DeepEqual(again, tpl) {
		t.Error("a second injection changed the template")
	}
	// Pausing is not in the template.
	s.Config.Spec.Paused = true
	paused := *orig.DeepCopy()
	plan.InjectSidecar(&paused, s)
	if !reflect.DeepEqual(paused, tpl) {
		t.Error("pausing the BackupConfiguration changed the pod template (a rollout)")
	}
	plan.RemoveSidecar(&tpl)
	if !reflect.DeepEqual(tpl, orig) {
		t.Errorf("removal left %+v, want the original %+v", tpl.Spec, orig.Spec)
	}
}

func TestRemoveSidecarKeepsUsersStashContainer(t *testing.T) {
	tpl := appTemplate()
	tpl.Spec.Containers = append(tpl.Spec.Containers, corev1.Container{Name: "stash", Image: "mine", Args: []string{"serve"}})
	tpl.Spec.Volumes = append(tpl.Spec.Volumes, corev1.Volume{Name: plan.ScratchVolume})
	want := *tpl.DeepCopy()
	plan.RemoveSidecar(&tpl)
	if !reflect.DeepEqual(tpl, want) {
		t.Errorf("a user's own stash container or its volumes were removed: %+v", tpl.Spec)
	}
}

func TestWorkloadHost(t *testing.T) {
	for _, c := range []struct{ kind, alias, pod, node, want string }{
		{"Deployment", "", "app-7d9f-abcde", "node-1", "host-0"},
		{"Deployment", "web", "app-7d9f-abcde", "node-1", "web"},
		{"ReplicaSet", "", "app-abcde", "node-1", "host-0"},
		{"StatefulSet", "", "db-2", "node-1", "host-2"},
		{"StatefulSet", "db", "my-db-10", "node-1", "db-10"},
		{"DaemonSet", "", "agent-xyz", "worker-3", "worker-3"},
		{"DaemonSet", "logs", "agent-xyz", "worker-3", "logs-worker-3"},
	} {
		if got := plan.WorkloadHost(c.kind, c.alias, c.pod, c.node); got != c.want {
			t.Errorf("WorkloadHost(%s, %q, %s, %s) = %s, want %s", c.kind, c.alias, c.pod, c.node, got, c.want)
		}
	}
}

func TestSidecarNames(t *testing.T) {
	if got := plan.SidecarLeaseName("StatefulSet", "db"); got != "lock-statefulset-db-backup" {
		t.Errorf("lease %s", got)
	}
	long := plan.SidecarRoleName("a-very-long-backup-configuration-name-that-goes-on-and-on-and-on-forever")
	if len(long) > plan.MaxNameLength {
		t.Errorf("role name %s is %d long", long, len(long))
	}
}

func TestSidecarRunsAsTheWorkload(t *testing.T) {
	s := sidecarFixture()
	tpl := appTemplate()
	plan.InjectSidecar(&tpl, s)
	if sc := tpl.Spec.Containers[1].SecurityContext; sc.RunAsNonRoot != nil && *sc.RunAsNonRoot {
		t.Errorf("runtime settings ask for root, yet runAsNonRoot is %v: the kubelet would refuse the container", *sc.RunAsNonRoot)
	}
	s.Config.Spec.RuntimeSettings.Container = nil
	tpl = appTemplate()
	tpl.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{RunAsUser: ptrTo(int64(1000)), RunAsGroup: ptrTo(int64(1000))}
	plan.InjectSidecar(&tpl, s)
	sc := tpl.Spec.Containers[1].SecurityContext
	if sc.RunAsUser == nil || *sc.RunAsUser != 1000 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.SeccompProfile == nil {
		t.Errorf("securityContext %+v: want the application's user 1000, non-root, RuntimeDefault seccomp", sc)
	}
}

func TestInjectRestoreInit(t *testing.T) {
	s := sidecarFixture()
	rs := &stashv1beta1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "app-restore", Namespace: "demo"},
		Spec: stashv1beta1.RestoreSessionSpec{RestoreTargetSpec: stashv1beta1.RestoreTargetSpec{Target: &stashv1beta1.RestoreTarget{
			Ref:          stashv1beta1.TargetRef{Kind: "StatefulSet", Name: "db"},
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/source/data"}},
		}}}}
	orig := appTemplate()
	orig.Spec.InitContainers = []corev1.Container{{Name: "migrate", Image: "app"}}
	tpl := *orig.DeepCopy()
	plan.InjectSidecar(&tpl, s)
	withSidecar := *tpl.DeepCopy()
	ri := plan.RestoreInit{Session: rs, Repository: s.Repository, Image: s.Image}
	plan.InjectRestoreInit(&tpl, ri)
	if len(tpl.Spec.InitContainers) != 2 || !plan.IsRestoreInit(tpl.Spec.InitContainers[0]) {
		t.Fatalf("init containers %+v: want stash-init first", tpl.Spec.InitContainers)
	}
	c := tpl.Spec.InitContainers[0]
	if c.Args[0] != "restore" || c.Args[2] != "--invoker-name=app-restore" || c.Args[5] != "--target-namespace=demo" {
		t.Errorf("args %v", c.Args)
	}
	if sc := c.SecurityContext; *sc.RunAsUser != 0 || len(sc.Capabilities.Add) != 3 || *sc.AllowPrivilegeEscalation {
		t.Errorf("securityContext %+v: want root with CHOWN, DAC_OVERRIDE, FOWNER only", sc)
	}
	for _, m := range c.VolumeMounts {
		if m.Name == "data" && m.ReadOnly {
			t.Error("the restore mounts its target read-only")
		}
	}
	names := map[string]int{}
	for _, v := range tpl.Spec.Volumes {
		names[v.Name]++
		if names[v.Name] > 1 {
			t.Errorf("volume %s twice: sidecar and init container must not share names", v.Name)
		}
	}
	again := *tpl.DeepCopy()
	plan.InjectRestoreInit(&again, ri)
	if !reflect.DeepEqual(again, tpl) {
		t.Error("a second injection changed the template")
	}
	plan.RemoveRestoreInit(&tpl)
	if !reflect.DeepEqual(tpl, withSidecar) {
		t.Error("removing the init container touched the rest of the template")
	}
	// A non-root pod (restricted namespaces): its user, no capability.
	nr := *orig.DeepCopy()
	nr.Spec.SecurityContext = &corev1.PodSecurityContext{RunAsNonRoot: ptrTo(true), RunAsUser: ptrTo(int64(1000))}
	plan.InjectRestoreInit(&nr, ri)
	if sc := nr.Spec.InitContainers[0].SecurityContext; sc.RunAsUser != nil || len(sc.Capabilities.Add) != 0 || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
		t.Errorf("securityContext %+v in a non-root pod: want the pod's user, no capability", sc)
	}
	if got := plan.RestoreLeaseName("Deployment", "web"); got != "lock-deployment-web-restore" {
		t.Errorf("lease %s", got)
	}
}

func TestSidecarResources(t *testing.T) {
	s := sidecarFixture()
	s.Config.Spec.RuntimeSettings.Container = nil
	want := corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")}}
	s.Resources = &want
	tpl := appTemplate()
	plan.InjectSidecar(&tpl, s)
	if got := tpl.Spec.Containers[1].Resources; !reflect.DeepEqual(got, want) {
		t.Errorf("resources %+v, want the operator's %+v", got, want)
	}
	// The invoker's runtime settings win.
	mine := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}}
	s.Config.Spec.RuntimeSettings.Container = &stashv1beta1.ContainerRuntimeSettings{Resources: mine}
	tpl = appTemplate()
	plan.InjectSidecar(&tpl, s)
	if got := tpl.Spec.Containers[1].Resources; !reflect.DeepEqual(got, mine) {
		t.Errorf("resources %+v, want the BackupConfiguration's %+v", got, mine)
	}
}
