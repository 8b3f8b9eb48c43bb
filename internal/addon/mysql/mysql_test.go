package mysql

import (
	"github.com/stash-backup/stash/internal/repository/location"

	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kopia/kopia/repo/blob/s3"

	"github.com/stash-backup/stash/internal/addon/addontest"
	"github.com/stash-backup/stash/internal/appbinding"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/testserver"
)

const schema = `
CREATE DATABASE shop CHARACTER SET utf8mb4;
CREATE DATABASE crm;
CREATE USER 'reporter'@'%' IDENTIFIED BY 'reporter-pw';
GRANT SELECT ON shop.* TO 'reporter'@'%';
USE shop;
CREATE TABLE items (
  id BIGINT AUTO_INCREMENT PRIMARY KEY,
  n DECIMAL(20,6), f DOUBLE, small TINYINT, flag BOOLEAN, doc JSON, raw BLOB,
  name VARCHAR(100) CHARACTER SET utf8mb4 UNIQUE, note TEXT, at DATETIME(3), ts TIMESTAMP NULL,
  day DATE, t TIME, color ENUM('red','green','blue'), opts SET('a','b','c'), bits BIT(8)
) ENGINE=InnoDB;
CREATE INDEX items_n ON items (n);
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(100));
CREATE TRIGGER items_audit AFTER INSERT ON items FOR EACH ROW INSERT INTO audit(what) VALUES (NEW.name);
INSERT INTO items (n, f, small, flag, doc, raw, name, note, at, ts, day, t, color, opts, bits)
SELECT seq * 1.5, seq / 3, seq % 100, seq % 2, JSON_OBJECT('k', seq, 'arr', JSON_ARRAY(seq, 'x')), UNHEX(MD5(seq)),
       CONCAT('item-', seq, '-ünïcødé ✓'), REPEAT('é', seq % 40), '2024-03-10 12:00:00.123' + INTERVAL seq HOUR,
       '2024-03-10 12:00:00' + INTERVAL seq MINUTE, '2024-01-01' + INTERVAL seq DAY, '12:34:56',
       ELT(1 + seq % 3, 'red', 'green', 'blue'), 'a,c', seq % 256
FROM seq_1_to_20000;
CREATE VIEW expensive AS SELECT id, name, n FROM items WHERE n > 1000;
CREATE FUNCTION add_tax(x DECIMAL(20,6)) RETURNS DECIMAL(20,6) DETERMINISTIC RETURN x * 1.2;
CREATE PROCEDURE bump(IN delta INT) UPDATE items SET small = small + delta WHERE id = 1;
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM audit WHERE id < 0;
USE crm;
CREATE TABLE contacts (id INT PRIMARY KEY, email VARCHAR(200)) ENGINE=InnoDB;
INSERT INTO contacts SELECT seq, CONCAT('c', seq, '@example.com') FROM seq_1_to_500;
`

func fingerprint(t *testing.T, m *testserver.MariaDB) string {
	t.Helper()
	return m.SQL(t, `
SELECT GROUP_CONCAT(schema_name ORDER BY schema_name) FROM information_schema.schemata;
SELECT GROUP_CONCAT(CONCAT(user, '@', host) ORDER BY user, host) FROM mysql.user WHERE user NOT IN ('mariadb.sys', 'mysql');
CHECKSUM TABLE shop.items, shop.audit, crm.contacts EXTENDED;
SELECT COUNT(*), MAX(id) FROM shop.items;
SELECT MD5(GROUP_CONCAT(name, doc, HEX(raw), bits ORDER BY id)) FROM shop.items;
SELECT GROUP_CONCAT(table_name, ':', IFNULL(auto_increment, 0) ORDER BY table_name) FROM information_schema.tables WHERE table_schema = 'shop';
SELECT GROUP_CONCAT(routine_name, ':', MD5(routine_definition) ORDER BY routine_name) FROM information_schema.routines WHERE routine_schema = 'shop';
SELECT GROUP_CONCAT(trigger_name ORDER BY trigger_name) FROM information_schema.triggers WHERE trigger_schema = 'shop';
SELECT GROUP_CONCAT(event_name, ':', status ORDER BY event_name) FROM information_schema.events WHERE event_schema = 'shop';
SELECT MD5(view_definition) FROM information_schema.views WHERE table_schema = 'shop';
SELECT GROUP_CONCAT(index_name ORDER BY index_name) FROM information_schema.statistics WHERE table_schema = 'shop' AND table_name = 'items';
SHOW GRANTS FOR 'reporter'@'%';
SELECT shop.add_tax(10);`)
}

func options(m *testserver.MariaDB) Options {
	return Options{Conn: &appbinding.Connection{Host: m.Host, Port: m.Port, Username: m.User, Password: m.Password}}
}

func openRepo(t *testing.T) *repository.Repository { t.Helper(); return addontest.OpenRepo(t) }

func TestBackupDropRestore(t *testing.T) {
	ctx := context.Background()
	m := testserver.StartMariaDB(t)
	m.SQL(t, schema)
	// Bulk enough that a small change is a small part of the dump whatever
	// the chunk boundaries: chunks reach 4 MiB, and the chunker is keyed
	// per repository, so where they fall differs from run to run, and a
	// change may store again up to two whole chunks.
	m.SQL(t, `USE shop; CREATE TABLE bulk (id INT PRIMARY KEY, line VARCHAR(400));
INSERT INTO bulk SELECT seq, CONCAT('row ', seq, ' ', SHA2(seq, 256), ' ', REPEAT('x', seq % 200)) FROM seq_1_to_100000;`)
	want := fingerprint(t, m)
	r := openRepo(t)
	o := options(m)
	if err := Wait(ctx, o, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	st, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	// An unchanged server dumps to the same bytes (no completion date in
	// the dump), so a second backup stores no new data.
	same, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	if same.TotalBytes != st.TotalBytes || same.UploadedBytes*10 > st.UploadedBytes {
		t.Errorf("backup of an unchanged server: %d bytes (first %d), uploaded %d (first %d)", same.TotalBytes, st.TotalBytes, same.UploadedBytes, st.UploadedBytes)
	}
	m.SQL(t, "UPDATE shop.items SET note = 'changed' WHERE id < 5;")
	st2, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	if st2.UploadedBytes*4 > st.UploadedBytes {
		t.Errorf("second backup uploaded %d bytes, first %d", st2.UploadedBytes, st.UploadedBytes)
	}
	first, err := r.Resolve(ctx, st.Name, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	m.SQL(t, "DROP DATABASE shop; DROP DATABASE crm; DROP USER 'reporter'@'%';")
	if err := restoreSnapshot(ctx, r, first, o); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, m); got != want {
		t.Errorf("restored server differs:\n got %s\nwant %s", got, want)
	}
}

func TestRestoreReportsFailingStatement(t *testing.T) {
	ctx := context.Background()
	m := testserver.StartMariaDB(t)
	m.SQL(t, "CREATE DATABASE one; CREATE TABLE one.t (x INT PRIMARY KEY); INSERT INTO one.t VALUES (1);")
	r := openRepo(t)
	o := options(m)
	o.Args = []string{"one"} // a single database: the dump has no CREATE DATABASE, its INSERT collides
	st, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Resolve(ctx, st.Name, repository.Filter{})
	m.SQL(t, "CREATE DATABASE two;")
	o.Args = nil
	err = restoreSnapshot(ctx, r, s, o)
	if err == nil || !strings.Contains(err.Error(), "No database selected") || !strings.Contains(err.Error(), "dump line") {
		t.Fatalf("err = %v", err)
	}
}

// TestBrokenStreamRunsNoPartialStatement: when the stream from the
// repository breaks off in the middle of a statement, the mysql client
// must not run the part it got, and the repository's error is reported.
func TestBrokenStreamRunsNoPartialStatement(t *testing.T) {
	ctx := context.Background()
	m := testserver.StartMariaDB(t)
	m.SQL(t, "CREATE DATABASE torn; CREATE TABLE torn.t (x INT); INSERT INTO torn.t VALUES (1);")
	err := restore(ctx, options(m), func(w io.Writer) error {
		// Cut off from "DELETE FROM torn.t WHERE x > 1;".
		if _, err := io.WriteString(w, "DELETE FROM torn.t\n"); err != nil {
			return err
		}
		return errors.New("read pack blob: unexpected EOF")
	})
	if err == nil || !strings.Contains(err.Error(), "unexpected EOF") {
		t.Fatalf("err = %v, want the stream's error", err)
	}
	if got := strings.TrimSpace(m.SQL(t, "SELECT count(*) FROM torn.t;")); !strings.HasSuffix(got, "1") {
		t.Fatalf("torn.t holds %q rows, want 1: mysql ran the cut-off statement", got)
	}
}

func TestKilledServerLeavesNoSnapshot(t *testing.T) {
	ctx := context.Background()
	m := testserver.StartMariaDB(t)
	m.SQL(t, "CREATE DATABASE big; USE big; CREATE TABLE big.b (id INT PRIMARY KEY, pad TEXT); INSERT INTO big.b SELECT seq, REPEAT(MD5(seq), 8) FROM seq_1_to_400000;")
	r := openRepo(t)
	var once sync.Once
	var fed atomic.Int64
	_, err := backup(ctx, r, options(m), repository.BackupOptions{Host: "host-0", Progress: progressFunc(func(n int64) {
		if fed.Add(n) > 4<<20 {
			once.Do(m.Stop)
		}
	})})
	if err == nil || !strings.Contains(err.Error(), "mysqldump failed") {
		t.Fatalf("backup of a killed server: %v", err)
	}
	if snaps, _ := r.Snapshots(ctx, repository.Filter{}); len(snaps) != 0 {
		t.Fatalf("%d snapshots after a failed dump", len(snaps))
	}
}

func TestDumpArgs(t *testing.T) {
	if got := strings.Join(DumpArgs(nil), " "); got != "--single-transaction --routines --events --triggers --flush-privileges --skip-dump-date --all-databases" {
		t.Errorf("default %q", got)
	}
	if got := strings.Join(DumpArgs([]string{"--databases", "a", "b"}), " "); got != "--single-transaction --routines --events --triggers --flush-privileges --skip-dump-date --databases a b" {
		t.Errorf("user %q", got)
	}
}

type progressFunc func(int64)

func (f progressFunc) Add(n int64) { f(n) }

// TestBackupRestoreOnMinIO runs a MariaDB dump and restore through an S3
// repository on a real MinIO server.
func TestBackupRestoreOnMinIO(t *testing.T) {
	ctx := context.Background()
	srv := testserver.StartMinIO(t)
	srv.MakeBucket(t, "maria-dumps")
	r, err := repository.OpenOrInit(ctx, repository.Options{Password: "pw", Location: &location.Location{Kind: location.KindS3,
		S3: &s3.Options{Endpoint: srv.Endpoint, DoNotUseTLS: true, BucketName: "maria-dumps", Prefix: "demo/",
			AccessKeyID: srv.AccessKey, SecretAccessKey: srv.SecretKey}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	m := testserver.StartMariaDB(t)
	m.SQL(t, schema)
	want := fingerprint(t, m)
	o := options(m)
	st, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Resolve(ctx, st.Name, repository.Filter{})
	m.SQL(t, "DROP DATABASE shop; DROP DATABASE crm; DROP USER 'reporter'@'%';")
	if err := restoreSnapshot(ctx, r, s, o); err != nil {
		t.Fatal(err)
	}
	if got := fingerprint(t, m); got != want {
		t.Errorf("restored server differs:\n got %s\nwant %s", got, want)
	}
}

// TestClientCertificate backs up and restores as a user that must present
// a client certificate (REQUIRE X509), verifying the server against the CA.
func TestClientCertificate(t *testing.T) {
	ctx := context.Background()
	tls := testserver.NewTLS(t, "certuser")
	m := testserver.StartMariaDBTLS(t, tls)
	m.SocketSQL(t, "CREATE USER 'certuser'@'%' IDENTIFIED BY 'cert-pw' REQUIRE X509; GRANT ALL ON *.* TO 'certuser'@'%';"+
		"CREATE DATABASE secure; CREATE TABLE secure.t (x INT); INSERT INTO secure.t SELECT seq FROM secure.seq_1_to_1000;")
	r := openRepo(t)
	conn := &appbinding.Connection{Host: "127.0.0.1", Port: m.Port, Username: "certuser", Password: "cert-pw", CABundle: tls.CA}
	o := Options{Conn: conn, Args: []string{"--databases", "secure"}, ScratchDir: t.TempDir()}
	if _, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"}); err == nil {
		t.Fatal("backup without a client certificate succeeded")
	}
	if err := appbinding.ApplyTLS(conn, map[string][]byte{"tls.crt": tls.ClientCert, "tls.key": tls.ClientKey}); err != nil {
		t.Fatal(err)
	}
	o = Options{Conn: conn, Args: []string{"--databases", "secure"}, ScratchDir: t.TempDir()}
	st, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := r.Resolve(ctx, st.Name, repository.Filter{})
	m.SocketSQL(t, "DROP DATABASE secure;")
	o.Args = nil
	if err := restoreSnapshot(ctx, r, s, o); err != nil {
		t.Fatal(err)
	}
	if got := m.SocketSQL(t, "SELECT COUNT(*) FROM secure.t"); got != "1000" {
		t.Errorf("restored rows %s", got)
	}
	// A CA that did not sign the server's certificate fails the check,
	// unless the AppBinding says insecureSkipTLSVerify.
	conn.CABundle = testserver.NewTLS(t, "certuser").CA
	o.Args = []string{"--databases", "secure"}
	if _, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"}); err == nil {
		t.Fatal("backup against another CA succeeded, want the server's certificate refused")
	}
	conn.InsecureSkipTLSVerify = true
	if _, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"}); err != nil {
		t.Fatalf("insecureSkipTLSVerify with another CA: %v", err)
	}
	if left, _ := os.ReadDir(o.ScratchDir); len(left) != 0 {
		t.Errorf("the CA, certificate and key outlived the tools: %d entries in the scratch directory", len(left))
	}
}

func TestParseMultiDump(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{"", "", false},
		{"$args=--databases a", "[[--databases a]]", false},
		{"$args=--no-data --databases a $args=--no-create-info --databases a", "[[--no-data --databases a] [--no-create-info --databases a]]", false},
		{"  $args= --databases a\n $args=--databases b ", "[[--databases a] [--databases b]]", false},
		{"--databases a", "", true},
		{"$args= $args=--databases b", "", true},
	}
	for _, tt := range tests {
		got, err := ParseMultiDump(tt.in)
		if (err != nil) != tt.wantErr || (err == nil && fmt.Sprint(got) != tt.want && !(tt.want == "" && got == nil)) {
			t.Errorf("ParseMultiDump(%q) = %v, %v; want %s (error %v)", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

// TestMultiDump backs up two databases with two mysqldump runs into one
// dump (Stash's multiDumpArgs), restores both, and checks that a failing
// second dump leaves no snapshot.
func TestMultiDump(t *testing.T) {
	ctx := context.Background()
	m := testserver.StartMariaDB(t)
	m.SQL(t, "CREATE DATABASE one; CREATE TABLE one.t (x INT PRIMARY KEY); INSERT INTO one.t VALUES (1),(2);"+
		"CREATE DATABASE two; CREATE TABLE two.u (y TEXT); INSERT INTO two.u VALUES ('a'),('b'),('c');")
	r := openRepo(t)
	o := options(m)
	var err error
	if o.MultiDump, err = ParseMultiDump("$args=--databases one $args=--databases two"); err != nil {
		t.Fatal(err)
	}
	st, err := backup(ctx, r, o, repository.BackupOptions{Host: "host-0"})
	if err != nil {
		t.Fatal(err)
	}
	m.SQL(t, "DROP DATABASE one; DROP DATABASE two;")
	s, err := r.Resolve(ctx, st.Name, repository.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	o.MultiDump = nil
	if err := restoreSnapshot(ctx, r, s, o); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(m.SQL(t, "SELECT (SELECT COUNT(*) FROM one.t), (SELECT COUNT(*) FROM two.u);")); got != "2\t3" {
		t.Errorf("restored counts %q", got)
	}

	o.MultiDump, _ = ParseMultiDump("$args=--databases one $args=--databases nosuch")
	_, err = backup(ctx, r, o, repository.BackupOptions{Host: "host-1"})
	if err == nil || !strings.Contains(err.Error(), "dump 2 of 2") {
		t.Fatalf("failing second dump: %v", err)
	}
	if snaps, _ := r.Snapshots(ctx, repository.Filter{Host: "host-1"}); len(snaps) != 0 {
		t.Fatalf("%d snapshots after a failed multi-dump", len(snaps))
	}
}
