package postgres

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/testserver"
)

// restoreText restores dump (as a snapshot's stream would arrive) into pg.
func restoreText(t *testing.T, pg *testserver.Postgres, dump string) error {
	t.Helper()
	return restore(context.Background(), options(pg), func(w io.Writer) error {
		_, err := io.WriteString(w, dump)
		return err
	})
}

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// TestDumpMetaCommandsRefused: a dump stream holding a shell command, or a
// \connect that would send the password to another host, stops the
// restore at that line; the command never runs.
func TestDumpMetaCommandsRefused(t *testing.T) {
	pg := testserver.StartPostgres(t)
	pwned := filepath.Join(t.TempDir(), "pwned")
	tests := []struct{ name, dump, want string }{
		{"shell", "CREATE TABLE before_it (x int);\n\\! touch " + pwned + "\nCREATE TABLE after_it (x int);\n", `dump line 2: client command \! refused`},
		{"shell after a statement", "SELECT 1; \\! touch " + pwned + "\n", `dump line 1: client command \! refused`},
		{"connect to a host", "\\connect -reuse-previous=on \"dbname='postgres' host=127.0.0.2\"\n", `dump line 1: client command \connect refused`},
		{"output to a file", "\\o " + pwned + "\nSELECT 1;\n", `dump line 1: client command \o refused`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := restoreText(t, pg, tt.dump)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), pwned) || strings.Contains(err.Error(), "127.0.0.2") {
				t.Errorf("the error repeats the command's arguments: %v", err)
			}
			if exists(pwned) {
				t.Fatalf("%s was created", pwned)
			}
		})
	}
	if got := pg.SQL(t, "postgres", "SELECT count(*) FROM pg_class WHERE relname = 'after_it';"); !strings.Contains(got, "0") {
		t.Errorf("the restore went on past the refused line: %q", got)
	}
}

// TestRestrictedPsqlStopsWhatTheGuardMisses: the dump turns
// standard_conforming_strings off out of the guard's sight (dynamic SQL),
// so that psql reads a quote the guard takes as the end of a string as an
// escaped one, and the next \! as a command. psql, restricted with Stash's
// key, refuses it: the file is never created.
func TestRestrictedPsqlStopsWhatTheGuardMisses(t *testing.T) {
	pg := testserver.StartPostgres(t)
	o := options(pg)
	if !psqlRestricts(context.Background(), o.tool("psql")) {
		t.Fatalf("psql in %s has no \\restrict; this machine's 15.18 has", pg.BinDir)
	}
	pwned := filepath.Join(t.TempDir(), "pwned")
	dump := "DO $$ BEGIN EXECUTE 'SET standard' || '_conforming_strings = off'; END $$;\n" +
		"SELECT 'a\\'' \\! touch " + pwned + " '';\n"
	err := restoreText(t, pg, dump)
	if err == nil || !strings.Contains(err.Error(), "restricted") {
		t.Fatalf("err = %v, want psql's refusal of a restricted command", err)
	}
	if exists(pwned) {
		t.Fatalf("%s was created", pwned)
	}
}

// TestSessionSettingsFromStartup: psql without \restrict, where the guard
// alone holds. The dump turns standard_conforming_strings off for a
// database and connects to it; the guard reads the next line with the
// setting on, as a new session starts, so psql must too, or it would end
// the literal at the quote after the backslash and run \!.
func TestSessionSettingsFromStartup(t *testing.T) {
	pg := testserver.StartPostgres(t)
	o := options(pg)
	psql := o.tool("psql")
	psqlRestricts(context.Background(), psql)
	was, _ := restricts.Load(psql)
	restricts.Store(psql, false)
	t.Cleanup(func() { restricts.Store(psql, was) })
	pwned := filepath.Join(t.TempDir(), "pwned")
	dump := "CREATE DATABASE offdb;\n" +
		"ALTER DATABASE offdb SET standard_conforming_strings = off;\n" +
		"\\connect offdb\n" +
		"SELECT '\\'';\n" +
		"\\! touch " + pwned + "\n" +
		"';\n"
	err := restoreText(t, pg, dump)
	if exists(pwned) {
		t.Fatalf("%s was created", pwned)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func TestHasRestrict(t *testing.T) {
	for v, want := range map[string]bool{
		"psql (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)": true,
		"psql (PostgreSQL) 15.13":                          false,
		"psql (PostgreSQL) 17.6":                           true,
		"psql (PostgreSQL) 16.9":                           false,
		"psql (PostgreSQL) 18.1":                           true,
		"psql (PostgreSQL) 18beta1":                        false,
		"psql (PostgreSQL) 12.22":                          false,
		"psql (PostgreSQL) 9.6.24":                         false,
		"garbage":                                          false,
	} {
		if got := hasRestrict(v); got != want {
			t.Errorf("%q: %v, want %v", v, got, want)
		}
	}
}
