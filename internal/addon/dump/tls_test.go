package dump

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/appbinding"
)

// TestWriteTLSOnDisk: where memory files are not to be had, the material
// goes to owner-only files in a directory of its own, which Remove deletes.
func TestWriteTLSOnDisk(t *testing.T) {
	scratch := t.TempDir()
	c := &appbinding.Connection{CABundle: []byte("ca"), ClientCert: []byte("cert"), ClientKey: []byte("key")}
	f, err := writeTLS(c, scratch, false)
	if err != nil {
		t.Fatal(err)
	}
	checkTLS(t, f)
	for _, path := range []string{f.CA, f.Cert, f.Key} {
		if filepath.Dir(filepath.Dir(path)) != scratch {
			t.Errorf("%s is not in a directory of its own under %s", path, scratch)
		}
	}
	f.Remove()
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("after Remove the scratch directory holds %d entries", len(left))
	}

	// Only a CA: no certificate or key file.
	f, err = writeTLS(&appbinding.Connection{CABundle: []byte("ca")}, scratch, false)
	if err != nil || f.CA == "" || f.Cert != "" || f.Key != "" {
		t.Fatalf("CA only: %+v, %v", f, err)
	}
	f.Remove()
	// No TLS material: nothing written, and Remove is harmless.
	f, err = writeTLS(&appbinding.Connection{}, scratch, false)
	if err != nil || f.CA != "" || f.Cert != "" || f.Key != "" || f.dir != "" {
		t.Fatalf("no TLS: %+v, %v", f, err)
	}
	f.Remove()
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("the scratch directory holds %d entries", len(left))
	}
}

// TestWriteTLSInMemory: on Linux the material lives in memory files that
// another process (the client tool) opens by path, from the start each
// time, owner-only; nothing touches the scratch directory, and after
// Remove the paths no longer open.
func TestWriteTLSInMemory(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("memory files are Linux's")
	}
	scratch := t.TempDir()
	c := &appbinding.Connection{CABundle: []byte("ca"), ClientCert: []byte("cert"), ClientKey: []byte("key")}
	f, err := WriteTLS(c, scratch)
	if err != nil {
		t.Fatal(err)
	}
	checkTLS(t, f)
	for path, want := range map[string]string{f.CA: "ca", f.Cert: "cert", f.Key: "key"} {
		if !strings.HasPrefix(path, "/proc/") {
			t.Errorf("%s is not a memory file's path", path)
		}
		// A child process, as the tools are, reads it; twice, as a client
		// does for each connection.
		for range 2 {
			out, err := exec.Command("cat", path).Output()
			if err != nil || string(out) != want {
				t.Fatalf("cat %s: %q, %v; want %q", path, out, err, want)
			}
		}
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("the scratch directory holds %d entries", len(left))
	}
	f.Remove()
	for _, path := range []string{f.CA, f.Cert, f.Key} {
		if _, err := os.ReadFile(path); err == nil {
			t.Errorf("%s still opens after Remove", path)
		}
	}
}

func checkTLS(t *testing.T, f *TLSFiles) {
	t.Helper()
	for path, want := range map[string]string{f.CA: "ca", f.Cert: "cert", f.Key: "key"} {
		b, err := os.ReadFile(path)
		if err != nil || string(b) != want {
			t.Fatalf("%s: %q, %v; want %q", path, b, err, want)
		}
		if fi, _ := os.Stat(path); fi == nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600 (libpq refuses a key others can read)", path, fi.Mode().Perm())
		}
	}
}
