package sqlguard

import (
	"bytes"
	"strings"
)

type myState uint8

const (
	myCode myState = iota
	mySingle
	myDouble
	myBacktick
	myComment
)

// mysqlCommands are the mysql and mariadb clients' long-form commands,
// which the client takes from the start of a statement. mysqldump writes
// only DELIMITER (around routines and triggers) and USE.
var mysqlCommands = map[string]bool{
	"?": true, "clear": true, "connect": true, "edit": true, "ego": true, "exit": true,
	"go": true, "help": true, "nopager": true, "notee": true, "nowarning": true, "pager": true,
	"print": true, "prompt": true, "quit": true, "rehash": true, "source": true, "status": true,
	"system": true, "tee": true, "charset": true, "warnings": true, "resetconnection": true,
	"query_attributes": true, "ssl_session_data_print": true, "sandbox": true,
}

// MySQL follows a mysqldump or mariadb-dump dump as the mysql client reads
// it: literals, comments (whose /*! … */ and /*M! … */ forms are code),
// and DELIMITER. It refuses client commands: a backslash command outside a
// literal or comment (\! runs a shell command, \. reads a file), and a
// long-form command at the start of a statement (system, source, tee,
// connect, pager, …), except DELIMITER and USE, which dumps hold, and
// MariaDB's "\-" that turns the client's sandbox on. The zero value is not
// ready: use NewMySQL.
//
// The client's own --binary-mode and --sandbox are the restore's first
// guard; this one names the line and stops the restore before the client
// reads it.
type MySQL struct {
	line      int
	state     myState
	exec      bool // inside an executable /*! … */ comment
	delimiter []byte
	empty     bool // nothing but space and comments since the last delimiter
}

// NewMySQL returns a guard at the start of a dump.
func NewMySQL() *MySQL {
	return &MySQL{delimiter: []byte(";"), empty: true}
}

func (m *MySQL) refuse(cmd, why string) error {
	return &RefusedError{Line: m.line, Command: cmd, Reason: why}
}

// Line checks the next line of the dump (with or without its newline).
func (m *MySQL) Line(line []byte) error {
	m.line++
	line = trimEOL(line)
	if m.state == myCode && m.empty {
		if err := m.statementStart(line); err != nil {
			return err
		}
		if word, arg := firstWord(line); word == "delimiter" {
			// DELIMITER takes the rest of the line's first word.
			if arg = bytes.TrimSpace(arg); len(arg) > 0 {
				if i := bytes.IndexAny(arg, " \t"); i >= 0 {
					arg = arg[:i]
				}
				m.delimiter = append(m.delimiter[:0], arg...)
			}
			return nil
		}
	}
	for i := 0; i < len(line); i++ {
		switch m.state {
		case mySingle, myDouble:
			quote := "\\'"
			if m.state == myDouble {
				quote = "\\\""
			}
			j := bytes.IndexAny(line[i:], quote)
			if j < 0 {
				i = len(line)
				continue
			}
			i += j
			switch {
			case line[i] == '\\':
				i++
			case i+1 < len(line) && line[i+1] == line[i]:
				i++
			default:
				m.state = myCode
			}
			continue
		case myBacktick:
			j := bytes.IndexByte(line[i:], '`')
			if j < 0 {
				i = len(line)
				continue
			}
			i += j
			if i+1 < len(line) && line[i+1] == '`' {
				i++
			} else {
				m.state = myCode
			}
			continue
		case myComment:
			j := bytes.Index(line[i:], []byte("*/"))
			if j < 0 {
				i = len(line)
				continue
			}
			i += j + 1
			m.state = myCode
			continue
		}
		// Skip a run of ordinary code.
		j := i
		for j < len(line) && !mySpecial[line[j]] && line[j] != m.delimiter[0] {
			if m.empty && !isSpace(line[j]) {
				m.empty = false
			}
			j++
		}
		if j == len(line) {
			break
		}
		i = j
		c := line[i]
		switch {
		case c == '#' || (c == '-' && i+1 < len(line) && line[i+1] == '-' && (i+2 == len(line) || isSpace(line[i+2]))):
			i = len(line)
			continue
		case c == '/' && i+1 < len(line) && line[i+1] == '*':
			if i+2 < len(line) && (line[i+2] == '!' || (line[i+2] == 'M' && i+3 < len(line) && line[i+3] == '!')) {
				m.exec = true
				i += 2
				continue
			}
			m.state = myComment
			i++
			continue
		case c == '*' && m.exec && i+1 < len(line) && line[i+1] == '/':
			m.exec = false
			i++
			continue
		case c == '\'':
			m.state = mySingle
		case c == '"':
			m.state = myDouble
		case c == '`':
			m.state = myBacktick
		case c == '\\':
			// "\-" only turns the client's sandbox on (mariadb-dump
			// writes it first); any other is a client command.
			if i+1 < len(line) && line[i+1] == '-' {
				i++
				continue
			}
			return m.refuse(commandName(line[i:]), "mysqldump writes no client command but DELIMITER and USE")
		case c == m.delimiter[0] && bytes.HasPrefix(line[i:], m.delimiter):
			i += len(m.delimiter) - 1
			m.empty = true
			// The client reads a command again after a delimiter.
			if err := m.statementStart(line[i+1:]); err != nil {
				return err
			}
			continue
		}
		if !isSpace(c) {
			m.empty = false
		}
	}
	return nil
}

// mySpecial marks the bytes that can change the client's reading of SQL.
var mySpecial = func() (t [256]bool) {
	for _, c := range []byte("#-/*'\"`\\") {
		t[c] = true
	}
	return t
}()

// statementStart refuses a long-form client command at the start of a
// statement.
func (m *MySQL) statementStart(rest []byte) error {
	word, _ := firstWord(rest)
	if mysqlCommands[word] {
		return m.refuse(word, "mysqldump writes no client command but DELIMITER and USE")
	}
	return nil
}

// firstWord returns the lowercased first word of b (up to a space or ";")
// and what follows it.
func firstWord(b []byte) (string, []byte) {
	b = bytes.TrimLeft(b, " \t")
	i := 0
	for i < len(b) && !isSpace(b[i]) && b[i] != ';' && b[i] != '\\' {
		i++
	}
	return strings.ToLower(string(b[:i])), b[i:]
}
