package galera

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/addontest"
	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/appbinding"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/testserver"
)

// These tests run a real three-node MariaDB Galera cluster (Debian's
// mariadb-server and galera-4, mariabackup as the SST method) and the
// real arbitrator (galera-arbitrator-4). Percona XtraDB Cluster differs
// only in the tools' names (xbstream, xtrabackup), which no package here
// provides.

const clusterSchema = `
CREATE DATABASE shop;
CREATE DATABASE seq;
CREATE TABLE shop.items (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100), price DECIMAL(10,2), doc JSON) ENGINE=InnoDB;
INSERT INTO shop.items (name, price, doc) SELECT CONCAT('item-', seq), seq * 1.25, JSON_OBJECT('k', seq) FROM seq.seq_1_to_50000;
CREATE TABLE shop.log (id INT PRIMARY KEY, at DATETIME(6)) ENGINE=InnoDB;
CREATE USER 'app'@'%' IDENTIFIED BY 'app-pw';
GRANT SELECT ON shop.* TO 'app'@'%';
`

func arbitrator(g *testserver.Galera) []byte {
	return []byte(fmt.Sprintf(`{"apiVersion":"config.kubedb.com/v1alpha2","kind":"GaleraArbitratorConfiguration","address":%q,"group":%q,"sstMethod":"mariabackup"}`,
		g.Address(), g.Name))
}

func clusterConn(g *testserver.Galera) *appbinding.Connection {
	return &appbinding.Connection{Host: "127.0.0.1", Port: g.Nodes[0].Port, Username: "root", Password: g.Password, Parameters: arbitrator(g)}
}

func backupDriver(t *testing.T, conn *appbinding.Connection, flags map[string]string) Driver {
	t.Helper()
	all := map[string]string{"backup-mode": "physical", "sst-timeout": "120", "socat-retry": "30"}
	for k, v := range flags {
		all[k] = v
	}
	d, err := newBackup(addon.Config{Conn: conn, ScratchDir: t.TempDir(), Flags: all})
	if err != nil {
		t.Fatal(err)
	}
	return d.(Driver)
}

func restoreDriver(t *testing.T, dir string, ordinal int) Driver {
	t.Helper()
	// No data-owner: testserver.StartGaleraFrom gives the directories
	// to the servers' user.
	d, err := newRestore(addon.Config{ScratchDir: t.TempDir(), Flags: map[string]string{"target-app-replicas": "3", "mount-path": dir,
		"sst-method": "mariabackup", "pod-ordinal": strconv.Itoa(ordinal)}})
	if err != nil {
		t.Fatal(err)
	}
	return d.(Driver)
}

// treeDigest returns each entry under dir with its type, permissions,
// size and content's SHA-256.
func treeDigest(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		d := fi.Mode().String()
		if fi.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			d += fmt.Sprintf(" %d %x", len(b), sha256.Sum256(b))
		}
		out[rel] = d
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checksums returns the checksum of every table of the node's shop
// database and the users, one line each.
func checksums(t *testing.T, n *testserver.GaleraNode) string {
	t.Helper()
	return n.SQL(t, `CHECKSUM TABLE shop.items, shop.log EXTENDED;
SELECT COUNT(*), COALESCE(MIN(id), 0), COALESCE(MAX(id), 0) FROM shop.log;
SELECT GROUP_CONCAT(CONCAT(user, '@', host) ORDER BY user, host) FROM mysql.user WHERE user NOT IN ('mariadb.sys', 'mysql');`)
}

// The cluster backup is taken while writes continue; it restores into a
// fresh three-node cluster bootstrapped from it, whose nodes agree on every
// table and hold a prefix of the writes without a gap.
func TestClusterBackupRestore(t *testing.T) {
	ctx := context.Background()
	g := testserver.StartGalera(t, 3)
	g.Nodes[0].SQL(t, clusterSchema)
	staticBefore := g.Nodes[0].SQL(t, "CHECKSUM TABLE shop.items EXTENDED")

	// Node 2 applies the schema a moment after node 0 commits it.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if _, err := g.Nodes[2].Exec("SELECT 1 FROM shop.log LIMIT 1"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	// Writes go on through node 2 for the whole backup.
	var written atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := g.Nodes[2].Exec(fmt.Sprintf("INSERT INTO shop.log VALUES (%d, NOW(6))", i)); err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
			written.Store(int64(i))
		}
	}()
	r := addontest.OpenRepo(t)
	st, err := addontest.Backup(ctx, r, backupDriver(t, clusterConn(g), nil), repository.BackupOptions{Host: "host-0"})
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("backup: %d bytes while %d rows were written", st.TotalBytes, written.Load())
	if written.Load() == 0 {
		t.Fatal("no write ran during the backup")
	}
	for _, n := range g.Nodes {
		if err := n.WaitSynced(30 * time.Second); err != nil {
			t.Fatalf("after the backup: %v", err)
		}
	}
	assertNoGarbd(t, g.Name)

	snap, err := r.Resolve(ctx, st.Name, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	root := t.TempDir()
	// The servers run as the mysql user, who must reach the
	// directories (a test's temporary directories are root's, 0700).
	for _, d := range []string{root, filepath.Dir(root)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		dir := filepath.Join(root, "data-"+strconv.Itoa(i))
		d := restoreDriver(t, dir, i)
		// Replica 2 is extracted by mbstream, as Percona's streams are
		// by xbstream; the others by the step itself.
		d.pipe = i == 2
		if err := addontest.Restore(ctx, r.Reader, snap, d); err != nil {
			t.Fatalf("restore replica %d: %v", i, err)
		}
		dirs = append(dirs, dir)
	}
	t.Run("extractor writes what mbstream writes", func(t *testing.T) {
		rd := &dump.Reader{R: r.Reader, Choose: func(context.Context, string, string) (repository.Snapshot, error) { return snap, nil }}
		own, tool := t.TempDir(), t.TempDir()
		if _, err := extractInProcess(ctx, rd, own); err != nil {
			t.Fatal(err)
		}
		if _, err := (Driver{}).extractWith(ctx, rd, "mbstream", tool); err != nil {
			t.Fatal(err)
		}
		got, want := treeDigest(t, own), treeDigest(t, tool)
		if len(want) < 10 {
			t.Fatalf("mbstream extracted %d entries: not a data directory", len(want))
		}
		for name, w := range want {
			if got[name] != w {
				t.Errorf("%s: extractor %q, mbstream %q", name, got[name], w)
			}
		}
		for name := range got {
			if _, ok := want[name]; !ok {
				t.Errorf("%s: extracted, but not by mbstream", name)
			}
		}
	})
	grastate, _ := os.ReadFile(filepath.Join(dirs[0], "grastate.dat"))
	if !strings.Contains(string(grastate), "safe_to_bootstrap: 1") {
		t.Fatalf("replica 0 must bootstrap:\n%s", grastate)
	}
	// A restore never writes over a database.
	if err := addontest.Restore(ctx, r.Reader, snap, restoreDriver(t, dirs[1], 1)); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore over a data directory: %v", err)
	}

	restored := testserver.StartGaleraFrom(t, dirs)
	want := checksums(t, restored.Nodes[0])
	for _, n := range restored.Nodes[1:] {
		if got := checksums(t, n); got != want {
			t.Fatalf("restored node %d differs from node 0:\n%s\n---\n%s", n.Index, got, want)
		}
	}
	if got := restored.Nodes[0].SQL(t, "CHECKSUM TABLE shop.items EXTENDED"); got != staticBefore {
		t.Fatalf("shop.items: %s, the source had %s", got, staticBefore)
	}
	// The writes restored are the first n, none missing.
	f := strings.Fields(restored.Nodes[0].SQL(t, "SELECT COUNT(*), COALESCE(MIN(id),0), COALESCE(MAX(id),0) FROM shop.log"))
	if f[0] != f[2] || (f[0] != "0" && f[1] != "1") {
		t.Fatalf("shop.log restored count/min/max %v: not a prefix of the writes", f)
	}
	t.Logf("restored %s of %d writes", f[0], written.Load())
	// The restored cluster takes writes on every node.
	restored.Nodes[1].SQL(t, "INSERT INTO shop.log VALUES (100000000, NOW())")
	if got := restored.Nodes[2].SQL(t, "SELECT COUNT(*) FROM shop.log WHERE id = 100000000"); got != "1" {
		t.Fatalf("a write on node 1 reached node 2 %s times", got)
	}

	t.Run("logical", func(t *testing.T) {
		// A logical backup of the cluster dumps a Synced node and
		// restores into a standalone server.
		st, err := addontest.Backup(ctx, r, backupDriver(t, clusterConn(g), map[string]string{"backup-mode": "logical", "xtradb-args": "--databases shop"}), repository.BackupOptions{Host: "host-0"})
		if err != nil {
			t.Fatal(err)
		}
		m := testserver.StartMariaDB(t)
		snap, err := r.Resolve(ctx, st.Name, repository.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		d, err := newRestore(addon.Config{Conn: &appbinding.Connection{Host: m.Host, Port: m.Port, Username: m.User, Password: m.Password}, ScratchDir: t.TempDir(), Flags: map[string]string{"target-app-replicas": "1"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := addontest.Restore(ctx, r.Reader, snap, d); err != nil {
			t.Fatal(err)
		}
		if got := m.SQL(t, "CHECKSUM TABLE shop.items EXTENDED"); got != staticBefore {
			t.Fatalf("shop.items: %s, the source had %s", got, staticBefore)
		}
	})

	// The step's garbd never counts in the quorum. Its departure (as after
	// every SST) is a membership change the members may record as a
	// partition, and a node lost in that moment (a donor that dies as the
	// SST starts) must leave the survivors their majority: Galera's
	// quorum is weighted (twice the survivors' weight plus what left
	// gracefully, against the last Primary Component's weight), so with
	// garbd at weight 1 two of three nodes would hold 2 of the 4 votes
	// they knew and go non-Primary. What the step decides is garbd's
	// weight, which every node reports as wsrep_cluster_weight. A garbd
	// of weight 1, as a stock one joins, is the control: it must read 4.
	// (Killing a node as garbd leaves tested the same property through
	// Galera's membership protocol, whose timeouts on a loaded machine
	// split the survivors into singletons, non-Primary for reasons no step
	// controls; the donor killed below covers a node lost after garbd.)
	t.Run("arbitrator never counts in the quorum", func(t *testing.T) {
		for _, c := range []struct {
			weight string // garbd's pc.weight
			want   string // the cluster's weight while garbd is a member
		}{{"0", "3"}, {"1", "4"}} {
			port, err := freePort(g.IP)
			if err != nil {
				t.Fatal(err)
			}
			a := Arbitrator{Address: g.Address(), Group: g.Name}
			args := garbdArgs(a, net.JoinHostPort(g.IP, strconv.Itoa(port)), filepath.Join(t.TempDir(), "garbd.log"), nil)
			if c.weight != "0" {
				for i := range args {
					args[i] = strings.Replace(args[i], "pc.weight=0", "pc.weight="+c.weight, 1)
				}
			}
			gctx, stop := context.WithCancel(ctx)
			// Without --sst garbd stays a member until stopped.
			garbd, err := startGarbd(gctx, "garbd", args)
			if err != nil {
				stop()
				t.Fatal(err)
			}
			for _, n := range g.Nodes {
				waitStatus(t, n, "wsrep_cluster_size", "4")
			}
			for _, n := range g.Nodes {
				if w, err := n.Status("wsrep_cluster_weight"); w != c.want {
					stop()
					t.Fatalf("with a garbd of weight %s, node %d reads the cluster's weight as %q (%v), want %s", c.weight, n.Index, w, err, c.want)
				}
			}
			stop()
			if err := <-garbd; err != nil && strings.Contains(err.Error(), "killed") {
				t.Errorf("garbd did not stop when asked: %v", err)
			}
			for _, n := range g.Nodes {
				waitStatus(t, n, "wsrep_cluster_size", "3")
				if s, err := n.Status("wsrep_cluster_status"); s != "Primary" {
					t.Fatalf("node %d is %q (%v) after garbd left", n.Index, s, err)
				}
				waitStatus(t, n, "wsrep_cluster_weight", "3")
			}
			assertNoGarbd(t, g.Name)
		}
	})

	t.Run("donor killed", func(t *testing.T) {
		// The donor dies mid-SST: no snapshot, no garbd left, and
		// the other nodes stay Synced.
		before, _ := r.Snapshots(ctx, repository.Filter{})
		done := make(chan error, 1)
		go func() {
			_, err := addontest.Backup(ctx, r, backupDriver(t, clusterConn(g), map[string]string{"sst-timeout": "20"}), repository.BackupOptions{Host: "host-0"})
			done <- err
		}()
		var killed *testserver.GaleraNode
		deadline := time.Now().Add(60 * time.Second)
		for killed == nil && time.Now().Before(deadline) {
			for i, n := range g.Nodes {
				if s, _ := n.Status("wsrep_local_state_comment"); strings.HasPrefix(s, "Donor") {
					// garbd leaves once the donor accepts. The donor is
					// killed after the others have seen garbd go (for
					// a node lost together with garbd, its weight of
					// 0 is checked above): on a loaded machine Galera's membership
					// protocol can time out when the node that leads a
					// view change dies in it, and each survivor ends
					// alone, which no step can prevent.
					waitStatus(t, g.Nodes[(i+1)%len(g.Nodes)], "wsrep_cluster_size", "3")
					// Let the data stream begin.
					time.Sleep(1500 * time.Millisecond)
					n.Kill()
					killed = n
					break
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		if killed == nil {
			t.Fatal("no node became a donor")
		}
		err := <-done
		if err == nil {
			t.Fatal("the backup succeeded though its donor was killed")
		}
		t.Logf("donor %d killed: %v", killed.Index, err)
		after, _ := r.Snapshots(ctx, repository.Filter{})
		if len(after) != len(before) {
			t.Fatalf("%d snapshots before, %d after a failed backup", len(before), len(after))
		}
		assertNoGarbd(t, g.Name)
		for _, n := range g.Nodes {
			if n != killed {
				if err := n.WaitSynced(60 * time.Second); err != nil {
					t.Fatal(err)
				}
			}
		}
	})
}

// waitStatus waits up to a minute for a node's status variable to read
// want.
func waitStatus(t *testing.T, n *testserver.GaleraNode, name, want string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		v, err := n.Status(name)
		if v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %d: %s is %q (%v), want %q", n.Index, name, v, err, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// assertNoGarbd fails if a garbd of group is still running.
func assertNoGarbd(t *testing.T, group string) {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if strings.Contains(string(b), "garbd") && strings.Contains(string(b), "--group="+group) {
			if s, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); strings.Contains(string(s), ") Z ") {
				continue
			}
			t.Fatalf("garbd still running: pid %s: %s", e.Name(), strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
}

// A standalone server (no Galera group) is dumped and restored logically.
func TestStandaloneRoundTrip(t *testing.T) {
	ctx := context.Background()
	m := testserver.StartMariaDB(t)
	m.SQL(t, "CREATE DATABASE shop; CREATE DATABASE seq; CREATE TABLE shop.items (id INT PRIMARY KEY, name TEXT); INSERT INTO shop.items SELECT seq, CONCAT('n', seq) FROM seq.seq_1_to_5000;")
	want := m.SQL(t, "CHECKSUM TABLE shop.items EXTENDED")
	conn := &appbinding.Connection{Host: m.Host, Port: m.Port, Username: m.User, Password: m.Password,
		Parameters: []byte(`{"apiVersion":"appcatalog.appscode.com/v1alpha1","kind":"StashAddon"}`)}
	r := addontest.OpenRepo(t)
	st, err := addontest.Backup(ctx, r, backupDriver(t, conn, nil), repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Path != "dumpfile.sql" {
		t.Fatalf("a standalone backup is stored as %s", st.Path)
	}
	m.SQL(t, "DROP DATABASE shop")
	snap, err := r.Resolve(ctx, st.Name, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := newRestore(addon.Config{Conn: conn, ScratchDir: t.TempDir(), Flags: map[string]string{"target-app-replicas": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := addontest.Restore(ctx, r.Reader, snap, d); err != nil {
		t.Fatal(err)
	}
	if got := m.SQL(t, "CHECKSUM TABLE shop.items EXTENDED"); got != want {
		t.Fatalf("restored %s, want %s", got, want)
	}
}

// A cluster whose Galera traffic is encrypted (socket.ssl, Percona XtraDB
// Cluster 8's default) is joined with the AppBinding's tlsSecret; without
// one the backup says what is missing.
func TestClusterTLS(t *testing.T) {
	ctx := context.Background()
	tls := testserver.NewTLS(t, "root")
	g := testserver.StartGaleraTLS(t, 2, tls)
	g.Nodes[0].SQL(t, "CREATE DATABASE app; CREATE TABLE app.t (id INT PRIMARY KEY); INSERT INTO app.t VALUES (1),(2),(3);")
	r := addontest.OpenRepo(t)
	conn := clusterConn(g)
	conn.CABundle = tls.CA
	_, err := addontest.Backup(ctx, r, backupDriver(t, conn, map[string]string{"sst-timeout": "30"}), repository.BackupOptions{Host: "host-0"})
	if err == nil || !strings.Contains(err.Error(), "spec.tlsSecret") {
		t.Fatalf("an encrypted cluster without a client certificate: %v", err)
	}
	conn.ClientCert, conn.ClientKey = tls.ServerCert, tls.ServerKey
	st, err := addontest.Backup(ctx, r, backupDriver(t, conn, map[string]string{"sst-timeout": "60"}), repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	if st.TotalBytes < 1<<20 {
		t.Fatalf("the SST stored is %d bytes", st.TotalBytes)
	}
	assertNoGarbd(t, g.Name)
}

func TestSSLOn(t *testing.T) {
	for opts, want := range map[string]bool{
		"base_dir = /var/lib/mysql/; socket.ssl = YES; socket.ssl_cipher = ":                         true,
		"gcache.size = 64M; socket.ssl_cert = /etc/mysql/certs/server-cert.pem; socket.ssl_key = /x": true,
		"gcache.size = 64M; socket.ssl = NO; socket.ssl_cert = ; socket.checksum = 2":                false,
		"": false,
	} {
		if got := sslOn(opts); got != want {
			t.Errorf("sslOn(%q) = %v", opts, got)
		}
	}
}
