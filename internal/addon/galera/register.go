package galera

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/mysql"
)

// DefaultDataDir is where a cluster restore goes when the RestoreSession
// mounts its claim nowhere else: MySQL's data directory, as in Stash.
const DefaultDataDir = "/var/lib/mysql"

// Registration is Percona XtraDB Cluster and MariaDB Galera as the
// backup-percona-xtradb and restore-percona-xtradb step commands, with
// the flags of Stash's perconaxtradb-* Functions and the catalog's
// mariadb-galera-* Functions.
func Registration() addon.Registration {
	return addon.Registration{
		Name:         "percona-xtradb",
		BackupShort:  "Back up a Percona XtraDB or MariaDB Galera cluster through the Galera arbitrator, or a standalone server with mysqldump",
		RestoreShort: "Restore a cluster's state snapshot into a replica's data directory, or a dump into a standalone server",
		DefaultPort:  mysql.DefaultPort,
		UserKeys:     mysql.UserKeys,
		PasswordKeys: mysql.PasswordKeys,
		BackupFlags: []addon.Flag{
			{Name: "xtradb-args", Usage: "mysqldump arguments of a logical backup (default --all-databases)"},
			{Name: "socat-retry", Default: "30", Usage: "accepted for Stash's Functions; the SST's waits are --sst-timeout"},
			{Name: "backup-mode", Default: string(Physical), Usage: "a cluster's backup: physical (a state snapshot through garbd) or logical (mysqldump of a Synced node)"},
			{Name: "sst-timeout", Default: "300", Usage: "seconds to wait for a donor to accept, to connect, and between its packets"},
			{Name: "listen-address", Usage: "the IP the donor connects to and garbd listens on (default: the address that reaches the cluster)"},
		},
		RestoreFlags: []addon.Flag{
			{Name: "xtradb-args", Usage: "mysql client arguments of a logical restore; backup tool arguments of a prepare"},
			{Name: "target-app-replicas", Default: "1", Usage: "the restored cluster's replicas: more than 1 restores the state snapshot into --mount-path"},
			{Name: "sst-method", Default: "xtrabackup-v2", Usage: "the tools of a physical restore: mariabackup (mbstream) or xtrabackup-v2 (xbstream)"},
			{Name: "data-dir", Usage: "restore the state snapshot into this directory (a restore rule's paths, in the local runtime)"},
			{Name: "mount-path", Default: DefaultDataDir, Usage: "where the replica's claim is mounted (the RestoreSession's volumeMounts)"},
			{Name: "pod-ordinal", Default: "0", Usage: "the replica restored: 0 bootstraps the cluster, the others join it"},
			{Name: "data-owner", Default: "1001:1001", Usage: "uid:gid the restored files get when the step runs as root"},
		},
		NewBackup:       newBackup,
		NewRestore:      newRestore,
		RestoreNeedsApp: func(flags map[string]string) bool { d, _ := physicalDir(flags); return d == "" },
	}
}

func newBackup(c addon.Config) (addon.Driver, error) {
	arb, err := ParseArbitrator(c.Conn.Parameters)
	if err != nil {
		return nil, err
	}
	mode := Mode(c.Flags["backup-mode"])
	if mode != Physical && mode != Logical {
		return nil, fmt.Errorf("--backup-mode=%q: give physical or logical", mode)
	}
	timeout, err := seconds(c.Flags["sst-timeout"], "--sst-timeout")
	if err != nil {
		return nil, err
	}
	if v := c.Flags["socat-retry"]; v != "" {
		if _, err := strconv.Atoi(v); err != nil {
			return nil, fmt.Errorf("--socat-retry=%q: give a number", v)
		}
	}
	return Driver{Options: Options{
		Conn: c.Conn, Arbitrator: arb, Args: strings.Fields(c.Flags["xtradb-args"]), Mode: mode, ScratchDir: c.ScratchDir,
		SST: SST{Arbitrator: arb, ListenIP: c.Flags["listen-address"], Timeout: timeout, LogDir: c.ScratchDir},
	}}, nil
}

// physicalDir returns the directory of a physical restore, or "" for a
// logical one: --data-dir when given, else --mount-path when the
// RestoreSession restores several replicas (Stash's rule).
func physicalDir(flags map[string]string) (string, error) {
	if d := strings.TrimSpace(flags["data-dir"]); d != "" {
		if strings.Contains(d, ",") {
			return "", fmt.Errorf("--data-dir=%q: a restore rule names one data directory", d)
		}
		return d, nil
	}
	n, err := strconv.Atoi(orStr(flags["target-app-replicas"], "1"))
	if err != nil || n < 1 {
		return "", fmt.Errorf("--target-app-replicas=%q: give the number of replicas (1 or more)", flags["target-app-replicas"])
	}
	if n > 1 {
		return orStr(flags["mount-path"], DefaultDataDir), nil
	}
	return "", nil
}

func newRestore(c addon.Config) (addon.Driver, error) {
	dir, err := physicalDir(c.Flags)
	if err != nil {
		return nil, err
	}
	o := Options{Conn: c.Conn, Args: strings.Fields(c.Flags["xtradb-args"]), ScratchDir: c.ScratchDir, DataDir: dir, UID: -1, GID: -1}
	if dir == "" {
		return Driver{Options: o}, nil
	}
	o.Conn = nil
	o.SSTMethod = c.Flags["sst-method"]
	if _, err := ToolsFor(o.SSTMethod); err != nil {
		return nil, fmt.Errorf("--sst-method: %w", err)
	}
	if o.Ordinal, err = strconv.Atoi(orStr(c.Flags["pod-ordinal"], "0")); err != nil || o.Ordinal < 0 {
		return nil, fmt.Errorf("--pod-ordinal=%q: give the replica's ordinal (0, 1, …)", c.Flags["pod-ordinal"])
	}
	if own := c.Flags["data-owner"]; own != "" {
		u, g, ok := strings.Cut(own, ":")
		uid, e1 := strconv.Atoi(u)
		gid, e2 := strconv.Atoi(g)
		if !ok || e1 != nil || e2 != nil || uid < 0 || gid < 0 {
			return nil, fmt.Errorf("--data-owner=%q: give uid:gid, e.g. 1001:1001", own)
		}
		o.UID, o.GID = uid, gid
	}
	return Driver{Options: o}, nil
}

func seconds(v, flag string) (time.Duration, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s=%q: give a number of seconds", flag, v)
	}
	return time.Duration(n) * time.Second, nil
}
