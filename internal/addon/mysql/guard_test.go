package mysql

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/sqlguard"
	"github.com/stash-backup/stash/internal/testserver"
)

func exists(p string) bool { _, err := os.Lstat(p); return err == nil }

// TestDumpClientCommandsRefused: a dump stream holding \! or system in
// the middle stops the restore at that line; the command never runs.
func TestDumpClientCommandsRefused(t *testing.T) {
	m := testserver.StartMariaDB(t)
	m.SQL(t, "CREATE DATABASE g;")
	pwned := filepath.Join(t.TempDir(), "pwned")
	tests := []struct{ name, dump, want string }{
		{"backslash", "CREATE TABLE g.before_it (x INT);\n\\! touch " + pwned + "\nCREATE TABLE g.after_it (x INT);\n", `dump line 2: client command \! refused`},
		{"system", "CREATE TABLE g.b2 (x INT);\nsystem touch " + pwned + "\nCREATE TABLE g.after_it (x INT);\n", `dump line 2: client command system refused`},
		{"system after a statement", "SELECT 1; system touch " + pwned + "\n", `dump line 1: client command system refused`},
		{"source", "\\. /etc/passwd\n", `dump line 1: client command \. refused`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := restore(context.Background(), options(m), func(w io.Writer) error {
				// In pieces, as a snapshot's stream arrives.
				for _, part := range []string{tt.dump[:len(tt.dump)/3], tt.dump[len(tt.dump)/3:]} {
					if _, err := io.WriteString(w, part); err != nil {
						return err
					}
				}
				return nil
			})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
			if strings.Contains(err.Error(), pwned) {
				t.Errorf("the error repeats the command's arguments: %v", err)
			}
			if exists(pwned) {
				t.Fatalf("%s was created", pwned)
			}
		})
	}
	if got := m.SQL(t, "SELECT count(*) FROM information_schema.tables WHERE table_name = 'after_it';"); !strings.Contains(got, "0") {
		t.Errorf("the restore went on past the refused line: %q", got)
	}
}

// TestClientFlagsRefuseCommands runs the client as a restore does, with
// what the guard refuses fed to it directly: the client's own flags
// (--binary-mode, --sandbox) refuse it too, so neither guard alone
// stands between a dump and a shell.
func TestClientFlagsRefuseCommands(t *testing.T) {
	m := testserver.StartMariaDB(t)
	o := options(m)
	client := o.tool("mysql")
	if !hasSandbox(context.Background(), client) {
		t.Logf("%s has no --sandbox; --binary-mode alone", client)
	}
	for _, cmd := range []string{"\\! touch PWNED\n", "system touch PWNED\n", "SELECT 1;\n\\! touch PWNED\nSELECT 2;\n"} {
		pwned := filepath.Join(t.TempDir(), "pwned")
		c := exec.Command(client, append(o.connArgs(nil), clientGuardArgs(context.Background(), client)...)...)
		c.Env = o.env()
		c.Stdin = strings.NewReader(strings.ReplaceAll(cmd, "PWNED", pwned))
		out, _ := c.CombinedOutput()
		if exists(pwned) {
			t.Errorf("%q ran under the client's flags: %s", cmd, out)
		}
	}
}

// TestLineRecorderPassesEverything: lines split across writes reach the
// client whole and in order.
func TestLineRecorderPassesEverything(t *testing.T) {
	var got strings.Builder
	l := &lineRecorder{w: &got, guard: sqlguard.NewMySQL()}
	in := "INSERT INTO t VALUES ('a');\nINSERT INTO t VALUES ('bb');\nSELECT 1;\nSELECT 2"
	for i := 0; i < len(in); i += 7 {
		if _, err := l.Write([]byte(in[i:min(i+7, len(in))])); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got.String() != in {
		t.Errorf("passed %q, want %q", got.String(), in)
	}
}
