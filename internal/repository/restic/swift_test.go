package restic

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ncw/swift/v2"
	"github.com/ncw/swift/v2/swifttest"

	"github.com/stash-backup/stash/internal/repository/location"
	"github.com/stash-backup/stash/internal/testserver"
)

// swifttest's one account: user and key are both "swifttest"
// (swifttest.TEST_ACCOUNT), authenticated at AuthURL with keystone v1.
var swiftAccount = swifttest.TEST_ACCOUNT

// TestSwiftBackend has restic 0.18.1 write a repository into an
// in-process Swift server (swifttest) under a prefix, as Stash did
// (swift:<container>:/<prefix>, ST_AUTH/ST_USER/ST_KEY), and reads it
// back through NewSwiftBackend.
func TestSwiftBackend(t *testing.T) {
	r := testserver.ResticCLI(t, testserver.ResticNewest)
	srv, err := swifttest.NewSwiftServer("localhost")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	const container, prefix = "stash-backups", "demo/app"
	r.Setenv("RESTIC_REPOSITORY", "swift:"+container+":/"+prefix)
	r.Setenv("ST_AUTH", srv.AuthURL)
	r.Setenv("ST_USER", swiftAccount)
	r.Setenv("ST_KEY", swiftAccount)
	resticWrite(t, r)

	ctx := t.Context()
	conn := &swift.Connection{AuthUrl: srv.AuthURL, UserName: swiftAccount, ApiKey: swiftAccount}
	if err := conn.Authenticate(ctx); err != nil {
		t.Fatal(err)
	}
	// What restic stored, read from the container directly.
	objs, err := conn.ObjectsAll(ctx, container, nil)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, o := range objs {
		rel, ok := strings.CutPrefix(o.Name, prefix+"/")
		if !ok {
			t.Fatalf("restic stored %s outside its prefix %s", o.Name, prefix)
		}
		if files[rel], err = conn.ObjectGetBytes(ctx, container, o.Name); err != nil {
			t.Fatal(err)
		}
	}
	want := objectsFromPaths(t, files)
	// Objects near the repository that are not part of it: a sibling
	// whose name shares the prefix's characters, a file in data/ outside
	// the shard directories, and an object in the container's root.
	for _, stray := range []string{"demo/apple/keys/" + strings.Repeat("cd", 32), prefix + "/data/README", prefix + "/keys/sub/x", "config"} {
		if err := conn.ObjectPutBytes(ctx, container, stray, []byte("not restic's"), "application/octet-stream"); err != nil {
			t.Fatal(err)
		}
	}

	opts := &location.SwiftOptions{Container: container, Prefix: prefix, AuthURL: srv.AuthURL, UserName: swiftAccount, APIKey: swiftAccount}
	be, err := NewSwiftBackend(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if be.String() != "swift:stash-backups:/demo/app" {
		t.Errorf("String() = %q", be.String())
	}
	checkBackend(t, be, want, r, false)

	t.Run("storage URL and token", func(t *testing.T) {
		be, err := NewSwiftBackend(ctx, &location.SwiftOptions{Container: container, Prefix: prefix, StorageURL: conn.StorageUrl, AuthToken: conn.AuthToken})
		if err != nil {
			t.Fatal(err)
		}
		checkBackend(t, be, want, r, false)
	})

	// swifttest answers a range that runs past an object's end with bytes
	// from beyond it (it slices the object's buffer up to its capacity),
	// with 200 and no Content-Range, so a short read cannot be seen
	// against it. Swift answers such a range as HTTP has it: 206 with the
	// range cut short in Content-Range, or 416 when it starts past the
	// end. Here the pack is served that way, as Swift would.
	t.Run("range past the end, as Swift answers it", func(t *testing.T) {
		var pack string
		for name := range want[PackFile] {
			pack = name
		}
		data := want[PackFile][pack]
		p := "/v1/AUTH_" + swiftAccount + "/" + container + "/" + prefix + "/" + defaultPath(PackFile, pack)
		srv.SetOverride(p, func(w http.ResponseWriter, r *http.Request, rec *httptest.ResponseRecorder) {
			w.Header().Set("Etag", rec.Header().Get("Etag"))
			http.ServeContent(w, r, "", time.Unix(0, 0), bytes.NewReader(data))
		})
		defer srv.UnsetOverride(p)
		checkPastEnd(t, be, pack, int64(len(data)))
		b, err := be.Get(ctx, PackFile, pack, 3, 50)
		if err != nil || !bytes.Equal(b, data[3:53]) {
			t.Errorf("get at 3+50 from a 206 answer: %d bytes, %v", len(b), err)
		}
	})

	t.Run("TLS with CA_CERT_DATA", func(t *testing.T) {
		// A TLS proxy in front of swifttest, reached by storage URL and
		// token.
		certs := testserver.NewTLS(t, "client")
		target, _ := url.Parse(srv.URL)
		proxy := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host}))
		cert, err := tls.X509KeyPair(certs.ServerCert, certs.ServerKey)
		if err != nil {
			t.Fatal(err)
		}
		proxy.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		proxy.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes below
		proxy.StartTLS()
		defer proxy.Close()
		storage := strings.Replace(conn.StorageUrl, "http://"+target.Host, proxy.URL, 1)
		o := &location.SwiftOptions{Container: container, Prefix: prefix, StorageURL: storage, AuthToken: conn.AuthToken, RootCA: certs.CA}
		be, err := NewSwiftBackend(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		if err := be.List(ctx, PackFile, func(string, int64) error { n++; return nil }); err != nil || n != len(want[PackFile]) {
			t.Errorf("list packs over TLS: %d, %v", n, err)
		}
		if b, err := be.Get(ctx, ConfigFile, "", 0, -1); err != nil || !bytes.Equal(b, want[ConfigFile][""]) {
			t.Errorf("get config over TLS: %d bytes, %v", len(b), err)
		}
		o.RootCA = nil
		if _, err := NewSwiftBackend(ctx, o); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("without the CA: %v, want a certificate error", err)
		} else {
			t.Logf("without the CA: %v", err)
		}
		o.RootCA = []byte("not PEM")
		if _, err := NewSwiftBackend(ctx, o); err == nil || !strings.Contains(err.Error(), "CA_CERT_DATA holds no PEM certificate") {
			t.Errorf("CA_CERT_DATA not PEM: %v", err)
		}
	})

	t.Run("wrong key", func(t *testing.T) {
		o := *opts
		o.APIKey = "WRONG-SWIFT-KEY"
		_, err := NewSwiftBackend(ctx, &o)
		if err == nil || !strings.Contains(err.Error(), "Authorization Failed") || !strings.Contains(err.Error(), "check the Swift credentials") {
			t.Fatalf("wrong key: %v", err)
		}
		if strings.Contains(err.Error(), o.APIKey) {
			t.Errorf("error holds the key: %v", err)
		}
		t.Log(err)
	})

	t.Run("missing container", func(t *testing.T) {
		o := *opts
		o.Container = "no-such-container"
		if _, err := NewSwiftBackend(ctx, &o); !errors.Is(err, ErrNotExist) {
			t.Fatalf("missing container: %v, want ErrNotExist", err)
		}
	})

	t.Run("missing repository", func(t *testing.T) {
		o := *opts
		o.Prefix = "demo/none"
		be, err := NewSwiftBackend(ctx, &o)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := be.Get(ctx, ConfigFile, "", 0, -1); !errors.Is(err, ErrNotExist) {
			t.Errorf("config of a missing repository: %v, want ErrNotExist", err)
		}
		n := 0
		if err := be.List(ctx, SnapshotFile, func(string, int64) error { n++; return nil }); err != nil || n != 0 {
			t.Errorf("list snapshots of a missing repository: %d, %v", n, err)
		}
	})

	t.Run("list stops at the callback's error", func(t *testing.T) {
		stop := errors.New("enough")
		n := 0
		err := be.List(ctx, PackFile, func(string, int64) error { n++; return stop })
		if err != stop || n != 1 {
			t.Errorf("got %v after %d calls, want the callback's error after 1", err, n)
		}
	})
}
