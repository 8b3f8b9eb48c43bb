package elasticsearch

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/stash-backup/stash/internal/jsonscan"
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
	err := jsonscan.Members(line, func(key, val []byte) error {
		var err error
		switch string(key) {
		case "_type":
			d.Type, err = jsonscan.String(val)
		case "_id":
			if plainString(val) {
				d.id, d.plain, d.decoded = val, true, ""
			} else {
				d.plain = false
				d.decoded, err = idValue(val)
			}
		case "_routing", "routing":
			d.Routing, err = jsonscan.String(val)
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

// parseSearch reads a search or scroll answer in one pass: its scroll or
// point-in-time id and its hits. The hits' sources and sort values are
// slices of b, valid while b is.
func parseSearch(b []byte) (searchResult, error) {
	var r searchResult
	err := jsonscan.Members(b, func(key, val []byte) error {
		var err error
		switch string(key) {
		case "_scroll_id":
			r.ScrollID, err = jsonscan.String(val)
		case "pit_id":
			r.PITID, err = jsonscan.String(val)
		case "hits":
			err = jsonscan.Members(val, func(key, val []byte) error {
				if string(key) != "hits" {
					return nil
				}
				return jsonscan.Elements(val, func(h []byte) error {
					var x hit
					err := jsonscan.Members(h, func(key, val []byte) error {
						var err error
						switch string(key) {
						case "_index":
							x.Index, err = jsonscan.String(val)
						case "_type":
							x.Type, err = jsonscan.String(val)
						case "_id":
							x.ID, err = idValue(val)
						case "_routing":
							x.Routing, err = jsonscan.String(val)
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

// idValue is an _id: a string, or a number as some dumps wrote it.
func idValue(v []byte) (string, error) {
	if len(v) > 0 && v[0] != '"' && string(v) != "null" {
		var n json.Number
		if err := json.Unmarshal(v, &n); err != nil {
			return "", errors.New("not a string or a number")
		}
		return n.String(), nil
	}
	return jsonscan.String(v)
}
