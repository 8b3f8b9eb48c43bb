package dump

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stash-backup/stash/internal/appbinding"
)

func TestWriteTLS(t *testing.T) {
	scratch := t.TempDir()
	c := &appbinding.Connection{CABundle: []byte("ca"), ClientCert: []byte("cert"), ClientKey: []byte("key")}
	f, err := WriteTLS(c, scratch)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{f.CA: "ca", f.Cert: "cert", f.Key: "key"} {
		b, err := os.ReadFile(path)
		if err != nil || string(b) != want {
			t.Fatalf("%s: %q, %v; want %q", path, b, err, want)
		}
		if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600 (libpq refuses a key others can read)", path, fi.Mode().Perm())
		}
		if filepath.Dir(filepath.Dir(path)) != scratch {
			t.Errorf("%s is not in a directory of its own under %s", path, scratch)
		}
	}
	f.Remove()
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("after Remove the scratch directory holds %d entries", len(left))
	}

	// Only a CA: no certificate or key file.
	f, err = WriteTLS(&appbinding.Connection{CABundle: []byte("ca")}, scratch)
	if err != nil || f.CA == "" || f.Cert != "" || f.Key != "" {
		t.Fatalf("CA only: %+v, %v", f, err)
	}
	f.Remove()
	// No TLS material: nothing written, and Remove is harmless.
	f, err = WriteTLS(&appbinding.Connection{}, scratch)
	if err != nil || *f != (TLSFiles{}) {
		t.Fatalf("no TLS: %+v, %v", f, err)
	}
	f.Remove()
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("the scratch directory holds %d entries", len(left))
	}
}
