package restic

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stash-backup/stash/internal/repository/location"
	"github.com/stash-backup/stash/internal/testserver"
)

// repoTypes are the object types a restic repository keeps besides its
// config, with the name `restic list` gives each.
var repoTypes = []struct {
	t    FileType
	list string
}{
	{KeyFile, "keys"}, {SnapshotFile, "snapshots"}, {IndexFile, "index"}, {PackFile, "packs"}, {LockFile, "locks"},
}

// resticPassword is the password of the repositories the tests write.
const resticPassword = "repo-password"

// resticWrite has restic init the repository its environment names and
// back up a small tree into it: some small files and 2 MiB of random
// data, so that there are data and tree packs.
func resticWrite(t *testing.T, r *testserver.Restic) {
	t.Helper()
	src := t.TempDir()
	big := make([]byte, 2<<20)
	_, _ = rand.Read(big)
	for name, data := range map[string][]byte{
		"a.txt": []byte("hello from stash\n"), "sub/b.txt": []byte("another file\n"), "sub/big.bin": big,
	} {
		p := filepath.Join(src, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r.Setenv("RESTIC_PASSWORD", resticPassword)
	r.Run(t, "", nil, "init")
	r.Run(t, src, nil, "backup", "--host", "stash-test", ".")
}

// resticNames is restic's own listing of one type (without taking a
// lock, which would write to the repository).
func resticNames(t *testing.T, r *testserver.Restic, kind string) []string {
	t.Helper()
	names := strings.Fields(r.Run(t, "", nil, "--no-lock", "list", kind))
	slices.Sort(names)
	return names
}

// repoObjects is a repository as stored: each type's objects by name, the
// config under ConfigFile and "".
type repoObjects map[FileType]map[string][]byte

// objectsFromPaths sorts stored objects, named by their path relative to
// the repository in restic's default layout, into types. A path that fits
// no type fails the test.
func objectsFromPaths(t *testing.T, files map[string][]byte) repoObjects {
	t.Helper()
	objs := repoObjects{ConfigFile: {}}
	for _, rt := range repoTypes {
		objs[rt.t] = map[string][]byte{}
	}
	for p, data := range files {
		if p == "config" {
			objs[ConfigFile][""] = data
			continue
		}
		found := false
		for _, rt := range repoTypes {
			if name, ok := listedName(rt.t, strings.TrimPrefix(p, rt.t.String()+"/")); ok && strings.HasPrefix(p, rt.t.String()+"/") {
				objs[rt.t][name] = data
				found = true
			}
		}
		if !found {
			t.Fatalf("stored object %s fits no type of restic's layout", p)
		}
	}
	return objs
}

// checkBackend checks that be reads exactly what is stored (want) and
// what restic itself lists: each type's names and sizes, every object's
// bytes, ranges of a pack, and missing objects. pastEnd checks that a
// range running past a pack's end is an error too (the server must answer
// it as HTTP has it: 206 with the range cut short).
func checkBackend(t *testing.T, be Backend, want repoObjects, r *testserver.Restic, pastEnd bool) {
	t.Helper()
	ctx := t.Context()
	cfg, err := be.Get(ctx, ConfigFile, "", 0, -1)
	if err != nil {
		t.Fatalf("get config: %v", err)
	}
	if len(want[ConfigFile][""]) == 0 || !bytes.Equal(cfg, want[ConfigFile][""]) {
		t.Fatalf("config: got %d bytes, want the %d bytes restic stored", len(cfg), len(want[ConfigFile][""]))
	}
	for _, rt := range repoTypes {
		got := map[string]int64{}
		if err := be.List(ctx, rt.t, func(name string, size int64) error {
			if _, dup := got[name]; dup {
				t.Errorf("list %s: %s listed twice", rt.list, name)
			}
			got[name] = size
			return nil
		}); err != nil {
			t.Fatalf("list %s: %v", rt.list, err)
		}
		wantSizes := map[string]int64{}
		for name, data := range want[rt.t] {
			wantSizes[name] = int64(len(data))
		}
		if fmt.Sprint(got) != fmt.Sprint(wantSizes) {
			t.Errorf("list %s: got %v, stored %v", rt.list, got, wantSizes)
		}
		if rt.t != LockFile {
			if names, gotNames := resticNames(t, r, rt.list), slices.Sorted(maps.Keys(got)); !slices.Equal(names, gotNames) {
				t.Errorf("list %s: got %v, restic lists %v", rt.list, gotNames, names)
			}
		}
		if rt.t != LockFile && len(got) == 0 {
			t.Errorf("list %s: nothing: the repository restic wrote has some", rt.list)
		}
		for name, data := range want[rt.t] {
			b, err := be.Get(ctx, rt.t, name, 0, -1)
			if err != nil {
				t.Fatalf("get %s/%s: %v", rt.t, name, err)
			}
			if !bytes.Equal(b, data) {
				t.Errorf("get %s/%s: %d bytes differ from the %d stored", rt.t, name, len(b), len(data))
			}
			if rt.t != LockFile {
				if sum := sha256.Sum256(b); hex.EncodeToString(sum[:]) != name {
					t.Errorf("get %s/%s: content hashes to %x", rt.t, name, sum)
				}
			}
		}
	}

	// Ranges of the largest pack equal the same ranges of the whole.
	var pack string
	for name, data := range want[PackFile] {
		if pack == "" || len(data) > len(want[PackFile][pack]) {
			pack = name
		}
	}
	full, err := be.Get(ctx, PackFile, pack, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(len(full))
	for _, rg := range [][2]int64{{0, 1}, {0, 4096}, {size / 3, 1000}, {size - 37, 37}, {size / 2, -1}, {size - 1, -1}, {17, size - 17}} {
		b, err := be.Get(ctx, PackFile, pack, rg[0], rg[1])
		if err != nil {
			t.Fatalf("get pack %s at %d+%d: %v", pack, rg[0], rg[1], err)
		}
		end := size
		if rg[1] >= 0 {
			end = rg[0] + rg[1]
		}
		if !bytes.Equal(b, full[rg[0]:end]) {
			t.Errorf("get pack at %d+%d: %d bytes differ from the same range of the whole pack", rg[0], rg[1], len(b))
		}
	}
	if pastEnd {
		checkPastEnd(t, be, pack, size)
	}

	// Missing objects.
	missing := strings.Repeat("ab", 32)
	for _, tt := range []FileType{SnapshotFile, PackFile, IndexFile, KeyFile} {
		_, err := be.Get(ctx, tt, missing, 0, -1)
		if !errors.Is(err, ErrNotExist) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("get missing %s: %v, want an error wrapping ErrNotExist", tt, err)
		}
		if _, err := be.Get(ctx, tt, missing, 10, 20); !errors.Is(err, ErrNotExist) {
			t.Errorf("get a range of missing %s: %v, want an error wrapping ErrNotExist", tt, err)
		}
	}
}

// restServerBin is rest-server v0.14.0, built by hack/build-peers.sh; the
// integration tier fails without it.
// checkPastEnd checks that ranges running past the end of a pack of size
// bytes are errors: a short read, or one that starts beyond the end.
func checkPastEnd(t *testing.T, be Backend, pack string, size int64) {
	t.Helper()
	for _, rg := range [][2]int64{{size - 10, 100}, {size - 1, 2}, {size + 5, 10}} {
		b, err := be.Get(t.Context(), PackFile, pack, rg[0], rg[1])
		switch {
		case err == nil:
			t.Errorf("get pack at %d+%d (past its end, %d bytes): got %d bytes and no error", rg[0], rg[1], size, len(b))
		case errors.Is(err, ErrNotExist):
			t.Errorf("get past the end: %v: wraps ErrNotExist", err)
		default:
			t.Logf("get at %d+%d of %d bytes: %v", rg[0], rg[1], size, err)
		}
	}
}

func restServerBin(t *testing.T) string {
	t.Helper()
	testserver.NeedIntegration(t)
	bin := filepath.Join(testserver.RepoRoot(), "bin", "rest-server")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("rest-server is required (%s=1) but missing: run hack/build-peers.sh rest-server", testserver.IntegrationEnv)
	}
	return bin
}

// startRestServer runs rest-server over dataDir with args, stops it when
// the test ends, and returns its host:port once it accepts connections.
func startRestServer(t *testing.T, dataDir string, args ...string) string {
	t.Helper()
	bin := restServerBin(t)
	addr := fmt.Sprintf("127.0.0.1:%d", testserver.FreePort(t))
	logf, err := os.Create(filepath.Join(t.TempDir(), "rest-server.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, append([]string{"--path", dataDir, "--listen", addr}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start rest-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			out, _ := os.ReadFile(logf.Name())
			t.Fatalf("rest-server did not listen on %s: %v\n%s", addr, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dirObjects reads a repository rest-server keeps in dir.
func dirObjects(t *testing.T, dir string) repoObjects {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		data, err := os.ReadFile(p)
		files[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return objectsFromPaths(t, files)
}

// TestRESTBackend has restic 0.18.1 write a repository through rest-server
// without authentication, then reads it back: directly, with protocol v1
// listings, and over TLS with CA_CERT_DATA.
func TestRESTBackend(t *testing.T) {
	r := testserver.ResticCLI(t, testserver.ResticNewest)
	data := t.TempDir()
	addr := startRestServer(t, data, "--no-auth")
	r.Setenv("RESTIC_REPOSITORY", "rest:http://"+addr+"/stash-demo/")
	resticWrite(t, r)
	want := dirObjects(t, filepath.Join(data, "stash-demo"))

	t.Run("v2", func(t *testing.T) {
		be, err := NewRESTBackend(&location.RestOptions{URL: "http://" + addr + "/stash-demo"})
		if err != nil {
			t.Fatal(err)
		}
		if be.String() != "rest:http://"+addr+"/stash-demo" {
			t.Errorf("String() = %q", be.String())
		}
		checkBackend(t, be, want, r, true)
	})

	t.Run("v1 listings", func(t *testing.T) {
		// A proxy that drops Accept: rest-server then answers lists in
		// protocol v1, names only.
		target, _ := url.Parse("http://" + addr)
		var v1 atomic.Int32
		proxy := httputil.NewSingleHostReverseProxy(target)
		direct := proxy.Director
		proxy.Director = func(req *http.Request) { direct(req); req.Header.Del("Accept") }
		proxy.ModifyResponse = func(resp *http.Response) error {
			if resp.Header.Get("Content-Type") == restContentTypeV1 {
				v1.Add(1)
			}
			return nil
		}
		srv := httptest.NewServer(proxy)
		defer srv.Close()
		be, err := NewRESTBackend(&location.RestOptions{URL: srv.URL + "/stash-demo/"})
		if err != nil {
			t.Fatal(err)
		}
		checkBackend(t, be, want, r, true)
		if v1.Load() == 0 {
			t.Fatal("no listing came in protocol v1: the fallback was not exercised")
		}
	})

	t.Run("TLS with CA_CERT_DATA", func(t *testing.T) {
		certs := testserver.NewTLS(t, "client")
		dir := t.TempDir()
		cert, key := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if err := os.WriteFile(cert, certs.ServerCert, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(key, certs.ServerKey, 0o600); err != nil {
			t.Fatal(err)
		}
		tlsAddr := startRestServer(t, data, "--no-auth", "--tls", "--tls-cert", cert, "--tls-key", key)
		u := "https://" + tlsAddr + "/stash-demo"
		be, err := NewRESTBackend(&location.RestOptions{URL: u, RootCA: certs.CA})
		if err != nil {
			t.Fatal(err)
		}
		checkBackend(t, be, want, r, true)

		be, err = NewRESTBackend(&location.RestOptions{URL: u})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := be.Get(t.Context(), ConfigFile, "", 0, -1); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("without the CA: %v, want a certificate error", err)
		}
		if _, err := NewRESTBackend(&location.RestOptions{URL: u, RootCA: []byte("not PEM")}); err == nil || !strings.Contains(err.Error(), "CA_CERT_DATA holds no PEM certificate") {
			t.Errorf("CA_CERT_DATA not PEM: %v", err)
		}
	})

	t.Run("missing repository", func(t *testing.T) {
		be, err := NewRESTBackend(&location.RestOptions{URL: "http://" + addr + "/no-such-repo"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := be.Get(t.Context(), ConfigFile, "", 0, -1); !errors.Is(err, ErrNotExist) {
			t.Errorf("config of a missing repository: %v, want ErrNotExist", err)
		}
	})
}

// TestRESTBackendBasicAuth has restic write through a rest-server that
// checks an htpasswd file, then reads with the Secret's username and
// password; a wrong or missing password gets an error that says which
// Secret keys to check and holds no password.
func TestRESTBackendBasicAuth(t *testing.T) {
	r := testserver.ResticCLI(t, testserver.ResticNewest)
	const user, pw, wrong = "stash", "right-REST-password", "wrong-REST-password"
	data := t.TempDir()
	sum := sha1.Sum([]byte(pw))
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(user+":{SHA}"+base64.StdEncoding.EncodeToString(sum[:])+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := startRestServer(t, data, "--htpasswd-file", htpasswd)
	// Stash gave restic the credentials in the URL.
	r.Setenv("RESTIC_REPOSITORY", "rest:http://"+user+":"+pw+"@"+addr+"/stash-demo/")
	resticWrite(t, r)
	want := dirObjects(t, filepath.Join(data, "stash-demo"))

	u := "http://" + addr + "/stash-demo"
	be, err := NewRESTBackend(&location.RestOptions{URL: u, Username: user, Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	checkBackend(t, be, want, r, true)

	for _, c := range []struct {
		name     string
		o        location.RestOptions
		wantErrs []string
	}{
		{"wrong password", location.RestOptions{URL: u, Username: user, Password: wrong},
			[]string{`the server refused user "stash"`, "REST_SERVER_USERNAME and REST_SERVER_PASSWORD"}},
		{"no credentials", location.RestOptions{URL: u},
			[]string{"the server wants a login", "REST_SERVER_USERNAME and REST_SERVER_PASSWORD"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			be, err := NewRESTBackend(&c.o)
			if err != nil {
				t.Fatal(err)
			}
			_, gerr := be.Get(t.Context(), ConfigFile, "", 0, -1)
			lerr := be.List(t.Context(), SnapshotFile, func(string, int64) error { return nil })
			for _, err := range []error{gerr, lerr} {
				if err == nil {
					t.Fatal("no error")
				}
				if errors.Is(err, ErrNotExist) {
					t.Errorf("%v: wraps ErrNotExist", err)
				}
				for _, w := range c.wantErrs {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				if strings.Contains(err.Error(), pw) || strings.Contains(err.Error(), wrong) {
					t.Errorf("error holds a password: %v", err)
				}
			}
			t.Logf("%s: %v", c.name, gerr)
		})
	}
}

// TestRESTBackendRefusesCredentialsInURL checks that NewRESTBackend
// takes credentials only as options, and never shows a URL's password.
func TestRESTBackendRefusesCredentialsInURL(t *testing.T) {
	_, err := NewRESTBackend(&location.RestOptions{URL: "http://u:URL-PASSWORD@127.0.0.1:1/r"})
	if err == nil || strings.Contains(err.Error(), "URL-PASSWORD") || !strings.Contains(err.Error(), "has credentials in it") {
		t.Fatalf("got %v", err)
	}
	if _, err := NewRESTBackend(&location.RestOptions{URL: "ftp://127.0.0.1/r"}); err == nil {
		t.Fatal("ftp URL accepted")
	}
}
