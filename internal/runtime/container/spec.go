// Package container runs the steps of a Job whose image is not Stash's
// own in containers on this machine, for the local runtime: containerd
// (through its ctr client) holds the image and runs the container, a
// network namespace of the container's own gets a bridge (CNI plugins) so
// that it reaches the machine's network as a pod reaches the cluster's,
// and the container gets exactly the Job's volumes, env and user. Nothing
// the Job does not ask for is granted: no host namespace, no host path
// the Task does not name, no environment of the runtime's process.
//
// The OCI runtime spec is built here (spec.go, pure) rather than by ctr's
// defaults, so that user, capabilities and mounts follow the Kubernetes
// rules the operator's Jobs run under.
package container

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Mount is a directory of this machine mounted into the container.
type Mount struct {
	// Source is the directory (or file) on this machine.
	Source string
	// Destination is the path in the container.
	Destination string
	ReadOnly    bool
}

// ImageConfig is what an image says about how it runs (the OCI image
// config's "config").
type ImageConfig struct {
	Entrypoint []string `json:"Entrypoint"`
	Cmd        []string `json:"Cmd"`
	Env        []string `json:"Env"`
	User       string   `json:"User"`
	WorkingDir string   `json:"WorkingDir"`
}

// User is a resolved process identity.
type User struct {
	UID, GID       uint32
	AdditionalGIDs []uint32
}

// SpecInput is everything one container's runtime spec is built from.
type SpecInput struct {
	Container corev1.Container
	Pod       corev1.PodSpec
	Image     ImageConfig
	// Env is the container's env with every valueFrom resolved, in
	// order (the runtime resolves Secrets and the downward API).
	Env []corev1.EnvVar
	// Mounts are the container's volume mounts mapped to this machine.
	Mounts []Mount
	// LookupUser resolves a user name of the image's USER (its
	// /etc/passwd); nil when the image has none.
	LookupUser func(name string) (uid, gid uint32, ok bool)
	// RootFS is the directory of the image's root filesystem.
	RootFS string
	// Hostname is the container's host name (the pod's name).
	Hostname string
	// NetNS is the path of the network namespace the container joins.
	NetNS string
	// CgroupsPath is the container's cgroup.
	CgroupsPath string
}

// defaultCapabilities are the capabilities containerd and the kubelet give
// a container that asks for no change.
var defaultCapabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
	"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// defaultPath is the PATH of an image that sets none, as containerd's.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// BuildSpec returns the OCI runtime spec of one container, or an error
// naming the field when the container asks for what the local runtime
// does not grant (privileged, host namespaces) or for an impossible
// identity (runAsNonRoot with a root user).
func BuildSpec(in SpecInput) (*Spec, error) {
	c := in.Container
	if in.Pod.HostNetwork || in.Pod.HostPID || in.Pod.HostIPC {
		return nil, fmt.Errorf("container %s: the pod asks for a host namespace (hostNetwork, hostPID or hostIPC): the local runtime never shares the machine's namespaces with a step", c.Name)
	}
	sc := c.SecurityContext
	if sc != nil && sc.Privileged != nil && *sc.Privileged {
		return nil, fmt.Errorf("container %s: securityContext.privileged is true: the local runtime does not run privileged steps (ask for the capabilities the step needs instead)", c.Name)
	}
	args, err := processArgs(c, in.Image, in.Env)
	if err != nil {
		return nil, err
	}
	user, err := resolveUser(c, in.Pod, in.Image, in.LookupUser)
	if err != nil {
		return nil, err
	}
	caps, err := capabilities(sc)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", c.Name, err)
	}
	cwd := c.WorkingDir
	if cwd == "" {
		cwd = in.Image.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	s := &Spec{
		Version:  "1.0.2",
		Hostname: in.Hostname,
		Root:     Root{Path: in.RootFS, Readonly: sc != nil && sc.ReadOnlyRootFilesystem != nil && *sc.ReadOnlyRootFilesystem},
		Process: Process{
			User: user, Args: args, Env: environment(in.Image.Env, in.Env, in.Hostname), Cwd: cwd,
			Capabilities:    &Capabilities{Bounding: caps, Effective: caps, Permitted: caps},
			NoNewPrivileges: sc != nil && sc.AllowPrivilegeEscalation != nil && !*sc.AllowPrivilegeEscalation,
		},
		Mounts: defaultMounts(),
		Linux: &Linux{
			Namespaces: []Namespace{
				{Type: "pid"}, {Type: "ipc"}, {Type: "uts"}, {Type: "mount"}, {Type: "cgroup"},
				{Type: "network", Path: in.NetNS},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
				"/proc/timer_stats", "/proc/sched_debug", "/sys/firmware", "/proc/scsi", "/sys/devices/virtual/powercap",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
			Resources:     resources(c.Resources),
			CgroupsPath:   in.CgroupsPath,
		},
	}
	for _, m := range in.Mounts {
		opts := []string{"rbind", "rprivate", "nosuid", "nodev"}
		if m.ReadOnly {
			opts = append(opts, "ro")
		} else {
			opts = append(opts, "rw")
		}
		s.Mounts = append(s.Mounts, SpecMount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: opts})
	}
	return s, nil
}

// processArgs applies the Kubernetes rules: command replaces the image's
// entrypoint (and drops its cmd), args replace its cmd; $(VAR) in either
// is the container's env VAR.
func processArgs(c corev1.Container, img ImageConfig, env []corev1.EnvVar) ([]string, error) {
	var args []string
	switch {
	case len(c.Command) > 0:
		args = append(append(args, c.Command...), c.Args...)
	case len(c.Args) > 0:
		args = append(append(args, img.Entrypoint...), c.Args...)
	default:
		args = append(append(args, img.Entrypoint...), img.Cmd...)
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("container %s: no command: the Function sets none and the image %s has no entrypoint", c.Name, c.Image)
	}
	vals := map[string]string{}
	for _, e := range env {
		vals[e.Name] = e.Value
	}
	for i, a := range args {
		args[i] = expandRefs(a, vals)
	}
	return args, nil
}

// expandRefs expands $(NAME) as the kubelet does: a defined name becomes
// its value, an undefined one stays as written, and $$ is a literal $.
func expandRefs(s string, vals map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := vals[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// environment is the image's env with the container's over it, as the
// kubelet composes it; nothing of the runtime's own environment.
func environment(image []string, env []corev1.EnvVar, hostname string) []string {
	var out []string
	index := map[string]int{}
	set := func(kv string) {
		k, _, _ := strings.Cut(kv, "=")
		if i, ok := index[k]; ok {
			out[i] = kv
			return
		}
		index[k] = len(out)
		out = append(out, kv)
	}
	set(defaultPath)
	if hostname != "" {
		set("HOSTNAME=" + hostname)
	}
	for _, kv := range image {
		set(kv)
	}
	for _, e := range env {
		set(e.Name + "=" + e.Value)
	}
	return out
}

// resolveUser picks the process's user as the kubelet does: runAsUser
// (container over pod), else the image's USER; runAsGroup likewise, else
// the user's group from the image, else 0; the pod's supplementalGroups
// and fsGroup as additional groups. runAsNonRoot refuses uid 0.
func resolveUser(c corev1.Container, pod corev1.PodSpec, img ImageConfig, lookup func(string) (uint32, uint32, bool)) (User, error) {
	var uid, gid *int64
	var nonRoot *bool
	if p := pod.SecurityContext; p != nil {
		uid, gid, nonRoot = p.RunAsUser, p.RunAsGroup, p.RunAsNonRoot
	}
	if s := c.SecurityContext; s != nil {
		if s.RunAsUser != nil {
			uid = s.RunAsUser
		}
		if s.RunAsGroup != nil {
			gid = s.RunAsGroup
		}
		if s.RunAsNonRoot != nil {
			nonRoot = s.RunAsNonRoot
		}
	}
	var u User
	var imageGID *uint32
	if uid != nil {
		if *uid < 0 || *uid > 1<<31 {
			return u, fmt.Errorf("container %s: runAsUser %d is out of range", c.Name, *uid)
		}
		u.UID = uint32(*uid)
	} else if img.User != "" {
		name, group, hasGroup := strings.Cut(img.User, ":")
		if n, err := strconv.ParseUint(name, 10, 32); err == nil {
			u.UID = uint32(n)
		} else if lookup != nil {
			id, g, ok := lookup(name)
			if !ok {
				return u, fmt.Errorf("container %s: the image's USER %q is not in its /etc/passwd: set runAsUser", c.Name, name)
			}
			u.UID, imageGID = id, &g
		} else {
			return u, fmt.Errorf("container %s: the image's USER %q is a name the local runtime cannot resolve: set runAsUser", c.Name, name)
		}
		if hasGroup {
			n, err := strconv.ParseUint(group, 10, 32)
			if err != nil {
				return u, fmt.Errorf("container %s: the image's USER group %q is not numeric: set runAsGroup", c.Name, group)
			}
			g := uint32(n)
			imageGID = &g
		}
	}
	switch {
	case gid != nil:
		if *gid < 0 || *gid > 1<<31 {
			return u, fmt.Errorf("container %s: runAsGroup %d is out of range", c.Name, *gid)
		}
		u.GID = uint32(*gid)
	case imageGID != nil:
		u.GID = *imageGID
	}
	if nonRoot != nil && *nonRoot && u.UID == 0 {
		return u, fmt.Errorf("container %s: runAsNonRoot is set and the step would run as root (uid 0): set runAsUser", c.Name)
	}
	if p := pod.SecurityContext; p != nil {
		for _, g := range p.SupplementalGroups {
			u.AdditionalGIDs = append(u.AdditionalGIDs, uint32(g))
		}
		if p.FSGroup != nil {
			u.AdditionalGIDs = append(u.AdditionalGIDs, uint32(*p.FSGroup))
		}
	}
	slices.Sort(u.AdditionalGIDs)
	u.AdditionalGIDs = slices.Compact(u.AdditionalGIDs)
	return u, nil
}

// capabilities applies a securityContext's drop and add to the default
// set; drop ALL starts from none.
func capabilities(sc *corev1.SecurityContext) ([]string, error) {
	set := map[string]bool{}
	for _, c := range defaultCapabilities {
		set[c] = true
	}
	if sc != nil && sc.Capabilities != nil {
		for _, d := range sc.Capabilities.Drop {
			name := capName(string(d))
			if name == "CAP_ALL" {
				clear(set)
				continue
			}
			delete(set, name)
		}
		for _, a := range sc.Capabilities.Add {
			name := capName(string(a))
			if name == "CAP_ALL" {
				return nil, fmt.Errorf("securityContext.capabilities.add names ALL: the local runtime grants capabilities one by one")
			}
			set[name] = true
		}
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out, nil
}

func capName(s string) string {
	s = strings.ToUpper(s)
	if !strings.HasPrefix(s, "CAP_") {
		s = "CAP_" + s
	}
	return s
}

// resources turns the container's limits into the cgroup's: a step is
// bounded here as in its pod.
func resources(r corev1.ResourceRequirements) *Resources {
	out := &Resources{Devices: []DeviceRule{{Allow: false, Access: "rwm"}}}
	if m, ok := r.Limits[corev1.ResourceMemory]; ok && !m.IsZero() {
		v := m.Value()
		out.Memory = &Memory{Limit: &v, Swap: &v}
	}
	if c, ok := r.Limits[corev1.ResourceCPU]; ok && !c.IsZero() {
		const period = 100000
		q := c.MilliValue() * period / 1000
		p := uint64(period)
		out.CPU = &CPU{Quota: &q, Period: &p}
	}
	return out
}

func defaultMounts() []SpecMount {
	return []SpecMount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
	}
}
