package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	k8svalidation "k8s.io/apimachinery/pkg/util/validation"

	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/runtime/container"
)

// VolumeMapper gives the containers of a Job (steps of images other than
// Stash's) the Job's volumes as directories of this machine, the way the
// kubelet gives them to a pod, and their env with Secrets and the
// downward API resolved:
//
//   - /stash-tmp, the interim volume and a local Repository's volume are
//     the directories Stash's own steps use (Mounts), so files pass
//     between a container and a Stash step of the same Job;
//   - an emptyDir is a directory of the session, new for each Job;
//   - a PersistentVolumeClaim is a directory of the state directory,
//     volumes/<namespace>/<claim>, kept across sessions (a restore into
//     claims from volumeClaimTemplates lands there, for the application
//     to start from);
//   - a hostPath is that path, as the Task asks;
//   - a Secret is a memory-backed directory of its keys, removed when the
//     Job ends; other volume types are refused, naming the volume.
type VolumeMapper struct {
	Namespace  string
	StateDir   string
	SessionDir string
	// Mounts maps the container paths Stash's steps use to directories.
	Mounts map[string]string
	// Secret returns a Secret's data from the manifests.
	Secret func(namespace, name string) (map[string][]byte, bool)

	// secretDirs are removed by Release.
	secretDirs []string
}

// Release removes what the Job's containers had of Secrets.
func (v *VolumeMapper) Release() {
	for _, d := range v.secretDirs {
		_ = os.RemoveAll(d)
	}
	v.secretDirs = nil
}

// ClaimDir is the directory standing for PersistentVolumeClaim claim of
// namespace ns in the local runtime.
func ClaimDir(stateDir, ns, claim string) string {
	return filepath.Join(stateDir, "volumes", ns, claim)
}

// source returns the directory of pod volume name for mount m.
func (v *VolumeMapper) source(pod corev1.PodSpec, m corev1.VolumeMount) (string, error) {
	switch m.Name {
	case plan.ScratchVolume:
		return v.Mounts[plan.ScratchDir], nil
	case plan.InterimVolume:
		return v.Mounts[plan.InterimMountPath], nil
	case plan.LocalBackendVolume:
		// The Repository's path already holds its subPath.
		if d, ok := v.Mounts[m.MountPath]; ok {
			return d, nil
		}
	}
	var vol *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == m.Name {
			vol = &pod.Volumes[i]
		}
	}
	if vol == nil {
		return "", fmt.Errorf("volumeMounts %s: no volume of that name in the Task or the session", m.Name)
	}
	var dir string
	switch src := vol.VolumeSource; {
	case src.EmptyDir != nil:
		dir = filepath.Join(v.SessionDir, "volumes", vol.Name)
		if err := mkdirOpen(dir); err != nil {
			return "", err
		}
	case src.PersistentVolumeClaim != nil:
		claim := src.PersistentVolumeClaim.ClaimName
		if len(k8svalidation.IsDNS1123Subdomain(claim)) > 0 {
			return "", fmt.Errorf("volume %s: claimName %q is not a valid name", vol.Name, claim)
		}
		dir = ClaimDir(v.StateDir, v.Namespace, claim)
		if err := mkdirOpen(dir); err != nil {
			return "", err
		}
	case src.HostPath != nil:
		dir = src.HostPath.Path
		if !filepath.IsAbs(dir) {
			return "", fmt.Errorf("volume %s: hostPath.path %q is not absolute", vol.Name, dir)
		}
		// As the kubelet and containerd: a path of no type or of
		// DirectoryOrCreate is made when missing; any other type must
		// exist.
		if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
			if t := src.HostPath.Type; t != nil && *t != corev1.HostPathDirectoryOrCreate && *t != corev1.HostPathUnset {
				return "", fmt.Errorf("volume %s: hostPath %s does not exist (type %s)", vol.Name, dir, *t)
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return "", fmt.Errorf("volume %s: %w", vol.Name, err)
			}
		}
	case src.Secret != nil:
		return v.secretDir(vol.Name, src.Secret)
	default:
		return "", fmt.Errorf("volume %s: the local runtime gives containers emptyDir, persistentVolumeClaim, hostPath and secret volumes only", vol.Name)
	}
	return dir, nil
}

// mkdirOpen creates a volume directory writable by the step's user,
// whoever it is, as an emptyDir and a local-path claim are.
func mkdirOpen(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return os.Chmod(dir, 0o777)
}

func (v *VolumeMapper) secretDir(vol string, s *corev1.SecretVolumeSource) (string, error) {
	data, ok := v.Secret(v.Namespace, s.SecretName)
	optional := s.Optional != nil && *s.Optional
	if !ok && !optional {
		return "", fmt.Errorf("volume %s: Secret %s/%s is not in the manifests", vol, v.Namespace, s.SecretName)
	}
	base := "/dev/shm"
	if _, err := os.Stat(base); err != nil {
		return "", fmt.Errorf("volume %s: no memory-backed directory (/dev/shm) to hold Secret %s without writing it to disk", vol, s.SecretName)
	}
	// The keys keep the kubelet's modes (0644 by default) so the step's
	// user can read them inside its container, which mounts the inner
	// directory; the outer one, 0700 to the runtime's user, keeps every
	// other user of this machine out, as the kubelet's pod directory does.
	outer, err := os.MkdirTemp(base, "stash-secret-")
	if err != nil {
		return "", err
	}
	v.secretDirs = append(v.secretDirs, outer)
	if err := os.Chmod(outer, 0o700); err != nil {
		return "", err
	}
	dir := filepath.Join(outer, "volume")
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", err
	}
	mode := os.FileMode(0o644)
	if s.DefaultMode != nil {
		mode = os.FileMode(*s.DefaultMode) & 0o777
	}
	write := func(name, key string) error {
		if !filepath.IsLocal(name) {
			return fmt.Errorf("volume %s: item path %q", vol, name)
		}
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		return os.WriteFile(p, data[key], mode)
	}
	if len(s.Items) > 0 {
		for _, it := range s.Items {
			if _, ok := data[it.Key]; !ok {
				continue
			}
			if err := write(it.Path, it.Key); err != nil {
				return "", err
			}
		}
	} else {
		for k := range data {
			if err := write(k, k); err != nil {
				return "", err
			}
		}
	}
	return dir, nil
}

// ContainerMounts maps container c's volume mounts.
func (v *VolumeMapper) ContainerMounts(pod corev1.PodSpec, c corev1.Container) ([]container.Mount, error) {
	var out []container.Mount
	for _, m := range c.VolumeMounts {
		dir, err := v.source(pod, m)
		if err != nil {
			return nil, err
		}
		if dir == "" {
			return nil, fmt.Errorf("volumeMounts %s: no directory for it in the local runtime", m.Name)
		}
		if m.SubPath != "" && m.Name != plan.LocalBackendVolume {
			if !filepath.IsLocal(m.SubPath) {
				return nil, fmt.Errorf("volumeMounts %s: subPath %q must be relative, without ..", m.Name, m.SubPath)
			}
			dir = filepath.Join(dir, m.SubPath)
			if err := mkdirOpen(dir); err != nil {
				return nil, err
			}
		}
		out = append(out, container.Mount{Source: dir, Destination: m.MountPath, ReadOnly: m.ReadOnly})
	}
	return out, nil
}

// ContainerEnv resolves container c's env as the kubelet would: values
// from Secrets of the manifests (the Job's namespace only) and the
// downward API's pod, namespace and node names.
func (v *VolumeMapper) ContainerEnv(job *batchv1.Job, c corev1.Container) ([]corev1.EnvVar, error) {
	var out []corev1.EnvVar
	for _, from := range c.EnvFrom {
		if from.SecretRef == nil {
			return nil, fmt.Errorf("envFrom: the local runtime reads Secrets only (no ConfigMaps)")
		}
		data, ok := v.Secret(v.Namespace, from.SecretRef.Name)
		if !ok {
			if from.SecretRef.Optional != nil && *from.SecretRef.Optional {
				continue
			}
			return nil, fmt.Errorf("envFrom: Secret %s/%s is not in the manifests", v.Namespace, from.SecretRef.Name)
		}
		for k, val := range data {
			out = append(out, corev1.EnvVar{Name: from.Prefix + k, Value: string(val)})
		}
	}
	for _, e := range c.Env {
		switch f := e.ValueFrom; {
		case f == nil:
			out = append(out, corev1.EnvVar{Name: e.Name, Value: e.Value})
		case f.SecretKeyRef != nil:
			data, ok := v.Secret(v.Namespace, f.SecretKeyRef.Name)
			val, has := data[f.SecretKeyRef.Key]
			if !ok || !has {
				if f.SecretKeyRef.Optional != nil && *f.SecretKeyRef.Optional {
					continue
				}
				return nil, fmt.Errorf("env %s: key %s of Secret %s/%s is not in the manifests", e.Name, f.SecretKeyRef.Key, v.Namespace, f.SecretKeyRef.Name)
			}
			out = append(out, corev1.EnvVar{Name: e.Name, Value: string(val)})
		case f.FieldRef != nil:
			val, ok := downwardValue(job, f.FieldRef.FieldPath)
			if !ok {
				return nil, fmt.Errorf("env %s: fieldRef %s: the local runtime knows metadata.name, metadata.namespace and spec.nodeName", e.Name, f.FieldRef.FieldPath)
			}
			out = append(out, corev1.EnvVar{Name: e.Name, Value: val})
		default:
			return nil, fmt.Errorf("env %s: the local runtime resolves secretKeyRef and fieldRef only", e.Name)
		}
	}
	return out, nil
}

// handOver gives the directories Stash's steps share with the containers
// (/stash-tmp, the interim volume) to the container's user. In a pod every
// step runs as that user; here Stash's steps are processes of the
// runtime's own user, and what one of them left (a downloaded snapshot)
// must be the next container's to read and write, as in the pod.
func (v *VolumeMapper) handOver(pod corev1.PodSpec, c corev1.Container) error {
	var uid, gid *int64
	if p := pod.SecurityContext; p != nil {
		uid, gid = p.RunAsUser, p.RunAsGroup
	}
	if s := c.SecurityContext; s != nil {
		if s.RunAsUser != nil {
			uid = s.RunAsUser
		}
		if s.RunAsGroup != nil {
			gid = s.RunAsGroup
		}
	}
	if uid == nil || os.Geteuid() != 0 {
		return nil
	}
	g := -1
	if gid != nil {
		g = int(*gid)
	}
	for _, path := range []string{plan.ScratchDir, plan.InterimMountPath} {
		dir := v.Mounts[path]
		if dir == "" {
			continue
		}
		err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, int(*uid), g)
		})
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("hand %s over to user %d: %w", path, *uid, err)
		}
	}
	return nil
}

// runContainer runs step c of job in a container.
func (e *Executor) runContainer(ctx context.Context, job *batchv1.Job, c corev1.Container) error {
	if e.Volumes == nil {
		return errors.New("no volume mapping for containers")
	}
	pod := job.Spec.Template.Spec
	if err := e.Volumes.handOver(pod, c); err != nil {
		return err
	}
	mounts, err := e.Volumes.ContainerMounts(pod, c)
	if err != nil {
		return err
	}
	env, err := e.Volumes.ContainerEnv(job, c)
	if err != nil {
		return err
	}
	return e.Containers.Run(ctx, container.Request{
		ID: containerID(c.Name), Container: c, Pod: pod, Env: env, Mounts: mounts,
		Hostname: job.Name, Stdout: e.Stdout, Stderr: e.Stderr,
	})
}

// containerID is unique per run, short enough for containerd and for the
// network namespace named after it.
func containerID(name string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	clean := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, strings.ToLower(name))
	if len(clean) > 32 {
		clean = clean[:32]
	}
	return clean + "-" + hex.EncodeToString(b)
}

// detect finds the container runtime for the Job's other images.
func (e *Executor) detect(ctx context.Context) (ContainerRunner, error) {
	dir := os.TempDir()
	if e.Volumes != nil && e.Volumes.StateDir != "" {
		dir = filepath.Join(e.Volumes.StateDir, "containers")
	}
	c, err := container.Detect(ctx, dir)
	if err != nil {
		return nil, err
	}
	return c, nil
}
