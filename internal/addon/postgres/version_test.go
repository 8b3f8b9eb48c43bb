package postgres

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/appbinding"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/testserver"
)

func TestParseMajor(t *testing.T) {
	for _, c := range []struct {
		in   string
		want Major
		ok   bool
	}{
		{"15", 1500, true},
		{"10", 1000, true},
		{"18", 1800, true},
		{"9.6", 906, true},
		{"9.10", 910, true},
		{"9", 0, false},      // before 10 a major version has two parts
		{"15.2", 0, false},   // a minor version is not a directory of majors
		{"common", 0, false}, // other entries of /usr/lib/postgresql
		{"", 0, false},
		{"-1", 0, false},
	} {
		got, ok := ParseMajor(c.in)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseMajor(%q) = %d, %v; want %d, %v", c.in, got, ok, c.want, c.ok)
		}
		if ok && got.String() != c.in {
			t.Errorf("Major(%d).String() = %q, want %q", got, got.String(), c.in)
		}
	}
}

func TestChooseTools(t *testing.T) {
	all := []Major{1300, 1400, 1500, 1600, 1700, 1800}
	for _, c := range []struct {
		server    Major
		installed []Major
		want      Major
		err       string
	}{
		{1500, all, 1500, ""},
		{1800, all, 1800, ""},
		{1300, all, 1300, ""},
		// Older servers than any tools: the oldest tools, whose dumps
		// are closest to what the server writes itself.
		{906, all, 1300, ""},
		{1200, all, 1300, ""},
		// A gap: the next newer tools.
		{1600, []Major{1500, 1700}, 1700, ""},
		// Order does not matter.
		{1400, []Major{1800, 1400, 1300}, 1400, ""},
		// A server newer than every tool cannot be dumped.
		{1900, all, 0, "the PostgreSQL server is version 19, newer than every client here (13, 14, 15, 16, 17, 18)"},
		{1600, []Major{906, 1500}, 0, "newer than every client here (9.6, 15): pg_dump cannot dump a newer server; use an image with PostgreSQL 16 client tools"},
	} {
		got, err := ChooseTools(c.server, c.installed)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ChooseTools(%s, %v) = %v, %v; want error %q", c.server, c.installed, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ChooseTools(%s, %v) = %v, %v; want %v", c.server, c.installed, got, err, c.want)
		}
	}
}

// toolsRoot lays out client tools per major version as Debian does, under
// a temporary root. Each of good's directories links to the real tools of
// this machine; each of bad's holds tools that fail, so that a backup that
// used them fails.
func toolsRoot(t *testing.T, realBin string, good, bad []string) string {
	t.Helper()
	root := t.TempDir()
	put := func(v string, tool func(path, name string) error) {
		bin := filepath.Join(root, v, "bin")
		if err := os.MkdirAll(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"pg_dump", "pg_dumpall", "psql", "pg_isready"} {
			if err := tool(filepath.Join(bin, name), name); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, v := range good {
		put(v, func(path, name string) error { return os.Symlink(filepath.Join(realBin, name), path) })
	}
	for _, v := range bad {
		script := "#!/bin/sh\necho 'wrong tools: " + v + "' >&2\nexit 3\n"
		put(v, func(path, _ string) error { return os.WriteFile(path, []byte(script), 0o755) })
	}
	// Not a version, and a version without tools: both ignored.
	for _, d := range []string{"common/bin", "12/lib"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// With several versions of the client tools installed, backup and restore
// use the ones that match the server, which they ask for its version with
// the newest psql. The server is this machine's PostgreSQL; the other
// versions are stand-ins (links to the same tools, or tools that fail),
// since Debian bookworm packages one version only.
func TestToolsMatchTheServer(t *testing.T) {
	ctx := context.Background()
	pg := testserver.StartPostgres(t)
	pg.SQL(t, "postgres", "CREATE DATABASE one; \\connect one\n CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 100);")
	server, ok := ParseMajor(filepath.Base(filepath.Dir(pg.BinDir)))
	if !ok {
		t.Fatalf("cannot tell the test server's major version from %s", pg.BinDir)
	}
	older, newer := Major(server-100).String(), Major(server+100).String()
	r := openRepo(t)
	conn := &appbinding.Connection{Host: pg.Host, Port: pg.Port, Username: pg.User, Password: pg.Password}

	t.Run("matching", func(t *testing.T) {
		// The newest (a link to the real psql) asks; the server's own
		// tools dump; the older and newer ones would fail if used.
		root := toolsRoot(t, pg.BinDir, []string{server.String()}, []string{older})
		newest := filepath.Join(root, newer, "bin")
		if err := os.MkdirAll(newest, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(pg.BinDir, "psql"), filepath.Join(newest, "psql")); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(newest, "pg_dump"), []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		o := Options{Conn: conn, ToolsRoot: root}
		got, err := withTools(t, o)
		if err != nil {
			t.Fatal(err)
		}
		if want := filepath.Join(root, server.String(), "bin"); got.BinDir != want {
			t.Fatalf("tools %s, want %s", got.BinDir, want)
		}
		st, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
		if err != nil {
			t.Fatal(err)
		}
		s, err := r.Resolve(ctx, st.Name, repository.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		pg.SQL(t, "postgres", "DROP DATABASE one;")
		if err := restoreSnapshot(ctx, r, s, o); err != nil {
			t.Fatal(err)
		}
		if got := pg.SQL(t, "one", "SELECT count(*) FROM t"); got != "100" {
			t.Errorf("restored rows %s", got)
		}
	})

	t.Run("next newer", func(t *testing.T) {
		root := toolsRoot(t, pg.BinDir, []string{newer}, []string{older})
		o := Options{Conn: conn, ToolsRoot: root}
		got, err := withTools(t, o)
		if err != nil || got.BinDir != filepath.Join(root, newer, "bin") {
			t.Fatalf("tools %s, %v; want version %s", got.BinDir, err, newer)
		}
	})

	t.Run("all older", func(t *testing.T) {
		// A server newer than every installed version: a clear error
		// before any dump, not pg_dump's version mismatch.
		oldest := Major(server - 200).String()
		root := toolsRoot(t, pg.BinDir, []string{oldest, older}, nil)
		o := Options{Conn: conn, ToolsRoot: root}
		_, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
		want := "the PostgreSQL server is version " + server.String() + ", newer than every client here (" + oldest + ", " + older + ")"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("err = %v, want %q", err, want)
		}
		var noOutput *dump.NoOutputError
		if errors.As(err, &noOutput) {
			t.Error("a version mismatch was reported as a server that may be starting")
		}
	})

	t.Run("server down", func(t *testing.T) {
		// The version cannot be asked: reported as a dump that wrote
		// nothing, so that BackupWhenReady waits for the server.
		root := toolsRoot(t, pg.BinDir, []string{server.String(), newer}, nil)
		down := &appbinding.Connection{Host: "127.0.0.1", Port: testserver.FreePort(t), Username: pg.User, Password: pg.Password}
		o := Options{Conn: down, ToolsRoot: root}
		_, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
		var noOutput *dump.NoOutputError
		if !errors.As(err, &noOutput) || !strings.Contains(err.Error(), "for its version") {
			t.Fatalf("err = %v, want a NoOutputError from asking the version", err)
		}
	})

	t.Run("the user's database", func(t *testing.T) {
		// A user who may connect only to the database the dump reads:
		// the version is asked there, not in "postgres".
		pg.SQL(t, "postgres", "CREATE ROLE limited LOGIN PASSWORD 'limited-pw'; REVOKE CONNECT ON DATABASE postgres FROM PUBLIC; GRANT CONNECT ON DATABASE one TO limited;")
		t.Cleanup(func() { pg.SQL(t, "postgres", "GRANT CONNECT ON DATABASE postgres TO PUBLIC;") })
		root := toolsRoot(t, pg.BinDir, []string{server.String(), newer}, nil)
		limited := &appbinding.Connection{Host: pg.Host, Port: pg.Port, Username: "limited", Password: "limited-pw"}
		if _, err := withTools(t, Options{Conn: limited, ToolsRoot: root}); err == nil {
			t.Fatal("asking in database postgres worked: the test cannot tell which database was asked")
		}
		for _, args := range [][]string{{"one"}, {"--dbname=one"}, {"-t", "t", "one"}} {
			got, err := withTools(t, Options{Conn: limited, ToolsRoot: root, Args: args})
			if err != nil || got.BinDir != filepath.Join(root, server.String(), "bin") {
				t.Fatalf("--pg-args %q: tools %q, %v; want version %s", args, got.BinDir, err, server)
			}
		}
	})

	t.Run("one version", func(t *testing.T) {
		// One version (or none) under the root: PATH's tools, without
		// asking the server.
		root := toolsRoot(t, pg.BinDir, nil, []string{server.String()})
		o := Options{Conn: conn, ToolsRoot: root}
		got, err := withTools(t, o)
		if err != nil || got.BinDir != "" {
			t.Fatalf("tools %q, %v; want PATH", got.BinDir, err)
		}
	})
}

func withTools(t *testing.T, o Options) (Options, error) {
	t.Helper()
	env, remove, err := o.env()
	if err != nil {
		t.Fatal(err)
	}
	defer remove()
	return o.withTools(context.Background(), "pg_dump", env)
}
