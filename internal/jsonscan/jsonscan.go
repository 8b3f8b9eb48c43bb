// Package jsonscan reads JSON values in place: the members of an object
// and the elements of an array as slices of the input, in one pass and
// without copying or decoding what the caller does not ask for. It is for
// large inputs of which a caller needs a few fields (a document's id
// beside its source, a directory's entry names beside their metadata),
// where encoding/json would decode or at least validate every value.
// Values are checked for their shape (balanced brackets, terminated
// strings), not for being valid JSON in every detail.
package jsonscan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Members calls fn with each member of the JSON object b: its name as
// written (escapes left as they are) and its value's bytes, in one pass
// and without copying.
func Members(b []byte, fn func(key, val []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return errors.New("not a JSON object")
	}
	i++
	for {
		i = skipSpace(b, i)
		if i < len(b) && b[i] == '}' {
			return nil
		}
		if i >= len(b) || b[i] != '"' {
			return errors.New("expected a member name")
		}
		kEnd, err := skipString(b, i)
		if err != nil {
			return err
		}
		key := b[i+1 : kEnd-1]
		i = skipSpace(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return fmt.Errorf("expected ':' after %q", key)
		}
		i = skipSpace(b, i+1)
		vEnd, err := SkipValue(b, i)
		if err != nil {
			return fmt.Errorf("member %q: %w", key, err)
		}
		if err := fn(key, b[i:vEnd]); err != nil {
			return fmt.Errorf("member %q: %w", key, err)
		}
		i = skipSpace(b, vEnd)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == '}' {
			return nil
		}
		return errors.New("expected ',' or '}'")
	}
}

// Elements calls fn with each element of the JSON array b.
func Elements(b []byte, fn func(val []byte) error) error {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '[' {
		return errors.New("not a JSON array")
	}
	i++
	for {
		i = skipSpace(b, i)
		if i < len(b) && b[i] == ']' {
			return nil
		}
		end, err := SkipValue(b, i)
		if err != nil {
			return err
		}
		if err := fn(b[i:end]); err != nil {
			return err
		}
		i = skipSpace(b, end)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		if i < len(b) && b[i] == ']' {
			return nil
		}
		return errors.New("expected ',' or ']'")
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i]. It
// jumps from quote to quote (bytes.IndexByte), since the text of
// documents is most of their bytes; a quote is the string's end when an
// even number of backslashes precede it.
func skipString(b []byte, i int) (int, error) {
	j := i + 1
	// Member names and most ids are short: look at their bytes here
	// before paying for a call that pays off on long text.
	for end := min(j+16, len(b)); j < end; j++ {
		switch b[j] {
		case '"':
			return j + 1, nil
		case '\\':
			goto long
		}
	}
long:
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, errors.New("unterminated string")
		}
		j += k
		n := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return j + 1, nil
		}
		j++
	}
}

// SkipValue returns the index after the value that starts at b[i].
func SkipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("missing value")
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		var closers [32]byte
		open := closers[:0] // the closing brackets expected, innermost last
		for j := i; j < len(b); j++ {
			switch c := b[j]; c {
			case '"':
				end, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{':
				open = append(open, '}')
			case '[':
				open = append(open, ']')
			case '}', ']':
				if len(open) == 0 || open[len(open)-1] != c {
					return 0, errors.New("unbalanced brackets")
				}
				open = open[:len(open)-1]
				if len(open) == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, errors.New("unbalanced brackets")
	}
	j := i
	for j < len(b) && !bytes.ContainsRune([]byte(",}] \t\r\n"), rune(b[j])) {
		j++
	}
	if j == i {
		return 0, fmt.Errorf("unexpected %q", b[i])
	}
	return j, nil
}

// String decodes a JSON string (or null).
func String(v []byte) (string, error) {
	if string(v) == "null" {
		return "", nil
	}
	if len(v) < 2 || v[0] != '"' {
		return "", errors.New("not a string")
	}
	if bytes.IndexByte(v, '\\') < 0 {
		return string(v[1 : len(v)-1]), nil
	}
	var s string
	err := json.Unmarshal(v, &s)
	return s, err
}
