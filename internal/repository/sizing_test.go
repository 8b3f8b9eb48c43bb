package repository

import (
	"runtime"
	"testing"

	"github.com/kopia/kopia/repo/blob"

	"github.com/stash-backup/stash/internal/chunker"
)

// TestSizedByThePod: parallelism follows GOMAXPROCS (the pod's CPU quota)
// within bounds, and a restore's read-ahead never holds more than a quarter
// of the memory limit, however many CPUs; from a local file system, whose
// reads are hinted ahead, a restore keeps one reader more than the
// parallelism and two chunks ahead per reader.
func TestSizedByThePod(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, tc := range []struct {
		name          string
		procs         int
		parallelism   int
		memory        int64
		wantPar       int
		wantReadAhead int
		wantWorkers   int
		local         bool
		wantReaders   int
	}{
		{"one CPU, 256 MiB", 1, 0, 256 << 20, 2, 11, 2, false, 5},
		{"two CPUs, no limit", 2, 0, -1, 2, 16, 2, false, 8},
		{"64 CPUs, no quota, no limit", 64, 0, -1, MaxParallelism, 86, MaxParallelism, false, 42},
		{"64 CPUs, 512 MiB", 64, 0, 512 << 20, MaxParallelism, 22, MaxParallelism, false, 10},
		{"64 CPUs, 64 MiB", 64, 0, 64 << 20, MaxParallelism, 3, 2, false, 1},
		{"tiny limit keeps two", 1, 0, 8 << 20, 2, 2, 1, false, 1},
		{"explicit parallelism", 2, 32, 1 << 40, 32, 256, 32, false, 128},
		{"local, one CPU, 256 MiB", 1, 0, 256 << 20, 2, 6, 2, true, 3},
		{"local, two CPUs, no limit", 2, 0, -1, 2, 6, 2, true, 3},
		{"local, 64 CPUs, no limit", 64, 0, -1, MaxParallelism, 34, MaxParallelism, true, 17},
		{"local, 64 CPUs, 64 MiB", 64, 0, 64 << 20, MaxParallelism, 2, 2, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runtime.GOMAXPROCS(tc.procs)
			r := &Reader{opts: Options{Parallelism: tc.parallelism, MemoryLimit: tc.memory}}
			if tc.local {
				r.st = localStorage{}
				r.advise = func(string, int64, int64) {}
			}
			if r.readers() != tc.wantReaders {
				t.Errorf("readers %d, want %d", r.readers(), tc.wantReaders)
			}
			if got := r.opts.parallelism(); got != tc.wantPar {
				t.Errorf("parallelism %d, want %d", got, tc.wantPar)
			}
			if got := r.readAhead(); got != tc.wantReadAhead {
				t.Errorf("readAhead %d, want %d", got, tc.wantReadAhead)
			}
			// Each chunk ahead holds its data, each reader a chunk's stored
			// bytes.
			if budget := r.opts.readAheadBudget(); int64(r.readAhead()+r.readers())*chunker.MaxSize > max(budget, 3*chunker.MaxSize) {
				t.Errorf("read-ahead of %d chunks and %d readers exceed the budget %d", r.readAhead(), r.readers(), budget)
			}
			if got := r.streamWorkers(); got != tc.wantWorkers {
				t.Errorf("stream workers %d, want %d", got, tc.wantWorkers)
			}
			if r.readers() > r.readAhead() {
				t.Errorf("%d readers for %d chunks of read-ahead", r.readers(), r.readAhead())
			}
		})
	}
}

// localStorage is a storage that says where its packs lie, as kopia's
// filesystem storage does.
type localStorage struct {
	blob.Storage
	fakePaths
}
