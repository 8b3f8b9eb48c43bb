package local

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stash-backup/stash/internal/plan"
)

func newMapper(t *testing.T) *VolumeMapper {
	t.Helper()
	state := t.TempDir()
	return &VolumeMapper{
		Namespace: "demo", StateDir: state, SessionDir: filepath.Join(state, "sessions", "demo", "s1"),
		Mounts: map[string]string{plan.ScratchDir: filepath.Join(state, "sessions", "demo", "s1", "tmp")},
		Secret: func(ns, name string) (map[string][]byte, bool) {
			if ns == "demo" && name == "redis-auth" {
				return map[string][]byte{"password": []byte("pw")}, true
			}
			return nil, false
		},
	}
}

// TestContainerMounts: each kind of the Job's volumes becomes the
// directory the local runtime keeps for it; what it cannot give safely
// is refused, naming the volume.
func TestContainerMounts(t *testing.T) {
	v := newMapper(t)
	defer v.Release()
	pod := corev1.PodSpec{Volumes: []corev1.Volume{
		{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data-redis-0"}}},
		{Name: "auth", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "redis-auth"}}},
		{Name: "cfg", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}},
		{Name: "bad-claim", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "../../etc"}}},
		{Name: "must-exist", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: filepath.Join(v.StateDir, "absent"), Type: ptr(corev1.HostPathDirectory)}}},
	}}
	mounts, err := v.ContainerMounts(pod, corev1.Container{VolumeMounts: []corev1.VolumeMount{
		{Name: plan.ScratchVolume, MountPath: plan.ScratchDir},
		{Name: "scratch", MountPath: "/work"},
		{Name: "data", MountPath: "/data"},
		{Name: "auth", MountPath: "/etc/auth", ReadOnly: true},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		plan.ScratchDir: v.Mounts[plan.ScratchDir],
		"/work":         filepath.Join(v.SessionDir, "volumes", "scratch"),
		"/data":         ClaimDir(v.StateDir, "demo", "data-redis-0"),
	}
	for _, m := range mounts {
		if w, ok := want[m.Destination]; ok && m.Source != w {
			t.Errorf("%s from %s, want %s", m.Destination, m.Source, w)
		}
		if m.Destination == "/etc/auth" {
			if !strings.HasPrefix(m.Source, "/dev/shm/") || !m.ReadOnly {
				t.Errorf("Secret volume at %s (read-only %v): want a read-only directory in /dev/shm", m.Source, m.ReadOnly)
			}
			if b, err := os.ReadFile(filepath.Join(m.Source, "password")); err != nil || string(b) != "pw" {
				t.Errorf("Secret key: %q %v", b, err)
			}
			// Other users of the machine cannot reach the keys: /dev/shm
			// is listable by all.
			if fi, err := os.Stat(filepath.Dir(m.Source)); err != nil || fi.Mode().Perm()&0o077 != 0 || filepath.Dir(m.Source) == "/dev/shm" {
				t.Errorf("Secret volume %s is reachable by other users: its parent is %v, %v", m.Source, fi.Mode(), err)
			}
			defer func(dir string) {
				v.Release()
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Errorf("Secret directory %s outlived the Job", dir)
				}
			}(m.Source)
		}
	}
	for _, tc := range []struct {
		m    corev1.VolumeMount
		want string
	}{
		{corev1.VolumeMount{Name: "cfg", MountPath: "/c"}, "volume cfg: the local runtime gives containers emptyDir, persistentVolumeClaim, hostPath and secret volumes only"},
		{corev1.VolumeMount{Name: "bad-claim", MountPath: "/c"}, "not a valid name"},
		{corev1.VolumeMount{Name: "missing", MountPath: "/c"}, "no volume of that name"},
		{corev1.VolumeMount{Name: "must-exist", MountPath: "/c"}, "does not exist (type Directory)"},
		{corev1.VolumeMount{Name: "data", MountPath: "/c", SubPath: "../x"}, "must be relative, without .."},
	} {
		if _, err := v.ContainerMounts(pod, corev1.Container{VolumeMounts: []corev1.VolumeMount{tc.m}}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("mount %+v: %v, want %q", tc.m, err, tc.want)
		}
	}
}

// TestContainerEnv: Secrets of the Job's namespace and the downward API
// resolve; a missing Secret fails unless optional; ConfigMaps are refused.
func TestContainerEnv(t *testing.T) {
	v := newMapper(t)
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "stash-backup-s1-0", Namespace: "demo"}}
	ref := func(name string, optional bool) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: "password", Optional: &optional}}
	}
	env, err := v.ContainerEnv(job, corev1.Container{Env: []corev1.EnvVar{
		{Name: "A", Value: "plain"},
		{Name: "REDISCLI_AUTH", ValueFrom: ref("redis-auth", false)},
		{Name: "OPTIONAL", ValueFrom: ref("absent", true)},
		{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, e := range env {
		got[e.Name] = e.Value
	}
	if got["A"] != "plain" || got["REDISCLI_AUTH"] != "pw" || got["POD_NAME"] != "stash-backup-s1-0" || len(got) != 3 {
		t.Errorf("env %v", got)
	}
	for _, e := range []corev1.EnvVar{
		{Name: "X", ValueFrom: ref("absent", false)},
		{Name: "Y", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "k"}}},
	} {
		if _, err := v.ContainerEnv(job, corev1.Container{Env: []corev1.EnvVar{e}}); err == nil || !strings.Contains(err.Error(), "env "+e.Name) {
			t.Errorf("env %s: %v, want an error naming it", e.Name, err)
		}
	}
}

func ptr[T any](v T) *T { return &v }
