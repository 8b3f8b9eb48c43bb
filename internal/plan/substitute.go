// Package plan turns Stash's declarative objects into what a runtime runs:
// it substitutes ${VARIABLES} in Tasks and Functions and resolves a Task
// into a batch/v1 Job, exactly as Stash's resolver builds it. It is pure:
// no I/O, no clock, no cluster.
package plan

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// UnresolvedError reports variables that have no value and no default.
type UnresolvedError struct {
	Names []string
}

func (e *UnresolvedError) Error() string {
	return fmt.Sprintf("variable %s has no value and no default: pass it in task.params or give a default with ${%s:=value}",
		strings.Join(quoteAll(e.Names), ", "), e.Names[0])
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = "${" + v + "}"
	}
	return out
}

// RequiredError reports a ${NAME:?message} whose NAME is unset or empty;
// substitution stops at the first.
type RequiredError struct {
	Name, Message string
}

func (e *RequiredError) Error() string { return fmt.Sprintf("variable ${%s}: %s", e.Name, e.Message) }

// SyntaxError reports a malformed placeholder.
type SyntaxError struct {
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("bad placeholder at offset %d: %s", e.Offset, e.Msg)
}

// Substitute replaces ${...} placeholders in s with values from vars, with
// the forms Stash's envsubst accepts:
//
//	${VAR}           the value; an error when VAR is unset
//	${VAR:=default}  the value, or default when VAR is unset or empty
//	${VAR:-default}  the same
//	${VAR=default}   the value, or default when VAR is unset
//	${VAR-default}   the same
//	${VAR:+alt}      alt when VAR is set and not empty, else empty
//	${VAR+alt}       alt when VAR is set, else empty
//	${VAR:?message}  the value; an error with message when unset or empty
//
// Defaults may hold placeholders themselves. A bare $VAR (no braces) is
// left alone, so shell variables in commands survive, and "$${" writes a
// literal "${". Every unresolved variable is reported, not just the first.
func Substitute(s string, vars map[string]string) (string, error) {
	var missing []string
	out, _, err := substitute(s, 0, vars, &missing, false)
	if err != nil {
		return "", err
	}
	if len(missing) > 0 {
		return "", &UnresolvedError{Names: dedupe(missing)}
	}
	return out, nil
}

func dedupe(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// substitute scans s from i. Inside a default (nested) it stops at the
// closing brace of the enclosing placeholder and returns its index.
func substitute(s string, i int, vars map[string]string, missing *[]string, nested bool) (string, int, error) {
	var b strings.Builder
	for i < len(s) {
		c := s[i]
		switch {
		case c == '$' && strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case c == '$' && i+1 < len(s) && s[i+1] == '{':
			val, next, err := placeholder(s, i, vars, missing)
			if err != nil {
				return "", 0, err
			}
			b.WriteString(val)
			i = next
		case c == '}' && nested:
			return b.String(), i, nil
		default:
			b.WriteByte(c)
			i++
		}
	}
	if nested {
		return "", 0, &SyntaxError{Offset: len(s), Msg: "unterminated ${ (missing })"}
	}
	return b.String(), i, nil
}

func isNameByte(c byte, first bool) bool {
	return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (!first && c >= '0' && c <= '9')
}

// placeholder evaluates the ${...} starting at s[start] and returns the
// index after its closing brace.
func placeholder(s string, start int, vars map[string]string, missing *[]string) (string, int, error) {
	i := start + 2
	nameStart := i
	for i < len(s) && isNameByte(s[i], i == nameStart) {
		i++
	}
	name := s[nameStart:i]
	if name == "" {
		return "", 0, &SyntaxError{Offset: start, Msg: "expected a variable name after ${"}
	}
	if i >= len(s) {
		return "", 0, &SyntaxError{Offset: start, Msg: "unterminated ${" + name}
	}
	val, set := vars[name]
	if s[i] == '}' {
		if !set {
			*missing = append(*missing, name)
		}
		return val, i + 1, nil
	}
	colon := false
	if s[i] == ':' {
		colon = true
		i++
		if i >= len(s) {
			return "", 0, &SyntaxError{Offset: start, Msg: "unterminated ${" + name + ":"}
		}
	}
	op := s[i]
	if op != '=' && op != '-' && op != '+' && op != '?' {
		return "", 0, &SyntaxError{Offset: i, Msg: fmt.Sprintf("unknown operator %q in ${%s...}: use :=, :-, =, -, :+, + or :?", op, name)}
	}
	// The word is evaluated lazily in spirit, but missing variables inside
	// an unused default must not fail, so collect them separately.
	var wordMissing []string
	word, end, err := substitute(s, i+1, vars, &wordMissing, true)
	if err != nil {
		return "", 0, err
	}
	empty := !set || (colon && val == "")
	use := func() (string, int, error) {
		*missing = append(*missing, wordMissing...)
		return word, end + 1, nil
	}
	switch op {
	case '=', '-':
		if empty {
			return use()
		}
		return val, end + 1, nil
	case '+':
		if empty {
			return "", end + 1, nil
		}
		return use()
	default: // '?'
		if empty {
			msg := word
			if msg == "" {
				msg = "required"
			}
			return "", 0, &RequiredError{Name: name, Message: msg}
		}
		return val, end + 1, nil
	}
}

// SubstituteAll applies Substitute to every string in v, a tree of maps,
// slices and strings as encoding/json produces, and returns the new tree.
func SubstituteAll(v any, vars map[string]string) (any, error) {
	var missing []string
	out, err := walk(v, vars, &missing)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		return nil, &UnresolvedError{Names: dedupe(missing)}
	}
	return out, nil
}

func walk(v any, vars map[string]string, missing *[]string) (any, error) {
	switch t := v.(type) {
	case string:
		s, err := Substitute(t, vars)
		var ue *UnresolvedError
		if errors.As(err, &ue) {
			*missing = append(*missing, ue.Names...)
			return t, nil
		}
		return s, err
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			r, err := walk(e, vars, missing)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			r, err := walk(e, vars, missing)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}
