package sqlguard

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzPsql feeds any dump to the psql guard: it never panics, refuses
// only with a RefusedError on the line it was given, never repeats more
// of the line than the command's name, and accepts no line that starts
// with "\!" outside COPY data, literals and comments (inside them psql
// reads it as text too).
func FuzzPsql(f *testing.F) {
	for _, s := range []string{
		pgDumpall,
		"SELECT 1;\n\\! touch /tmp/x\n",
		"COPY t FROM stdin;\n\\! data\n\\.\n\\! id\n",
		"SELECT $a$ x $a$, E'\\'', 'C:\\', \"q\"\"\";\n",
		"/* /* */ \\! */\n",
		"\\connect -reuse-previous=on \"dbname='x' host=y\"\n",
		"SET standard_conforming_strings = off;\nSELECT 'a\\'' \\! id '';\n",
		"SELECT pg_catalog.set_config('search_path', '', false);\n",
		"SELECT pg_catalog.set_config('standard_conforming_strings', 'off', false);\nSELECT '\\'';\n\\! id\n",
		"COPY t FROM stdin WITH (FORMAT text);\n'\n\\.\n\\! id\n",
		"CREATE FUNCTION begin() RETURNS int LANGUAGE sql AS 'select 1';\nCOPY t FROM stdin;\n\\! id\n",
		"BEGIN;\nSET standard_conforming_strings = off;\nROLLBACK;\nSELECT '\\'\n\\! id\n",
		"SELECT 1; -- c\r\\! id\nSELECT E'a'\r'\\'';\n",
		"SELECT 1E'\\'', $1$a$ x $a$, $a$x$a$$b$ $b$, B'\\', U&'\\', :DBNAME, :'v';\n",
	} {
		f.Add([]byte(s))
	}
	dumps, _ := filepath.Glob("testdata/pgdump/pg_dump*.sql")
	for _, d := range dumps {
		if b, err := os.ReadFile(d); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, dump []byte) {
		g := NewPsql()
		n := 0
		for rest := dump; len(rest) > 0; {
			i := bytes.IndexByte(rest, '\n')
			line := rest
			if i >= 0 {
				line = rest[:i+1]
			}
			rest = rest[len(line):]
			n++
			inCode := !g.inCopy && g.state == pgCode
			_, err := g.Line(line)
			if err != nil {
				var re *RefusedError
				if !errors.As(err, &re) || re.Line != n {
					t.Fatalf("line %d: %v", n, err)
				}
				if len(re.Command) > 40 {
					t.Fatalf("line %d: command name %q repeats the line", n, re.Command)
				}
				return
			}
			if inCode && bytes.HasPrefix(line, []byte(`\!`)) {
				t.Fatalf("line %d: accepted %q", n, line)
			}
		}
	})
}

// FuzzMySQL feeds any dump to the mysql guard: it never panics, refuses
// only with a RefusedError on the line it was given, and accepts no line
// that starts a statement with "\!" or "system ".
func FuzzMySQL(f *testing.F) {
	for _, s := range []string{
		mysqldump,
		"SELECT 1;\n\\! touch /tmp/x\n",
		"DELIMITER ;;\nSELECT 1;;\nsystem id\n",
		"INSERT INTO t VALUES ('a\\'b', \"c\\\"d\", `e``f`);\n",
		"/*!50003 SELECT 1 */;\n/* \\! */\n# \\!\n-- \\!\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, dump []byte) {
		g := NewMySQL()
		n := 0
		for rest := dump; len(rest) > 0; {
			i := bytes.IndexByte(rest, '\n')
			line := rest
			if i >= 0 {
				line = rest[:i+1]
			}
			rest = rest[len(line):]
			n++
			atStart := g.state == myCode && g.empty && !g.exec
			err := g.Line(line)
			if err != nil {
				var re *RefusedError
				if !errors.As(err, &re) || re.Line != n {
					t.Fatalf("line %d: %v", n, err)
				}
				return
			}
			if atStart && (bytes.HasPrefix(line, []byte(`\!`)) || bytes.HasPrefix(bytes.ToLower(line), []byte("system "))) {
				t.Fatalf("line %d: accepted %q", n, line)
			}
		}
	})
}
