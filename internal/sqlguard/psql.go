package sqlguard

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
)

// Action is what a caller does with a line a guard accepted.
type Action int

const (
	// Pass: SQL or COPY data; hand the line to the client as it is.
	Pass Action = iota
	// Meta: a meta-command pg_dump writes itself (\connect to a database
	// name, \encoding); it must run, so a caller that keeps psql
	// restricted (Restrict) lifts the restriction around it.
	Meta
	// Restrict: pg_dump's own \restrict or \unrestrict line. A caller
	// that restricts psql with a key of its own drops it (pg_dump's key
	// is in the dump, so anyone who can write the dump knows it).
	Restrict
)

type pgState uint8

const (
	pgCode pgState = iota
	pgString
	pgEString
	pgIdent
	pgDollar
	pgComment
)

// Psql follows a PostgreSQL dump as psql reads it: SQL with its literals
// and comments, and the data of COPY … FROM stdin up to its "\." line.
// It accepts only the meta-commands pg_dump and pg_dumpall write: \connect
// to a plain database name (never a connection string naming a host, port
// or URI), \encoding, their \restrict/\unrestrict pair, and "\." ending
// COPY data. The zero value is not ready: use NewPsql.
type Psql struct {
	line     int
	state    pgState
	depth    int    // nesting of /* */ comments
	tag      []byte // the $tag$ of a dollar-quoted literal
	std      bool   // standard_conforming_strings, as pg_dump sets it
	inCopy   bool
	copyNext bool // COPY data starts at the next line
	st       pgStmt
}

// pgStmt is what the guard keeps of the statement being read.
type pgStmt struct {
	empty     bool // nothing but space and comments yet
	line, col int  // where its code starts
	first     [8]byte
	firstLen  int
	std       bool // it names standard_conforming_strings
	setConfig bool // it calls set_config
}

func (s *pgStmt) reset() { *s = pgStmt{empty: true} }

// NewPsql returns a guard at the start of a dump.
func NewPsql() *Psql {
	p := &Psql{std: true}
	p.st.reset()
	return p
}

// Line checks the next line of the dump (with or without its newline).
func (p *Psql) Line(line []byte) (Action, error) {
	p.line++
	if p.inCopy {
		if l := trimEOL(line); len(l) == 2 && l[0] == '\\' && l[1] == '.' {
			p.inCopy = false
		}
		return Pass, nil
	}
	act, err := p.sql(line)
	if p.copyNext {
		p.copyNext, p.inCopy = false, true
	}
	return act, err
}

func (p *Psql) refuse(cmd, why string) error {
	return &RefusedError{Line: p.line, Command: cmd, Reason: why}
}

// pgSpecial marks the bytes that can change psql's reading of SQL; runs
// of other bytes are skipped at once.
var pgSpecial = func() (t [256]bool) {
	for _, c := range []byte("-/'\"$\\;") {
		t[c] = true
	}
	return t
}()

// sql scans a line of SQL.
func (p *Psql) sql(line []byte) (Action, error) {
	i := 0
	for i < len(line) {
		switch p.state {
		case pgString, pgEString:
			j := bytes.IndexAny(line[i:], `\'`)
			if j < 0 {
				i = len(line)
				continue
			}
			i += j
			if line[i] == '\\' {
				if p.state == pgEString || !p.std {
					i++ // the escaped byte
				}
				i++
				continue
			}
			if i+1 < len(line) && line[i+1] == '\'' {
				i += 2
				continue
			}
			p.state = pgCode
			i++
		case pgIdent:
			j := bytes.IndexByte(line[i:], '"')
			if j < 0 {
				i = len(line)
				continue
			}
			i += j
			if i+1 < len(line) && line[i+1] == '"' {
				i += 2
				continue
			}
			p.state = pgCode
			i++
		case pgDollar:
			j := bytes.Index(line[i:], p.tag)
			if j < 0 {
				i = len(line)
				continue
			}
			i += j + len(p.tag)
			p.state = pgCode
		case pgComment:
			j := bytes.IndexAny(line[i:], "*/")
			if j < 0 {
				i = len(line)
				continue
			}
			i += j
			switch {
			case line[i] == '*' && i+1 < len(line) && line[i+1] == '/':
				i += 2
				if p.depth--; p.depth == 0 {
					p.state = pgCode
				}
			case line[i] == '/' && i+1 < len(line) && line[i+1] == '*':
				i += 2
				p.depth++
			default:
				i++
			}
		default:
			// Skip a run of ordinary code, noting the statement's start
			// and the names that change how psql reads strings.
			j := i
			for j < len(line) && !pgSpecial[line[j]] {
				j++
			}
			if j > i {
				p.code(line, i, j)
				i = j
				continue
			}
			c := line[i]
			switch {
			case c == '-' && i+1 < len(line) && line[i+1] == '-':
				i = len(line) // a comment to the end of the line
				continue
			case c == '/' && i+1 < len(line) && line[i+1] == '*':
				p.state, p.depth = pgComment, 1
				i += 2
				continue
			case c == '\'':
				p.code(line, i, i+1)
				p.state = pgString
				// E'…' takes backslash escapes whatever
				// standard_conforming_strings says.
				if i >= 1 && (line[i-1] == 'e' || line[i-1] == 'E') && (i < 2 || !isIdent(line[i-2])) {
					p.state = pgEString
				}
			case c == '"':
				p.code(line, i, i+1)
				p.state = pgIdent
			case c == '$' && (i == 0 || (!isIdent(line[i-1]) && line[i-1] != '$')):
				p.code(line, i, i+1)
				if tag := dollarTag(line[i:]); tag != nil {
					p.tag = append(p.tag[:0], tag...)
					p.state = pgDollar
					i += len(tag)
					continue
				}
			case c == '\\':
				return p.meta(line, i)
			case c == ';':
				if err := p.endStatement(line, i); err != nil {
					return Pass, err
				}
			default:
				p.code(line, i, i+1)
			}
			i++
		}
	}
	return Pass, nil
}

// code notes the code bytes line[i:j] of the current statement.
func (p *Psql) code(line []byte, i, j int) {
	if p.st.empty {
		k := i
		for k < j && isSpace(line[k]) {
			k++
		}
		if k == j {
			return
		}
		p.st.empty = false
		p.st.line, p.st.col = p.line, k
		n := 0
		for n < len(p.st.first) && k+n < len(line) && isIdent(line[k+n]) {
			p.st.first[n] = lower(line[k+n])
			n++
		}
		p.st.firstLen = n
	}
	// Both names hold "_c"; look closer only then.
	run := line[i:j]
	if bytes.Contains(run, []byte("_c")) || bytes.Contains(run, []byte("_C")) {
		low := bytes.ToLower(run)
		if bytes.Contains(low, []byte("standard_conforming_strings")) {
			p.st.std = true
		}
		if bytes.Contains(low, []byte("set_config")) {
			p.st.setConfig = true
		}
	}
}

// dollarTag returns the $tag$ (or $$) starting b, or nil.
func dollarTag(b []byte) []byte {
	for i := 1; i < len(b); i++ {
		c := b[i]
		if c == '$' {
			return b[:i+1]
		}
		if !isIdent(c) || (i == 1 && c >= '0' && c <= '9') {
			return nil
		}
	}
	return nil
}

// The patterns are compiled on first use: their counted repetitions make
// programs of thousands of instructions, and compiling them at start-up
// cost every command of the binary, most of which never restore a
// PostgreSQL dump.
var (
	restrictLine = lazyRegexp(`^\\(?:un)?restrict [A-Za-z0-9]{1,256}[ \t]*$`)
	encodingLine = lazyRegexp(`^\\encoding ([A-Za-z0-9_-]{1,64})[ \t]*$`)
	connectPlain = lazyRegexp(`^\\connect (?:[A-Za-z0-9_.]{1,128}|"[A-Za-z0-9_.]{1,128}")[ \t]*$`)
	connectReuse = lazyRegexp(`^\\connect -reuse-previous=on "((?:[^"]|""){1,512})"[ \t]*$`)
)

// clientOnlyEncodings are encodings in which a byte of a multi-byte
// character can be a backslash or a quote: psql would read the line
// differently from the guard. No database has one, so pg_dump never
// writes \encoding with them.
var clientOnlyEncodings = map[string]bool{
	"SJIS": true, "SHIFTJIS": true, "SHIFTJIS2004": true, "BIG5": true, "GBK": true,
	"UHC": true, "GB18030": true, "JOHAB": true, "WIN932": true, "WIN936": true, "WIN949": true, "WIN950": true,
}

// meta checks the meta-command at line[i].
func (p *Psql) meta(line []byte, i int) (Action, error) {
	cmd := commandName(line[i:])
	if i != 0 || !p.st.empty {
		return Pass, p.refuse(cmd, "a meta-command inside a statement")
	}
	l := trimEOL(line)
	switch cmd {
	case `\restrict`, `\unrestrict`:
		if restrictLine().Match(l) {
			return Restrict, nil
		}
		return Pass, p.refuse(cmd, "not followed by one alphanumeric key as pg_dump writes it")
	case `\encoding`:
		m := encodingLine().FindSubmatch(l)
		if m == nil {
			return Pass, p.refuse(cmd, "not followed by one encoding name")
		}
		if clientOnlyEncodings[strings.ToUpper(strings.NewReplacer("_", "", "-", "").Replace(string(m[1])))] {
			return Pass, p.refuse(cmd, "a client-only encoding, which no database has")
		}
		return Meta, nil
	case `\connect`, `\c`:
		if connectPlain().Match(l) {
			return Meta, nil
		}
		if m := connectReuse().FindSubmatch(l); m != nil {
			if err := checkConnString(strings.ReplaceAll(string(m[1]), `""`, `"`)); err != "" {
				return Pass, p.refuse(cmd, err)
			}
			return Meta, nil
		}
		return Pass, p.refuse(cmd, "its arguments are not one database name (pg_dump's forms are \\connect NAME and \\connect -reuse-previous=on \"dbname='NAME'\")")
	}
	return Pass, p.refuse(cmd, "pg_dump writes only \\connect, \\encoding, \\restrict and \\unrestrict")
}

// checkConnString accepts the one connection string pg_dump writes for a
// database whose name needs quoting, dbname=VALUE, and returns why not
// otherwise. libpq would expand a dbname that holds "=" or starts with a
// URI scheme into a connection string of its own.
func checkConnString(s string) string {
	const key = "dbname="
	if !strings.HasPrefix(s, key) {
		return "a connection string with keys other than dbname (host, hostaddr, port, … could send the password elsewhere)"
	}
	v := s[len(key):]
	var name strings.Builder
	if strings.HasPrefix(v, "'") {
		i := 1
		for ; i < len(v); i++ {
			if v[i] == '\\' && i+1 < len(v) {
				i++
				name.WriteByte(v[i])
				continue
			}
			if v[i] == '\'' {
				break
			}
			name.WriteByte(v[i])
		}
		if i >= len(v) {
			return "an unterminated dbname value"
		}
		v = v[i+1:]
	} else {
		j := strings.IndexAny(v, " \t\n\r'\\")
		if j < 0 {
			j = len(v)
		}
		name.WriteString(v[:j])
		v = v[j:]
	}
	if strings.TrimSpace(v) != "" {
		return "a connection string with keys other than dbname (host, hostaddr, port, … could send the password elsewhere)"
	}
	n := name.String()
	if n == "" || strings.Contains(n, "=") || strings.HasPrefix(n, "postgres://") || strings.HasPrefix(n, "postgresql://") {
		return "a dbname that libpq would read as a connection string"
	}
	return ""
}

var (
	setStdOn  = lazyRegexp(`(?i)^\s*SET\s+(?:SESSION\s+)?standard_conforming_strings\s*(?:=|TO)\s*(?:on|'on'|true|'true')\s*$`)
	setStdOff = lazyRegexp(`(?i)^\s*SET\s+(?:SESSION\s+)?standard_conforming_strings\s*(?:=|TO)\s*(?:off|'off'|false|'false')\s*$`)
	setConfig = lazyRegexp(`^\s*SELECT pg_catalog\.set_config\('[a-z_]+', '[^'\\]*', false\)\s*$`)
	fromStdin = []byte("from stdin")
	// runsNow are the first words of statements that call functions as
	// they run.
	runsNow = map[string]bool{"select": true, "with": true, "values": true, "call": true, "insert": true,
		"update": true, "delete": true, "merge": true, "execute": true, "table": true}
)

// endStatement sees a statement end at line[i], its ";": COPY … FROM
// stdin starts COPY data at the next line, and a statement that changes
// standard_conforming_strings changes how psql reads the strings after
// it.
func (p *Psql) endStatement(line []byte, i int) error {
	defer p.st.reset()
	if p.st.empty {
		return nil
	}
	if string(p.st.first[:p.st.firstLen]) == "copy" {
		// pg_dump ends the line with "FROM stdin;". What precedes the
		// ";" is code: a literal or comment would end in a quote or "*/".
		k := i
		for k > 0 && isSpace(line[k-1]) {
			k--
		}
		if k >= len(fromStdin)+1 && isSpace(line[k-len(fromStdin)-1]) && bytes.EqualFold(line[k-len(fromStdin):k], fromStdin) {
			p.copyNext = true
		}
	}
	first := string(p.st.first[:p.st.firstLen])
	// Only a statement that runs now can change a setting now: CREATE
	// VIEW or FUNCTION … set_config(…) is a definition, and pg_dump
	// writes those.
	p.st.std = p.st.std && (first == "set" || first == "reset")
	p.st.setConfig = p.st.setConfig && runsNow[first]
	if !p.st.std && !p.st.setConfig {
		return nil
	}
	// pg_dump writes these statements on one line.
	var text string
	if p.st.line == p.line {
		text = string(line[p.st.col:i])
	}
	// psql learns standard_conforming_strings from the server; follow
	// the plain SET pg_dump writes, and refuse anything else that would
	// change it out of sight (set_config with a computed name).
	switch {
	case p.st.std && setStdOn().MatchString(text):
		p.std = true
	case p.st.std && setStdOff().MatchString(text):
		p.std = false
	case p.st.std:
		return p.refuse("SET standard_conforming_strings", "not the plain on or off pg_dump writes: it would change how psql reads the rest of the dump")
	case !setConfig().MatchString(text):
		return p.refuse("set_config", "only pg_dump's SELECT pg_catalog.set_config('name', 'value', false) is accepted, since a setting changed out of sight could change how psql reads the rest of the dump")
	}
	return nil
}

// lazyRegexp compiles expr the first time it is needed.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
