// Package benchtb is the testing.TB that the test servers of
// internal/testserver take, for benchmarks that start them outside a
// test: failures panic, cleanups run at Stop, temporary files go under
// /var/tmp.
package benchtb

import (
	"fmt"
	"os"
	"testing"
)

// TB is a testing.TB outside a test.
type TB struct {
	testing.TB
	name     string
	dir      string
	cleanups []func()
}

// New returns a TB whose temporary directories are named after name.
func New(name string) *TB { return &TB{name: name} }

// Helper implements testing.TB.
func (t *TB) Helper() {}

// Name implements testing.TB.
func (t *TB) Name() string { return t.name }

// Cleanup implements testing.TB: f runs at Stop.
func (t *TB) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

// Fatal implements testing.TB by panicking.
func (t *TB) Fatal(args ...any) { panic(fmt.Sprint(args...)) }

// Fatalf implements testing.TB by panicking.
func (t *TB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// Errorf implements testing.TB on standard error.
func (t *TB) Errorf(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }

// Logf implements testing.TB and logs nothing.
func (t *TB) Logf(format string, args ...any) {}

// Skipf implements testing.TB by panicking: a benchmark needs its server.
func (t *TB) Skipf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// TempDir implements testing.TB: one directory under /var/tmp, removed
// at Stop.
func (t *TB) TempDir() string {
	if t.dir == "" {
		d, err := os.MkdirTemp("/var/tmp", "stash-"+t.name+"-")
		if err != nil {
			panic(err)
		}
		t.dir = d
	}
	return t.dir
}

// Stop runs the cleanups, last first, and removes the temporary directory.
func (t *TB) Stop() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	if t.dir != "" {
		os.RemoveAll(t.dir)
	}
}
