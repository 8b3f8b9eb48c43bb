package elasticsearch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// docLine is what a restore takes from one line of a data file.
type docLine struct {
	Type, ID, Routing string
	Source            []byte // a slice of the line
}

// parseLine reads one line of a data file: a JSON object whose members
// _type, _id, _routing (or routing, or fields._routing) and _source a
// restore needs, in any order, with anything else beside them. It reads
// the line once and copies nothing: the source is checked only for its
// shape (an object, balanced), since the server parses it anyway and
// refuses a document that is not JSON, naming it. Decoding each line with
// encoding/json was most of a restore's own CPU.
func parseLine(line []byte) (docLine, error) {
	var d docLine
	i := skipSpace(line, 0)
	if i >= len(line) || line[i] != '{' {
		return d, errors.New("not a JSON object")
	}
	i++
	for {
		i = skipSpace(line, i)
		if i < len(line) && line[i] == '}' {
			break
		}
		if i >= len(line) || line[i] != '"' {
			return d, errors.New("expected a member name")
		}
		kEnd, err := skipString(line, i)
		if err != nil {
			return d, err
		}
		key := line[i+1 : kEnd-1]
		i = skipSpace(line, kEnd)
		if i >= len(line) || line[i] != ':' {
			return d, fmt.Errorf("expected ':' after %q", key)
		}
		i = skipSpace(line, i+1)
		vEnd, err := skipValue(line, i)
		if err != nil {
			return d, fmt.Errorf("member %q: %w", key, err)
		}
		val := line[i:vEnd]
		switch string(key) {
		case "_type":
			d.Type, err = stringValue(val)
		case "_id":
			d.ID, err = idValue(val)
		case "_routing", "routing":
			d.Routing, err = stringValue(val)
		case "fields":
			if d.Routing == "" {
				var f struct {
					Routing string `json:"_routing"`
				}
				if json.Unmarshal(val, &f) == nil {
					d.Routing = f.Routing
				}
			}
		case "_source":
			if len(val) == 0 || val[0] != '{' {
				return d, errors.New("_source is not an object")
			}
			d.Source = val
		}
		if err != nil {
			return d, fmt.Errorf("member %q: %w", key, err)
		}
		i = skipSpace(line, vEnd)
		if i < len(line) && line[i] == ',' {
			i++
			continue
		}
		if i < len(line) && line[i] == '}' {
			break
		}
		return d, errors.New("expected ',' or '}'")
	}
	if d.Source == nil {
		return d, fmt.Errorf("document %q has no _source object", d.ID)
	}
	return d, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString returns the index after the string that starts at b[i].
func skipString(b []byte, i int) (int, error) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			j++
		case '"':
			return j + 1, nil
		}
	}
	return 0, errors.New("unterminated string")
}

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errors.New("missing value")
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, err := skipString(b, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
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

// stringValue decodes a JSON string (or null).
func stringValue(v []byte) (string, error) {
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

// idValue is an _id: a string, or a number as some dumps wrote it.
func idValue(v []byte) (string, error) {
	if len(v) > 0 && v[0] != '"' && string(v) != "null" {
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return "", errors.New("not a string or a number")
		}
		return n.String(), nil
	}
	return stringValue(v)
}
