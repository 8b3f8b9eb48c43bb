package dump

import (
	"regexp"
	"strings"
)

var (
	// secretKey matches "password=…" and its kin, in connection strings
	// and option dumps, up to the next space or quote.
	secretKey = regexp.MustCompile(`(?i)\b(password|passwd|pwd|passfile|sslpassword|sslkey|secret|token|access_?key|secret_?key)(\s*=\s*)[^\s'"]+`)
	// rowValues matches PostgreSQL's "Key (id)=(42)" and "Failing row
	// contains (…)": a row's values.
	rowValues = regexp.MustCompile(`\)=\([^\n]*?\)( |\.|$)|(?i)(row contains )\([^\n]*\)`)
)

// RedactTail removes from a database tool's error output what could be a
// row's data or a credential before it goes into a session's status,
// events and output.json, which more people read than the database: the
// inside of every single- or double-quoted string (values, and also names,
// since a name can be the value the user looked for), the values of a
// PostgreSQL key or failing row, and whatever follows a password=-like
// key. The words of the message stay, so the cause can still be read.
func RedactTail(s string) string {
	s = secretKey.ReplaceAllString(s, "$1$2…")
	s = rowValues.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, ")=(") {
			end := m[strings.LastIndexByte(m, ')')+1:]
			return ")=(…)" + end
		}
		return m[:strings.IndexByte(m, '(')] + "(…)"
	})
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\'' && c != '"' {
			b.WriteByte(c)
			continue
		}
		// The closing quote on the same line; a doubled quote is one
		// inside the string. Without one, the rest of the line goes.
		j := i + 1
		for ; j < len(s) && s[j] != '\n'; j++ {
			if s[j] == c {
				if j+1 < len(s) && s[j+1] == c {
					j++
					continue
				}
				break
			}
		}
		b.WriteByte(c)
		b.WriteString("…")
		if j < len(s) && s[j] == c {
			b.WriteByte(c)
			i = j
		} else {
			i = j - 1
		}
	}
	return b.String()
}
