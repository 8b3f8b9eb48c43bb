package dump

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/stash-backup/stash/internal/appbinding"
)

// TLSFiles are a connection's CA bundle, client certificate and key as
// files, the only way the client tools take them. A name is empty for what
// the connection lacks.
type TLSFiles struct {
	CA, Cert, Key string
	dir           string
}

// WriteTLS writes c's TLS material into a new directory under dir (the
// system's temporary directory when empty), readable by the owner only:
// libpq refuses a key file others can read. It writes nothing when c has
// no TLS material. Remove deletes the files; callers remove them once the
// tools have exited, so that no private key outlives the step.
func WriteTLS(c *appbinding.Connection, dir string) (*TLSFiles, error) {
	t := &TLSFiles{}
	if len(c.CABundle) == 0 && len(c.ClientCert) == 0 && len(c.ClientKey) == 0 {
		return t, nil
	}
	if dir == "" {
		dir = os.TempDir()
	}
	d, err := os.MkdirTemp(dir, "stash-tls-")
	if err != nil {
		return nil, fmt.Errorf("directory for the TLS files (--scratch-dir): %w", err)
	}
	t.dir = d
	for _, f := range []struct {
		data []byte
		name string
		dst  *string
	}{
		{c.CABundle, "ca.crt", &t.CA},
		{c.ClientCert, "tls.crt", &t.Cert},
		{c.ClientKey, "tls.key", &t.Key},
	} {
		if len(f.data) == 0 {
			continue
		}
		p := filepath.Join(d, f.name)
		if err := os.WriteFile(p, f.data, 0o600); err != nil {
			t.Remove()
			return nil, fmt.Errorf("write %s: %w", f.name, err)
		}
		*f.dst = p
	}
	return t, nil
}

// Remove deletes the files.
func (t *TLSFiles) Remove() {
	if t != nil && t.dir != "" {
		os.RemoveAll(t.dir) //nolint:errcheck // best effort; the directory is private
	}
}
