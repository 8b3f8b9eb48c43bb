package jsonscan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestMembers(t *testing.T) {
	for _, tc := range []struct {
		in, want, wantError string
	}{
		{`{"a":1,"b":"x\"}","c":{"d":[1,{"e":"]"}]}}`, `a=1;b="x\"}";c={"d":[1,{"e":"]"}]};`, ""},
		{` { "a" : [ ] , "b" : null } `, `a=[ ];b=null;`, ""},
		{`{}`, ``, ""},
		{`{"a":1`, ``, "expected ',' or '}'"},
		{`{"a":"1}`, ``, "unterminated"},
		{`{"a":[1}`, ``, "unbalanced"},
		{`{"a":}`, ``, "unexpected"},
		{`[1]`, ``, "not a JSON object"},
		{`{1:2}`, ``, "expected a member name"},
	} {
		var got strings.Builder
		err := Members([]byte(tc.in), func(k, v []byte) error {
			got.WriteString(string(k) + "=" + string(v) + ";")
			return nil
		})
		switch {
		case tc.wantError != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantError) {
				t.Errorf("%s: error %v, want %q", tc.in, err, tc.wantError)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.in, err)
		case got.String() != tc.want:
			t.Errorf("%s: %s, want %s", tc.in, got.String(), tc.want)
		}
	}
}

func TestElementsAndString(t *testing.T) {
	var got []string
	if err := Elements([]byte(`["a\u00e9",null, "b\\c" ,"d"]`), func(v []byte) error {
		s, err := String(v)
		got = append(got, s)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "|") != `aé||b\c|d` {
		t.Errorf("elements %q", got)
	}
	if _, err := String([]byte(`12`)); err == nil {
		t.Error("String accepted a number")
	}
}

// FuzzMembers holds Members to encoding/json: on a valid object it reads
// the same members with the same raw values.
func FuzzMembers(f *testing.F) {
	f.Add(`{"a":1,"b":{"c":["\\\"",2]}}`)
	f.Add(`{"x":"\u0022}","y":[[],{}]}`)
	f.Fuzz(func(t *testing.T, in string) {
		var ref map[string]json.RawMessage
		if json.Unmarshal([]byte(in), &ref) != nil || !strings.HasPrefix(strings.TrimSpace(in), "{") {
			_ = Members([]byte(in), func(_, _ []byte) error { return nil })
			return
		}
		got := map[string][]byte{}
		err := Members([]byte(in), func(k, v []byte) error {
			var key string
			if err := json.Unmarshal(append(append([]byte{'"'}, k...), '"'), &key); err != nil {
				return err
			}
			got[key] = v
			return nil
		})
		if err != nil {
			t.Fatalf("%q: refused a valid object: %v", in, err)
		}
		for k, v := range ref {
			if !bytes.Equal(got[k], v) {
				t.Errorf("%q: member %q is %q, encoding/json %q", in, k, got[k], v)
			}
		}
	})
}
