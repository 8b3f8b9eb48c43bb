package postgres

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/stash-backup/stash/internal/addon/dump"
)

// DefaultToolsRoot is where Debian's and the PostgreSQL project's (PGDG)
// packages install each major version's client tools, in <root>/<major>/bin.
const DefaultToolsRoot = "/usr/lib/postgresql"

// Major is a PostgreSQL major version as server_version_num / 100: 1500
// for 15, 906 for 9.6 (before 10 a major version had two parts).
type Major int

// ParseMajor reads a major version as Debian names its directories ("15",
// "9.6").
func ParseMajor(s string) (Major, bool) {
	a, b, two := strings.Cut(s, ".")
	x, err := strconv.Atoi(a)
	if err != nil || x <= 0 {
		return 0, false
	}
	if !two {
		if x < 10 {
			return 0, false
		}
		return Major(x * 100), true
	}
	y, err := strconv.Atoi(b)
	if err != nil || x >= 10 || y < 0 || y > 99 {
		return 0, false
	}
	return Major(x*100 + y), true
}

func (m Major) String() string {
	if m < 1000 {
		return fmt.Sprintf("%d.%d", m/100, m%100)
	}
	return strconv.Itoa(int(m / 100))
}

// ChooseTools picks which installed client version serves a server: the
// server's own, else the oldest newer one. pg_dump refuses a server newer
// than itself, and a newer pg_dump's output is not meant to load into an
// older server (pg_dump 17 writes SET transaction_timeout, which 16 rejects,
// and a restore stops at the first error); psql must understand what the
// matching pg_dump wrote. So the closest version at or above the server's
// is the one whose dump restores into a server of the same version.
func ChooseTools(server Major, installed []Major) (Major, error) {
	best := Major(0)
	for _, m := range installed {
		if m >= server && (best == 0 || m < best) {
			best = m
		}
	}
	if best == 0 {
		have := make([]string, len(installed))
		for i, m := range installed {
			have[i] = m.String()
		}
		return 0, fmt.Errorf("the PostgreSQL server is version %s, newer than every client here (%s): pg_dump cannot dump a newer server; use an image with PostgreSQL %s client tools (docs/addons/postgres.md)",
			server, strings.Join(have, ", "), server)
	}
	return best, nil
}

// installedTools lists the major versions under root that have the client
// tools, oldest first.
func installedTools(root string) []Major {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var out []Major
	for _, e := range entries {
		m, ok := ParseMajor(e.Name())
		if !ok {
			continue
		}
		bin := filepath.Join(root, e.Name(), "bin")
		if executable(filepath.Join(bin, "pg_dump")) && executable(filepath.Join(bin, "psql")) {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

func executable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0
}

// ServerMajor asks the server for its version with psql, connected to
// database db: the one the tool will use, which the user may be allowed
// to connect to where "postgres" is not.
func ServerMajor(ctx context.Context, psql string, o *Options, db string, env []string) (Major, error) {
	args := append(o.connArgs(), "--no-psqlrc", "--no-password", "--no-align", "--tuples-only", "--dbname", db, "--command", "SHOW server_version_num")
	cmd := exec.CommandContext(ctx, psql, args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("ask PostgreSQL at %s for its version: %v: %s", o.Conn.Address(), err, dump.RedactTail(strings.TrimSpace(stderr.String())))
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || n < 90000 {
		return 0, fmt.Errorf("PostgreSQL at %s: unexpected server_version_num %q", o.Conn.Address(), strings.TrimSpace(string(out)))
	}
	return Major(n / 100), nil
}

// withTools returns o with BinDir set to the client tools that match the
// server, when several versions of them are installed. With BinDir already
// set, or one version or none under the tools root, o is used as it is
// (its tools from PATH), without asking the server: a second connection
// before every dump costs a client process and tens of milliseconds.
// A server that cannot be asked, as one still starting, is reported as a
// dump.NoOutputError, as a dump that could not connect would be, so that a
// backup waits for the server and tries again.
func (o Options) withTools(ctx context.Context, tool string, env []string) (Options, error) {
	if o.BinDir != "" {
		return o, nil
	}
	root := o.ToolsRoot
	if root == "" {
		root = DefaultToolsRoot
	}
	installed := installedTools(root)
	if len(installed) < 2 {
		return o, nil
	}
	newest := installed[len(installed)-1]
	server, err := ServerMajor(ctx, filepath.Join(root, newest.String(), "bin", "psql"), &o, o.database(tool), env)
	if err != nil {
		return o, &dump.NoOutputError{Err: err}
	}
	m, err := ChooseTools(server, installed)
	if err != nil {
		return o, err
	}
	o.BinDir = filepath.Join(root, m.String(), "bin")
	return o, nil
}
