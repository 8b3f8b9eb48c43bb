package galera

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Position is a point in a Galera cluster's history: the cluster's state
// UUID and a write-set sequence number.
type Position struct {
	UUID  string
	Seqno int64
}

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// ParsePosition reads xtrabackup_galera_info: "<uuid>:<seqno>", then
// (MariaDB) a GTID domain. It is hostile input, from a snapshot: anything
// else is refused rather than written into grastate.dat.
func ParsePosition(s string) (Position, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return Position{}, fmt.Errorf("%s is empty", GaleraInfo)
	}
	u, seq, ok := strings.Cut(f[0], ":")
	if !ok || !uuidRE.MatchString(u) {
		return Position{}, fmt.Errorf("%s: %q is not <uuid>:<seqno>", GaleraInfo, f[0])
	}
	n, err := strconv.ParseInt(seq, 10, 64)
	if err != nil || n < -1 {
		return Position{}, fmt.Errorf("%s: seqno %q is not a number", GaleraInfo, seq)
	}
	return Position{UUID: u, Seqno: n}, nil
}

// Grastate is the grastate.dat that makes a node start at pos. Only the
// node that bootstraps the restored cluster is safe to bootstrap; the
// others join it, and having the same position they need no transfer.
func Grastate(pos Position, bootstrap bool) string {
	safe := 0
	if bootstrap {
		safe = 1
	}
	return fmt.Sprintf("# GALERA saved state\nversion: 2.1\nuuid:    %s\nseqno:   %d\nsafe_to_bootstrap: %d\n", pos.UUID, pos.Seqno, safe)
}
