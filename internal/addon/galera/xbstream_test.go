package galera

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/addon/addontest"
	"github.com/stash-backup/stash/internal/appbinding"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/testserver"
)

// chunk builds one xbstream chunk, as mbstream writes it.
func chunk(typ byte, path string, payload []byte) []byte {
	return chunkAt(typ, path, payload, 0)
}

// chunkAt builds a payload chunk for offset off of its file.
func chunkAt(typ byte, path string, payload []byte, off uint64) []byte {
	var b bytes.Buffer
	b.WriteString(chunkMagic)
	b.WriteByte(0)
	b.WriteByte(typ)
	_ = binary.Write(&b, binary.LittleEndian, uint32(len(path)))
	b.WriteString(path)
	if typ == 'P' {
		_ = binary.Write(&b, binary.LittleEndian, uint64(len(payload)))
		_ = binary.Write(&b, binary.LittleEndian, off)
		_ = binary.Write(&b, binary.LittleEndian, crc32.ChecksumIEEE(payload))
		b.Write(payload)
	}
	return b.Bytes()
}

func file(path, content string) []byte {
	return append(chunk('P', path, []byte(content)), chunk('E', path, nil)...)
}

func stream(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// multi is a file of three chunks, another's interleaved between them, as
// mariabackup's parallel copy sends them.
var multi = stream(
	chunkAt('P', "db/big.ibd", []byte("first "), 0),
	chunkAt('P', "db/other.ibd", []byte("other"), 0),
	chunkAt('P', "db/big.ibd", []byte("second "), 6),
	chunk('E', "db/other.ibd", nil),
	chunkAt('P', "db/big.ibd", []byte("third"), 13),
	chunk('E', "db/big.ibd", nil),
)

var complete = stream(
	file("ibdata1", strings.Repeat("x", 100000)),
	file("db/t.ibd", "rows"),
	file(GaleraInfo, "dfd1e31e-f11d-11f1-8007-563ad326360f:17 0\n"),
	file(CompletionMarker, "backup_type = full-backuped\n"),
	file("xtrabackup_info", "tool_name = mariabackup\n"),
)

func TestChecker(t *testing.T) {
	badCRC := bytes.Clone(complete)
	badCRC[40+len("ibdata1")] ^= 0xff // inside ibdata1's payload
	for _, tc := range []struct {
		name string
		in   []byte
		want string // "" for complete
	}{
		{"complete", complete, ""},
		{"cut inside a payload", complete[:len(complete)/2], "ends inside a chunk"},
		{"cut inside a header", complete[:len(complete)-5], "ends inside a chunk"},
		{"no completion marker", stream(file("ibdata1", "x"), file(GaleraInfo, "u:1")), "no xtrabackup_checkpoints"},
		{"file not ended", stream(chunk('P', "ibdata1", []byte("x")), file(CompletionMarker, "y")), "ibdata1 has no end chunk"},
		{"damaged payload", badCRC, "checksum"},
		{"not an xbstream", []byte(strings.Repeat("garbage!", 10)), "no chunk at byte 0"},
		{"absolute path", file("/etc/passwd", "x"), "leaves the data directory"},
		{"parent path", file("../../etc/cron.d/x", "x"), "leaves the data directory"},
		{"path through parent", file("db/../../x", "x"), "leaves the data directory"},
		{"unknown chunk", chunk('Z', "x", nil), "unknown type"},
		{"empty file", stream(chunk('E', "empty", nil), file(CompletionMarker, "y")), ""},
		{"chunks in order", stream(multi, file(CompletionMarker, "y")), ""},
		{"a chunk out of order", stream(chunkAt('P', "f", []byte("ab"), 0), chunkAt('P', "f", []byte("cd"), 3), chunk('E', "f", nil), file(CompletionMarker, "y")), "out of order"},
		{"a file not starting at 0", stream(chunkAt('P', "f", []byte("ab"), 2), chunk('E', "f", nil), file(CompletionMarker, "y")), "out of order"},
		{"data after the end", stream(file("f", "ab"), chunkAt('P', "f", []byte("cd"), 2), chunk('E', "f", nil), file(CompletionMarker, "y")), "after its end chunk"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Fed in awkward pieces: a header or payload split across
			// writes must check the same.
			for _, step := range []int{1, 7, 4096, len(tc.in) + 1} {
				var out bytes.Buffer
				c := NewChecker(&out)
				var err error
				for i := 0; i < len(tc.in) && err == nil; i += step {
					_, err = c.Write(tc.in[i:min(i+step, len(tc.in))])
				}
				if err == nil {
					err = c.Close()
				}
				if tc.want == "" {
					if err != nil {
						t.Fatalf("step %d: %v", step, err)
					}
					if !bytes.Equal(out.Bytes(), tc.in) {
						t.Fatalf("step %d: the stream did not pass through unchanged", step)
					}
					continue
				}
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("step %d: got %v, want an error with %q", step, err, tc.want)
				}
			}
		})
	}
}

func TestCheckerPosition(t *testing.T) {
	c := NewChecker(io.Discard)
	if _, err := c.Write(complete); err != nil {
		t.Fatal(err)
	}
	pos, ok := c.Position()
	if !ok || pos.UUID != "dfd1e31e-f11d-11f1-8007-563ad326360f" || pos.Seqno != 17 {
		t.Fatalf("position %+v %v", pos, ok)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = NewChecker(io.Discard)
	_, _ = c.Write(complete[:100])
	if err := c.Close(); !errors.Is(err, ErrIncomplete) {
		t.Fatalf("a cut stream: %v, want ErrIncomplete", err)
	}
}

func TestParsePosition(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Position
		err  bool
	}{
		{"dfd1e31e-f11d-11f1-8007-563ad326360f:17 0\n", Position{"dfd1e31e-f11d-11f1-8007-563ad326360f", 17}, false},
		{"dfd1e31e-f11d-11f1-8007-563ad326360f:-1", Position{"dfd1e31e-f11d-11f1-8007-563ad326360f", -1}, false},
		{"", Position{}, true},
		{"dfd1e31e-f11d-11f1-8007-563ad326360f", Position{}, true},
		{"dfd1e31e-f11d-11f1-8007-563ad326360f:x", Position{}, true},
		{"not-a-uuid:5", Position{}, true},
		// Only the parsed values reach grastate.dat: a line added
		// after them cannot.
		{"dfd1e31e-f11d-11f1-8007-563ad326360f:5\nsafe_to_bootstrap: 1", Position{"dfd1e31e-f11d-11f1-8007-563ad326360f", 5}, false},
	} {
		got, err := ParsePosition(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("ParsePosition(%q) = %+v, %v", tc.in, got, err)
		}
	}
	g := Grastate(Position{"dfd1e31e-f11d-11f1-8007-563ad326360f", 17}, true)
	if !strings.Contains(g, "seqno:   17\n") || !strings.Contains(g, "safe_to_bootstrap: 1\n") {
		t.Fatalf("grastate:\n%s", g)
	}
	if g := Grastate(Position{"dfd1e31e-f11d-11f1-8007-563ad326360f", 17}, false); !strings.Contains(g, "safe_to_bootstrap: 0\n") {
		t.Fatalf("a joining node's grastate:\n%s", g)
	}
}

func TestParseArbitrator(t *testing.T) {
	for _, tc := range []struct {
		name, raw string
		cluster   bool
		err       string
	}{
		{"none", ``, false, ""},
		{"standalone", `{"apiVersion":"appcatalog.appscode.com/v1alpha1","kind":"StashAddon"}`, false, ""},
		{"kubedb", `{"address":"gcomm://px-0.px-gvr.demo,px-1.px-gvr.demo,px-2.px-gvr.demo","group":"px","sstMethod":"xtrabackup-v2","kind":"GaleraArbitratorConfiguration"}`, true, ""},
		{"ports and options", `{"address":"gcomm://10.0.0.1:4567,10.0.0.2:4567?pc.wait_prim=no","group":"g1","sstMethod":"mariabackup"}`, true, ""},
		{"no method", `{"address":"gcomm://a","group":"g"}`, true, "sstMethod is empty"},
		{"rsync", `{"address":"gcomm://a","group":"g","sstMethod":"rsync"}`, true, `sstMethod "rsync"`},
		{"not gcomm", `{"address":"a,b","group":"g","sstMethod":"mariabackup"}`, true, "gcomm://"},
		{"option injection", `{"address":"gcomm://a?x=1;socket.ssl=no","group":"g","sstMethod":"mariabackup"}`, true, "not name=value"},
		{"member injection", `{"address":"gcomm://a --sst=x","group":"g","sstMethod":"mariabackup"}`, true, "not host[:port]"},
		{"group injection", `{"address":"gcomm://a","group":"g --log=/etc/x","sstMethod":"mariabackup"}`, true, "group"},
		{"not json", `{`, false, "spec.parameters"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := ParseArbitrator([]byte(tc.raw))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want an error with %q", err, tc.err)
				}
				return
			}
			if err != nil || a.Cluster() != tc.cluster {
				t.Fatalf("got %+v, %v", a, err)
			}
		})
	}
	a := Arbitrator{Address: "gcomm://a,b?pc.wait_prim=no"}
	if got := a.garbdAddress("10.0.0.9:4567"); got != "gcomm://a,b?pc.wait_prim=no&gmcast.listen_addr=tcp://10.0.0.9:4567" {
		t.Fatal(got)
	}
}

func TestPhysicalDir(t *testing.T) {
	for _, tc := range []struct {
		flags map[string]string
		want  string
		err   bool
	}{
		{map[string]string{"target-app-replicas": "1"}, "", false},
		{map[string]string{"target-app-replicas": "3", "mount-path": "/var/lib/mysql"}, "/var/lib/mysql", false},
		{map[string]string{"target-app-replicas": "3"}, DefaultDataDir, false},
		{map[string]string{"target-app-replicas": "1", "data-dir": "/srv/galera0"}, "/srv/galera0", false},
		{map[string]string{"target-app-replicas": "1", "data-dir": "/a,/b"}, "", true},
		{map[string]string{"target-app-replicas": "zero"}, "", true},
	} {
		got, err := physicalDir(tc.flags)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("physicalDir(%v) = %q, %v", tc.flags, got, err)
		}
	}
}

func TestPickSynced(t *testing.T) {
	c := func(h string) *appbinding.Connection { return &appbinding.Connection{Host: h, Port: 3306} }
	i, err := pickSynced([]member{{Conn: c("a"), State: "2"}, {Conn: c("b"), Err: errors.New("refused")}, {Conn: c("c"), State: "4"}})
	if err != nil || i != 2 {
		t.Fatalf("got %d, %v: want the Synced node c", i, err)
	}
	_, err = pickSynced([]member{{Conn: c("a"), State: "2"}, {Conn: c("b"), State: "1"}})
	if err == nil || !strings.Contains(err.Error(), "a:3306: state 2") {
		t.Fatalf("no Synced node: %v", err)
	}
}

// TestRestoreRefusesDamagedPayload: a restore of a stream whose payload
// was damaged fails, naming the checksum; the same stream undamaged is
// extracted.
func TestRestoreRefusesDamagedPayload(t *testing.T) {
	testserver.NeedIntegration(t)
	if _, err := exec.LookPath("mbstream"); err != nil {
		t.Fatal("mbstream is not installed (Debian's mariadb-backup; hack/install-servers.sh installs it)")
	}
	ctx := context.Background()
	r := addontest.OpenRepo(t)
	bad := bytes.Clone(complete)
	bad[40+len("ibdata1")] ^= 0xff // inside ibdata1's payload
	for _, tc := range []struct {
		name string
		in   []byte
		want string // "" for a restore that succeeds as far as the prepare
	}{
		{"damaged", bad, "checksum"},
		{"intact", complete, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := r.BackupStream(ctx, StreamFile, bytes.NewReader(tc.in), repository.BackupOptions{Host: tc.name})
			if err != nil {
				t.Fatal(err)
			}
			snap, err := r.Resolve(ctx, st.Name, repository.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			dir := filepath.Join(t.TempDir(), "data")
			err = addontest.Restore(ctx, r.Reader, snap, restoreDriver(t, dir, 0))
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("restore of a damaged stream: %v, want an error naming the %s", err, tc.want)
				}
				// What was extracted before the damage is gone, so
				// that the next attempt finds the directory empty.
				if left, _ := os.ReadDir(dir); len(left) != 0 {
					t.Fatalf("a failed restore left %d entries in the data directory", len(left))
				}
				return
			}
			// The synthetic stream is no InnoDB backup, so the prepare
			// fails; everything before it worked.
			if got, _ := os.ReadFile(filepath.Join(dir, "ibdata1")); len(got) != 100000 {
				t.Fatalf("intact stream: ibdata1 has %d bytes, want 100000 (%v)", len(got), err)
			}
		})
	}
}
