// Package galera backs up and restores Percona XtraDB Cluster and MariaDB
// Galera clusters, and their standalone servers. A standalone server (an
// AppBinding without a Galera group) is dumped and restored logically
// through the MySQL driver. A cluster is backed up physically: the step
// joins the cluster as an arbitrator (garbd) for the length of one state
// snapshot transfer and streams the donor's xbstream into the repository
// as xtrabackup.stream, checked on the way. A cluster restore extracts
// and prepares the stream into each replica's data directory and writes
// the grastate.dat that makes node 0 bootstrap the restored cluster and
// the others join it.
package galera

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/addon/mysql"
	"github.com/stash-backup/stash/internal/appbinding"
)

// StreamFile is the name a cluster backup is stored under, as in Stash.
const StreamFile = "xtrabackup.stream"

// Mode is how a cluster is backed up.
type Mode string

// Modes of a cluster backup.
const (
	// Physical receives a state snapshot through the arbitrator.
	Physical Mode = "physical"
	// Logical dumps one Synced node with mysqldump.
	Logical Mode = "logical"
)

// Options describe one backup or restore.
type Options struct {
	// Conn is the server the AppBinding names (nil for a physical
	// restore, which needs no server).
	Conn *appbinding.Connection
	// Arbitrator is the AppBinding's Galera parameters.
	Arbitrator Arbitrator
	// Args are --xtradb-args: mysqldump or mysql client arguments for a
	// logical backup or restore, the backup tool's for a prepare.
	Args []string
	// Mode is a cluster backup's kind (default Physical).
	Mode Mode
	// SST receives a physical backup.
	SST SST
	// ScratchDir is the step's scratch directory.
	ScratchDir string
	// BinDir, if set, is where the tools are.
	BinDir string

	// DataDir is where a physical restore goes; empty means a logical
	// restore.
	DataDir string
	// SSTMethod chooses a physical restore's tools.
	SSTMethod string
	// Ordinal is the replica a physical restore is for: 0 bootstraps.
	Ordinal int
	// UID and GID own a restored data directory when the step runs as
	// root (-1: leave as written).
	UID, GID int
}

func (o *Options) mysql() mysql.Options {
	return mysql.Options{Conn: o.Conn, Args: o.Args, ScratchDir: o.ScratchDir, BinDir: o.BinDir}
}

func (o *Options) tool(name string) string {
	if o.BinDir != "" {
		return filepath.Join(o.BinDir, name)
	}
	return name
}

// Driver is the addon.Driver of Galera clusters and their standalone
// servers.
type Driver struct {
	Options
	// pipe makes a restore extract through the stream tool even where
	// the step could itself: the tests cover Percona's way with MariaDB's
	// tools.
	pipe bool
}

// Wait implements addon.Driver: the server answers. A physical restore
// waits for nothing: the cluster it restores does not run yet.
func (d Driver) Wait(ctx context.Context, timeout time.Duration) error {
	if d.Conn == nil {
		return nil
	}
	return mysql.Wait(ctx, d.mysql(), timeout)
}

// Backup implements addon.Driver.
func (d Driver) Backup(ctx context.Context, w addon.Writer) error {
	if !d.Arbitrator.Cluster() {
		return mysql.Driver{Options: d.mysql()}.Backup(ctx, w)
	}
	if d.Mode == Logical {
		conn, err := chooseNode(ctx, d.mysql())
		if err != nil {
			return err
		}
		o := d.mysql()
		o.Conn = conn
		return mysql.Driver{Options: o}.Backup(ctx, w)
	}
	sst := d.SST
	tls, err := galeraTLS(ctx, d.mysql())
	if err != nil {
		return err
	}
	if tls != nil {
		defer tls.Remove()
		sst.GarbdOptions = append(sst.GarbdOptions, "socket.ssl=yes", "socket.ssl_ca="+tls.CA, "socket.ssl_cert="+tls.Cert, "socket.ssl_key="+tls.Key)
	}
	return w.Stream(ctx, "", StreamFile, func(ctx context.Context, out io.Writer) error {
		_, err := sst.Receive(ctx, out)
		return err
	})
}

// galeraTLS returns the files garbd encrypts its Galera traffic with when
// the cluster's is encrypted (the AppBinding's node has socket.ssl on, as
// Percona XtraDB Cluster 8 has by default), or nil when it is not: the
// AppBinding's tlsSecret certificate and key, and its CA, which must be
// the ones the nodes trust. A node that cannot be asked leaves garbd
// unencrypted, as most clusters are: an encrypted cluster then refuses
// it, and the step fails saying so.
func galeraTLS(ctx context.Context, o mysql.Options) (*dump.TLSFiles, error) {
	opts, err := mysql.Query(ctx, o, "SELECT @@wsrep_provider_options")
	if err != nil {
		slog.Warn("could not ask the AppBinding's node whether its Galera traffic is encrypted; garbd joins without TLS", "error", err)
		return nil, nil
	}
	if !sslOn(opts) {
		return nil, nil
	}
	if len(o.Conn.ClientCert) == 0 || len(o.Conn.ClientKey) == 0 || len(o.Conn.CABundle) == 0 {
		return nil, fmt.Errorf("the cluster's Galera traffic is encrypted (socket.ssl): give the AppBinding a spec.tlsSecret (tls.crt, tls.key, ca.crt) signed by the CA the nodes trust, for the arbitrator to join with")
	}
	files, err := dump.WriteTLS(o.Conn, o.ScratchDir)
	if err != nil {
		return nil, err
	}
	slog.Info("the cluster's Galera traffic is encrypted; garbd joins with the AppBinding's tlsSecret")
	return files, nil
}

// sslOn reads wsrep_provider_options ("a = b; c = d; …") for Galera's
// socket encryption: socket.ssl = YES, or a certificate configured.
func sslOn(opts string) bool {
	for _, kv := range strings.Split(opts, ";") {
		k, v, _ := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case k == "socket.ssl" && strings.EqualFold(v, "yes"):
			return true
		case k == "socket.ssl_cert" && v != "":
			return true
		}
	}
	return false
}

// Restore implements addon.Driver.
func (d Driver) Restore(ctx context.Context, r addon.Reader) error {
	if d.DataDir == "" {
		return mysql.Driver{Options: d.mysql()}.Restore(ctx, r)
	}
	return d.restorePhysical(ctx, r)
}

// member is a cluster node as a logical backup sees it.
type member struct {
	Conn  *appbinding.Connection
	State string // wsrep_local_state: 4 is Synced
	Err   error
}

// chooseNode returns a Synced node to dump: never a donor (2) or a node
// joining (1, 3), whose data is behind or whose I/O serves an SST. The
// members are the wsrep_incoming_addresses of the AppBinding's node.
func chooseNode(ctx context.Context, o mysql.Options) (*appbinding.Connection, error) {
	out, err := mysql.Query(ctx, o, "SHOW STATUS LIKE 'wsrep_incoming_addresses'")
	if err != nil {
		return nil, err
	}
	_, list, _ := strings.Cut(out, "\t")
	var members []member
	for _, a := range strings.Split(list, ",") {
		host, port, err := net.SplitHostPort(strings.TrimSpace(a))
		p, perr := strconv.Atoi(port)
		if err != nil || perr != nil {
			continue
		}
		c := *o.Conn
		c.Host, c.Port = host, p
		m := member{Conn: &c}
		mo := o
		mo.Conn = &c
		st, err := mysql.Query(ctx, mo, "SHOW STATUS LIKE 'wsrep_local_state'")
		_, m.State, _ = strings.Cut(st, "\t")
		m.Err = err
		members = append(members, m)
	}
	if len(members) == 0 {
		// The AppBinding's node does not list its members (a proxy in
		// front, or an old server): it is the one node there is.
		members = append(members, member{Conn: o.Conn})
		st, err := mysql.Query(ctx, o, "SHOW STATUS LIKE 'wsrep_local_state'")
		_, members[0].State, _ = strings.Cut(st, "\t")
		members[0].Err = err
	}
	i, err := pickSynced(members)
	if err != nil {
		return nil, err
	}
	slog.Info("logical backup of a Synced node", "node", members[i].Conn.Address())
	return members[i].Conn, nil
}

// pickSynced returns the first Synced member.
func pickSynced(ms []member) (int, error) {
	var states []string
	for i, m := range ms {
		if m.Err == nil && m.State == "4" {
			return i, nil
		}
		s := "state " + m.State
		if m.Err != nil {
			s = m.Err.Error()
		}
		states = append(states, m.Conn.Address()+": "+s)
	}
	return 0, fmt.Errorf("no Synced node to dump (wsrep_local_state 4); a donor or joining node is never dumped: %s", strings.Join(states, "; "))
}

// restorePhysical extracts the stream into the data directory, prepares
// it, writes grastate.dat and gives the files to the database's user.
func (d Driver) restorePhysical(ctx context.Context, r addon.Reader) error {
	tools, err := ToolsFor(d.SSTMethod)
	if err != nil {
		return fmt.Errorf("--sst-method: %w", err)
	}
	dir := d.DataDir
	if err := checkEmpty(dir); err != nil {
		return err
	}
	start := time.Now()
	var chk *Checker
	if tools.InProcess && !d.pipe {
		chk, err = extractInProcess(ctx, r, dir)
	} else {
		chk, err = d.extractWith(ctx, r, tools.Stream, dir)
	}
	if err != nil {
		// The directory held nothing before (checkEmpty): what is there
		// now is this restore's partial extraction, which would make the
		// next attempt refuse the directory as a database.
		if cerr := clearDir(dir); cerr != nil {
			return fmt.Errorf("%w (and removing the partial extraction: %v)", err, cerr)
		}
		return err
	}
	extracted := time.Since(start)
	pos, ok := chk.Position()
	if !ok {
		return fmt.Errorf("the backup holds no valid %s: it is not a Galera state snapshot", GaleraInfo)
	}
	args := append([]string{"--prepare", "--target-dir=" + dir}, d.Args...)
	prep := exec.CommandContext(ctx, d.tool(tools.Backup), args...)
	out := &dump.Tail{}
	prep.Stdout, prep.Stderr = out, out
	if err := prep.Run(); err != nil {
		return fmt.Errorf("%s --prepare: %v: %s", tools.Backup, err, out.String())
	}
	// seqno -1: each node takes its position from InnoDB, where the
	// prepared data records it, so that every replica (restored from the
	// same data) starts at the same one. xtrabackup_galera_info's seqno
	// can be ahead of it (seen: 627 against 601 in InnoDB); a joiner told
	// the former but holding the latter fails its IST ("IST started with
	// wrong seqno").
	if err := os.WriteFile(filepath.Join(dir, "grastate.dat"), []byte(Grastate(Position{UUID: pos.UUID, Seqno: -1}, d.Ordinal == 0)), 0o660); err != nil {
		return err
	}
	if err := d.own(dir); err != nil {
		return err
	}
	slog.Info("data directory restored", "dir", dir, "uuid", pos.UUID, "seqno", pos.Seqno, "bootstrap", d.Ordinal == 0,
		"extract", extracted.Round(time.Millisecond), "prepare", (time.Since(start) - extracted).Round(time.Millisecond))
	return nil
}

// extractInProcess streams the snapshot into dir through an extractor.
func extractInProcess(ctx context.Context, r addon.Reader, dir string) (*Checker, error) {
	chk, err := NewExtractor(dir)
	if err != nil {
		return nil, err
	}
	err = r.Stream(ctx, "", StreamFile, chk)
	if cerr := chk.Close(); err == nil {
		err = cerr
	}
	return chk, err
}

// extractWith streams the snapshot, checked, into `tool -x -C dir`.
func (d Driver) extractWith(ctx context.Context, r addon.Reader, tool, dir string) (*Checker, error) {
	cmd := exec.CommandContext(ctx, d.tool(tool), "-x", "-C", dir)
	stderr := &dump.Tail{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	stdin, err := dump.StartWithStdin(cmd)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", tool, err)
	}
	chk := NewChecker(stdin)
	serr := r.Stream(ctx, "", StreamFile, chk)
	if serr == nil {
		serr = chk.Close()
	}
	if err := dump.EndClient(cmd, stdin, serr); err != nil {
		return nil, err
	}
	if err := cmd.Wait(); err != nil {
		return nil, fmt.Errorf("%s -x: %v: %s", tool, err, stderr.String())
	}
	return chk, nil
}

// checkEmpty refuses a data directory that holds a database: a restore
// never writes over data. A file system's lost+found is no data.
func checkEmpty(dir string) error {
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return os.MkdirAll(dir, 0o750)
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() != "lost+found" {
			return fmt.Errorf("data directory %s is not empty (it holds %s): a restore never writes over a database; give an empty volume", dir, e.Name())
		}
	}
	return nil
}

// clearDir removes everything in dir but lost+found.
func clearDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Name() == "lost+found" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// own gives the restored files to UID:GID when the step runs as root; a
// step running as the database's own user wrote them as that user.
func (d Driver) own(dir string) error {
	if os.Geteuid() != 0 || d.UID < 0 {
		return nil
	}
	return filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, d.UID, d.GID)
	})
}
