package testserver

import (
	"os"
	"testing"
)

// TestSharedKeepsCleanupsUntilStop: a shared server's cleanups and
// directories survive the test that started it and go at Stop, last
// first.
func TestSharedKeepsCleanupsUntilStop(t *testing.T) {
	var s Shared
	var order []int
	var dir string
	t.Run("starts the server", func(t *testing.T) {
		st := s.For(t)
		dir = st.TempDir()
		st.Cleanup(func() { order = append(order, 1) })
		st.Cleanup(func() { order = append(order, 2) })
	})
	if _, err := os.Stat(dir); err != nil || len(order) != 0 {
		t.Fatalf("after the starting test: dir %v, cleanups run %v; want both kept", err, order)
	}
	s.Stop()
	if len(order) != 2 || order[0] != 2 || order[1] != 1 {
		t.Fatalf("cleanups ran %v, want [2 1]", order)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory %s still there after Stop (%v)", dir, err)
	}
	s.Stop() // a second Stop does nothing
	if len(order) != 2 {
		t.Fatalf("second Stop ran cleanups again: %v", order)
	}
}
