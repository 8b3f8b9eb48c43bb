package step

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/source"
)

// TestRestoreTakesOneSnapshot: a restore rule with several snapshots
// (joined by commas into --snapshot) fails at once with what to give,
// before any object is looked up or anything opened.
func TestRestoreTakesOneSnapshot(t *testing.T) {
	looked := false
	o := Options{Snapshot: "a1b2c3d4,e5f6a7b8", Hostname: "host-0", Stdout: io.Discard, Log: io.Discard,
		Source: func() (source.Source, error) { looked = true; return nil, errors.New("no source") }}
	err := Restore(context.Background(), o, addon.Registration{Name: "test"}, nil)
	if err == nil || !strings.Contains(err.Error(), "several snapshots") || !strings.Contains(err.Error(), "latest") {
		t.Fatalf("got %v, want an error naming --snapshot and what to give", err)
	}
	if looked {
		t.Error("objects were looked up before the flag was checked")
	}
}
