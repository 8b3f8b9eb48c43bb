package appbinding

import (
	"bytes"
	"net"
	"net/url"
	"strconv"
	"strings"
	"testing"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
)

// FuzzResolveURL feeds spec.clientConfig.url through Resolve. What must
// hold for any input: a URL that is accepted names a host and a valid
// port that Address() gives back; a URL that carries credentials is never
// accepted; and an error names the field and never repeats the password,
// since errors reach a session's status and events.
func FuzzResolveURL(f *testing.F) {
	for _, s := range []string{
		"postgres://db.demo.svc:5432/app?sslmode=disable",
		"db:5432", "db", "[::1]:3306", "[fe80::1%eth0]:5432", "tcp(mysql.demo.svc:3306)/shop",
		"tcp(mysql:3306)/?tls=true", "root:secret@tcp(mysql:3306)/",
		"mongodb://user:hunter22@mongo:27017/admin", "http://:9200", "http://es:0", "http://es:65536",
		"tcp(", "tcp(:)", "postgres://u:p%zz@db/x", "://", "db:abc", "[::1", "http://a b:1",
		"tcp(a:secret@h:1)/db", "tcp(a:b:secret)/db", "-oProxyCommand=x:22",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		ab := &appcatalogv1alpha1.AppBinding{}
		ab.Namespace, ab.Name = "demo", "db"
		ab.Spec.ClientConfig.URL = &raw
		c, err := Resolve(ab, nil, 5432, nil, nil)
		if err != nil {
			msg := err.Error()
			if raw != "" && !strings.HasPrefix(msg, "AppBinding demo/db: spec.clientConfig.url ") {
				t.Fatalf("error does not name the field: %q", msg)
			}
			if pw := password(raw); len(pw) >= 4 && strings.Contains(msg, pw) {
				t.Fatalf("error repeats the password %q: %q", pw, msg)
			}
			return
		}
		if c.Host == "" {
			t.Fatalf("%q accepted without a host", raw)
		}
		if c.Port < 1 || c.Port > 65535 {
			t.Fatalf("%q accepted with port %d", raw, c.Port)
		}
		host, port, err := net.SplitHostPort(c.Address())
		if err != nil || host != c.Host || port != strconv.Itoa(c.Port) {
			t.Fatalf("Address() %q does not give back %q and %d (%v)", c.Address(), c.Host, c.Port, err)
		}
		if hasUserinfo(raw) {
			t.Fatalf("%q carries credentials and was accepted", raw)
		}
	})
}

// password returns what a user:password@ part of raw would hold.
func password(raw string) string {
	at := strings.LastIndex(raw, "@")
	if at < 0 {
		return ""
	}
	start := 0
	if i := strings.Index(raw, "://"); i >= 0 && i < at {
		start = i + len("://")
	}
	_, pw, ok := strings.Cut(raw[start:at], ":")
	if !ok {
		return ""
	}
	return pw
}

// hasUserinfo says whether raw, read as Go's URL parser reads it, carries
// a user name or password.
func hasUserinfo(raw string) bool {
	if strings.Contains(raw, "@tcp(") {
		return true
	}
	if !strings.Contains(raw, "://") {
		raw = "tcp://" + raw
	}
	u, err := url.Parse(raw)
	return err == nil && u.User != nil
}

// FuzzTransform applies a program of secretTransforms, decoded from the
// fuzzer's bytes over a small key alphabet (so that operations meet), to
// a Secret. What must hold: the input Secret is never changed; a key no
// operation names keeps its value; the last operation's effect is what the
// result shows; addKeysFrom is refused naming its index.
func FuzzTransform(f *testing.F) {
	f.Add([]byte{0, 0, 1}, []byte("pw"))            // rename username -> password
	f.Add([]byte{1, 2, 3, 2, 2, 0}, []byte("x"))    // add, then remove
	f.Add([]byte{0, 1, 1, 3, 0, 0}, []byte(""))     // rename a key onto itself, addKeysFrom
	f.Add([]byte{1, 4, 0, 0, 4, 1}, []byte("\x00")) // add the empty key, rename it
	f.Fuzz(func(t *testing.T, prog, value []byte) {
		keys := []string{"username", "password", "POSTGRES_USER", "tls.crt", ""}
		in := map[string][]byte{"username": []byte("u"), "password": []byte("p"), "other": []byte("o")}
		orig := map[string][]byte{}
		for k, v := range in {
			orig[k] = bytes.Clone(v)
		}
		var ts []appcatalogv1alpha1.SecretTransform
		named := map[string]bool{}
		for i := 0; i+2 < len(prog) && len(ts) < 16; i += 3 {
			a, b := keys[int(prog[i+1])%len(keys)], keys[int(prog[i+2])%len(keys)]
			var tr appcatalogv1alpha1.SecretTransform
			switch prog[i] % 5 {
			case 0:
				tr.RenameKey = &appcatalogv1alpha1.RenameKeyTransform{From: a, To: b}
				named[a], named[b] = true, true
			case 1:
				tr.AddKey = &appcatalogv1alpha1.AddKeyTransform{Key: a, Value: value}
				named[a] = true
			case 2:
				s := string(value)
				tr.AddKey = &appcatalogv1alpha1.AddKeyTransform{Key: a, StringValue: &s, Value: []byte("ignored")}
				named[a] = true
			case 3:
				tr.RemoveKey = &appcatalogv1alpha1.RemoveKeyTransform{Key: a}
				named[a] = true
			case 4:
				tr.AddKeysFrom = &appcatalogv1alpha1.AddKeysFromTransform{}
			}
			ts = append(ts, tr)
		}
		out, err := Transform(in, ts)
		for k, v := range orig {
			if !bytes.Equal(in[k], v) || len(in) != len(orig) {
				t.Fatalf("the input Secret changed: %v", in)
			}
		}
		for i, tr := range ts {
			if tr.AddKeysFrom != nil {
				if err == nil || !strings.HasPrefix(err.Error(), "["+strconv.Itoa(i)+"].addKeysFrom") {
					t.Fatalf("addKeysFrom at %d: error %v", i, err)
				}
				return
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out["other"], []byte("o")) {
			t.Fatalf("a key no transform names changed: %q", out["other"])
		}
		for k := range out {
			if _, was := orig[k]; !was && !named[k] {
				t.Fatalf("key %q appeared from nowhere", k)
			}
		}
		if len(ts) == 0 {
			return
		}
		switch last := ts[len(ts)-1]; {
		case last.RemoveKey != nil:
			if _, ok := out[last.RemoveKey.Key]; ok {
				t.Fatalf("removed key %q is still there", last.RemoveKey.Key)
			}
		case last.AddKey != nil:
			want := last.AddKey.Value
			if last.AddKey.StringValue != nil {
				want = []byte(*last.AddKey.StringValue)
			}
			if got, ok := out[last.AddKey.Key]; !ok || !bytes.Equal(got, want) {
				t.Fatalf("added key %q = %q, want %q", last.AddKey.Key, got, want)
			}
		case last.RenameKey != nil:
			// Rename's result depends on the state before it; replay all
			// but the last and compare.
			before, err := Transform(in, ts[:len(ts)-1])
			if err != nil {
				t.Fatal(err)
			}
			r := last.RenameKey
			v, had := before[r.From]
			if had {
				if got, ok := out[r.To]; !ok || !bytes.Equal(got, v) {
					t.Fatalf("rename %q -> %q: %q, want %q", r.From, r.To, got, v)
				}
				if _, still := out[r.From]; still && r.From != r.To {
					t.Fatalf("rename %q -> %q kept %q", r.From, r.To, r.From)
				}
			} else if len(out) != len(before) {
				t.Fatalf("rename of a missing key %q changed the Secret", r.From)
			}
		}
	})
}
