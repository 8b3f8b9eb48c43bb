package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestIsOperator(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"stash", "operator"}, true},
		{[]string{"stash", "--kubeconfig", "/k", "operator", "--leader-elect"}, true},
		{[]string{"stash", "--kubeconfig=/k", "operator"}, true},
		{[]string{"stash", "repo", "backup", "--host", "operator"}, false},
		{[]string{"stash", "backup-pg", "--appbinding", "operator"}, false},
		{[]string{"stash"}, false},
	} {
		if got := isOperator(tc.args); got != tc.want {
			t.Errorf("isOperator(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// TestWriteRusage: the file holds this process's CPU time and peak RSS,
// in the fields hack/bench/db.sh reads.
func TestWriteRusage(t *testing.T) {
	// Spend measurable CPU and memory first.
	b := make([]byte, 32<<20)
	for i := range b {
		b[i] = byte(i)
	}
	path := filepath.Join(t.TempDir(), "rusage")
	writeRusage(path)
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
