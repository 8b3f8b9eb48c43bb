package testserver

import (
	"context"
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

// Redis is a Redis server (Debian's redis-server) of a test's own.
type Redis struct {
	Host     string
	Port     int
	Password string
	// Dir is its data directory (dump.rdb).
	Dir string
	cmd *exec.Cmd
}

// RedisOptions say how StartRedis starts the server.
type RedisOptions struct {
	// Bind is the address to listen on (default 127.0.0.1); a container
	// of the local runtime reaches this machine's address, not its
	// loopback.
	Bind string
	// Dir is the data directory to start from (a restored dump.rdb);
	// a new one when empty.
	Dir string
	// Password, when set, is required of clients.
	Password string
}

// StartRedis starts a Redis server as the redis user (when run as root),
// saving to disk only when told (SAVE), and stops it when the test ends.
func StartRedis(t testing.TB, o RedisOptions) *Redis {
	t.Helper()
	NeedIntegration(t)
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		missing(t, "redis-server (Debian package redis-server)")
	}
	r := &Redis{Host: orString(o.Bind, "127.0.0.1"), Port: FreePort(t), Password: o.Password, Dir: o.Dir}
	if r.Dir == "" {
		r.Dir = t.TempDir()
	}
	args := []string{"--port", strconv.Itoa(r.Port), "--bind", r.Host, "--dir", r.Dir, "--save", "", "--appendonly", "no",
		"--protected-mode", "no", "--daemonize", "no", "--logfile", ""}
	if o.Password != "" {
		args = append(args, "--requirepass", o.Password)
	}
	r.cmd = exec.Command(bin, args...)
	if os.Geteuid() == 0 {
		u, err := user.Lookup("redis")
		if err != nil {
			t.Fatalf("running as root needs the redis user (from the redis-server package): %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		_ = filepath.WalkDir(r.Dir, func(p string, _ os.DirEntry, err error) error {
			if err == nil {
				err = os.Lchown(p, uid, gid)
			}
			return err
		})
		// The server reaches its directory through the test's.
		for d := filepath.Dir(r.Dir); strings.HasPrefix(d, os.TempDir()+"/"); d = filepath.Dir(d) {
			_ = os.Chmod(d, 0o755)
		}
		// The server itself runs as redis (not under runuser, whose
		// death would leave the server running after the test).
		r.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	startListeningOn(t, "redis", r.cmd, r.Host, r.Port)
	return r
}

func orString(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// Stop stops the server (as a crash would: nothing is saved).
func (r *Redis) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}

// CLI runs redis-cli against the server and returns its output.
func (r *Redis) CLI(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "redis-cli", append([]string{"-h", r.Host, "-p", strconv.Itoa(r.Port)}, args...)...)
	if r.Password != "" {
		cmd.Env = append(os.Environ(), "REDISCLI_AUTH="+r.Password)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
	}
	return strings.TrimRight(string(out), "\n")
}

// Addr is host:port.
func (r *Redis) Addr() string { return fmt.Sprintf("%s:%d", r.Host, r.Port) }
