package mongodb

import (
	"encoding/json"
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
)

// ConfigHost is the host a sharded cluster's config server replica set is
// backed up as, as in Stash; its shards are the keys of the AppBinding's
// parameters.replicaSets (host-0, host-1, …).
const ConfigHost = "confighost"

// Component is one replica set of a sharded cluster: the config servers
// or one shard.
type Component struct {
	// Host is the snapshot's host: ConfigHost or the shard's key.
	Host string
	// ReplicaSet is the set's name and Seeds its members, host:port.
	ReplicaSet string
	Seeds      []string
}

// Topology is a sharded cluster as KubeDB's AppBinding parameters
// describe it (kind MongoConfiguration): configServer and replicaSets,
// each a DSN "<set name>/<host:port>,<host:port>…". It is nil for an
// AppBinding without them: a standalone server, a replica set, or a
// mongos backed up as one server.
type Topology struct {
	Config Component
	Shards []Component
}

// Components are the config servers, then every shard in key order.
func (t *Topology) Components() []Component {
	return append([]Component{t.Config}, t.Shards...)
}

// Hosts are the hosts a backup of the cluster takes snapshots of, one
// per component.
func (t *Topology) Hosts() []string {
	var out []string
	for _, c := range t.Components() {
		out = append(out, c.Host)
	}
	return out
}

// ParseTopology reads an AppBinding's spec.parameters. It returns nil
// when they name no sharded cluster, and an error naming the field when
// they name one wrongly.
func ParseTopology(parameters []byte) (*Topology, error) {
	if len(parameters) == 0 {
		return nil, nil
	}
	var p struct {
		ConfigServer string            `json:"configServer"`
		ReplicaSets  map[string]string `json:"replicaSets"`
	}
	if err := json.Unmarshal(parameters, &p); err != nil {
		return nil, fmt.Errorf("AppBinding spec.parameters: %w", err)
	}
	if p.ConfigServer == "" && len(p.ReplicaSets) == 0 {
		return nil, nil
	}
	if p.ConfigServer == "" {
		return nil, fmt.Errorf("AppBinding spec.parameters.replicaSets without configServer: a sharded cluster needs both (give configServer: <set>/<host:port>,…)")
	}
	if len(p.ReplicaSets) == 0 {
		return nil, fmt.Errorf("AppBinding spec.parameters.configServer without replicaSets: a sharded cluster needs both (give replicaSets: {host-0: <set>/<host:port>,…})")
	}
	t := &Topology{}
	var err error
	if t.Config, err = parseDSN(ConfigHost, p.ConfigServer); err != nil {
		return nil, fmt.Errorf("AppBinding spec.parameters.configServer: %w", err)
	}
	for host, dsn := range p.ReplicaSets {
		if host == ConfigHost || host == "" || strings.ContainsAny(host, "/ \t") {
			return nil, fmt.Errorf("AppBinding spec.parameters.replicaSets: key %q cannot be a snapshot's host: use host-0, host-1, …", host)
		}
		c, err := parseDSN(host, dsn)
		if err != nil {
			return nil, fmt.Errorf("AppBinding spec.parameters.replicaSets.%s: %w", host, err)
		}
		t.Shards = append(t.Shards, c)
	}
	sort.Slice(t.Shards, func(i, j int) bool { return hostLess(t.Shards[i].Host, t.Shards[j].Host) })
	return t, nil
}

// hostLess orders host-2 before host-10.
func hostLess(a, b string) bool {
	na, ea := strconv.Atoi(strings.TrimPrefix(a, "host-"))
	nb, eb := strconv.Atoi(strings.TrimPrefix(b, "host-"))
	if ea == nil && eb == nil && strings.HasPrefix(a, "host-") && strings.HasPrefix(b, "host-") {
		return na < nb
	}
	return a < b
}

// parseDSN reads "<set name>/<host:port>,<host:port>…".
func parseDSN(host, dsn string) (Component, error) {
	set, list, ok := strings.Cut(dsn, "/")
	if !ok || set == "" || list == "" {
		return Component{}, fmt.Errorf("%q: give <replica set name>/<host:port>,<host:port>…", dsn)
	}
	c := Component{Host: host, ReplicaSet: set}
	for _, hp := range strings.Split(list, ",") {
		h, port, err := net.SplitHostPort(hp)
		if err != nil {
			h, port = hp, strconv.Itoa(DefaultPort)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || h == "" || strings.ContainsAny(h, "@/?") || h[0] == '-' {
			return Component{}, fmt.Errorf("%q: member %q is not host:port", dsn, hp)
		}
		c.Seeds = append(c.Seeds, net.JoinHostPort(h, port))
	}
	return c, nil
}
