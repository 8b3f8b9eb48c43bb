package elasticsearch

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kopia/kopia/repo/blob/filesystem"

	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/repository/location"
	"github.com/stash-backup/stash/internal/repository/restic"
	"github.com/stash-backup/stash/internal/testserver"
	"github.com/stash-backup/stash/internal/testserver/elastic"
)

// TestRestoreFromResticRepository: a backup taken the way Stash's
// backup-es took it (multielasticdump writing per-index files into the
// interim directory, then `restic backup <interim dir> --host host-0` by
// Debian's restic 0.14, the generation Stash shipped) restores with this
// driver reading straight from the restic repository: the snapshot is
// chosen as the restore step chooses it (latest of host-0 with the path
// asked for), found under --interim-data-dir once the paths this project
// and Stash's default used hold none, and every index comes back with its
// settings, mappings, aliases, documents and templates.
func TestRestoreFromResticRepository(t *testing.T) {
	// One flavor: multielasticdump takes most of the test's time (an
	// elasticdump process per file). ES6 has its typed mappings, which
	// TestRestoresElasticdumpFiles's flavors have not.
	const f = elastic.ES6
	ctx := context.Background()
	cli := testserver.ResticCLI(t, testserver.ResticDebian)
	start := time.Now()
	src := elastic.Start(t, f)
	seed(t, src, "shop", 700)
	seed(t, src, "crm", 5)
	interim := filepath.Join(t.TempDir(), "interim", "data")
	if err := os.MkdirAll(interim, 0o700); err != nil {
		t.Fatal(err)
	}
	runElasticdump(t, "--direction=dump", "--input="+src.URL, "--output="+interim, "--includeType=data,mapping,settings,template,alias", "--parallel=2", "--quiet")
	files, _ := os.ReadDir(interim)
	var names []string
	for _, e := range files {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	if len(names) == 0 {
		t.Fatal("multielasticdump wrote no files")
	}
	t.Logf("multielasticdump wrote %v", names)

	repo := filepath.Join(t.TempDir(), "restic")
	cli.Setenv("RESTIC_REPOSITORY", repo)
	cli.Setenv("RESTIC_PASSWORD", "stash-pw")
	cli.Run(t, "", nil, "init")
	cli.Run(t, "", nil, "backup", interim, "--host", "host-0")
	dumped := time.Now()

	r, err := restic.OpenReader(ctx, repository.Options{Password: "stash-pw",
		Location: &location.Location{Kind: location.KindLocal, Filesystem: &filesystem.Options{Path: repo}}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(ctx)
	dst := elastic.Start(t, f)
	d := driverOf(t, dst)
	d.InterimDir = interim
	var asked []string
	if err := d.Restore(ctx, &dump.Reader{R: r, Choose: func(ctx context.Context, host, path string) (repository.Snapshot, error) {
		asked = append(asked, path)
		s, err := r.Resolve(ctx, repository.Latest, repository.Filter{Host: "host-0", Path: path})
		if err == nil && (s.Host != "host-0" || s.Path != interim) {
			t.Errorf("restic snapshot read as host %q path %q, want host-0 %q", s.Host, s.Path, interim)
		}
		return s, err
	}}); err != nil {
		t.Fatal(err)
	}
	if want := []string{DefaultPath, StashTmpPath, interim}; !reflect.DeepEqual(asked, want) {
		t.Errorf("the restore looked under %v, want %v", asked, want)
	}
	got, want := state(t, dst, "shop", "crm"), state(t, src, "shop", "crm")
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	for _, s := range []string{`"folded"`, `"shop-read"`, `"shop-filtered"`, `"asciifolding"`, `"keyword"`, `"shop-tmpl"`} {
		if !strings.Contains(string(w), s) {
			t.Fatalf("the source's state lacks %s: the comparison would prove nothing:\n%.3000s", s, w)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("restored state differs:\n got %.3000s\nwant %.3000s", g, w)
	}
	if n := len(dst.Docs("shop")); n != 700 {
		t.Errorf("restored %d documents of shop, want 700", n)
	}
	t.Logf("dumped and stored by restic %s in %v, restored in %v", cli.Version, dumped.Sub(start), time.Since(dumped))
}
