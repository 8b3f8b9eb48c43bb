// Package benchprof writes the CPU profile a benchmark is asked for. The
// benchmarks label the goroutines of the step they time (pprof.Do), so
// that a profile of a run that also serves the step (a test server in the
// same process) can be narrowed to the step: go tool pprof -tagfocus=phase=restore.
package benchprof

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// Start profiles the process into path until the returned stop is
// called; with an empty path it does nothing. stop may be called more
// than once.
func Start(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	done := false
	return func() {
		if !done {
			done = true
			pprof.StopCPUProfile()
			f.Close()
		}
	}, nil
}
