package dump

import (
	"strings"
	"testing"
)

func TestRedactTail(t *testing.T) {
	tests := []struct{ in, want string }{
		{`ERROR:  duplicate key value violates unique constraint "users_email_key"` + "\n" + `DETAIL:  Key (email)=(alice@example.com) already exists.`,
			`ERROR:  duplicate key value violates unique constraint "…"` + "\n" + `DETAIL:  Key (email)=(…) already exists.`},
		{`ERROR 1062 (23000) at line 42: Duplicate entry 'alice@example.com' for key 'email'`,
			`ERROR 1062 (23000) at line 42: Duplicate entry '…' for key '…'`},
		{`ERROR 1045 (28000): Access denied for user 'root'@'10.0.0.5' (using password: YES)`,
			`ERROR 1045 (28000): Access denied for user '…'@'…' (using password: YES)`},
		{`connection to server failed: host=db password=hunter2 dbname=x`, `connection to server failed: host=db password=… dbname=x`},
		{`invalid option PGPASSWORD: pwd = s3cr3t`, `invalid option PGPASSWORD: pwd = …`},
		{`DETAIL:  Failing row contains (1, secret data, 2026-01-01).`, `DETAIL:  Failing row contains (…).`},
		{`ERROR:  invalid input syntax for type integer: "it's 42"`, `ERROR:  invalid input syntax for type integer: "…"`},
		{`value 'O''Brien' rejected`, `value '…' rejected`},
		{"unterminated 'quote runs on\nnext line 'x'", "unterminated '…\nnext line '…'"},
		{`pg_dump: error: query failed: server closed the connection unexpectedly`, `pg_dump: error: query failed: server closed the connection unexpectedly`},
	}
	for _, tt := range tests {
		if got := RedactTail(tt.in); got != tt.want {
			t.Errorf("RedactTail(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
		for _, secret := range []string{"alice@example.com", "hunter2", "s3cr3t", "secret data", "O''Brien", "10.0.0.5"} {
			if strings.Contains(tt.in, secret) && strings.Contains(RedactTail(tt.in), secret) {
				t.Errorf("RedactTail(%q) keeps %q", tt.in, secret)
			}
		}
	}
}
