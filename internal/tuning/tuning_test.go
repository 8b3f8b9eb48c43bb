package tuning

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

// TestWriteRusage: the file holds this process's CPU time and peak RSS,
// in the fields hack/bench/db.sh reads.
func TestWriteRusage(t *testing.T) {
	// Spend measurable CPU and memory first.
	b := make([]byte, 32<<20)
	for i := range b {
		b[i] = byte(i)
	}
	path := filepath.Join(t.TempDir(), "rusage")
	if err := WriteRusage(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var user, sys float64
	var minflt, maxrss int64
	if _, err := fmt.Sscanf(string(data), "user %f system %f minflt %d maxrss_kib %d\n", &user, &sys, &minflt, &maxrss); err != nil {
		t.Fatalf("%q: %v", data, err)
	}
	if user+sys <= 0 || maxrss < 32<<10 {
		t.Errorf("%q: expected some CPU time and a peak RSS of at least 32 MiB", data)
	}
}

// TestStartReportsAndKeepsGOMEMLIMIT: Start leaves a memory limit the
// environment set alone, refuses a bad priority by name, and its stop
// writes the resource usage report asked for.
func TestStartReportsAndKeepsGOMEMLIMIT(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "123MiB")
	before := debug.SetMemoryLimit(-1)
	path := filepath.Join(t.TempDir(), "rusage")
	t.Setenv("STASH_RUSAGE", path)
	stop, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != before {
		t.Errorf("memory limit changed from %d to %d with GOMEMLIMIT set", before, got)
	}
	stop()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("no resource usage report: %v", err)
	}
	t.Setenv("NICE_ADJUSTMENT", "fast")
	if _, err := Start(); err == nil {
		t.Error("Start accepted NICE_ADJUSTMENT=fast")
	}
}
