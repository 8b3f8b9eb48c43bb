package dump

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/stash-backup/stash/internal/appbinding"
)

// TLSFiles are a connection's CA bundle, client certificate and key as
// paths a client tool can open, the only way the tools take them. A path is
// empty for what the connection lacks.
type TLSFiles struct {
	CA, Cert, Key string
	dir           string     // files on disk, when memory files are not to be had
	mem           []*os.File // memory files (Linux), open while the tools run
}

// WriteTLS makes c's TLS material openable by the client tools, readable
// by the owner only (libpq refuses a key file others can read). On Linux
// it lives in memory files, which no disk ever holds and which vanish with
// the process, even one killed with SIGKILL; elsewhere, or where those
// cannot be made, in files in a new directory under dir (the system's
// temporary directory when empty). It makes nothing when c has no TLS
// material. Remove releases it; callers remove it once the tools have
// exited.
func WriteTLS(c *appbinding.Connection, dir string) (*TLSFiles, error) {
	return writeTLS(c, dir, memFiles)
}

func writeTLS(c *appbinding.Connection, dir string, inMemory bool) (*TLSFiles, error) {
	t := &TLSFiles{}
	if len(c.CABundle) == 0 && len(c.ClientCert) == 0 && len(c.ClientKey) == 0 {
		return t, nil
	}
	parts := []struct {
		data []byte
		name string
		dst  *string
	}{
		{c.CABundle, "ca.crt", &t.CA},
		{c.ClientCert, "tls.crt", &t.Cert},
		{c.ClientKey, "tls.key", &t.Key},
	}
	if inMemory {
		ok := true
		for _, p := range parts {
			if len(p.data) == 0 {
				continue
			}
			f, path, err := memFile(p.name, p.data)
			if err != nil {
				ok = false
				break
			}
			t.mem = append(t.mem, f)
			*p.dst = path
		}
		if ok {
			return t, nil
		}
		t.Remove()
		*t = TLSFiles{}
	}
	if dir == "" {
		dir = os.TempDir()
	}
	d, err := os.MkdirTemp(dir, "stash-tls-")
	if err != nil {
		return nil, fmt.Errorf("directory for the TLS files (--scratch-dir): %w", err)
	}
	t.dir = d
	for _, p := range parts {
		if len(p.data) == 0 {
			continue
		}
		path := filepath.Join(d, p.name)
		if err := os.WriteFile(path, p.data, 0o600); err != nil {
			t.Remove()
			return nil, fmt.Errorf("write %s: %w", p.name, err)
		}
		*p.dst = path
	}
	return t, nil
}

// Remove releases the files.
func (t *TLSFiles) Remove() {
	if t == nil {
		return
	}
	for _, f := range t.mem {
		f.Close() //nolint:errcheck // memory files; closing frees them
	}
	t.mem = nil
	if t.dir != "" {
		os.RemoveAll(t.dir) //nolint:errcheck // best effort; the directory is private
	}
}
