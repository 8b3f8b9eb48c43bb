// Package mysql backs up MySQL and MariaDB with mysqldump, streaming the
// dump straight into a repository, and restores by streaming a snapshot
// into the mysql client, which stops at the first error.
package mysql

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/appbinding"
	"github.com/stash-backup/stash/internal/sqlguard"
)

// DumpFile is the name a dump is stored under, as in Stash.
const DumpFile = "dumpfile.sql"

// DefaultPort is MySQL's.
const DefaultPort = 3306

// Secret keys of a MySQL AppBinding's Secret.
var (
	UserKeys     = []string{"username", "MYSQL_USER"}
	PasswordKeys = []string{"password", "MYSQL_PASSWORD", "MYSQL_ROOT_PASSWORD"}
)

// consistency flags every default dump carries: one consistent snapshot
// of InnoDB tables, the routines, events and triggers, and a FLUSH
// PRIVILEGES after the mysql schema so restored users and grants apply.
// --skip-dump-date leaves out the "Dump completed on <time>" comment at the
// end: without it an unchanged database never dumps to the same bytes, and
// the last chunk of every backup (with the mysql schema's help tables, 300
// KiB compressed) was stored again; a contiguous 1 % change added 6 % of
// the first backup instead of 1 % (docs/benchmarks.md).
var consistency = []string{"--single-transaction", "--routines", "--events", "--triggers", "--flush-privileges", "--skip-dump-date"}

// Options describe the server and the tools.
type Options struct {
	Conn *appbinding.Connection
	// MultiDump, when set, runs one mysqldump per entry (each with Args
	// and its own arguments) into the same dump (multiDumpArgs).
	MultiDump [][]string
	// Args are the mysqldump arguments (--mysql-args) for a backup, empty
	// meaning --all-databases; for a restore, extra mysql client arguments.
	Args []string
	// BinDir, if set, is where mysqldump, mysql and mysqladmin are.
	BinDir string
	// ScratchDir holds the TLS files while a tool runs, where they cannot
	// be memory files (dump.WriteTLS).
	ScratchDir string
}

// tls writes the CA and client certificate to files and returns the
// client flags, and what removes the files once the tool has exited. The
// server is verified against the CA when one is given, unless the
// AppBinding says insecureSkipTLSVerify: then the client gets no CA,
// since with one it checks the server's chain even without
// --ssl-verify-server-cert, and is told not to verify (MariaDB 11.4's
// clients verify by default).
func (o *Options) tls() (args []string, remove func(), err error) {
	conn := o.Conn
	insecure := o.Conn.InsecureSkipTLSVerify
	if insecure {
		conn = conn.WithoutCA()
	}
	files, err := dump.WriteTLS(conn, o.ScratchDir)
	if err != nil {
		return nil, nil, err
	}
	if len(o.Conn.CABundle) == 0 && files.Cert == "" {
		return nil, files.Remove, nil
	}
	args = []string{"--ssl"}
	switch {
	case files.CA != "":
		args = append(args, "--ssl-ca="+files.CA, "--ssl-verify-server-cert")
	case insecure:
		args = append(args, "--skip-ssl-verify-server-cert")
	}
	if files.Cert != "" {
		args = append(args, "--ssl-cert="+files.Cert, "--ssl-key="+files.Key)
	}
	return args, files.Remove, nil
}

func (o *Options) tool(name string) string {
	if o.BinDir != "" {
		return filepath.Join(o.BinDir, name)
	}
	return name
}

func (o *Options) user() string {
	if o.Conn.Username != "" {
		return o.Conn.Username
	}
	return "root"
}

// connArgs are the client flags that reach the server: address, user and
// the TLS flags.
func (o *Options) connArgs(tls []string) []string {
	args := []string{"--no-defaults", "--host=" + o.Conn.Host, "--port=" + strconv.Itoa(o.Conn.Port), "--user=" + o.user(), "--protocol=TCP"}
	return append(args, tls...)
}

func (o *Options) env() []string {
	// MYSQL_PWD keeps the password off the command line.
	return append(os.Environ(), "MYSQL_PWD="+o.Conn.Password)
}

// Wait pings the server until it answers or the timeout passes.
func Wait(ctx context.Context, o Options, timeout time.Duration) error {
	tls, remove, err := o.tls()
	if err != nil {
		return err
	}
	defer remove()
	deadline := time.Now().Add(timeout)
	for {
		cmd := exec.CommandContext(ctx, o.tool("mysqladmin"), append(o.connArgs(tls), "--connect-timeout=5", "ping")...)
		cmd.Env = o.env()
		out, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("MySQL at %s not ready after %s (--wait-timeout): %s", o.Conn.Address(), timeout, dump.RedactTail(strings.TrimSpace(string(out))))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// DumpArgs are the mysqldump arguments for user args: the consistency
// flags, then the user's selection or --all-databases.
func DumpArgs(user []string) []string {
	args := append([]string{}, consistency...)
	if len(user) == 0 {
		return append(args, "--all-databases")
	}
	return append(args, user...)
}

// Driver is the addon.Driver of MySQL and MariaDB.
type Driver struct{ Options }

// Wait implements addon.Driver.
func (d Driver) Wait(ctx context.Context, timeout time.Duration) error {
	return Wait(ctx, d.Options, timeout)
}

// Backup streams mysqldump into the repository as dumpfile.sql; a failed
// or truncated dump never becomes a snapshot.
func (d Driver) Backup(ctx context.Context, w addon.Writer) error {
	o := d.Options
	tls, remove, err := o.tls()
	if err != nil {
		return err
	}
	defer remove()
	dumpWith := func(args []string) func(context.Context) *exec.Cmd {
		args = append(o.connArgs(tls), args...)
		return func(ctx context.Context) *exec.Cmd {
			cmd := exec.CommandContext(ctx, o.tool("mysqldump"), args...)
			cmd.Env = o.env()
			return cmd
		}
	}
	if len(o.MultiDump) == 0 {
		return w.Commands(ctx, "", DumpFile, dumpWith(DumpArgs(o.Args)))
	}
	var cmds []func(context.Context) *exec.Cmd
	for _, extra := range o.MultiDump {
		// The consistency flags first, so that each dump's own flags
		// (--skip-triggers, --no-data, …) win.
		cmds = append(cmds, dumpWith(append(append(append([]string{}, consistency...), o.Args...), extra...)))
	}
	return w.Commands(ctx, "", DumpFile, cmds...)
}

// ParseMultiDump splits Stash's multiDumpArgs ("$args=<args> $args=<args>
// …") into the arguments of each dump. Text before the first $args= is an
// error, so a value missing the marker is not silently one dump.
func ParseMultiDump(s string) ([][]string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	const marker = "$args="
	if !strings.HasPrefix(s, marker) {
		return nil, fmt.Errorf("multiDumpArgs %q: each dump's arguments start with $args=", s)
	}
	var out [][]string
	for _, part := range strings.Split(s[len(marker):], marker) {
		f := strings.Fields(part)
		if len(f) == 0 {
			return nil, fmt.Errorf("multiDumpArgs %q: a $args= has no arguments", s)
		}
		out = append(out, f)
	}
	return out, nil
}

var errLine = regexp.MustCompile(`at line (\d+)`)

// Restore streams the dump into the mysql client.
func (d Driver) Restore(ctx context.Context, r addon.Reader) error {
	return restore(ctx, d.Options, func(w io.Writer) error { return r.Stream(ctx, "", DumpFile, w) })
}

// restore runs the mysql client with what stream writes as its input.
func restore(ctx context.Context, o Options, stream func(io.Writer) error) error {
	tls, remove, err := o.tls()
	if err != nil {
		return err
	}
	defer remove()
	args := append(append(o.connArgs(tls), clientGuardArgs(ctx, o.tool("mysql"))...), o.Args...)
	cmd := exec.CommandContext(ctx, o.tool("mysql"), args...)
	cmd.Env = o.env()
	stderr := &dump.Tail{}
	cmd.Stderr = stderr
	cmd.Stdout = io.Discard
	stdin, err := dump.StartWithStdin(cmd)
	if err != nil {
		return err
	}
	lines := &lineRecorder{w: stdin, guard: sqlguard.NewMySQL()}
	serr := stream(lines)
	if serr == nil {
		serr = lines.Flush()
	}
	if err := dump.EndClient(cmd, stdin, serr); err != nil {
		return err
	}
	if werr := cmd.Wait(); werr != nil {
		return fmt.Errorf("mysql failed: %v: %s%s", werr, dump.RedactTail(stderr.String()), lines.lines.Quote(stderr.String(), errLine))
	}
	return nil
}

// lineRecorder passes data through and numbers its lines, to quote the
// statement the client failed on. Each line goes through the client
// command guard before any of it is passed on: a write ending inside a
// line holds that line back until its end has come.
type lineRecorder struct {
	w       io.Writer
	guard   *sqlguard.MySQL
	cur     []byte // the start of the line being read, for quoting
	partial []byte // the line being read, held back for the guard
	lines   dump.Lines
}

func (l *lineRecorder) Write(p []byte) (int, error) {
	from, checked := 0, 0 // p[from:checked] are whole lines the guard passed
	for off := 0; off < len(p); {
		i := bytes.IndexByte(p[off:], '\n')
		if i < 0 {
			l.cur = append(l.cur, p[off:off+min(len(p)-off, max(0, 500-len(l.cur)))]...)
			l.partial = append(l.partial, p[off:]...)
			break
		}
		end := off + i + 1
		l.cur = append(l.cur, p[off:off+min(i, max(0, 500-len(l.cur)))]...)
		line := p[off:end]
		if len(l.partial) > 0 {
			l.partial = append(l.partial, line...)
			line = l.partial
		}
		if err := l.guard.Line(line); err != nil {
			return 0, err
		}
		l.lines.Add(l.cur)
		l.cur = l.cur[:0]
		if len(l.partial) > 0 {
			// The held-back line, completed, goes out first.
			if _, err := l.w.Write(l.partial); err != nil {
				return 0, err
			}
			l.partial = l.partial[:0]
			from = end
		}
		checked, off = end, end
	}
	if checked > from {
		if _, err := l.w.Write(p[from:checked]); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Flush checks and passes on a last line without a newline.
func (l *lineRecorder) Flush() error {
	if len(l.partial) == 0 {
		return nil
	}
	if err := l.guard.Line(l.partial); err != nil {
		return err
	}
	l.lines.Add(l.cur)
	_, err := l.w.Write(l.partial)
	l.partial = l.partial[:0]
	return err
}

// Query runs one statement with the mysql client and returns its rows,
// tab-separated, without column names.
func Query(ctx context.Context, o Options, sql string) (string, error) {
	tls, remove, err := o.tls()
	if err != nil {
		return "", err
	}
	defer remove()
	args := append(o.connArgs(tls), "--connect-timeout=10", "-N", "-B", "-e", sql)
	cmd := exec.CommandContext(ctx, o.tool("mysql"), args...)
	cmd.Env = o.env()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s at %s: %v: %s", sql, o.Conn.Address(), err, dump.RedactTail(strings.TrimSpace(stderr.String())))
	}
	return strings.TrimSpace(string(out)), nil
}
