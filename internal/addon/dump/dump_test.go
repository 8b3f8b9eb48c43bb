package dump

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

func TestLines(t *testing.T) {
	var l Lines
	for i := 1; i <= keepLines+10; i++ {
		l.Add([]byte(fmt.Sprintf("statement %d;", i)))
	}
	l.Add([]byte(strings.Repeat("x", 2*maxLineKept)))
	if _, ok := l.At(5); ok {
		t.Error("line 5 should have left the ring")
	}
	if s, ok := l.At(keepLines + 10); !ok || s != fmt.Sprintf("statement %d;", keepLines+10) {
		t.Errorf("recent line: %q %v", s, ok)
	}
	if s, _ := l.At(keepLines + 11); len(s) != maxLineKept {
		t.Errorf("long line kept %d bytes", len(s))
	}
	re := regexp.MustCompile(`at line (\d+)`)
	if q := l.Quote(fmt.Sprintf("ERROR 1050 at line %d: exists", keepLines+9), re); q != fmt.Sprintf(" (dump line %d: statement %d;)", keepLines+9, keepLines+9) {
		t.Errorf("quote %q", q)
	}
	if q := l.Quote("ERROR at line 3", re); q != "" {
		t.Errorf("evicted line quoted: %q", q)
	}
	if q := l.Quote("no line here", re); q != "" {
		t.Errorf("quote without a line: %q", q)
	}
}

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`CREATE TABLE t (x int);`, `CREATE TABLE t (x int);`},
		{`ALTER ROLE app WITH LOGIN PASSWORD 'SCRAM-SHA-256$4096:abc$def:ghi';`, `ALTER ROLE app WITH LOGIN PASSWORD '…`},
		{`INSERT INTO global_priv VALUES ('localhost','root','{"authentication_string":"*6C8989366EAF75BB670AD8EA7A7FC1176A95CEF4"}');`,
			`INSERT INTO global_priv VALUES …`},
		{`INSERT INTO accounts VALUES (1,2,3),(4,5,6);`, `INSERT INTO accounts VALUES …`},
		{`INSERT INTO t VALUES ('C:\', 'secret');`, `INSERT INTO t VALUES …`},
		{`CREATE USER 'app'@'%' IDENTIFIED BY PASSWORD '*6C89';`, `CREATE USER '…`},
		{`SELECT "quoted identifier", $$body$$;`, `SELECT "quoted identifier", $$body$$;`},
	} {
		if got := Redact(c.in); got != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	var l Lines
	l.Add([]byte(`ALTER ROLE app WITH PASSWORD 'md5d41d8cd98f00b204e9800998ecf8427e';`))
	q := l.Quote("psql:<stdin>:1: ERROR:  must be superuser", regexp.MustCompile(`psql:<stdin>:(\d+):`))
	if strings.Contains(q, "md5d41d8") || !strings.Contains(q, "ALTER ROLE app") {
		t.Errorf("quote %q: want the statement without its password hash", q)
	}
}
