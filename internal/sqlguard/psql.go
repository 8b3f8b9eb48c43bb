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
	pgIdent
	pgDollar
	pgComment
)

// strMode is how psql reads the backslashes and quotes of a literal.
type strMode uint8

const (
	strPlain  strMode = iota // '…' with standard_conforming_strings on, U&'…'
	strEscape                // E'…', and '…' with standard_conforming_strings off
	strBits                  // B'…', X'…': the first quote ends it, '' included
	strEither                // '…' while the setting is unknown
)

// stdMode is what the guard knows of standard_conforming_strings.
type stdMode uint8

const (
	stdOn stdMode = iota
	stdOff
	stdUnknown
)

// Psql follows a PostgreSQL dump as psql reads it: SQL with its literals
// and comments, the statements psql sends, and the data of COPY … FROM
// stdin up to its "\." line. It accepts only the meta-commands pg_dump and
// pg_dumpall write: \connect to a plain database name (never a connection
// string naming a host, port or URI), \encoding, their
// \restrict/\unrestrict pair, and "\." ending COPY data. Where psql
// versions 9.6 to 18 read a line differently, or where the reading depends
// on a setting the guard cannot follow, the line is refused: pg_dump never
// writes such lines.
//
// psql reads backslashes in '…' by the server's standard_conforming_strings
// and multi-byte characters by the client encoding, both of which SQL can
// change. The guard follows the plain SET statements pg_dump writes and
// refuses other SQL that names these settings or calls set_config; a
// function the dump defines and then calls could still change them out
// of sight, and psql's own \restrict, which the caller turns on where
// psql has it, is the layer that holds then.
//
// NewPsql assumes every connection psql opens starts with
// standard_conforming_strings on and a client encoding a database can
// have: the caller sets them in the startup packet (PGOPTIONS,
// PGCLIENTENCODING), where no database or role setting overrides them.
//
// The zero value is not ready: use NewPsql.
type Psql struct {
	line     int
	state    pgState
	str      strMode
	depth    int    // nesting of /* */ comments
	tag      []byte // the $tag$ of a dollar-quoted literal
	std      stdMode
	encOK    bool   // the client encoding is known to be a server encoding
	next     pgNext // what psql takes up from the next line on
	inCopy   bool
	copyNext bool // COPY data starts at the next line
	paren    int  // psql's count of open parentheses
	body     pgBody
	st       pgStmt
}

// pgNext is a setting change psql applies from the next line on: it
// learns the server's settings after each statement, but reads the rest
// of the current line as it began it.
type pgNext struct {
	std    stdMode
	setStd bool
	encOK  bool
	setEnc bool
}

// pgBody is psql 14 and later's guess at a BEGIN ATOMIC body (psqlscan.l):
// in a statement whose first identifiers are CREATE [OR REPLACE] FUNCTION
// or PROCEDURE, BEGIN and CASE open and END closes, outside parentheses,
// and a ";" inside does not end the statement. Older psql ends the
// statement at that ";".
type pgBody struct {
	n     int     // identifiers in the statement
	first [4]byte // the initial of each of the first four, if a keyword it tracks
	depth int
}

// pgStmt is what the guard keeps of the statement being read, as psql 13
// and earlier end statements (at every ";" outside parentheses).
type pgStmt struct {
	empty     bool     // nothing but space and comments yet
	line, col int      // where its code starts
	first     [12]byte // its first identifier, in lower case
	firstLen  int
	hasFirst  bool
	literals  int   // literals, comments and psql variables in it
	mentions  uint8 // names of settings that change psql's reading, in its code
	inText    uint8 // the same, in its literals and quoted identifiers
	textStart int   // where the current literal's text began on this line
}

func (s *pgStmt) reset() { *s = pgStmt{empty: true} }

func (s *pgStmt) firstWord() string { return string(s.first[:s.firstLen]) }

// NewPsql returns a guard at the start of a dump.
func NewPsql() *Psql {
	p := &Psql{std: stdOn, encOK: true}
	p.st.reset()
	return p
}

// Line checks the next line of the dump (with or without its newline).
func (p *Psql) Line(line []byte) (Action, error) {
	p.line++
	if p.next.setStd {
		p.std = p.next.std
	}
	if p.next.setEnc {
		p.encOK = p.next.encOK
	}
	p.next = pgNext{}
	if p.inCopy {
		if l := trimEOL(line); len(l) == 2 && l[0] == '\\' && l[1] == '.' {
			p.inCopy = false
		}
		return Pass, nil
	}
	if !p.encOK {
		for _, c := range line {
			if c >= 0x80 {
				return Pass, p.refuse("non-ASCII text", "the client encoding is unknown here (after RESET, DISCARD or ROLLBACK), and in one a client can choose, such as SJIS, psql would read the bytes after it differently")
			}
		}
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

// Byte classes of SQL code.
const (
	clOther uint8 = iota
	clSpace
	clIdent // starts an identifier: a letter, "_" or a byte of a multi-byte character
	clDigit
	clDot
	clDollar
	clQuote
	clDQuote
	clDash
	clSlash
	clBackslash
	clSemi
	clLParen
	clRParen
	clColon
	clCR
)

var pgClass = func() (t [256]uint8) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = clIdent, clIdent
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = clIdent
	}
	t['_'] = clIdent
	for c := '0'; c <= '9'; c++ {
		t[c] = clDigit
	}
	// psql's white space; "\r" ends a -- comment and continues a literal
	// across "lines" within one of psql's input lines, so it is refused.
	t[' '], t['\t'], t['\n'], t['\f'] = clSpace, clSpace, clSpace, clSpace
	t['.'], t['$'], t['\''], t['"'] = clDot, clDollar, clQuote, clDQuote
	t['-'], t['/'], t['\\'], t[';'] = clDash, clSlash, clBackslash, clSemi
	t['('], t[')'], t[':'], t['\r'] = clLParen, clRParen, clColon, clCR
	return t
}()

// identCont marks the bytes that continue an identifier, "$" included.
var identCont = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = pgClass[c] == clIdent || pgClass[c] == clDigit || c == '$'
	}
	return t
}()

// sql scans a line of SQL.
func (p *Psql) sql(line []byte) (Action, error) {
	i := 0
	var err error
	for i < len(line) && err == nil {
		switch p.state {
		case pgString:
			i, err = p.inString(line, i)
		case pgIdent:
			j := bytes.IndexByte(line[i:], '"')
			if j < 0 {
				p.textSeen(line[p.st.textStart:])
				i = len(line)
				continue
			}
			i += j
			if i+1 < len(line) && line[i+1] == '"' {
				i += 2
				continue
			}
			p.textSeen(line[p.st.textStart:i])
			p.state = pgCode
			i++
		case pgDollar:
			j := bytes.Index(line[i:], p.tag)
			if j < 0 {
				p.textSeen(line[p.st.textStart:])
				i = len(line)
				continue
			}
			p.textSeen(line[p.st.textStart : i+j])
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
			var act Action
			var done bool
			i, act, done, err = p.code(line, i)
			if done {
				return act, err
			}
		}
	}
	if p.state != pgCode {
		p.st.textStart = 0 // a literal goes on at the next line's start
	}
	return Pass, err
}

// inString scans a literal from line[i].
func (p *Psql) inString(line []byte, i int) (int, error) {
	for {
		j := bytes.IndexAny(line[i:], `\'`)
		if j < 0 {
			p.textSeen(line[p.st.textStart:])
			return len(line), nil
		}
		i += j
		if line[i] == '\\' {
			switch p.str {
			case strEscape:
				i += 2 // the escaped byte
			case strEither:
				// With the setting off, psql takes a backslash as
				// escaping the next byte: an odd run of them before a
				// quote hides the quote, which with it on ends the
				// literal.
				k := i
				for k < len(line) && line[k] == '\\' {
					k++
				}
				if (k-i)%2 == 1 && k < len(line) && line[k] == '\'' {
					return i, p.refuse("string literal", "a backslash before a quote, which psql reads as ending the literal or not depending on standard_conforming_strings, unknown here (after RESET, DISCARD or ROLLBACK)")
				}
				i = k
			default:
				i++
			}
			if i >= len(line) {
				p.textSeen(line[p.st.textStart:])
				return len(line), nil
			}
			continue
		}
		if p.str != strBits && i+1 < len(line) && line[i+1] == '\'' {
			i += 2
			continue
		}
		p.textSeen(line[p.st.textStart:i])
		p.state = pgCode
		return i + 1, nil
	}
}

// textSeen notes the names a literal's text holds.
func (p *Psql) textSeen(text []byte) {
	if bytes.IndexByte(text, '_') >= 0 {
		p.st.inText |= mentions(text)
	}
}

// open starts a literal or a quoted identifier whose text begins at
// line[at].
func (p *Psql) open(s pgState, mode strMode, at int) int {
	p.state, p.str = s, mode
	if s != pgIdent {
		p.st.literals++
	}
	p.st.textStart = at
	return at
}

// plainMode is how psql reads a '…' literal now.
func (p *Psql) plainMode() strMode {
	switch p.std {
	case stdOn:
		return strPlain
	case stdOff:
		return strEscape
	}
	return strEither
}

// code reads the code at line[i]: one token, or a run of bytes that
// change nothing. done means the line is finished (a meta-command).
func (p *Psql) code(line []byte, i int) (next int, act Action, done bool, err error) {
	n := len(line)
	c := line[i]
	switch pgClass[c] {
	case clSpace:
		for i < n && pgClass[line[i]] == clSpace {
			i++
		}
		return i, Pass, false, nil
	case clOther:
		p.touch(i)
		for i < n && pgClass[line[i]] == clOther {
			i++
		}
		return i, Pass, false, nil
	case clIdent:
		p.touch(i)
		// A literal's prefix, at the start of a token (psqlscan.l's
		// xestart, xbstart, xhstart, xnstart, xusstart, xuistart).
		if i+1 < n && line[i+1] == '\'' {
			switch c | 0x20 {
			case 'e':
				return p.open(pgString, strEscape, i+2), Pass, false, nil
			case 'b', 'x':
				return p.open(pgString, strBits, i+2), Pass, false, nil
			case 'n':
				return p.open(pgString, p.plainMode(), i+2), Pass, false, nil
			}
		}
		if c|0x20 == 'u' && i+1 < n && line[i+1] == '&' {
			if i+2 < n && line[i+2] == '\'' {
				return p.open(pgString, strPlain, i+3), Pass, false, nil
			}
			if i+2 < n && line[i+2] == '"' {
				return p.open(pgIdent, 0, i+3), Pass, false, nil
			}
			return i + 1, Pass, false, nil // psql takes "u" alone, not as an identifier
		}
		j := i + 1
		for j < n && identCont[line[j]] {
			j++
		}
		p.word(line[i:j])
		return j, Pass, false, nil
	case clDigit:
		p.touch(i)
		return p.number(line, i)
	case clDot:
		p.touch(i)
		if i+1 < n && pgClass[line[i+1]] == clDigit {
			return p.number(line, i)
		}
		return i + 1, Pass, false, nil
	case clDollar:
		p.touch(i)
		if tag := dollarTag(line[i:]); tag != nil {
			p.tag = append(p.tag[:0], tag...)
			return p.open(pgDollar, 0, i+len(tag)), Pass, false, nil
		}
		if i+1 < n && pgClass[line[i+1]] == clDigit {
			// A parameter, $1.
			j := i + 1
			for j < n && pgClass[line[j]] == clDigit {
				j++
			}
			if j < n && pgClass[line[j]] == clIdent {
				return j, Pass, false, p.refuse("parameter", "a parameter run into a word, which psql before 15 reads as two tokens and later as one")
			}
			p.st.literals++
			return j, Pass, false, nil
		}
		return i + 1, Pass, false, nil
	case clQuote:
		p.touch(i)
		return p.open(pgString, p.plainMode(), i+1), Pass, false, nil
	case clDQuote:
		p.touch(i)
		return p.open(pgIdent, 0, i+1), Pass, false, nil
	case clDash:
		if i+1 < n && line[i+1] == '-' {
			// A comment to the end of psql's line, which a "\r" ends.
			if bytes.IndexByte(trimEOL(line[i:]), '\r') >= 0 {
				return n, Pass, false, p.refuse("carriage return", "psql ends a -- comment at a carriage return and reads what follows as code")
			}
			p.commented()
			return n, Pass, false, nil
		}
		p.touch(i)
		return i + 1, Pass, false, nil
	case clSlash:
		if i+1 < n && line[i+1] == '*' {
			p.commented()
			p.state, p.depth = pgComment, 1
			return i + 2, Pass, false, nil
		}
		p.touch(i)
		return i + 1, Pass, false, nil
	case clBackslash:
		act, err := p.meta(line, i)
		return n, act, true, err
	case clSemi:
		if p.paren > 0 {
			p.touch(i)
			return i + 1, Pass, false, nil
		}
		return i + 1, Pass, false, p.endStatement(line, i)
	case clLParen:
		p.touch(i)
		p.paren++
		return i + 1, Pass, false, nil
	case clRParen:
		p.touch(i)
		if p.paren > 0 {
			p.paren--
		}
		return i + 1, Pass, false, nil
	case clColon:
		p.touch(i)
		return p.colon(line, i)
	}
	// clCR
	return n, Pass, false, p.refuse("carriage return", "psql reads a carriage return as a line break, which can join a literal to the next one")
}

// number reads a number at line[i] as psql before 16 does, and refuses
// one run into a word: psql before 15 reads 1E'…' as 1 and an E'…'
// literal, later versions as one token then a '…' literal; 16 reads
// 0x1F and 1_000 as numbers, earlier versions as a number and a word.
func (p *Psql) number(line []byte, i int) (int, Action, bool, error) {
	n := len(line)
	j := i
	for j < n && pgClass[line[j]] == clDigit {
		j++
	}
	if j < n && line[j] == '.' && !(j+1 < n && line[j+1] == '.') {
		j++
		for j < n && pgClass[line[j]] == clDigit {
			j++
		}
	}
	if j < n && line[j]|0x20 == 'e' {
		k := j + 1
		if k < n && (line[k] == '+' || line[k] == '-') {
			k++
		}
		if k < n && pgClass[line[k]] == clDigit {
			for k < n && pgClass[line[k]] == clDigit {
				k++
			}
			j = k
		}
	}
	if j < n && (pgClass[line[j]] == clIdent || line[j] == '$') {
		return j, Pass, false, p.refuse("number", "a number run into a word or a quote, which psql versions split into tokens differently")
	}
	return j, Pass, false, nil
}

// psqlVarChar marks the bytes of a psql variable's name.
var psqlVarChar = func() (t [256]bool) {
	for c := 0; c < 256; c++ {
		t[c] = pgClass[c] == clIdent || pgClass[c] == clDigit
	}
	return t
}()

// colon reads a ":" at line[i]: a cast, or a psql variable. psql puts a
// variable's value in the line and reads it as SQL; its own variables
// (DBNAME, USER, …) are upper case, and \connect sets DBNAME to a
// database name that can hold quotes. The quoted forms :'x' and :"x" are
// escaped by psql.
func (p *Psql) colon(line []byte, i int) (int, Action, bool, error) {
	n := len(line)
	if i+1 >= n {
		return n, Pass, false, nil
	}
	c := line[i+1]
	switch {
	case c == ':':
		return i + 2, Pass, false, nil
	case c == '\'' || c == '"' || c == '{':
		j := i + 2
		if c == '{' {
			if j >= n || line[j] != '?' {
				return i + 1, Pass, false, nil
			}
			j++
		}
		k := j
		for k < n && psqlVarChar[line[k]] {
			k++
		}
		end := c
		if c == '{' {
			end = '}'
		}
		if k > j && k < n && line[k] == end {
			p.st.literals++
			return k + 1, Pass, false, nil
		}
		return i + 1, Pass, false, nil
	case psqlVarChar[c]:
		j := i + 1
		for j < n && psqlVarChar[line[j]] {
			j++
		}
		if c >= 'A' && c <= 'Z' {
			name := string(line[i:min(j, i+21)])
			return j, Pass, false, p.refuse(name, "psql would put its variable's value into the SQL unquoted, and read quotes in it")
		}
		p.st.literals++
		return j, Pass, false, nil
	}
	return i + 1, Pass, false, nil
}

// commented notes a comment, which counts only inside a statement.
func (p *Psql) commented() {
	if !p.st.empty {
		p.st.literals++
	}
}

// touch notes that the statement has code at line[i].
func (p *Psql) touch(i int) {
	if p.st.empty {
		p.st.empty = false
		p.st.line, p.st.col = p.line, i
	}
}

// word notes an identifier (a keyword or a name) of the statement.
func (p *Psql) word(w []byte) {
	if !p.st.hasFirst {
		p.st.hasFirst = true
		n := min(len(w), len(p.st.first))
		for k := 0; k < n; k++ {
			p.st.first[k] = lower(w[k])
		}
		p.st.firstLen = n
		if len(w) > n {
			p.st.firstLen = 0 // no statement begins with so long a word
		}
	}
	if bytes.IndexByte(w, '_') >= 0 {
		p.st.mentions |= mentions(w)
	}
	b := &p.body
	if b.n < len(b.first) {
		b.first[b.n] = routineWord(w)
	}
	b.n++
	if p.paren == 0 && b.first[0] == 'c' && (b.first[1] == 'f' || b.first[1] == 'p' ||
		(b.first[1] == 'o' && b.first[2] == 'r' && (b.first[3] == 'f' || b.first[3] == 'p'))) {
		switch {
		case equalFold(w, "begin"):
			b.depth++
		case equalFold(w, "case"):
			if b.depth >= 1 {
				b.depth++
			}
		case equalFold(w, "end"):
			if b.depth > 0 {
				b.depth--
			}
		}
	}
}

// routineWord is the initial psql keeps of the words that make a
// statement CREATE [OR REPLACE] FUNCTION or PROCEDURE, else 0.
func routineWord(w []byte) byte {
	for _, k := range []string{"create", "function", "procedure", "or", "replace"} {
		if equalFold(w, k) {
			return k[0]
		}
	}
	return 0
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		if lower(b[i]) != s[i] {
			return false
		}
	}
	return true
}

// Names a statement can hold that change how psql reads what follows.
const (
	mentionStd       uint8 = 1 << iota // standard_conforming_strings
	mentionEncoding                    // client_encoding
	mentionSetConfig                   // set_config
)

// mentions reports which of the names text holds as words.
func mentions(text []byte) uint8 {
	var m uint8
	for k := bytes.IndexByte(text, '_'); k >= 0; {
		for _, x := range []struct {
			before, after string
			bit           uint8
		}{
			{"set", "config", mentionSetConfig},
			{"client", "encoding", mentionEncoding},
			{"standard", "conforming_strings", mentionStd},
		} {
			b, a := k-len(x.before), k+1+len(x.after)
			if b >= 0 && a <= len(text) && equalFold(text[b:k], x.before) && equalFold(text[k+1:a], x.after) &&
				(b == 0 || !identCont[text[b-1]]) && (a == len(text) || !identCont[text[a]]) {
				m |= x.bit
			}
		}
		next := bytes.IndexByte(text[k+1:], '_')
		if next < 0 {
			break
		}
		k += 1 + next
	}
	return m
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

// serverEncodings are the encodings a database can have, as pg_dump
// names them. In the others a client can choose (SJIS, BIG5, GBK, …) a
// byte of a multi-byte character can be a backslash or a quote, which
// psql reads as part of the character: it would read the line
// differently from the guard.
var serverEncodings = func() map[string]bool {
	m := map[string]bool{}
	for _, e := range strings.Fields(`SQL_ASCII UTF8 MULE_INTERNAL EUC_JP EUC_CN EUC_KR EUC_TW EUC_JIS_2004
		LATIN1 LATIN2 LATIN3 LATIN4 LATIN5 LATIN6 LATIN7 LATIN8 LATIN9 LATIN10
		ISO_8859_5 ISO_8859_6 ISO_8859_7 ISO_8859_8 KOI8R KOI8U WIN866 WIN874
		WIN1250 WIN1251 WIN1252 WIN1253 WIN1254 WIN1255 WIN1256 WIN1257 WIN1258`) {
		m[encodingKey(e)] = true
	}
	return m
}()

// encodingKey is an encoding's name as PostgreSQL compares them: letters
// and digits, case aside.
func encodingKey(name string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return -1
	}, name)
}

// meta checks the meta-command at line[i].
func (p *Psql) meta(line []byte, i int) (Action, error) {
	cmd := commandName(line[i:])
	if i != 0 || !p.st.empty || p.body.depth > 0 {
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
		if !serverEncodings[encodingKey(string(m[1]))] {
			return Pass, p.refuse(cmd, "not an encoding a database can have, as pg_dump writes it")
		}
		p.encOK = true
		return Meta, nil
	case `\connect`, `\c`:
		ok := connectPlain().Match(l)
		if m := connectReuse().FindSubmatch(l); m != nil {
			if err := checkConnString(strings.ReplaceAll(string(m[1]), `""`, `"`)); err != "" {
				return Pass, p.refuse(cmd, err)
			}
			ok = true
		}
		if !ok {
			return Pass, p.refuse(cmd, "its arguments are not one database name (pg_dump's forms are \\connect NAME and \\connect -reuse-previous=on \"dbname='NAME'\")")
		}
		// A new session starts with the settings of the startup packet.
		p.std, p.encOK = stdOn, true
		return Meta, nil
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
	setName     = lazyRegexp(`(?i)^SET\s+(?:SESSION\s+|LOCAL\s+)?([a-z_][a-z0-9_$]*)(?:\s|=|$)`)
	setStdOn    = lazyRegexp(`(?i)^SET\s+(?:SESSION\s+)?standard_conforming_strings\s*(?:=|TO)\s*(?:on|'on'|true|'true')\s*$`)
	setStdOff   = lazyRegexp(`(?i)^SET\s+(?:SESSION\s+)?standard_conforming_strings\s*(?:=|TO)\s*(?:off|'off'|false|'false')\s*$`)
	setEncoding = lazyRegexp(`(?i)^SET\s+(?:SESSION\s+)?client_encoding\s*(?:=|TO)\s*'([A-Za-z0-9_-]{1,64})'\s*$`)
	resetName   = lazyRegexp(`(?i)^RESET\s+([a-z_][a-z0-9_$.]*)(?:\s+AUTHORIZATION)?\s*$`)
	discardPart = lazyRegexp(`(?i)^DISCARD\s+(?:PLANS|SEQUENCES|TEMP|TEMPORARY)\s*$`)
	copyStdin   = lazyRegexp(`^COPY [^\r\n]* FROM stdin$`)
	// pgDumpSetConfig is the one set_config pg_dump and pg_dumpall write.
	pgDumpSetConfig = "SELECT pg_catalog.set_config('search_path', '', false)"
	// runsNow are the first words of statements that call functions as
	// they run: a definition (CREATE VIEW … set_config(…)) does not, and
	// pg_dump writes those.
	runsNow = map[string]bool{"select": true, "with": true, "values": true, "call": true, "insert": true,
		"update": true, "delete": true, "merge": true, "execute": true, "table": true, "do": true,
		"explain": true, "prepare": true, "declare": true}
	// namesSettings are the statements that may name
	// standard_conforming_strings or client_encoding: SET is read
	// exactly; ALTER … SET changes a later session, whose startup
	// packet overrides it, or a function while it runs.
	namesSettings = map[string]bool{"set": true, "reset": true, "alter": true, "comment": true,
		"grant": true, "revoke": true, "security": true}
	// bodyUnsafe are statements psql 13 and earlier would send on their
	// own inside what psql 14 and later take for a BEGIN ATOMIC body, and
	// which change what the guard follows.
	bodyUnsafe = map[string]bool{"copy": true, "set": true, "reset": true, "discard": true,
		"rollback": true, "abort": true}
)

// endStatement sees a statement end at line[i], its ";" outside
// parentheses. COPY … FROM stdin starts COPY data at the next line, and a
// statement that changes standard_conforming_strings or the client
// encoding changes how psql reads the lines after it.
func (p *Psql) endStatement(line []byte, i int) error {
	defer p.st.reset()
	inBody := p.body.depth > 0
	if !inBody {
		p.body = pgBody{}
	}
	if p.st.empty {
		return nil
	}
	first := p.st.firstWord()
	if inBody && bodyUnsafe[first] {
		return p.refuse(strings.ToUpper(first), "inside what psql 14 and later read as a BEGIN ATOMIC body, where older psql ends statements differently")
	}
	// pg_dump writes the statements read here on one line.
	var text string
	if p.st.line == p.line {
		text = string(line[p.st.col:i])
	}
	switch first {
	case "copy":
		if text == "" || p.st.col != 0 || p.st.literals > 0 || len(trimEOL(line[i+1:])) > 0 || !copyStdin().MatchString(text) {
			return p.refuse("COPY", "not pg_dump's one-line COPY … FROM stdin; psql could start reading COPY data where the guard reads SQL")
		}
		p.copyNext = true
	case "set":
		if err := p.set(text); err != nil {
			return err
		}
	case "reset", "discard":
		if !harmlessReset(text) {
			p.nextStd(stdUnknown)
			p.nextEnc(false)
		}
	case "rollback", "abort":
		// What SET changed in the transaction is undone.
		p.nextStd(stdUnknown)
		p.nextEnc(false)
	}
	named := p.st.mentions
	if first != "insert" {
		// The rows of pg_dump --inserts are data; a function body,
		// a DO block or EXECUTE holds its SQL as text.
		named |= p.st.inText
	}
	if m := named & (mentionStd | mentionEncoding); m != 0 && !namesSettings[first] {
		name := "standard_conforming_strings"
		if m == mentionEncoding {
			name = "client_encoding"
		}
		return p.refuse(name, "SQL other than SET that names it: it could change how psql reads the rest of the dump out of the guard's sight")
	}
	if named&mentionSetConfig != 0 && runsNow[first] && text != pgDumpSetConfig {
		return p.refuse("set_config", "only pg_dump's SELECT pg_catalog.set_config('search_path', '', false) is accepted, since a setting changed out of sight could change how psql reads the rest of the dump")
	}
	return nil
}

// set follows a SET statement: psql reads by standard_conforming_strings
// and the client encoding, so only the plain forms pg_dump writes may
// change them.
func (p *Psql) set(text string) error {
	m := setName().FindStringSubmatch(text)
	if m == nil {
		return p.refuse("SET", "not one line naming a setting as a plain word, as pg_dump writes it")
	}
	switch strings.ToLower(m[1]) {
	case "standard_conforming_strings":
		switch {
		case setStdOn().MatchString(text):
			p.nextStd(stdOn)
		case setStdOff().MatchString(text):
			p.nextStd(stdOff)
		default:
			return p.refuse("SET standard_conforming_strings", "not the plain on or off pg_dump writes: it would change how psql reads the rest of the dump")
		}
	case "client_encoding":
		e := setEncoding().FindStringSubmatch(text)
		if e == nil {
			return p.refuse("SET client_encoding", "not the plain SET client_encoding = 'NAME' pg_dump writes")
		}
		if !serverEncodings[encodingKey(e[1])] {
			return p.refuse("SET client_encoding", "not an encoding a database can have, as pg_dump writes it")
		}
		p.nextEnc(true)
	case "names":
		return p.refuse("SET NAMES", "pg_dump sets the client encoding with SET client_encoding")
	}
	return nil
}

// harmlessReset reports whether a RESET or DISCARD statement leaves
// standard_conforming_strings and the client encoding as they are.
func harmlessReset(text string) bool {
	if discardPart().MatchString(text) {
		return true
	}
	m := resetName().FindStringSubmatch(text)
	if m == nil {
		return false
	}
	switch strings.ToLower(m[1]) {
	case "all", "standard_conforming_strings", "client_encoding":
		return false
	}
	return true
}

func (p *Psql) nextStd(m stdMode) { p.next.std, p.next.setStd = m, true }

func (p *Psql) nextEnc(ok bool) { p.next.encOK, p.next.setEnc = ok, true }

// lazyRegexp compiles expr the first time it is needed.
func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}
