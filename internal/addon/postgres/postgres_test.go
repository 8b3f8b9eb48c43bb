package postgres

import (
	"github.com/stash-backup/stash/internal/repository/location"

	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kopia/kopia/repo/blob/filesystem"
	"github.com/kopia/kopia/repo/blob/s3"

	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/appbinding"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/testserver"
)

const schema = `
CREATE ROLE reporter LOGIN PASSWORD 'reporter-pw';
CREATE DATABASE shop;
CREATE DATABASE analytics OWNER reporter;
\connect shop
CREATE EXTENSION IF NOT EXISTS plpgsql;
CREATE SEQUENCE order_no START 1000 INCREMENT 7;
CREATE TABLE items (
  id bigserial PRIMARY KEY,
  n numeric(20,6), f double precision, i smallint, b boolean,
  doc json, docb jsonb, raw bytea, tags text[], nums int[],
  at timestamptz, day date, t time, span interval, uid uuid,
  name text COLLATE "C", note varchar(200), addr inet, price money
);
CREATE INDEX items_docb ON items USING gin (docb);
CREATE UNIQUE INDEX items_name ON items (name);
INSERT INTO items (n, f, i, b, doc, docb, raw, tags, nums, at, day, t, span, uid, name, note, addr, price)
SELECT g * 1.5, g / 3.0, g % 100, g % 2 = 0, json_build_object('g', g), jsonb_build_object('k', g, 'arr', jsonb_build_array(g, 'x')),
       decode(md5(g::text), 'hex'), ARRAY['a' || g, 'ünïcødé ✓'], ARRAY[g, g * 2],
       '2024-03-10 12:00:00+05:30'::timestamptz + g * interval '1 hour', '2024-01-01'::date + g, '12:34:56', g * interval '1 minute',
       md5(g::text)::uuid, 'item-' || g, repeat('é', g % 50), ('10.0.' || (g % 250) || '.1')::inet, g * 0.25
FROM generate_series(1, 40000) g;
CREATE VIEW expensive AS SELECT id, name, n FROM items WHERE n > 1000;
CREATE FUNCTION add_tax(x numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT x * 1.2 $$;
CREATE PROCEDURE bump(delta int) LANGUAGE plpgsql AS $$ BEGIN UPDATE items SET i = i + delta WHERE id = 1; END $$;
CREATE TABLE audit (at timestamptz DEFAULT now(), what text);
CREATE FUNCTION log_insert() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit(what) VALUES (NEW.name); RETURN NEW; END $$;
CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW EXECUTE FUNCTION log_insert();
SELECT setval('order_no', 5000);
SELECT lo_from_bytea(424242, convert_to(repeat('large object ', 1000), 'UTF8'));
GRANT SELECT ON items TO reporter;
\connect analytics
CREATE TABLE events (id serial, payload jsonb);
INSERT INTO events (payload) SELECT jsonb_build_object('e', g) FROM generate_series(1, 500) g;
`

// fingerprint summarises what a restore must bring back: rows, definitions,
// sequences, large objects, roles and grants.
func fingerprint(t *testing.T, pg *testserver.Postgres) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(pg.SQL(t, "postgres", `SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database;
SELECT string_agg(rolname || ':' || rolcanlogin, ',' ORDER BY rolname) FROM pg_roles WHERE rolname NOT LIKE 'pg_%';`))
	b.WriteString(pg.SQL(t, "shop", `SELECT md5(string_agg(x::text, '|' ORDER BY x.id)) FROM items x;
SELECT count(*) FROM items;
SELECT md5(string_agg(pg_get_viewdef(c.oid), '|')) FROM pg_class c WHERE relkind = 'v' AND relnamespace = 'public'::regnamespace;
SELECT md5(string_agg(pg_get_functiondef(p.oid), '|' ORDER BY proname)) FROM pg_proc p WHERE pronamespace = 'public'::regnamespace;
SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal;
SELECT string_agg(indexname || '=' || indexdef, '|' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public';
SELECT last_value FROM order_no;
SELECT md5(lo_get(424242));
SELECT has_table_privilege('reporter', 'items', 'SELECT');
SELECT add_tax(10);`))
	b.WriteString(pg.SQL(t, "analytics", `SELECT md5(string_agg(e::text, '|' ORDER BY e.id)) FROM events e; SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'analytics';`))
	return b.String()
}

func options(pg *testserver.Postgres) Options {
	return Options{
		Conn:   &appbinding.Connection{Host: pg.Host, Port: pg.Port, Username: pg.User, Password: pg.Password},
		BinDir: pg.BinDir,
	}
}

func openRepo(t *testing.T) *repository.Repository {
	t.Helper()
	ctx := context.Background()
	o := repository.Options{Location: &location.Location{Kind: location.KindLocal,
		Filesystem: &filesystem.Options{Path: filepath.Join(t.TempDir(), "repo")}}, Password: "pw"}
	r, err := repository.OpenOrInit(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func TestBackupDropRestore(t *testing.T) {
	ctx := context.Background()
	pg := testserver.StartPostgres(t)
	pg.SQL(t, "postgres", schema)
	// Bulk enough that a small change is a small part of the dump whatever
	// the chunk boundaries: chunks reach 4 MiB, and the chunker is keyed
	// per repository, so where they fall differs from run to run, and a
	// change may store again up to two whole chunks.
	pg.SQL(t, "shop", `CREATE TABLE bulk AS SELECT g AS id, 'row ' || g || ' ' || md5(g::text) || md5((g * 7)::text) || repeat('x', g % 200) AS line
FROM generate_series(1, 100000) AS g;`)
	want := fingerprint(t, pg)
	r := openRepo(t)
	o := options(pg)
	if err := Wait(ctx, o, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	if st.Path != DumpFile || st.TotalBytes < 100<<10 {
		t.Fatalf("stats %+v", st)
	}
	// A small change adds a small fraction of the first backup's bytes.
	pg.SQL(t, "shop", "UPDATE items SET note = 'changed' WHERE id < 5;")
	st2, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	if st2.UploadedBytes*4 > st.UploadedBytes {
		t.Errorf("second backup uploaded %d bytes, first %d", st2.UploadedBytes, st.UploadedBytes)
	}
	first, err := r.Resolve(ctx, st.Name, repository.Filter{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}

	// Drop everything, and give the server's postgres role a new password
	// that the restore must keep.
	pg.SQL(t, "postgres", "DROP DATABASE shop; DROP DATABASE analytics; DROP ROLE reporter; ALTER ROLE postgres PASSWORD 'rotated';")
	pg.Password = "rotated"
	o = options(pg)
	if err := restoreSnapshot(ctx, r, first, o); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, pg); got != want {
		t.Errorf("restored database differs:\n got %s\nwant %s", got, want)
	}
}

func TestRestoreStopsAtFirstError(t *testing.T) {
	ctx := context.Background()
	pg := testserver.StartPostgres(t)
	pg.SQL(t, "postgres", "CREATE DATABASE one; \\connect one\n CREATE TABLE t (x int); INSERT INTO t VALUES (1);")
	r := openRepo(t)
	o := options(pg)
	st, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Resolve(ctx, st.Name, repository.Filter{})
	// Restoring onto the same server fails: database one exists. The
	// name psql quotes is redacted (dump.RedactTail); the statement's
	// head names it.
	err = restoreSnapshot(ctx, r, s, o)
	if err == nil || !strings.Contains(err.Error(), `database "…" already exists`) || !strings.Contains(err.Error(), "CREATE DATABASE one") {
		t.Fatalf("err = %v", err)
	}
}

// TestBrokenStreamRunsNoPartialStatement: when the stream from the
// repository breaks off in the middle of a COPY, psql must not end the
// COPY at the end of its input, which commits the rows it got, and the
// repository's error is reported. The rows are more than the restore's
// 1 MiB write buffer, so that psql has received some of them.
func TestBrokenStreamRunsNoPartialStatement(t *testing.T) {
	ctx := context.Background()
	pg := testserver.StartPostgres(t)
	pg.SQL(t, "postgres", "CREATE TABLE torn (x int); INSERT INTO torn VALUES (1);")
	err := restore(ctx, options(pg), func(w io.Writer) error {
		if _, err := io.WriteString(w, "COPY torn (x) FROM stdin;\n"+strings.Repeat("2\n", 1<<20)); err != nil {
			return err
		}
		return errors.New("read pack blob: unexpected EOF")
	})
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("err = %v, want the stream's error", err)
	}
	if got := strings.TrimSpace(pg.SQL(t, "postgres", "SELECT count(*) FROM torn;")); got != "1" {
		t.Fatalf("torn holds %s rows, want 1: psql committed the cut-off COPY", got)
	}
}

// TestRestoreIntoPositionalDatabase: a database named in --pg-args as
// psql's positional argument, as Stash's own pipelines passed it, is where
// a restore goes, and a pg_dump backup reads the database named so.
func TestRestoreIntoPositionalDatabase(t *testing.T) {
	ctx := context.Background()
	pg := testserver.StartPostgres(t)
	pg.SQL(t, "postgres", "CREATE DATABASE one; CREATE DATABASE two; \\connect one\n CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 7);")
	r := openRepo(t)
	o := options(pg)
	o.Conn.Database = "postgres" // the AppBinding names another database
	o.BackupCmd, o.Args = "pg_dump", []string{"one"}
	st, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Resolve(ctx, st.Name, repository.Filter{})
	o.Args = []string{"two"}
	if err := restoreSnapshot(ctx, r, s, o); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(pg.SQL(t, "two", "SELECT count(*) FROM t;")); got != "7" {
		t.Fatalf("database two holds %s rows of t, want 7", got)
	}
}

func TestFailedDumpLeavesNoSnapshot(t *testing.T) {
	ctx := context.Background()
	pg := testserver.StartPostgres(t)
	pg.SQL(t, "postgres", "CREATE DATABASE big; \\connect big\n CREATE TABLE b AS SELECT g, repeat(md5(g::text), 8) AS pad FROM generate_series(1, 400000) g;")
	r := openRepo(t)
	o := options(pg)
	var stopped sync.Once
	var fed atomic.Int64
	_, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0", Progress: progressFunc(func(n int64) {
		// Kill the server once part of the dump went through.
		if fed.Add(n) > 4<<20 {
			stopped.Do(pg.Stop)
		}
	})})
	if err == nil || !strings.Contains(err.Error(), "pg_dumpall failed") {
		t.Fatalf("backup of a killed server: %v", err)
	}
	snaps, serr := r.Snapshots(ctx, repository.Filter{})
	if serr != nil || len(snaps) != 0 {
		t.Fatalf("snapshots after a failed dump: %v %v", snaps, serr)
	}
	// And a server that is not there fails the wait with a clear message.
	werr := Wait(ctx, o, 2*time.Second)
	if werr == nil || !strings.Contains(werr.Error(), "not ready after 2s") {
		t.Errorf("wait: %v", werr)
	}
	if errors.Is(werr, context.DeadlineExceeded) {
		t.Error("wait returned a bare deadline error")
	}

	// A backup started while the server is down does not ask first: its
	// dump fails without output, and runs again once the server answers.
	started := make(chan struct{})
	go func() {
		defer close(started)
		time.Sleep(1500 * time.Millisecond)
		pg.Start(t)
	}()
	calls := 0
	st, err := dump.BackupWhenReady(ctx,
		func(ctx context.Context) error { return Wait(ctx, o, 60*time.Second) },
		func(ctx context.Context) (*repository.SnapshotStats, error) {
			calls++
			return backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
		})
	<-started
	if err != nil {
		t.Fatalf("backup while the server starts: %v", err)
	}
	if calls != 2 || st.TotalBytes < 20<<20 {
		t.Errorf("backup ran %d times (want 2: refused, then after the wait) and stored %d bytes", calls, st.TotalBytes)
	}
}

type progressFunc func(int64)

func (f progressFunc) Add(n int64) { f(n) }

// TestBackupRestoreOnMinIO runs the dump and restore through an S3
// repository on a real MinIO server.
func TestBackupRestoreOnMinIO(t *testing.T) {
	ctx := context.Background()
	srv := testserver.StartMinIO(t)
	srv.MakeBucket(t, "pg-dumps")
	r, err := repository.OpenOrInit(ctx, repository.Options{Password: "pw", Location: &location.Location{Kind: location.KindS3,
		S3: &s3.Options{Endpoint: srv.Endpoint, DoNotUseTLS: true, BucketName: "pg-dumps", Prefix: "demo/",
			AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	pg := testserver.StartPostgres(t)
	pg.SQL(t, "postgres", schema)
	want := fingerprint(t, pg)
	o := options(pg)
	st, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.Resolve(ctx, st.Name, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	pg.SQL(t, "postgres", "DROP DATABASE shop; DROP DATABASE analytics; DROP ROLE reporter;")
	if err := restoreSnapshot(ctx, r, s, o); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, pg); got != want {
		t.Errorf("restored database differs:\n got %s\nwant %s", got, want)
	}
}

// TestClientCertificate backs up and restores a server that accepts only
// TLS logins with a client certificate (the AppBinding's tlsSecret), and
// verifies the server against the caBundle.
func TestClientCertificate(t *testing.T) {
	ctx := context.Background()
	tls := testserver.NewTLS(t, "postgres")
	pg := testserver.StartPostgresTLS(t, tls)
	pg.LocalSQL(t, "postgres", "CREATE DATABASE secure; \\connect secure\n CREATE TABLE t (x int); INSERT INTO t SELECT generate_series(1, 1000);")
	r := openRepo(t)
	conn := &appbinding.Connection{Host: pg.Host, Port: pg.Port, Username: "postgres", CABundle: tls.CA}
	o := Options{Conn: conn, BinDir: pg.BinDir, ScratchDir: t.TempDir()}
	// Without the client certificate the server refuses the login.
	if _, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"}); err == nil {
		t.Fatal("backup without a client certificate succeeded")
	}
	if err := appbinding.ApplyTLS(conn, map[string][]byte{"tls.crt": tls.ClientCert, "tls.key": tls.ClientKey}); err != nil {
		t.Fatal(err)
	}
	if err := Wait(ctx, o, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Resolve(ctx, st.Name, repository.Filter{})
	pg.LocalSQL(t, "postgres", "DROP DATABASE secure;")
	if err := restoreSnapshot(ctx, r, s, o); err != nil {
		t.Fatal(err)
	}
	if got := pg.LocalSQL(t, "secure", "SELECT count(*) FROM t"); got != "1000" {
		t.Errorf("restored rows %s", got)
	}
	// A CA that did not sign the server's certificate fails the check,
	// unless the AppBinding says insecureSkipTLSVerify.
	conn.CABundle = testserver.NewTLS(t, "postgres").CA
	if _, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"}); err == nil || !strings.Contains(err.Error(), "certificate verify failed") {
		t.Fatalf("backup against another CA: %v, want the server's certificate refused", err)
	}
	conn.InsecureSkipTLSVerify = true
	if _, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"}); err != nil {
		t.Fatalf("insecureSkipTLSVerify with another CA: %v", err)
	}
	if err := appbinding.ApplyTLS(conn, map[string][]byte{"tls.crt": tls.ClientCert}); err == nil {
		t.Error("a certificate without its key was accepted")
	}
	if left, _ := os.ReadDir(o.ScratchDir); len(left) != 0 {
		t.Errorf("the CA, certificate and key outlived the tools: %d entries in the scratch directory", len(left))
	}
}
