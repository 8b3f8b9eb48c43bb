package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Galera is a MariaDB Galera cluster of nodes on 127.0.0.1 (Debian's
// mariadb-server and galera-4), with mariabackup as its SST method: the
// cluster Stash's Percona XtraDB addon joins as an arbitrator.
type Galera struct {
	// Name is the cluster's wsrep_cluster_name, the arbitrator's group.
	Name     string
	Password string
	// IP is the address every node listens on (127.0.0.1 unless
	// started with StartGaleraOn).
	IP       string
	Nodes    []*GaleraNode
	dir      string
	uid, gid int
	tls      *TLSFiles
}

// GaleraNode is one node of a Galera cluster.
type GaleraNode struct {
	Index int
	// Port is the MySQL port; GroupPort is Galera's (gcomm).
	Port, GroupPort, ISTPort, SSTPort int
	DataDir                           string
	dir                               string
	cmd                               *exec.Cmd
	sock                              string
	cluster                           *Galera
}

// Address is the cluster's gcomm:// address: every node's group port.
func (g *Galera) Address() string {
	var hosts []string
	for _, n := range g.Nodes {
		hosts = append(hosts, g.IP+":"+strconv.Itoa(n.GroupPort))
	}
	return "gcomm://" + strings.Join(hosts, ",")
}

// StartGalera starts a cluster of n nodes, node 0 bootstrapping it, and
// returns once every node is Synced.
func StartGalera(t testing.TB, n int) *Galera { return startGalera(t, n, nil, "127.0.0.1") }

// StartGaleraOn starts a cluster whose nodes listen on ip (the node's
// address, which a Kubernetes cluster's pods reach).
func StartGaleraOn(t testing.TB, n int, ip string) *Galera { return startGalera(t, n, nil, ip) }

// StartGaleraTLS starts a cluster whose Galera traffic is encrypted
// (socket.ssl), with tls's server certificate on every node and tls.CA
// trusted, as Percona XtraDB Cluster 8 runs by default.
func StartGaleraTLS(t testing.TB, n int, tls *TLSFiles) *Galera {
	return startGalera(t, n, tls, "127.0.0.1")
}

func startGalera(t testing.TB, n int, tls *TLSFiles, ip string) *Galera {
	t.Helper()
	g := newGalera(t, n)
	g.tls, g.IP = tls, ip
	for _, node := range g.Nodes {
		if err := node.install(); err != nil {
			t.Fatal(err)
		}
	}
	g.start(t)
	return g
}

// StartGaleraFrom starts a cluster of the data directories dirs (one per
// node, as a restore left them, grastate.dat included): node 0
// bootstraps from its grastate.dat (it must say safe_to_bootstrap: 1),
// the others join it.
func StartGaleraFrom(t testing.TB, dirs []string) *Galera {
	t.Helper()
	g := newGalera(t, len(dirs))
	g.IP = "127.0.0.1"
	for i, node := range g.Nodes {
		node.DataDir = dirs[i]
		if err := g.own(dirs[i]); err != nil {
			t.Fatal(err)
		}
	}
	g.start(t)
	return g
}

func newGalera(t testing.TB, n int) *Galera {
	t.Helper()
	NeedIntegration(t)
	for _, f := range []string{"/usr/sbin/mariadbd", "/usr/lib/galera/libgalera_smm.so"} {
		if _, err := os.Stat(f); err != nil {
			missing(t, "MariaDB Galera (Debian packages mariadb-server galera-4)")
		}
	}
	dir, err := os.MkdirTemp("", "stash-galera-")
	if err != nil {
		t.Fatal(err)
	}
	g := &Galera{Name: "stash-test-" + strconv.Itoa(os.Getpid()%10000), Password: "galera-test-password", dir: dir, uid: -1, gid: -1}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("mysql")
		if err != nil {
			t.Fatalf("running as root needs the mysql user (from mariadb-server): %v", err)
		}
		g.uid, _ = strconv.Atoi(u.Uid)
		g.gid, _ = strconv.Atoi(u.Gid)
	}
	if err := g.own(dir); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		nd := filepath.Join(dir, "node"+strconv.Itoa(i))
		if err := os.Mkdir(nd, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := g.own(nd); err != nil {
			t.Fatal(err)
		}
		g.Nodes = append(g.Nodes, &GaleraNode{Index: i, Port: FreePort(t), GroupPort: FreePort(t), ISTPort: FreePort(t), SSTPort: FreePort(t),
			DataDir: filepath.Join(nd, "data"), dir: nd, sock: filepath.Join(nd, "sock"), cluster: g})
	}
	t.Cleanup(g.Stop)
	return g
}

// own gives dir (recursively) to the mysql user when the tests run as
// root: mariadbd refuses to run as root.
func (g *Galera) own(dir string) error {
	if g.uid < 0 {
		return nil
	}
	return filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, g.uid, g.gid)
	})
}

func (n *GaleraNode) install() error {
	// The node's own tmpdir: in /tmp, another server's work can remove
	// the bootstrap's temporary tables.
	args := []string{"--no-defaults", "--datadir=" + n.DataDir, "--tmpdir=" + n.dir, "--auth-root-authentication-method=normal", "--skip-test-db"}
	if n.cluster.uid >= 0 {
		args = append(args, "--user=mysql")
	}
	if out, err := exec.Command("mariadb-install-db", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("mariadb-install-db: %v\n%s", err, out)
	}
	return nil
}

// config writes the node's option file: Galera on, mariabackup SSTs
// authenticated as root.
func (n *GaleraNode) config() (string, error) {
	g := n.cluster
	lines := []string{"[mariadbd]",
		"datadir=" + n.DataDir,
		"port=" + strconv.Itoa(n.Port),
		"bind-address=" + g.IP,
		"socket=" + n.sock,
		"pid-file=" + filepath.Join(n.dir, "pid"),
		"log-error=" + filepath.Join(n.dir, "error.log"),
		"skip-name-resolve",
		"innodb-flush-log-at-trx-commit=0",
		"innodb-buffer-pool-size=64M",
		"binlog_format=ROW",
		"innodb_autoinc_lock_mode=2",
		"wsrep_on=ON",
		"wsrep_provider=/usr/lib/galera/libgalera_smm.so",
		"wsrep_cluster_name=" + g.Name,
		"wsrep_cluster_address=" + g.Address(),
		"wsrep_node_address=" + g.IP + ":" + strconv.Itoa(n.GroupPort),
		"wsrep_node_name=node" + strconv.Itoa(n.Index),
		fmt.Sprintf(`wsrep_provider_options="gmcast.listen_addr=tcp://%s:%d;ist.recv_addr=%s:%d;gcache.size=64M"`, g.IP, n.GroupPort, g.IP, n.ISTPort),
		"wsrep_sst_receive_address=" + g.IP + ":" + strconv.Itoa(n.SSTPort),
		"wsrep_sst_method=mariabackup",
		"wsrep_sst_auth=root:" + g.Password,
	}
	if g.uid >= 0 {
		lines = append(lines, "user=mysql")
	}
	if g.tls != nil {
		files := map[string][]byte{"ca.pem": g.tls.CA, "cert.pem": g.tls.ServerCert, "key.pem": g.tls.ServerKey}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(n.dir, name), data, 0o600); err != nil {
				return "", err
			}
		}
		if err := g.own(n.dir); err != nil {
			return "", err
		}
		lines = append(lines, "ssl-ca="+filepath.Join(n.dir, "ca.pem"), "ssl-cert="+filepath.Join(n.dir, "cert.pem"), "ssl-key="+filepath.Join(n.dir, "key.pem"))
		// The provider options line is the last of its kind: it wins.
		lines = append(lines, fmt.Sprintf(`wsrep_provider_options="gmcast.listen_addr=tcp://%s:%d;ist.recv_addr=%s:%d;gcache.size=64M;socket.ssl_cert=%s;socket.ssl_key=%s;socket.ssl_ca=%s"`,
			g.IP, n.GroupPort, g.IP, n.ISTPort, filepath.Join(n.dir, "cert.pem"), filepath.Join(n.dir, "key.pem"), filepath.Join(n.dir, "ca.pem")))
	}
	path := filepath.Join(n.dir, "my.cnf")
	return path, os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

func (g *Galera) start(t testing.TB) {
	t.Helper()
	for i, n := range g.Nodes {
		if err := n.Start(i == 0); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			// root gets its password over TCP before anyone joins, so
			// that the joiners' SSTs (authenticated as root) work.
			g.rootPassword(t, n)
		}
		if err := n.WaitSynced(90 * time.Second); err != nil {
			if i > 0 {
				t.Fatalf("%v\nnode 0's log:\n%s", err, tail(g.Nodes[0].Log(), 4000))
			}
			t.Fatal(err)
		}
	}
}

func (g *Galera) rootPassword(t testing.TB, n *GaleraNode) {
	t.Helper()
	var stmts []string
	for _, host := range []string{"%", "127.0.0.1", "localhost"} {
		stmts = append(stmts, fmt.Sprintf("CREATE USER IF NOT EXISTS 'root'@'%s' IDENTIFIED BY '%s'; ALTER USER 'root'@'%s' IDENTIFIED BY '%s'; GRANT ALL ON *.* TO 'root'@'%s' WITH GRANT OPTION;",
			host, g.Password, host, g.Password, host))
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		// A restored cluster already has the password: TCP with it
		// works at once.
		if _, err := n.query("SELECT 1"); err == nil {
			return
		}
		out, err := exec.Command("mariadb", "--no-defaults", "--socket="+n.sock, "-uroot", "-e", strings.Join(stmts, " ")).CombinedOutput()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Galera node 0 did not start: %v %s\n%s", err, out, n.Log())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// Start starts the node; bootstrap starts a new cluster from it.
func (n *GaleraNode) Start(bootstrap bool) error {
	cnf, err := n.config()
	if err != nil {
		return err
	}
	args := []string{"--defaults-file=" + cnf}
	if bootstrap {
		args = append(args, "--wsrep-new-cluster")
	}
	n.cmd = exec.Command("/usr/sbin/mariadbd", args...)
	// The SST scripts the donor runs (mariabackup) write their logs into
	// the system temporary directory; keep them with the node.
	n.cmd.Env = append(os.Environ(), "TMPDIR="+n.dir)
	return n.cmd.Start()
}

// Kill kills the node at once, as a crash would.
func (n *GaleraNode) Kill() {
	if n.cmd != nil && n.cmd.Process != nil {
		// The node's SST scripts run in its process group only when
		// started so; kill the children too by walking /proc.
		killTree(n.cmd.Process.Pid)
		_ = n.cmd.Wait()
		n.cmd = nil
	}
}

// killTree SIGKILLs pid and every process descended from it.
func killTree(pid int) {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(b)
		if i := strings.LastIndexByte(s, ')'); i >= 0 {
			f := strings.Fields(s[i+1:])
			if len(f) > 1 {
				pp, _ := strconv.Atoi(f[1])
				children[pp] = append(children[pp], p)
			}
		}
	}
	var walk func(int)
	walk = func(p int) {
		_ = syscall.Kill(p, syscall.SIGKILL)
		for _, c := range children[p] {
			walk(c)
		}
	}
	walk(pid)
}

// Stop kills every node.
func (g *Galera) Stop() {
	for _, n := range g.Nodes {
		n.Kill()
	}
}

// Log returns the node's error log.
func (n *GaleraNode) Log() string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "error.log"))
	return string(b)
}

// query runs sql as root over TCP and returns tab-separated output.
func (n *GaleraNode) query(sql string) (string, error) {
	cmd := exec.Command("mariadb", "--no-defaults", "-h", n.cluster.IP, "-P", strconv.Itoa(n.Port), "-uroot", "-N", "-B")
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+n.cluster.Password)
	cmd.Stdin = strings.NewReader(sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("node %d: %v: %s", n.Index, err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// Exec runs statements on the node and returns tab-separated output.
func (n *GaleraNode) Exec(sql string) (string, error) { return n.query(sql) }

// SQL runs statements on the node and returns tab-separated output.
func (n *GaleraNode) SQL(t testing.TB, sql string) string {
	t.Helper()
	out, err := n.query(sql)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Status returns a wsrep status variable of the node.
func (n *GaleraNode) Status(name string) (string, error) {
	out, err := n.query("SHOW STATUS LIKE '" + name + "'")
	if err != nil {
		return "", err
	}
	_, v, _ := strings.Cut(out, "\t")
	return v, nil
}

// WaitSynced waits until the node says Synced.
func (n *GaleraNode) WaitSynced(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		v, err := n.Status("wsrep_local_state_comment")
		if err == nil && v == "Synced" {
			return nil
		}
		if n.cmd == nil || time.Now().After(deadline) {
			if d := os.Getenv("STASH_GALERA_LOGS"); d != "" {
				// Every node's whole log, for debugging a cluster.
				for _, m := range n.cluster.Nodes {
					_ = os.WriteFile(filepath.Join(d, fmt.Sprintf("node%d.log", m.Index)), []byte(m.Log()), 0o644)
				}
			}
			return fmt.Errorf("Galera node %d not Synced after %s (%q, %v):\n%s", n.Index, timeout, v, err, tail(n.Log(), 3000))
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
