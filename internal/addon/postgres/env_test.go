package postgres

import (
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/appbinding"
)

// TestSSLMode: a CA or a client certificate means TLS, checked against the
// CA unless the AppBinding says insecureSkipTLSVerify; an sslmode in the
// URL or query wins. Before, a CA alone left libpq's "prefer", which checks
// nothing.
func TestSSLMode(t *testing.T) {
	for _, tc := range []struct {
		name     string
		query    string
		ca, cert bool
		insecure bool
		want     string
	}{
		{"plain", "", false, false, false, ""},
		{"disabled in the URL", "sslmode=disable", false, false, false, "disable"},
		{"CA only", "", true, false, false, "verify-full"},
		{"CA, insecure", "", true, false, true, "require"},
		{"CA and certificate, insecure", "", true, true, true, "require"},
		{"certificate only", "", false, true, false, "require"},
		{"CA and certificate", "", true, true, false, "verify-full"},
		{"the URL's mode wins", "sslmode=verify-ca", true, true, false, "verify-ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, _ := url.ParseQuery(tc.query)
			c := &appbinding.Connection{Query: q, InsecureSkipTLSVerify: tc.insecure}
			if tc.ca {
				c.CABundle = []byte("ca")
			}
			if tc.cert {
				c.ClientCert, c.ClientKey = []byte("cert"), []byte("key")
			}
			scratch := t.TempDir()
			o := Options{Conn: c, ScratchDir: scratch}
			env, remove, err := o.env()
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			var files []string
			for _, kv := range env {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "PGSSLMODE":
					got = v
				case "PGSSLROOTCERT":
					if tc.insecure {
						if v != noRootCA {
							t.Errorf("insecure: PGSSLROOTCERT %q, want %q, so that libpq verifies nothing", v, noRootCA)
						}
						continue
					}
					files = append(files, v)
				case "PGSSLCERT", "PGSSLKEY":
					files = append(files, v)
				}
			}
			if got != tc.want {
				t.Errorf("PGSSLMODE %q, want %q", got, tc.want)
			}
			if want := map[bool]int{true: 1}[tc.ca && !tc.insecure] + map[bool]int{true: 2}[tc.cert]; len(files) != want {
				t.Errorf("%d TLS files in the environment, want %d", len(files), want)
			}
			for _, f := range files {
				if _, err := os.Stat(f); err != nil {
					t.Errorf("%s: %v", f, err)
				}
			}
			remove()
			if left, _ := os.ReadDir(scratch); len(left) != 0 {
				t.Errorf("TLS files left in the scratch directory after the tool: %d entries", len(left))
			}
		})
	}
}
