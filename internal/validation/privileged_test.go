package validation

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

func TestPrivileged(t *testing.T) {
	exec := &stashv1beta1.Handler{Exec: &corev1.ExecAction{Command: []string{"id"}}}
	http := &stashv1beta1.Handler{HTTPGet: &corev1.HTTPGetAction{Path: "/"}}
	bc := func(f func(*stashv1beta1.BackupConfigurationSpec)) *stashv1beta1.BackupConfiguration {
		b := &stashv1beta1.BackupConfiguration{}
		b.Spec.Task = stashv1beta1.TaskRef{Name: "postgres-backup-16"}
		b.Spec.Target = &stashv1beta1.BackupTarget{Ref: stashv1beta1.TargetRef{Kind: "AppBinding", Name: "pg"}}
		f(&b.Spec)
		return b
	}
	for _, tc := range []struct {
		name string
		bc   *stashv1beta1.BackupConfiguration
		want []string
	}{
		{"nothing", bc(func(*stashv1beta1.BackupConfigurationSpec) {}), nil},
		{"sizing only", bc(func(s *stashv1beta1.BackupConfigurationSpec) {
			s.RuntimeSettings.Container = &stashv1beta1.ContainerRuntimeSettings{Nice: &stashv1beta1.NiceSettings{}}
			s.RuntimeSettings.Pod = &stashv1beta1.PodRuntimeSettings{PodAnnotations: map[string]string{"a": "b"}}
		}), nil},
		{"placement and commands", bc(func(s *stashv1beta1.BackupConfigurationSpec) {
			s.RuntimeSettings.Pod = &stashv1beta1.PodRuntimeSettings{NodeSelector: map[string]string{"a": "b"}, Tolerations: []corev1.Toleration{{}}}
			s.RuntimeSettings.Container = &stashv1beta1.ContainerRuntimeSettings{Lifecycle: &corev1.Lifecycle{}, Env: []corev1.EnvVar{{Name: "X"}}}
		}), []string{"spec.runtimeSettings.pod.nodeSelector", "spec.runtimeSettings.pod.tolerations",
			"spec.runtimeSettings.container.lifecycle", "spec.runtimeSettings.container.env"}},
		{"HTTP hook", bc(func(s *stashv1beta1.BackupConfigurationSpec) { s.Hooks = &stashv1beta1.BackupHooks{PreBackup: http} }), nil},
		{"exec postBackup hook", bc(func(s *stashv1beta1.BackupConfigurationSpec) {
			s.Hooks = &stashv1beta1.BackupHooks{PostBackup: &stashv1beta1.PostHook{Handler: *exec}}
		}), []string{"spec.hooks (exec)"}},
		{"sidecar", bc(func(s *stashv1beta1.BackupConfigurationSpec) {
			s.Task.Name = ""
			s.Target.Ref = stashv1beta1.TargetRef{Kind: "Deployment", Name: "web"}
		}), []string{"spec.target.ref (a Deployment, which gets a backup sidecar)"}},
	} {
		if got := PrivilegedBackup(tc.bc); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}

	rs := &stashv1beta1.RestoreSession{}
	rs.Spec.Hooks = &stashv1beta1.RestoreHooks{PreRestore: exec}
	rs.Spec.Target = &stashv1beta1.RestoreTarget{Ref: stashv1beta1.TargetRef{Kind: "StatefulSet", Name: "db"}, VolumeClaimTemplates: []stashv1beta1.PersistentVolumeClaim{{}}}
	want := []string{"spec.hooks (exec)", "spec.target.volumeClaimTemplates", "spec.target.ref (a StatefulSet, which gets a restore init container)"}
	if got := PrivilegedRestore(rs); !reflect.DeepEqual(got, want) {
		t.Errorf("restore: %q, want %q", got, want)
	}

	for _, tc := range []struct {
		name  string
		local *stashv1alpha1.LocalSpec
		want  int
	}{
		{"not local", nil, 0},
		{"a PVC", &stashv1alpha1.LocalSpec{VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}}}, 0},
		{"a hostPath", &stashv1alpha1.LocalSpec{VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}}, 1},
		{"NFS", &stashv1alpha1.LocalSpec{VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "s"}}}, 1},
	} {
		repo := &stashv1alpha1.Repository{}
		repo.Spec.Backend.Local = tc.local
		if got := PrivilegedRepository(repo); len(got) != tc.want {
			t.Errorf("repository on %s: %q", tc.name, got)
		}
	}
}

// A backup reads the target's volumes only, never what Stash mounts beside
// them.
func TestTargetPaths(t *testing.T) {
	local := &stashv1alpha1.Repository{}
	local.Spec.Backend.Local = &stashv1alpha1.LocalSpec{MountPath: "/data/repo"}
	for _, tc := range []struct {
		kind   string
		mounts []string
		paths  []string
		repo   *stashv1alpha1.Repository
		bad    string // "" when every path is fine
	}{
		{"Deployment", []string{"/source/data"}, []string{"/source/data", "/source/data/sub/"}, nil, ""},
		{"Deployment", []string{"/source/data"}, []string{"/source/data/../../var/run/secrets/kubernetes.io/serviceaccount"}, nil, "on none of the target's volumes"},
		{"Deployment", []string{"/source/data"}, []string{"/source/database"}, nil, "on none of the target's volumes"},
		{"Deployment", []string{"/source/data"}, []string{"source/data"}, nil, "absolute"},
		{"StatefulSet", []string{"/var"}, []string{"/var"}, nil, "holds or lies in /var/run/secrets"},
		{"StatefulSet", []string{"/var/run/secrets/kubernetes.io"}, []string{"/var/run/secrets/kubernetes.io/serviceaccount"}, nil, "holds or lies in /var/run/secrets"},
		{"DaemonSet", []string{"/etc"}, []string{"/etc/stash"}, nil, "holds or lies in /etc/stash"},
		{"Deployment", []string{"/data"}, []string{"/data"}, local, "holds or lies in /data/repo"},
		{"PersistentVolumeClaim", nil, []string{"/stash-data/db"}, nil, ""},
		{"PersistentVolumeClaim", nil, []string{"/var/run/secrets/kubernetes.io/serviceaccount"}, nil, "on none of the target's volumes"},
		{"PersistentVolumeClaim", []string{"/mnt/pvc"}, []string{"/mnt/pvc/x"}, nil, ""},
		{"AppBinding", nil, []string{"/anything"}, nil, ""},
	} {
		bc := &stashv1beta1.BackupConfiguration{}
		if tc.kind == "AppBinding" || tc.kind == "PersistentVolumeClaim" {
			bc.Spec.Task.Name = "some-task"
		}
		bc.Spec.Target = &stashv1beta1.BackupTarget{Ref: stashv1beta1.TargetRef{Kind: tc.kind, Name: "x"}, Paths: tc.paths}
		for _, m := range tc.mounts {
			bc.Spec.Target.VolumeMounts = append(bc.Spec.Target.VolumeMounts, corev1.VolumeMount{Name: "v", MountPath: m})
		}
		errs := targetPaths(field.NewPath("spec", "target", "paths"), bc, tc.repo)
		switch {
		case tc.bad == "" && len(errs) > 0:
			t.Errorf("%s %v on %v: %v", tc.kind, tc.paths, tc.mounts, errs)
		case tc.bad != "" && (len(errs) == 0 || !strings.Contains(errs.ToAggregate().Error(), tc.bad)):
			t.Errorf("%s %v on %v: %v, want %q", tc.kind, tc.paths, tc.mounts, errs, tc.bad)
		}
	}
}
