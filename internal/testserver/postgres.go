package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Postgres is a running PostgreSQL server from Debian's package.
type Postgres struct {
	BinDir   string
	Host     string
	Port     int
	User     string
	Password string
	dataDir  string
	runAs    []string
	extra    string
}

// PostgresBinDir finds Debian's PostgreSQL binaries.
func PostgresBinDir() string {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(matches) == 0 {
		return ""
	}
	return filepath.Dir(matches[len(matches)-1])
}

// StartPostgres starts a throwaway PostgreSQL server on a free port with
// password authentication over TCP. PostgreSQL refuses to run as root, so
// as root it runs as the postgres user.
func StartPostgres(t testing.TB) *Postgres { return startPostgres(t, nil) }

// StartPostgresTLS starts a server that accepts only TLS connections
// authenticated by a client certificate (pg_hba "hostssl … cert"), signed
// by tls.CA, for user postgres.
func StartPostgresTLS(t testing.TB, tls *TLSFiles) *Postgres { return startPostgres(t, tls) }

func startPostgres(t testing.TB, tls *TLSFiles) *Postgres {
	t.Helper()
	NeedIntegration(t)
	bin := PostgresBinDir()
	if bin == "" {
		missing(t, "PostgreSQL (Debian package postgresql)")
	}
	p := &Postgres{BinDir: bin, Host: "127.0.0.1", Port: FreePort(t), User: "postgres", Password: "pg-test-password"}
	dir, err := os.MkdirTemp("", "stash-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root needs the postgres user (from the postgresql package): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		p.runAs = []string{"runuser", "-u", "postgres", "--"}
	}
	p.dataDir = filepath.Join(dir, "data")
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(p.Password+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if len(p.runAs) > 0 {
		exec.Command("chown", "postgres", pwfile).Run()
	}
	p.run(t, "initdb", "-D", p.dataDir, "-U", p.User, "--pwfile", pwfile, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8")
	if tls != nil {
		files := map[string][]byte{"server.crt": tls.ServerCert, "server.key": tls.ServerKey, "ca.crt": tls.CA,
			"pg_hba.conf": []byte("local all all trust\nhostssl all all 127.0.0.1/32 cert\n")}
		for name, data := range files {
			path := filepath.Join(p.dataDir, name)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			if len(p.runAs) > 0 {
				exec.Command("chown", "postgres", path).Run()
			}
		}
		p.extra = " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key -c ssl_ca_file=ca.crt"
	}
	p.run(t, "pg_ctl", "-D", p.dataDir, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off%s", p.Port, dir, p.extra), "start")
	t.Cleanup(func() { p.Stop() })
	return p
}

func (p *Postgres) command(name string, args ...string) *exec.Cmd {
	full := append(append([]string{}, p.runAs...), append([]string{filepath.Join(p.BinDir, name)}, args...)...)
	return exec.Command(full[0], full[1:]...)
}

func (p *Postgres) run(t testing.TB, name string, args ...string) {
	t.Helper()
	out, err := p.command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}

// Stop stops the server at once (as a crash would).
func (p *Postgres) Stop() {
	_ = p.command("pg_ctl", "-D", p.dataDir, "-m", "immediate", "-w", "stop").Run()
}

// Start starts a stopped server again.
func (p *Postgres) Start(t testing.TB) {
	t.Helper()
	dir := filepath.Dir(p.dataDir)
	p.run(t, "pg_ctl", "-D", p.dataDir, "-l", filepath.Join(dir, "log"), "-w", "-t", "60", "-o",
		fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off%s", p.Port, dir, p.extra), "start")
}

// LocalSQL runs statements over the server's Unix socket (trusted), for
// servers that take only certificate logins over TCP.
func (p *Postgres) LocalSQL(t testing.TB, db, sql string) string {
	t.Helper()
	args := append(append([]string{}, p.runAs...), filepath.Join(p.BinDir, "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
		"-h", filepath.Dir(p.dataDir), "-p", strconv.Itoa(p.Port), "-U", p.User, "-d", db)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// SQL runs statements with psql against database db and returns the
// output (tuples only, unaligned).
func (p *Postgres) SQL(t testing.TB, db, sql string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(p.BinDir, "psql"), "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1",
		"-h", p.Host, "-p", strconv.Itoa(p.Port), "-U", p.User, "-d", db)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+p.Password)
	cmd.Stdin = strings.NewReader(sql)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("psql: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// WaitGone waits until the server no longer accepts connections.
func (p *Postgres) WaitGone() {
	for range 50 {
		if p.command("pg_ctl", "-D", p.dataDir, "status").Run() != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
