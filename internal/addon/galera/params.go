package galera

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// Arbitrator is what an AppBinding's spec.parameters say about a Galera
// cluster (KubeDB's GaleraArbitratorConfiguration): its gcomm:// address,
// its group (wsrep_cluster_name) and the SST method its nodes donate
// with. No group means a standalone server.
type Arbitrator struct {
	Address   string `json:"address"`
	Group     string `json:"group"`
	SSTMethod string `json:"sstMethod"`
}

// Cluster reports whether the parameters describe a cluster.
func (a Arbitrator) Cluster() bool { return a.Group != "" }

// Tools are the programs of one SST method.
type Tools struct {
	// Stream extracts an xbstream (mbstream, xbstream).
	Stream string
	// Backup prepares a backup (mariabackup, xtrabackup).
	Backup string
	// InProcess says the step extracts the stream itself (NewExtractor)
	// rather than through Stream. mariabackup's streams hold payload and
	// end chunks only, which the tests extract both ways and compare;
	// Percona's may hold sparse chunks, whose layout only Percona's
	// xbstream defines and no tool here writes, so xbstream extracts them.
	InProcess bool
}

// sstTools are the SST methods an arbitrator can ask for, and the tools
// that read what they send. rsync and mysqldump SSTs are not backups a
// stream can hold.
var sstTools = map[string]Tools{
	"mariabackup":   {Stream: "mbstream", Backup: "mariabackup", InProcess: true},
	"xtrabackup-v2": {Stream: "xbstream", Backup: "xtrabackup"},
	"xtrabackup":    {Stream: "xbstream", Backup: "xtrabackup"},
}

// ToolsFor returns the tools of an SST method.
func ToolsFor(method string) (Tools, error) {
	t, ok := sstTools[method]
	if !ok {
		return Tools{}, fmt.Errorf("sstMethod %q: give mariabackup (MariaDB Galera), xtrabackup-v2 or xtrabackup (Percona XtraDB Cluster)", method)
	}
	return t, nil
}

// hostRE is one member of a gcomm:// address: a host name or an IPv4 or
// bracketed IPv6 address, and an optional port.
var (
	hostRE  = regexp.MustCompile(`^([A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$`)
	groupRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	// optRE is one option after the address's '?': name=value.
	optRE = regexp.MustCompile(`^[a-z_.]+=[A-Za-z0-9_.:/-]*$`)
)

// ParseArbitrator reads an AppBinding's spec.parameters. They reach
// garbd's command line, so every part is checked: a member list, a group
// name, a method the addon knows.
func ParseArbitrator(raw []byte) (Arbitrator, error) {
	var a Arbitrator
	if len(raw) == 0 {
		return a, nil
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, fmt.Errorf("AppBinding spec.parameters: %w", err)
	}
	if !a.Cluster() {
		return a, nil
	}
	if !groupRE.MatchString(a.Group) {
		return a, fmt.Errorf("AppBinding spec.parameters.group %q: give the cluster's wsrep_cluster_name (letters, digits, '.', '_', '-')", a.Group)
	}
	if _, err := a.Members(); err != nil {
		return a, err
	}
	if a.SSTMethod == "" {
		return a, fmt.Errorf("AppBinding spec.parameters.sstMethod is empty: give mariabackup (MariaDB Galera) or xtrabackup-v2 (Percona XtraDB Cluster)")
	}
	if _, err := ToolsFor(a.SSTMethod); err != nil {
		return a, fmt.Errorf("AppBinding spec.parameters.%w", err)
	}
	return a, nil
}

// Members returns the hosts of the gcomm:// address.
func (a Arbitrator) Members() ([]string, error) {
	rest, ok := strings.CutPrefix(a.Address, "gcomm://")
	if !ok {
		return nil, fmt.Errorf("AppBinding spec.parameters.address %q: give the cluster's gcomm://host[:port],… address", a.Address)
	}
	list, opts, _ := strings.Cut(rest, "?")
	if opts != "" {
		for _, o := range strings.Split(opts, "&") {
			if !optRE.MatchString(o) {
				return nil, fmt.Errorf("AppBinding spec.parameters.address: option %q is not name=value", o)
			}
		}
	}
	var hosts []string
	for _, h := range strings.Split(list, ",") {
		if !hostRE.MatchString(h) {
			return nil, fmt.Errorf("AppBinding spec.parameters.address: member %q is not host[:port]", h)
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// garbdAddress is the address garbd joins with: the cluster's, with
// garbd's own listen address added to its options.
func (a Arbitrator) garbdAddress(listen string) string {
	sep := "?"
	if strings.Contains(a.Address, "?") {
		sep = "&"
	}
	return a.Address + sep + "gmcast.listen_addr=tcp://" + listen
}
