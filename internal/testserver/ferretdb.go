package testserver

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// FerretDB is a running FerretDB server: the MongoDB wire protocol over
// SQLite, the most faithful MongoDB server that builds here (no MongoDB
// can be built or installed). Known gaps: no Decimal128, and the `ns`
// option listIndexes returns is refused by createIndexes.
type FerretDB struct {
	// URI is a mongodb:// URI of the server, without credentials.
	URI  string
	Host string
	Port int

	cmd *exec.Cmd
}

// Kill stops the server at once (SIGKILL), as a crash would.
func (f *FerretDB) Kill(t testing.TB) {
	t.Helper()
	if err := f.cmd.Process.Kill(); err != nil {
		t.Errorf("kill FerretDB: %v", err)
	}
}

// StartFerretDB starts FerretDB (built by hack/build-tools.sh into bin/)
// with its data in a temporary directory; it is stopped when the test
// ends.
func StartFerretDB(t testing.TB) *FerretDB { return startFerretDB(t, nil, "", "") }

// StartFerretDBAuth starts FerretDB requiring authentication (SCRAM), with
// one user, defined in admin.
func StartFerretDBAuth(t testing.TB, user, password string) *FerretDB {
	return startFerretDB(t, nil, user, password)
}

// StartFerretDBTLS starts FerretDB listening with TLS only, its
// certificate from tls, and requiring a client certificate signed by
// tls.CA.
func StartFerretDBTLS(t testing.TB, tls *TLSFiles) *FerretDB { return startFerretDB(t, tls, "", "") }

func startFerretDB(t testing.TB, tls *TLSFiles, user, password string) *FerretDB {
	t.Helper()
	NeedIntegration(t)
	bin := filepath.Join(RepoRoot(), "bin", "ferretdb")
	if _, err := os.Stat(bin); err != nil {
		missing(t, "FerretDB ("+bin+")")
	}
	dir := t.TempDir()
	port, debug := FreePort(t), FreePort(t)
	f := &FerretDB{Host: "127.0.0.1", Port: port, URI: fmt.Sprintf("mongodb://127.0.0.1:%d/", port)}
	args := []string{"--handler=sqlite", "--sqlite-url=file:" + dir + "/", "--state-dir=" + dir,
		fmt.Sprintf("--debug-addr=127.0.0.1:%d", debug), "--telemetry=disable"}
	if user != "" {
		args = append(args, "--test-enable-new-auth", "--setup-database=admin", "--setup-username="+user, "--setup-password="+password)
	}
	if tls == nil {
		args = append(args, fmt.Sprintf("--listen-addr=127.0.0.1:%d", port))
	} else {
		files := map[string][]byte{"ca.pem": tls.CA, "server.pem": tls.ServerCert, "server-key.pem": tls.ServerKey}
		for name, data := range files {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		// The plain listener stays on a port of its own: FerretDB always
		// opens one.
		args = append(args, fmt.Sprintf("--listen-addr=127.0.0.1:%d", FreePort(t)), fmt.Sprintf("--listen-tls=127.0.0.1:%d", port),
			"--listen-tls-cert-file="+filepath.Join(dir, "server.pem"), "--listen-tls-key-file="+filepath.Join(dir, "server-key.pem"),
			"--listen-tls-ca-file="+filepath.Join(dir, "ca.pem"))
	}
	cmd := exec.Command(bin, args...)
	f.cmd = cmd
	startListening(t, "FerretDB", cmd, port)
	return f
}
