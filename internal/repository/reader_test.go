package repository

import (
	"context"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestReaderCannotWrite: the read-only type has no method that writes or
// removes a snapshot, and Repository has them all besides the Reader's.
func TestReaderCannotWrite(t *testing.T) {
	writes := []string{"Backup", "Forget", "Prune", "Maintain"}
	rt := reflect.TypeOf(&Reader{})
	for i := range rt.NumMethod() {
		name := rt.Method(i).Name
		for _, w := range writes {
			if strings.HasPrefix(name, w) {
				t.Errorf("Reader has %s, a method that writes", name)
			}
		}
	}
	wt := reflect.TypeOf(&Repository{})
	for _, m := range []string{"BackupStream", "BackupPaths", "BackupFiles", "Forget", "Prune", "Maintain", "RestoreTree", "Snapshots", "Check"} {
		if _, ok := wt.MethodByName(m); !ok {
			t.Errorf("Repository lacks %s", m)
		}
	}
}

// TestOpenReaderCreatesNothing: opening an empty location for reading
// fails with ErrNotInitialized and leaves the location empty.
func TestOpenReaderCreatesNothing(t *testing.T) {
	o := localOptions(t)
	if err := os.MkdirAll(o.Location.Filesystem.Path, 0o700); err != nil {
		t.Fatal(err)
	}
	_, err := OpenReader(context.Background(), o)
	if !errors.Is(err, ErrNotInitialized) {
		t.Fatalf("OpenReader on an empty location: %v, want ErrNotInitialized", err)
	}
	entries, err := os.ReadDir(o.Location.Filesystem.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Errorf("OpenReader left %d entries in the location", len(entries))
	}
}
