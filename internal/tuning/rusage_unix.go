//go:build unix

package tuning

import (
	"fmt"
	"os"
	"syscall"
)

// WriteRusage writes the process's own CPU time, minor page faults and
// peak RSS to path (STASH_RUSAGE=file), for performance work: a shell's
// time of a backup adds the dump tool's CPU to stash's, and on a machine
// whose speed swings stash's own CPU is a steadier figure than the wall
// time (hack/bench/db.sh).
func WriteRusage(path string) error {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return err
	}
	line := fmt.Sprintf("user %.3f system %.3f minflt %d maxrss_kib %d\n",
		float64(ru.Utime.Nano())/1e9, float64(ru.Stime.Nano())/1e9, ru.Minflt, ru.Maxrss)
	return os.WriteFile(path, []byte(line), 0o644)
}
