package mongodb

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kopia/kopia/repo/blob/filesystem"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/repository/location"
	"github.com/stash-backup/stash/internal/repository/restic"
	"github.com/stash-backup/stash/internal/testserver"
)

// captureWriter is an addon.Writer that keeps the one stream a backup
// writes in memory instead of storing it in a repository.
type captureWriter struct {
	host, name string
	buf        bytes.Buffer
}

func (c *captureWriter) Stream(ctx context.Context, host, name string, produce func(context.Context, io.Writer) error) error {
	c.host, c.name = host, name
	return produce(ctx, &c.buf)
}

func (c *captureWriter) Commands(context.Context, string, string, ...func(context.Context) *exec.Cmd) error {
	return errors.New("captureWriter keeps streams only")
}

func (c *captureWriter) Files(context.Context, string, string, func(context.Context, addon.AddFile) error) error {
	return errors.New("captureWriter keeps streams only")
}

// TestRestoreFromResticRepository: an archive stored the way Stash's
// backup-mongodb stored it (`mongodump --archive | restic backup --stdin
// --stdin-filename dump --host host-0`, by Debian's restic 0.14, the
// generation Stash shipped) restores with this driver reading straight
// from the restic repository, the snapshot chosen as the restore step
// chooses it (latest of host-0 holding "dump").
//
// mongodump itself cannot be had on this machine, so the archives are
// the driver's own backup of seeded data (its stream output, captured
// before any repository) and one shaped as mongo-tools 100.x writes them
// (mongodumpArchive); both are mongodump's archive format.
func TestRestoreFromResticRepository(t *testing.T) {
	ctx := context.Background()
	cli := testserver.ResticCLI(t, testserver.ResticDebian)
	srv, mc := server(t)

	dir := filepath.Join(t.TempDir(), "restic")
	cli.Setenv("RESTIC_REPOSITORY", dir)
	cli.Setenv("RESTIC_PASSWORD", "stash-pw")
	cli.Run(t, "", nil, "init")
	store := func(t *testing.T, archive []byte) {
		t.Helper()
		cli.Run(t, "", bytes.NewReader(archive), "backup", "--stdin", "--stdin-filename", "dump", "--host", "host-0")
	}
	restore := func(t *testing.T, o Options) {
		t.Helper()
		// Opened afresh, as each restore step opens it.
		r, err := restic.OpenReader(ctx, repository.Options{Password: "stash-pw",
			Location: &location.Location{Kind: location.KindLocal, Filesystem: &filesystem.Options{Path: dir}}})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(ctx)
		if err := (Driver{o}).Restore(ctx, &dump.Reader{R: r, Choose: func(ctx context.Context, host, name string) (repository.Snapshot, error) {
			if host == "" {
				host = "host-0"
			}
			s, err := r.Resolve(ctx, repository.Latest, repository.Filter{Host: host, Path: name})
			if err == nil && (s.Host != "host-0" || s.Path != DumpFile) {
				t.Errorf("restic snapshot read as host %q path %q, want host-0 %q", s.Host, s.Path, DumpFile)
			}
			return s, err
		}}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("driver archive", func(t *testing.T) {
		start := time.Now()
		seed(t, mc, "restic_shop", 1000)
		want := fingerprint(t, mc, "restic_shop")
		o := optionsOf(srv)
		o.DumpArgs.Select.Include = []string{"restic_shop.*"}
		var cw captureWriter
		if err := (Driver{o}).Backup(ctx, &cw); err != nil {
			t.Fatal(err)
		}
		if cw.name != DumpFile || cw.host != "" || cw.buf.Len() == 0 {
			t.Fatalf("backup wrote %d bytes as host %q name %q, want an archive named %q", cw.buf.Len(), cw.host, cw.name, DumpFile)
		}
		store(t, cw.buf.Bytes())
		dropAll(t, mc, "restic_shop")
		if got := fingerprint(t, mc, "restic_shop"); got != "(empty)" {
			t.Fatalf("dropped database still holds:\n%.500s", got)
		}
		restore(t, o)
		if got := fingerprint(t, mc, "restic_shop"); got != want {
			t.Errorf("restored database differs:\n got %.2000s\nwant %.2000s", got, want)
		}
		dropAll(t, mc, "restic_shop")
		t.Logf("archive of %d bytes stored by restic %s and restored in %v", cw.buf.Len(), cli.Version, time.Since(start))
	})

	// Stored second, it is the snapshot latest restores.
	t.Run("mongo-tools archive", func(t *testing.T) {
		dropAll(t, mc, "restic_app")
		store(t, mongodumpArchive(t, false))
		o := optionsOf(srv)
		// FerretDB has no views: the archive's view app.cheap is left
		// out. Renamed, the database keeps clear of other tests' "app".
		var err error
		if o.RestoreArgs, err = ParseRestoreArgs([]string{"--nsExclude=app.cheap", "--nsFrom=app.*", "--nsTo=restic_app.*"}); err != nil {
			t.Fatal(err)
		}
		restore(t, o)
		fp := fingerprint(t, mc, "restic_app")
		if !strings.Contains(fp, `"name": "sku_1","unique": true`) || strings.Contains(fp, `"ns"`) || !strings.Contains(fp, "300 documents") {
			t.Errorf("restored database:\n%.1500s", fp)
		}
		dropAll(t, mc, "restic_app")
	})
}
