package step

import (
	"github.com/stash-backup/stash/internal/repository/location"

	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/kopia/kopia/repo/blob/filesystem"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	"github.com/stash-backup/stash/internal/repository"
)

// TestRetentionMaintainsWithoutPrune: after a backup, a step whose policy
// never prunes (no policy, or one without prune) runs kopia's safe
// maintenance when it is due, so that a repository that never prunes still
// has its indexes compacted and unreferenced data freed. A dry run changes
// nothing, maintenance included. Whether the step ran it shows in the
// schedule: maintenance that ran is not due again right after.
func TestRetentionMaintainsWithoutPrune(t *testing.T) {
	cases := []struct {
		name       string
		policy     stashv1alpha1.RetentionPolicy
		maintained bool
	}{
		{name: "no policy", maintained: true},
		{name: "keepLast without prune", policy: stashv1alpha1.RetentionPolicy{Name: "p", KeepLast: 2}, maintained: true},
		{name: "dry run", policy: stashv1alpha1.RetentionPolicy{Name: "p", KeepLast: 2, DryRun: true}, maintained: false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			opts := repository.Options{
				Location: &location.Location{Kind: location.KindLocal, Filesystem: &filesystem.Options{Path: filepath.Join(t.TempDir(), "repo")}},
				Password: "test-password",
			}
			if err := repository.Init(ctx, opts); err != nil {
				t.Fatal(err)
			}
			r, err := repository.Open(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close(ctx)
			st, err := r.BackupStream(ctx, "dump.sql", bytes.NewReader(bytes.Repeat([]byte("row\n"), 1<<16)), repository.BackupOptions{Host: "host-0"})
			if err != nil {
				t.Fatal(err)
			}
			o := &Options{Hostname: "host-0", Retention: c.policy}
			if out := o.applyRetention(ctx, r, repository.Invoker{}, []repository.SnapshotStats{*st}); out != nil && out.Error != "" {
				t.Fatalf("retention: %s", out.Error)
			}
			due, err := r.Maintain(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if c.maintained && due {
				t.Error("maintenance was still due after the step: the step did not run it")
			}
			if !c.maintained && !due {
				t.Error("maintenance was not due after a dry run: the dry run ran it")
			}
		})
	}
}
