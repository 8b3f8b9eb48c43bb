package elasticsearch

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	for _, tc := range []struct {
		line              string
		typ, id, routing  string
		source, wantError string
	}{
		{`{"_index":"a","_type":"_doc","_id":"1","_score":1,"_source":{"x":[1,{"y":"}"}],"s":"a\"b"}}`, "_doc", "1", "", `{"x":[1,{"y":"}"}],"s":"a\"b"}`, ""},
		{` { "_source" : {"k": "v"} , "_id" : "id \u00e9\"q", "_routing": "r1" } `, "", "id é\"q", "r1", `{"k": "v"}`, ""},
		{`{"_id":42,"fields":{"_routing":"r2"},"_source":{}}`, "", "42", "r2", `{}`, ""},
		{`{"_id":"x","_source":[1]}`, "", "", "", "", "_source is not an object"},
		{`{"_id":"x"}`, "", "", "", "", "no _source"},
		{`{"_id":"x","_source":{"a":1}`, "", "", "", "", "expected ',' or '}'"},
		{`{"_id":"x","_source":{"a":"1}}`, "", "", "", "", "unterminated"},
		{`["not an object"]`, "", "", "", "", "not a JSON object"},
	} {
		d, err := parseLine([]byte(tc.line))
		switch {
		case tc.wantError != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantError) {
				t.Errorf("%s: error %v, want %q", tc.line, err, tc.wantError)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.line, err)
		case d.Type != tc.typ || d.ID() != tc.id || d.Routing != tc.routing || string(d.Source) != tc.source:
			t.Errorf("%s: got %+v (source %s)", tc.line, d, d.Source)
		}
	}
}

func FuzzParseLine(f *testing.F) {
	f.Add(`{"_index":"a","_id":"1","_source":{"x":1}}`)
	f.Add(`{"_id":"\\","_source":{"a":["]"]}}`)
	f.Add(`{"_id":"a\\\"b","_source":{"k":"\\\\"}}`)
	f.Fuzz(func(t *testing.T, line string) {
		d, err := parseLine([]byte(line))
		if err == nil && (len(d.Source) == 0 || d.Source[0] != '{' || d.Source[len(d.Source)-1] != '}') {
			t.Errorf("%q: accepted a source %q that is not an object", line, d.Source)
		}
		// On valid JSON it reads what encoding/json reads (by exact
		// member names, as Elasticsearch's are).
		var ref map[string]json.RawMessage
		if strings.ContainsRune(line, '\n') || json.Unmarshal([]byte(line), &ref) != nil || len(ref["_source"]) == 0 || ref["_source"][0] != '{' {
			return
		}
		if err != nil {
			t.Fatalf("%q: refused a valid document: %v", line, err)
		}
		if !bytes.Equal(d.Source, ref["_source"]) {
			t.Errorf("%q: source %q, encoding/json %q", line, d.Source, ref["_source"])
		}
		var id string
		if json.Unmarshal(ref["_id"], &id) == nil && id != d.ID() {
			t.Errorf("%q: id %q, encoding/json %q", line, d.ID(), id)
		}
		// The id a bulk action names is the one read.
		if d.hasID() {
			var back string
			if err := json.Unmarshal(d.appendID(nil), &back); err != nil || back != d.ID() {
				t.Errorf("%q: id written as %s (%v), read %q", line, d.appendID(nil), err, d.ID())
			}
		}
	})
}

func TestParseSearch(t *testing.T) {
	body := `{"_scroll_id":"s1","took":1,"hits":{"total":{"value":2},"max_score":null,"hits":[` +
		`{"_index":"a","_type":"_doc","_id":"1","_score":null,"_source":{"t":"x\"}"},"sort":[5]},` +
		`{"_index":"a","_id":"2","_routing":"r","_source":{},"sort":[7]}]},"pit_id":"p2"}`
	r, err := parseSearch([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	h := r.Hits
	if r.ScrollID != "s1" || r.PITID != "p2" || len(h) != 2 || h[0].Type != "_doc" || string(h[0].Source) != `{"t":"x\"}"}` ||
		string(h[1].Sort) != "[7]" || h[1].Routing != "r" || h[1].ID != "2" {
		t.Errorf("parsed %+v", r)
	}
	if _, err := parseSearch([]byte(`{"hits":{"hits":[{"_id":"1","_source":{}}`)); err == nil {
		t.Error("a truncated answer parsed")
	}
	if _, err := parseSearch([]byte(`{"hits":{"hits":[{"_id":"1"}]}}`)); err == nil || !strings.Contains(err.Error(), "no _source") {
		t.Errorf("a hit without _source: %v", err)
	}
}

func TestActionID(t *testing.T) {
	for body, want := range map[string]string{
		`{"index":{"_index":"a","_id":"x1"}}` + "\n{}\n":            "x1",
		`{"create":{"_index":"a","_id":"q\"\u00e9"}}` + "\n{}\n":    `q"é`,
		`{"index":{"_index":"a"}}` + "\n{}\n":                       "",
		"not json\n":                                                "",
		`{"index":{"_index":"a","_id":"last"}}` + "\n{\"_id\":1}\n": "last",
	} {
		if got := actionID([]byte(body)); got != want {
			t.Errorf("actionID(%q) = %q, want %q", body, got, want)
		}
	}
}

// TestBulkErrorRedacted: a document the server rejects fails the restore
// with the error's type and reason, but not the document's values the
// reason quotes, which would reach the session's status.
func TestBulkErrorRedacted(t *testing.T) {
	tests := []struct{ name, error, secret, keep string }{
		{"7.x mapping", `{"type":"mapper_parsing_exception","reason":"failed to parse field [card] of type [long] in document with id 'd1'. Preview of field's value: '4111-1111-1111-1111'","caused_by":{"type":"illegal_argument_exception","reason":"For input string: \"4111-1111-1111-1111\""}}`,
			"4111", "mapper_parsing_exception: failed to parse field [card] of type [long]"},
		{"8.x mapping", `{"type":"document_parsing_exception","reason":"[1:9] failed to parse field [ssn] of type [date] in document with id 'd1'. Preview of field's value: 'not-a-date 123-45-6789'"}`,
			"6789", "document_parsing_exception: [1:9] failed to parse field [ssn]"},
		{"immense term", `{"type":"illegal_argument_exception","reason":"Document contains at least one immense term in field=\"body\" (whose UTF8 encoding is longer than the max length 32766), all of which were skipped.  The prefix of the first immense term is: '[115, 101, 99, 114, 101, 116]...', original message: bytes can be at most 32766 in length; got 40000"}`,
			"115, 101", "illegal_argument_exception: Document contains at least one immense term"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &batch{body: []byte(`{"index":{"_index":"a","_id":"d1"}}` + "\n{}\n"), items: 1}
			out := `{"took":1,"errors":true,"items":[{"index":{"_index":"a","_id":"d1","status":400,"error":` + tt.error + `}}]}`
			_, err := (&restorer{}).bulkResult(&indexLoad{target: "a"}, b, []byte(out))
			if err == nil {
				t.Fatal("a rejected document was accepted")
			}
			if strings.Contains(err.Error(), tt.secret) {
				t.Errorf("the document's value is in the error: %v", err)
			}
			if !strings.Contains(err.Error(), tt.keep) {
				t.Errorf("err = %v, want it to hold %q", err, tt.keep)
			}
		})
	}
}
