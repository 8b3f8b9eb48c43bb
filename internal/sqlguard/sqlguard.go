// Package sqlguard reads a SQL dump line by line, as the database client
// that restores it will, and refuses the client-side commands a dump could
// use to reach beyond the database: psql meta-commands (\! runs a shell
// command, \o and \copy write files, \connect to a connection string sends
// the password to another host) and the mysql client's (system, source,
// tee, connect, …). A restore streams a snapshot, which anyone holding the
// bucket can write, into these clients, so what the dump tools never write
// is refused before the client sees it.
//
// The guards keep a few bytes of state between lines and never buffer the
// dump. They are pure: no I/O, no clock.
package sqlguard

import (
	"fmt"
	"strings"
)

// RefusedError is a dump line a guard refused. It names the line and the
// command, never the line's arguments (a \connect string can hold a
// password).
type RefusedError struct {
	Line    int    // 1-based line of the dump
	Command string // the client command, e.g. `\!` or `system`
	Reason  string
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("dump line %d: client command %s refused: %s; the restore was stopped before it reached the database client (a dump written by pg_dump or mysqldump never holds it: check who can write to the repository's bucket)", e.Line, e.Command, e.Reason)
}

// commandName is the name of the command starting at a backslash: the
// backslash and what follows up to a space or another backslash, at most
// 20 bytes, with anything unprintable shown as "?".
func commandName(rest []byte) string {
	var b strings.Builder
	b.WriteByte('\\')
	for i := 1; i < len(rest) && i <= 20; i++ {
		c := rest[i]
		if c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\\' {
			if i == 1 && c == '\\' {
				b.WriteByte(c)
			}
			break
		}
		if c < 0x21 || c > 0x7e {
			c = '?'
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isIdent(c byte) bool {
	return c == '_' || c >= 0x80 || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func trimEOL(line []byte) []byte {
	for len(line) > 0 && (line[len(line)-1] == '\n' || line[len(line)-1] == '\r') {
		line = line[:len(line)-1]
	}
	return line
}
