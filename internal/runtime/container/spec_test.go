package container

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func TestProcessArgs(t *testing.T) {
	img := ImageConfig{Entrypoint: []string{"/entry"}, Cmd: []string{"default-cmd"}}
	env := []corev1.EnvVar{{Name: "DIR", Value: "/stash-tmp/data"}}
	for _, tc := range []struct {
		name          string
		command, args []string
		img           ImageConfig
		want          []string
		err           string
	}{
		{name: "image's entrypoint and cmd", img: img, want: []string{"/entry", "default-cmd"}},
		{name: "args replace cmd", args: []string{"a"}, img: img, want: []string{"/entry", "a"}},
		{name: "command replaces both", command: []string{"sh", "-c"}, args: []string{"x"}, img: img, want: []string{"sh", "-c", "x"}},
		{name: "$(VAR) expands", command: []string{"cp", "$(DIR)/a", "$(MISSING)", "$$(DIR)"}, want: []string{"cp", "/stash-tmp/data/a", "$(MISSING)", "$(DIR)"}},
		{name: "nothing to run", err: "no command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := processArgs(corev1.Container{Name: "c", Image: "i", Command: tc.command, Args: tc.args}, tc.img, env)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("%v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("%q, %v, want %q", got, err, tc.want)
			}
		})
	}
}

func TestResolveUser(t *testing.T) {
	i := func(v int64) *int64 { return &v }
	lookup := func(name string) (uint32, uint32, bool) {
		if name == "redis" {
			return 999, 998, true
		}
		return 0, 0, false
	}
	pod := func(uid, gid *int64, fs *int64, nonRoot bool) corev1.PodSpec {
		return corev1.PodSpec{SecurityContext: &corev1.PodSecurityContext{RunAsUser: uid, RunAsGroup: gid, FSGroup: fs, RunAsNonRoot: &nonRoot, SupplementalGroups: []int64{5}}}
	}
	for _, tc := range []struct {
		name  string
		c     *corev1.SecurityContext
		pod   corev1.PodSpec
		image string
		want  string
		err   string
	}{
		{name: "pod's user, group, fsGroup", pod: pod(i(65535), i(65535), i(65535), true), want: "65535:65535 [5 65535]"},
		{name: "container over pod", c: &corev1.SecurityContext{RunAsUser: i(0), RunAsGroup: i(0)}, pod: pod(i(65535), i(65535), nil, false), want: "0:0 [5]"},
		{name: "image USER by name", image: "redis", want: "999:998 []"},
		{name: "image USER uid:gid", image: "1001:1002", want: "1001:1002 []"},
		{name: "runAsGroup over image group", image: "redis", pod: pod(nil, i(7), nil, false), want: "999:7 [5]"},
		{name: "unknown image user", image: "nobody-here", err: "not in its /etc/passwd"},
		{name: "root refused under runAsNonRoot", pod: pod(nil, nil, nil, true), err: "runAsNonRoot"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := resolveUser(corev1.Container{Name: "c", SecurityContext: tc.c}, tc.pod, ImageConfig{User: tc.image}, lookup)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("%+v, %v, want %q", u, err, tc.err)
				}
				return
			}
			got := fmt.Sprintf("%d:%d %v", u.UID, u.GID, u.AdditionalGIDs)
			if err != nil || got != tc.want {
				t.Fatalf("%s, %v, want %s", got, err, tc.want)
			}
		})
	}
}

func TestCapabilities(t *testing.T) {
	for _, tc := range []struct {
		name string
		sc   *corev1.SecurityContext
		want []string
		err  string
	}{
		{name: "drop ALL", sc: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}, want: []string{}},
		{name: "drop ALL, add what the Function asks", sc: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"DAC_OVERRIDE", "CAP_CHOWN"}}}, want: []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE"}},
		{name: "add ALL refused", sc: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"ALL"}}}, err: "ALL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := capabilities(tc.sc)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("%v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("%v, %v, want %v", got, err, tc.want)
			}
		})
	}
	if got, _ := capabilities(nil); len(got) != len(defaultCapabilities) {
		t.Errorf("no securityContext: %d capabilities, want the runtime's %d defaults", len(got), len(defaultCapabilities))
	}
}

// TestBuildSpec: the spec holds the Job's mounts, env over the image's,
// its own namespaces with the given network, the limits, and never
// anything of the host.
func TestBuildSpec(t *testing.T) {
	no := false
	s, err := BuildSpec(SpecInput{
		Container: corev1.Container{
			Name: "dump-0", Image: "localhost/redis-tools:e2e", Command: []string{"sh"},
			SecurityContext: &corev1.SecurityContext{AllowPrivilegeEscalation: &no},
			Resources:       corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi"), corev1.ResourceCPU: resource.MustParse("500m")}},
		},
		Image:  ImageConfig{Env: []string{"PATH=/bin", "A=image"}},
		Env:    []corev1.EnvVar{{Name: "A", Value: "container"}},
		Mounts: []Mount{{Source: "/state/s1/tmp", Destination: "/stash-tmp"}, {Source: "/etc/ro", Destination: "/etc/conf", ReadOnly: true}},
		RootFS: "/rootfs", Hostname: "pod", NetNS: "/run/netns/stash-x", CgroupsPath: "/stash-local/x",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(s.Process.Env, []string{"PATH=/bin", "HOSTNAME=pod", "A=container"}) {
		t.Errorf("env %q", s.Process.Env)
	}
	if !s.Process.NoNewPrivileges || s.Process.Cwd != "/" || s.Root.Path != "/rootfs" || s.Root.Readonly {
		t.Errorf("process %+v root %+v", s.Process, s.Root)
	}
	var net Namespace
	for _, n := range s.Linux.Namespaces {
		if n.Path != "" && n.Type != "network" {
			t.Errorf("namespace %s joins %s: only the network is joined", n.Type, n.Path)
		}
		if n.Type == "network" {
			net = n
		}
	}
	if net.Path != "/run/netns/stash-x" {
		t.Errorf("network namespace %+v", net)
	}
	binds := map[string]SpecMount{}
	for _, m := range s.Mounts {
		if m.Type == "bind" {
			binds[m.Destination] = m
		}
	}
	if len(binds) != 2 || !slices.Contains(binds["/etc/conf"].Options, "ro") || !slices.Contains(binds["/stash-tmp"].Options, "rw") {
		t.Errorf("bind mounts %+v, want exactly the Job's two", binds)
	}
	if m := s.Linux.Resources.Memory; m == nil || *m.Limit != 256<<20 {
		t.Errorf("memory %+v", m)
	}
	if c := s.Linux.Resources.CPU; c == nil || *c.Quota != 50000 || *c.Period != 100000 {
		t.Errorf("cpu %+v", c)
	}
}

func TestNormalizeRef(t *testing.T) {
	for in, want := range map[string]string{
		"redis":                        "docker.io/library/redis:latest",
		"redis:7.0":                    "docker.io/library/redis:7.0",
		"bitnami/redis:7":              "docker.io/bitnami/redis:7",
		"localhost/redis-tools:e2e":    "localhost/redis-tools:e2e",
		"registry:5000/team/tools":     "registry:5000/team/tools:latest",
		"ghcr.io/x/y@sha256:abc":       "ghcr.io/x/y@sha256:abc",
		"quay.io/org/image:1.2.3-rc.1": "quay.io/org/image:1.2.3-rc.1",
	} {
		if got, err := NormalizeRef(in); err != nil || got != want {
			t.Errorf("%s: %s, %v, want %s", in, got, err, want)
		}
	}
	if _, err := NormalizeRef("a b"); err == nil {
		t.Error("a reference with a space accepted")
	}
}

func TestImageConfig(t *testing.T) {
	blobs := map[string]string{
		"sha256:index":  `{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:arm","platform":{"os":"linux","architecture":"arm64-not-this"}},{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:man","platform":{"os":"linux","architecture":"` + runtime.GOARCH + `"}}]}`,
		"sha256:man":    `{"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"digest":"sha256:config"}}`,
		"sha256:config": `{"config":{"Entrypoint":["/bin/sh"],"User":"65535","Env":["PATH=/bin"]}}`,
	}
	get := func(d string) ([]byte, error) {
		if b, ok := blobs[d]; ok {
			return []byte(b), nil
		}
		return nil, fmt.Errorf("no blob %s", d)
	}
	for _, start := range []string{"sha256:index", "sha256:man"} {
		cfg, err := imageConfig("", start, get)
		if err != nil || cfg.User != "65535" || !slices.Equal(cfg.Entrypoint, []string{"/bin/sh"}) {
			t.Errorf("from %s: %+v, %v", start, cfg, err)
		}
	}
	if _, ok := func() (uint32, bool) {
		u, _, ok := parsePasswd([]byte("root:x:0:0::/:/bin/sh\nredis:x:999:998::/:/bin/false\n"), "redis")
		return u, ok && u == 999
	}(); !ok {
		t.Error("parsePasswd did not find redis as 999")
	}
}
