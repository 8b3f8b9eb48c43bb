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
	if len(c.CABundle) == 0 && len(c.ClientCert) == 0 && len(c.ClientKey) == 0 {
		return &TLSFiles{}, nil
	}
	if inMemory {
		t := &TLSFiles{}
		err := t.fill(c, func(name string, data []byte) (string, error) {
			f, path, err := memFile(name, data)
			if err == nil {
				t.mem = append(t.mem, f)
			}
			return path, err
		})
		if err == nil {
			return t, nil
		}
		t.Remove()
	}
	if dir == "" {
		dir = os.TempDir()
	}
	d, err := os.MkdirTemp(dir, "stash-tls-")
	if err != nil {
		return nil, fmt.Errorf("directory for the TLS files (--scratch-dir): %w", err)
	}
	t := &TLSFiles{dir: d}
	err = t.fill(c, func(name string, data []byte) (string, error) {
		path := filepath.Join(d, name)
		return path, os.WriteFile(path, data, 0o600)
	})
	if err != nil {
		t.Remove()
		return nil, err
	}
	return t, nil
}

// fill stores each piece of c's TLS material that is there with put and
// sets its path.
func (t *TLSFiles) fill(c *appbinding.Connection, put func(name string, data []byte) (string, error)) error {
	for _, p := range []struct {
		data []byte
		name string
		dst  *string
	}{
		{c.CABundle, "ca.crt", &t.CA},
		{c.ClientCert, "tls.crt", &t.Cert},
		{c.ClientKey, "tls.key", &t.Key},
	} {
		if len(p.data) == 0 {
			continue
		}
		path, err := put(p.name, p.data)
		if err != nil {
			return fmt.Errorf("write %s: %w", p.name, err)
		}
		*p.dst = path
	}
	return nil
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
