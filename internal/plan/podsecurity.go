package plan

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
)

// Pod Security Standard levels, as the pod-security.kubernetes.io/enforce
// label of a namespace names them.
const (
	LevelRestricted = "restricted"
	LevelBaseline   = "baseline"
	LevelPrivileged = "privileged"
)

// baselineCapabilities are the capabilities baseline lets a container add.
var baselineCapabilities = []corev1.Capability{
	"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
	"SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}

// safeSysctls are the sysctls baseline allows.
var safeSysctls = []string{
	"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
	"net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
	"net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
	"net.ipv4.tcp_keepalive_probes",
}

// PodSecurityLevel returns the strictest Pod Security Standard a pod spec
// meets, so that a runtime can say why a namespace refused a step's pod
// ("this step needs baseline; the namespace enforces restricted").
func PodSecurityLevel(spec *corev1.PodSpec) string {
	switch {
	case len(PodSecurityViolations(LevelRestricted, spec)) == 0:
		return LevelRestricted
	case len(PodSecurityViolations(LevelBaseline, spec)) == 0:
		return LevelBaseline
	}
	return LevelPrivileged
}

// PodSecurityViolations lists the rules of a Pod Security Standard level
// (baseline or restricted; privileged has none) that a pod spec breaks.
// It checks the rules of the Kubernetes Pod Security Standards that a
// step pod can touch; AppArmor annotations and Windows host processes,
// which the planner never writes, are left to the API server.
func PodSecurityViolations(level string, spec *corev1.PodSpec) []string {
	if level != LevelBaseline && level != LevelRestricted {
		return nil
	}
	var out []string
	add := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	psc := spec.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	// baseline
	if spec.HostNetwork || spec.HostPID || spec.HostIPC {
		add("host namespaces (hostNetwork=%t, hostPID=%t, hostIPC=%t)", spec.HostNetwork, spec.HostPID, spec.HostIPC)
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			add("volume %q is a hostPath", v.Name)
		}
	}
	for _, s := range psc.Sysctls {
		if !slices.Contains(safeSysctls, s.Name) {
			add("sysctl %s is not safe", s.Name)
		}
	}
	if p := psc.SeccompProfile; p != nil && p.Type == corev1.SeccompProfileTypeUnconfined {
		add("pod seccompProfile is Unconfined")
	}
	if badSELinux(psc.SELinuxOptions) {
		add("pod seLinuxOptions set a user, role or type")
	}
	containers := allContainers(spec)
	for _, c := range containers {
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		if sc.Privileged != nil && *sc.Privileged {
			add("container %q is privileged", c.Name)
		}
		if sc.Capabilities != nil {
			for _, cp := range sc.Capabilities.Add {
				if !slices.Contains(baselineCapabilities, cp) {
					add("container %q adds capability %s", c.Name, cp)
				}
			}
		}
		for _, p := range c.Ports {
			if p.HostPort != 0 {
				add("container %q uses hostPort %d", c.Name, p.HostPort)
			}
		}
		if sc.ProcMount != nil && *sc.ProcMount != corev1.DefaultProcMount {
			add("container %q sets procMount %s", c.Name, *sc.ProcMount)
		}
		if p := sc.SeccompProfile; p != nil && p.Type == corev1.SeccompProfileTypeUnconfined {
			add("container %q seccompProfile is Unconfined", c.Name)
		}
		if badSELinux(sc.SELinuxOptions) {
			add("container %q seLinuxOptions set a user, role or type", c.Name)
		}
	}
	if level == LevelBaseline {
		return out
	}
	// restricted
	for _, v := range spec.Volumes {
		s := v.VolumeSource
		if s.ConfigMap == nil && s.CSI == nil && s.DownwardAPI == nil && s.EmptyDir == nil && s.Ephemeral == nil &&
			s.PersistentVolumeClaim == nil && s.Projected == nil && s.Secret == nil && s.Image == nil && s.HostPath == nil {
			add("volume %q is of a type restricted does not allow", v.Name)
		}
	}
	if psc.RunAsUser != nil && *psc.RunAsUser == 0 {
		add("pod runAsUser is 0")
	}
	podNonRoot := psc.RunAsNonRoot != nil && *psc.RunAsNonRoot
	podSeccomp := psc.SeccompProfile != nil
	for _, c := range containers {
		sc := c.SecurityContext
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			add("container %q does not set allowPrivilegeEscalation=false", c.Name)
		}
		switch {
		case sc.RunAsNonRoot != nil && !*sc.RunAsNonRoot:
			add("container %q sets runAsNonRoot=false", c.Name)
		case sc.RunAsNonRoot == nil && !podNonRoot:
			add("container %q does not run with runAsNonRoot=true", c.Name)
		}
		if sc.RunAsUser != nil && *sc.RunAsUser == 0 {
			add("container %q runAsUser is 0", c.Name)
		}
		if sc.SeccompProfile == nil && !podSeccomp {
			add("container %q has no seccompProfile (RuntimeDefault or Localhost)", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			add("container %q does not drop ALL capabilities", c.Name)
		}
		if sc.Capabilities != nil {
			for _, cp := range sc.Capabilities.Add {
				if cp != "NET_BIND_SERVICE" {
					add("container %q adds capability %s (restricted allows only NET_BIND_SERVICE)", c.Name, cp)
				}
			}
		}
	}
	return out
}

func allContainers(spec *corev1.PodSpec) []corev1.Container {
	cs := append(append([]corev1.Container{}, spec.InitContainers...), spec.Containers...)
	for _, e := range spec.EphemeralContainers {
		cs = append(cs, corev1.Container(e.EphemeralContainerCommon))
	}
	return cs
}

// badSELinux: baseline allows only the container types and no user or role.
func badSELinux(o *corev1.SELinuxOptions) bool {
	if o == nil {
		return false
	}
	switch o.Type {
	case "", "container_t", "container_init_t", "container_kvm_t", "container_engine_t":
	default:
		return true
	}
	return o.User != "" || o.Role != ""
}
