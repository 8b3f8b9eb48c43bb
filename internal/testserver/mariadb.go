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

// MariaDB is a running MariaDB server from Debian's package.
type MariaDB struct {
	Host     string
	Port     int
	User     string
	Password string
	dir      string
	cmd      *exec.Cmd
	sock     string
}

// StartMariaDB starts a throwaway MariaDB server on a free port; root may
// log in over TCP with Password.
func StartMariaDB(t testing.TB) *MariaDB { return startMariaDB(t, nil) }

// StartMariaDBTLS starts a server with TLS; tls.CA signs its certificate
// and the client certificates it accepts.
func StartMariaDBTLS(t testing.TB, tls *TLSFiles) *MariaDB { return startMariaDB(t, tls) }

func startMariaDB(t testing.TB, tls *TLSFiles) *MariaDB {
	t.Helper()
	NeedIntegration(t)
	if _, err := exec.LookPath("mariadbd"); err != nil {
		if _, err := os.Stat("/usr/sbin/mariadbd"); err != nil {
			missing(t, "MariaDB (Debian package mariadb-server)")
		}
	}
	m := &MariaDB{Host: "127.0.0.1", Port: FreePort(t), User: "root", Password: "maria-test-password"}
	dir, err := os.MkdirTemp("", "stash-maria-")
	if err != nil {
		t.Fatal(err)
	}
	m.dir = dir
	t.Cleanup(func() { os.RemoveAll(dir) })
	// A tmpdir of the server's own: in /tmp, another server's (or a
	// cleaner's) work can remove the bootstrap's temporary tables.
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	runUser := ""
	if os.Geteuid() == 0 {
		u, err := user.Lookup("mysql")
		if err != nil {
			t.Fatalf("running as root needs the mysql user (from mariadb-server): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{dir, tmp} {
			if err := os.Chown(d, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
		runUser = "--user=mysql"
	}
	data := filepath.Join(dir, "data")
	args := []string{"--no-defaults", "--datadir=" + data, "--tmpdir=" + tmp, "--auth-root-authentication-method=normal", "--skip-test-db"}
	if runUser != "" {
		args = append(args, runUser)
	}
	if out, err := exec.Command("mariadb-install-db", args...).CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	sock := filepath.Join(dir, "sock")
	m.sock = sock
	srv := []string{"--no-defaults", "--datadir=" + data, "--tmpdir=" + tmp, "--port=" + strconv.Itoa(m.Port), "--bind-address=127.0.0.1",
		"--socket=" + sock, "--skip-name-resolve", "--innodb-flush-log-at-trx-commit=0", "--log-error=" + filepath.Join(dir, "error.log"),
		"--pid-file=" + filepath.Join(dir, "pid")}
	if runUser != "" {
		srv = append(srv, runUser)
	}
	if tls != nil {
		for name, data := range map[string][]byte{"ca.pem": tls.CA, "server.pem": tls.ServerCert, "server-key.pem": tls.ServerKey} {
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		srv = append(srv, "--ssl-ca="+filepath.Join(dir, "ca.pem"), "--ssl-cert="+filepath.Join(dir, "server.pem"),
			"--ssl-key="+filepath.Join(dir, "server-key.pem"))
	}
	m.cmd = exec.Command("/usr/sbin/mariadbd", srv...)
	if err := m.cmd.Start(); err != nil {
		t.Fatalf("start mariadbd: %v", err)
	}
	t.Cleanup(m.Stop)
	deadline := time.Now().Add(60 * time.Second)
	for {
		var stmts []string
		for _, host := range []string{"%", "127.0.0.1"} {
			stmts = append(stmts, fmt.Sprintf("CREATE USER IF NOT EXISTS 'root'@'%s' IDENTIFIED BY '%s'; ALTER USER 'root'@'%s' IDENTIFIED BY '%s'; GRANT ALL ON *.* TO 'root'@'%s' WITH GRANT OPTION;",
				host, m.Password, host, m.Password, host))
		}
		out, err := exec.Command("mariadb", "--no-defaults", "--socket="+sock, "-uroot", "-e", strings.Join(stmts, " ")).CombinedOutput()
		if err == nil {
			return m
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("MariaDB did not start: %v %s\n%s", err, out, log)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// Stop kills the server at once (as a crash would).
func (m *MariaDB) Stop() {
	if m.cmd != nil && m.cmd.Process != nil {
		_ = m.cmd.Process.Signal(syscall.SIGKILL)
		_ = m.cmd.Wait()
		m.cmd = nil
	}
}

// SQL runs statements over TCP and returns tab-separated output.
func (m *MariaDB) SQL(t testing.TB, sql string) string {
	t.Helper()
	cmd := exec.Command("mariadb", "--no-defaults", "-h", m.Host, "-P", strconv.Itoa(m.Port), "-u", m.User, "-N", "-B")
	cmd.Env = append(os.Environ(), "MYSQL_PWD="+m.Password)
	cmd.Stdin = strings.NewReader(sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// SocketSQL runs statements as root over the server's Unix socket.
func (m *MariaDB) SocketSQL(t testing.TB, sql string) string {
	t.Helper()
	cmd := exec.Command("mariadb", "--no-defaults", "--socket="+m.sock, "-uroot", "-N", "-B")
	cmd.Stdin = strings.NewReader(sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}
