// Package postgres backs up PostgreSQL with pg_dumpall or pg_dump,
// streaming the dump straight into a repository, and restores by streaming
// a snapshot into psql.
package postgres

import (
	"bufio"
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

// Secret keys of a PostgreSQL AppBinding's Secret, newest first.
var (
	UserKeys     = []string{"username", "POSTGRES_USER"}
	PasswordKeys = []string{"password", "POSTGRES_PASSWORD"}
)

// DefaultPort is PostgreSQL's.
const DefaultPort = 5432

// Options describe the server and the tools.
type Options struct {
	Conn *appbinding.Connection
	// User overrides the AppBinding Secret's user.
	User string
	// BackupCmd is pg_dumpall (default) or pg_dump.
	BackupCmd string
	// Args are extra arguments for the dump or psql (--pg-args).
	Args []string
	// ScratchDir holds the TLS files while a tool runs, where they cannot
	// be memory files (dump.WriteTLS).
	ScratchDir string
	// BinDir, if set, is where pg_dump, pg_dumpall, psql and pg_isready
	// are. Else, when ToolsRoot holds several versions of the client
	// tools, the ones that match the server (ChooseTools); else PATH.
	BinDir string
	// ToolsRoot holds client tools per major version, <root>/<major>/bin;
	// empty means DefaultToolsRoot.
	ToolsRoot string
}

func (o *Options) user() string {
	if o.User != "" {
		return o.User
	}
	if o.Conn.Username != "" {
		return o.Conn.Username
	}
	return "postgres"
}

func (o *Options) tool(name string) string {
	if o.BinDir != "" {
		return filepath.Join(o.BinDir, name)
	}
	return name
}

// env is the libpq environment: the password never appears on a command
// line. The TLS files it names exist until remove is called.
func (o *Options) env() (env []string, remove func(), err error) {
	env = append(os.Environ(), "PGPASSWORD="+o.Conn.Password, "PGCONNECT_TIMEOUT=10")
	mode := o.Conn.Query.Get("sslmode")
	if mode == "" && (len(o.Conn.ClientCert) > 0 || len(o.Conn.CABundle) > 0) {
		// A CA or a client certificate means TLS. libpq's default,
		// prefer, would neither insist on TLS nor check the server
		// against the CA it was given.
		mode = "require"
		if len(o.Conn.CABundle) > 0 && !o.Conn.InsecureSkipTLSVerify {
			mode = "verify-full"
		}
	}
	if mode != "" {
		env = append(env, "PGSSLMODE="+mode)
	}
	conn := o.Conn
	if o.Conn.InsecureSkipTLSVerify && !strings.HasPrefix(mode, "verify-") {
		// libpq checks the server against a root CA whenever it has one,
		// even in mode require: against the AppBinding's CA, or else
		// ~/.postgresql/root.crt. A path that cannot exist gives it none,
		// as insecureSkipTLSVerify asks; an sslmode verify-* in the URL
		// still verifies.
		conn = o.Conn.WithoutCA()
		env = append(env, "PGSSLROOTCERT="+noRootCA)
	}
	files, err := dump.WriteTLS(conn, o.ScratchDir)
	if err != nil {
		return nil, nil, err
	}
	for _, x := range []struct{ path, env string }{
		{files.CA, "PGSSLROOTCERT"},
		{files.Cert, "PGSSLCERT"},
		{files.Key, "PGSSLKEY"},
	} {
		if x.path != "" {
			env = append(env, x.env+"="+x.path)
		}
	}
	return env, files.Remove, nil
}

// noRootCA is a path no file can have (/dev/null is not a directory).
const noRootCA = "/dev/null/no-root-ca"

func (o *Options) connArgs() []string {
	return []string{"--username", o.user(), "--host", o.Conn.Host, "--port", strconv.Itoa(o.Conn.Port)}
}

// Wait polls the server with pg_isready until it accepts connections or
// the timeout passes.
func Wait(ctx context.Context, o Options, timeout time.Duration) error {
	env, remove, err := o.env()
	if err != nil {
		return err
	}
	defer remove()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		cmd := exec.CommandContext(ctx, o.tool("pg_isready"), append(o.connArgs(), "--timeout=5")...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		last = strings.TrimSpace(string(out))
		if time.Now().After(deadline) {
			return fmt.Errorf("PostgreSQL at %s not ready after %s (--wait-timeout): %s", o.Conn.Address(), timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// Driver is PostgreSQL's addon.Driver.
type Driver struct{ Options }

// Wait implements addon.Driver.
func (d Driver) Wait(ctx context.Context, timeout time.Duration) error {
	return Wait(ctx, d.Options, timeout)
}

// Backup streams the dump into the repository as dumpfile.sql. The dump's
// exit status decides: a failed or truncated dump never becomes a snapshot.
func (d Driver) Backup(ctx context.Context, w addon.Writer) error {
	o := d.Options
	cmdName := o.BackupCmd
	if cmdName == "" {
		cmdName = "pg_dumpall"
	}
	if cmdName != "pg_dumpall" && cmdName != "pg_dump" {
		return fmt.Errorf("--backup-cmd %q: use pg_dumpall or pg_dump", cmdName)
	}
	env, remove, err := o.env()
	if err != nil {
		return err
	}
	defer remove()
	if o, err = o.withTools(ctx, cmdName, env); err != nil {
		return err
	}
	args := o.connArgs()
	if _, named := namedDatabase(cmdName, o.Args); cmdName == "pg_dump" && o.Conn.Database != "" && !named {
		args = append(args, "--dbname", o.Conn.Database)
	}
	args = append(args, o.Args...)
	return w.Commands(ctx, "", DumpFile, func(ctx context.Context) *exec.Cmd {
		cmd := exec.CommandContext(ctx, o.tool(cmdName), args...)
		cmd.Env = env
		return cmd
	})
}

// database is the database tool connects to: the one the user's
// arguments name, else the AppBinding's, else "postgres".
func (o *Options) database(tool string) string {
	if db, named := namedDatabase(tool, o.Args); named {
		return db
	}
	if o.Conn.Database != "" {
		return o.Conn.Database
	}
	return "postgres"
}

// roleLine matches the statements of a dump that would create or change the
// password of the role the restore connects as; Stash drops them so that
// the target server keeps its own credentials.
func roleLine(role string) *regexp.Regexp {
	q := regexp.QuoteMeta(role)
	return regexp.MustCompile(`^(CREATE ROLE "?` + q + `"?;|ALTER ROLE "?` + q + `"? WITH .*PASSWORD .*;)\s*$`)
}

// Restore streams the dump into psql, which stops at the first error.
func (d Driver) Restore(ctx context.Context, r addon.Reader) error {
	return restore(ctx, d.Options, func(w io.Writer) error { return r.Stream(ctx, "", DumpFile, w) })
}

// restore runs psql with what stream writes as its input.
func restore(ctx context.Context, o Options, stream func(io.Writer) error) error {
	env, remove, err := o.env()
	if err != nil {
		return err
	}
	defer remove()
	if o, err = o.withTools(ctx, "psql", env); err != nil {
		return err
	}
	env = append(env, startupSettings()...)
	// A psql that knows \restrict runs the whole dump restricted with a
	// key the dump cannot know: then psql itself refuses any meta-command
	// the guard let through, and the guard lifts the restriction only
	// around the \connect and \encoding lines pg_dump wrote.
	key := ""
	if psqlRestricts(ctx, o.tool("psql")) {
		key = restrictKey()
	}
	args := append(o.connArgs(), "--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1")
	if key != "" {
		args = append(args, "--command=\\restrict "+key)
	}
	// --file=- makes psql name the failing line (psql:<stdin>:N: ERROR).
	args = append(args, "--file=-")
	if _, named := namedDatabase("psql", o.Args); !named {
		args = append(args, "--dbname", o.database("psql"))
	}
	args = append(args, o.Args...)
	cmd := exec.CommandContext(ctx, o.tool("psql"), args...)
	cmd.Env = env
	stderr := &dump.Tail{}
	cmd.Stderr = stderr
	cmd.Stdout = io.Discard
	stdin, err := dump.StartWithStdin(cmd)
	if err != nil {
		return err
	}
	filter := newLineFilter(stdin, roleLine(o.user()))
	filter.key = key
	rerr := stream(filter)
	if rerr == nil {
		rerr = filter.Flush()
	}
	if err := dump.EndClient(cmd, stdin, rerr); err != nil {
		return err
	}
	if werr := cmd.Wait(); werr != nil {
		return fmt.Errorf("psql failed: %v: %s%s", werr, dump.RedactTail(stderr.String()), filter.lines.Quote(stderr.String(), psqlLine))
	}
	return nil
}

// startupSettings are the environment that makes every session psql
// opens, \connect's included, start with standard_conforming_strings on
// and a client encoding a database can have, as the guard reads the dump:
// libpq sends them in the startup packet, which outranks a database's,
// a role's and the server's own settings, and RESET returns to them. A
// dump could otherwise ALTER DATABASE … SET standard_conforming_strings
// = off, \connect to it, and have psql read backslashes otherwise than
// the guard.
func startupSettings() []string {
	return []string{
		"PGOPTIONS=" + strings.TrimSpace(os.Getenv("PGOPTIONS")+" -c standard_conforming_strings=on"),
		"PGCLIENTENCODING=UTF8",
	}
}

// lineFilter drops the lines a pattern matches and numbers the rest as
// psql sees them, to quote the statement psql failed on. Every line goes
// through the meta-command guard first.
type lineFilter struct {
	w       *bufio.Writer
	drop    *regexp.Regexp
	guard   *sqlguard.Psql
	key     string // psql's \restrict key, "" when psql has no \restrict
	partial []byte
	lines   dump.Lines
	wrapped []byte
}

var (
	newline    = []byte("\n")
	createRole = []byte("CREATE ROLE ")
	alterRole  = []byte("ALTER ROLE ")
)

func newLineFilter(w io.Writer, drop *regexp.Regexp) *lineFilter {
	return &lineFilter{w: bufio.NewWriterSize(w, 1<<20), drop: drop, guard: sqlguard.NewPsql()}
}

func (f *lineFilter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			f.partial = append(f.partial, p...)
			break
		}
		var line []byte
		if len(f.partial) > 0 {
			line = append(f.partial, p[:i+1]...)
			f.partial = f.partial[:0]
		} else {
			line = p[:i+1]
		}
		p = p[i+1:]
		if err := f.emit(line); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (f *lineFilter) emit(line []byte) error {
	act, err := f.guard.Line(line)
	if err != nil {
		return err
	}
	switch {
	case act == sqlguard.Restrict:
		// pg_dump's own pair. Its key is in the dump, so it guards
		// nothing against whoever wrote the dump; psql runs restricted
		// with Stash's key instead, which this \unrestrict would not
		// match (and a psql without \restrict would stop at it). An
		// empty line keeps psql's line numbers those of the dump.
		line = newline
	case act == sqlguard.Meta && f.key != "":
		// Lifted for this one line, which also keeps line numbers.
		f.wrapped = append(f.wrapped[:0], `\unrestrict `...)
		f.wrapped = append(f.wrapped, f.key...)
		f.wrapped = append(f.wrapped, ' ')
		f.wrapped = append(f.wrapped, bytes.TrimRight(line, "\r\n")...)
		f.wrapped = append(f.wrapped, ` \restrict `...)
		f.wrapped = append(f.wrapped, f.key...)
		f.wrapped = append(f.wrapped, '\n')
		f.lines.Add(bytes.TrimRight(line, "\n"))
		_, err := f.w.Write(f.wrapped)
		return err
	}
	// Only role statements can be dropped; test the prefix before the
	// pattern.
	if (bytes.HasPrefix(line, createRole) || bytes.HasPrefix(line, alterRole)) && f.drop.Match(bytes.TrimRight(line, "\r\n")) {
		return nil
	}
	// Lines are counted as psql sees them, after dropping.
	f.lines.Add(bytes.TrimRight(line, "\n"))
	_, err = f.w.Write(line)
	return err
}

// Flush writes what is buffered.
func (f *lineFilter) Flush() error {
	if len(f.partial) > 0 {
		if err := f.emit(f.partial); err != nil {
			return err
		}
		f.partial = nil
	}
	return f.w.Flush()
}

var psqlLine = regexp.MustCompile(`psql:<stdin>:(\d+): ERROR`)
