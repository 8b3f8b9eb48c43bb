package elasticsearch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// docLine is what a restore takes from one line of a data file.
type docLine struct {
	Type, Routing string
	Source        []byte // a slice of the line

	id      []byte // the _id as written, when plain
	plain   bool   // id is a JSON string of printable ASCII without escapes
	decoded string // the _id decoded, when not plain
}

// ID is the document's id, "" when the line has none.
func (d *docLine) ID() string {
	if d.plain {
		return string(d.id[1 : len(d.id)-1])
	}
	return d.decoded
}

func (d *docLine) hasID() bool { return (d.plain && len(d.id) > 2) || d.decoded != "" }

// appendID appends the id as a JSON string: as written when it is plain,
// which most are, so that a restore neither decodes nor encodes it.
func (d *docLine) appendID(dst []byte) []byte {
	if d.plain {
		return append(dst, d.id...)
	}
	return appendString(dst, d.decoded)
}

// plainString tells whether v is a JSON string that reads as written:
// printable ASCII, no escapes.
func plainString(v []byte) bool {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return false
	}
	for _, c := range v[1 : len(v)-1] {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
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
	err := members(line, func(key, val []byte) error {
		var err error
		switch string(key) {
		case "_type":
			d.Type, err = stringValue(val)
		case "_id":
			if plainString(val) {
				d.id, d.plain, d.decoded = val, true, ""
			} else {
				d.plain = false
				d.decoded, err = idValue(val)
			}
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
				return errors.New("_source is not an object")
			}
			d.Source = val
		}
		return err
	})
	if err != nil {
		return d, err
	}
	if d.Source == nil {
		return d, fmt.Errorf("document %q has no _source object", d.ID())
	}
	return d, nil
}

// members calls fn with each member of the JSON object b: its name as
// written (escapes left as they are) and its value's bytes, in one pass
// and without copying.
func members(b []byte, fn func(key, val []byte) error) error {
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
		vEnd, err := skipValue(b, i)
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

// elements calls fn with each element of the JSON array b.
func elements(b []byte, fn func(val []byte) error) error {
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
		end, err := skipValue(b, i)
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

// parseSearch reads a search or scroll answer in one pass: its scroll or
// point-in-time id and its hits. The hits' sources and sort values are
// slices of b, valid while b is.
func parseSearch(b []byte) (searchResult, error) {
	var r searchResult
	err := members(b, func(key, val []byte) error {
		var err error
		switch string(key) {
		case "_scroll_id":
			r.ScrollID, err = stringValue(val)
		case "pit_id":
			r.PITID, err = stringValue(val)
		case "hits":
			err = members(val, func(key, val []byte) error {
				if string(key) != "hits" {
					return nil
				}
				return elements(val, func(h []byte) error {
					var x hit
					err := members(h, func(key, val []byte) error {
						var err error
						switch string(key) {
						case "_index":
							x.Index, err = stringValue(val)
						case "_type":
							x.Type, err = stringValue(val)
						case "_id":
							x.ID, err = idValue(val)
						case "_routing":
							x.Routing, err = stringValue(val)
						case "_source":
							x.Source = val
						case "sort":
							x.Sort = val
						}
						return err
					})
					if err == nil && x.Source == nil {
						err = fmt.Errorf("hit %q has no _source (is _source disabled in the mapping?)", x.ID)
					}
					r.Hits = append(r.Hits, x)
					return err
				})
			})
		}
		return err
	})
	return r, err
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

// skipValue returns the index after the value that starts at b[i].
func skipValue(b []byte, i int) (int, error) {
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
