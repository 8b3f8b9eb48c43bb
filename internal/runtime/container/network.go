package container

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// Network gives every container a network namespace of its own, attached
// to a bridge of this machine by CNI's bridge and host-local plugins, as
// the kubelet attaches a pod: a step reaches what this machine reaches
// (through the bridge's gateway, masqueraded), never this machine's own
// namespace, loopback included.
type Network struct {
	// PluginDir holds the CNI plugins (bridge, host-local).
	PluginDir string
	// Bridge is the bridge interface, created on first use.
	Bridge string
	// Subnet is the containers' addresses; the bridge takes the first.
	Subnet string
	// DataDir keeps host-local's address leases.
	DataDir string
}

// LeaseDir keeps the address leases of every local runtime of the
// machine: they share one bridge, so they must share host-local's leases
// (which it locks) or two would hand out the same address. Under /run, a
// lease a killed runtime left goes at the next boot.
const LeaseDir = "/run/stash/cni"

// DefaultNetwork is the network of containers the local runtime starts:
// a subnet apart from Kubernetes' defaults and podman's.
func DefaultNetwork() *Network {
	return &Network{PluginDir: findPluginDir(), Bridge: "stash0", Subnet: "10.89.0.0/24", DataDir: LeaseDir}
}

// findPluginDir returns the first directory with CNI's bridge plugin:
// $STASH_CNI_PATH, Debian's /usr/lib/cni, or the upstream /opt/cni/bin.
func findPluginDir() string {
	for _, d := range []string{os.Getenv("STASH_CNI_PATH"), "/usr/lib/cni", "/opt/cni/bin"} {
		if d == "" {
			continue
		}
		if _, err := os.Stat(filepath.Join(d, "bridge")); err == nil {
			return d
		}
	}
	return ""
}

// check says what is missing to set up networks.
func (n *Network) check() error {
	if n.PluginDir == "" {
		return fmt.Errorf("no CNI plugins (bridge, host-local) in $STASH_CNI_PATH, /usr/lib/cni or /opt/cni/bin: install them (Debian: apt-get install containernetworking-plugins)")
	}
	for _, p := range []string{"bridge", "host-local"} {
		if _, err := os.Stat(filepath.Join(n.PluginDir, p)); err != nil {
			return fmt.Errorf("CNI plugin %s missing in %s", p, n.PluginDir)
		}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("the ip command (iproute2) is needed to create network namespaces: %w", err)
	}
	return nil
}

func (n *Network) config() []byte {
	conf := map[string]any{
		"cniVersion": "0.4.0", "name": "stash-local", "type": "bridge",
		"bridge": n.Bridge, "isGateway": true, "ipMasq": true, "hairpinMode": true,
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  [][]map[string]string{{{"subnet": n.Subnet}}},
			"routes":  []map[string]string{{"dst": "0.0.0.0/0"}},
			"dataDir": n.DataDir,
		},
	}
	b, _ := json.Marshal(conf)
	return b
}

// Setup creates the network namespace of container id and attaches it;
// teardown undoes both and must be called whatever happens next.
func (n *Network) Setup(ctx context.Context, id string) (nsPath string, teardown func(), err error) {
	if err := n.check(); err != nil {
		return "", nil, err
	}
	name := "stash-" + id
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput(); err != nil {
		return "", nil, fmt.Errorf("create network namespace %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	nsPath = filepath.Join("/run/netns", name)
	teardown = func() {
		// A fresh context: the session's may be cancelled already, and
		// a lease or namespace left behind would outlive it.
		_ = n.plugin(context.Background(), "DEL", id, nsPath)
		_ = exec.Command("ip", "netns", "del", name).Run()
	}
	if out, err := exec.CommandContext(ctx, "ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		teardown()
		return "", nil, fmt.Errorf("loopback of %s: %w: %s", name, err, bytes.TrimSpace(out))
	}
	if err := n.plugin(ctx, "ADD", id, nsPath); err != nil {
		teardown()
		return "", nil, err
	}
	return nsPath, teardown, nil
}

// plugin runs the bridge plugin as a CNI runtime does.
func (n *Network) plugin(ctx context.Context, command, id, nsPath string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(n.PluginDir, "bridge"))
	cmd.Env = []string{
		"CNI_COMMAND=" + command, "CNI_CONTAINERID=" + id, "CNI_NETNS=" + nsPath,
		"CNI_IFNAME=eth0", "CNI_PATH=" + n.PluginDir, "PATH=" + os.Getenv("PATH"),
	}
	cmd.Stdin = bytes.NewReader(n.config())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("CNI bridge %s for %s: %w: %s%s", command, id, err, bytes.TrimSpace(out), bytes.TrimSpace(stderr.Bytes()))
	}
	return nil
}
