package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/source"
)

// TestRestoreTakesOneSnapshot: a restore rule with several snapshots
// (joined by commas into --snapshot) fails at once with what to give,
// before anything is read or opened.
func TestRestoreTakesOneSnapshot(t *testing.T) {
	f := &addonFlags{snapshot: "a1b2c3d4,e5f6a7b8", hostname: "host-0"}
	prepared := false
	err := f.runRestore(context.Background(), func(context.Context, source.Source) (driver, error) {
		prepared = true
		return driver{}, nil
	})
	if err == nil || !strings.Contains(err.Error(), "several snapshots") || !strings.Contains(err.Error(), "latest") {
		t.Fatalf("got %v, want an error naming --snapshot and what to give", err)
	}
	if prepared {
		t.Error("the driver was prepared before the flag was checked")
	}
}
