// Package priority applies the CPU and I/O priority a step asks for
// (runtimeSettings.container.nice and ionice, passed as NICE_ADJUSTMENT,
// IONICE_CLASS and IONICE_CLASS_DATA) to the current process.
package priority

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// ioprio_set(2) constants.
const (
	ioprioWhoProcess = 1
	ioprioClassShift = 13
)

// FromEnv applies the priorities named in the environment, if any.
func FromEnv() error {
	if v := os.Getenv("NICE_ADJUSTMENT"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < -20 || n > 19 {
			return fmt.Errorf("NICE_ADJUSTMENT=%q: want an integer from -20 to 19", v)
		}
		if err := eachThread(func(tid int) error { return syscall.Setpriority(syscall.PRIO_PROCESS, tid, n) }); err != nil {
			return fmt.Errorf("set nice %d: %w", n, err)
		}
	}
	if v := os.Getenv("IONICE_CLASS"); v != "" {
		class, err := strconv.Atoi(v)
		if err != nil || class < 0 || class > 3 {
			return fmt.Errorf("IONICE_CLASS=%q: want 0 (none), 1 (realtime), 2 (best-effort) or 3 (idle)", v)
		}
		data := 4
		if d := os.Getenv("IONICE_CLASS_DATA"); d != "" {
			data, err = strconv.Atoi(d)
			if err != nil || data < 0 || data > 7 {
				return fmt.Errorf("IONICE_CLASS_DATA=%q: want 0 to 7", d)
			}
		}
		prio := class<<ioprioClassShift | data
		err = eachThread(func(tid int) error {
			if _, _, errno := syscall.Syscall(syscall.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), uintptr(prio)); errno != 0 {
				return errno
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("set ionice class %d data %d: %w", class, data, err)
		}
	}
	return nil
}

// Get returns the current nice value and I/O priority of this process.
func Get() (nice int, ioClass, ioData int, err error) {
	// getpriority(2) returns 20-nice through the raw syscall.
	r, _, errno := syscall.Syscall(syscall.SYS_GETPRIORITY, syscall.PRIO_PROCESS, 0, 0)
	if errno != 0 {
		return 0, 0, 0, errno
	}
	nice = 20 - int(r)
	p, _, errno := syscall.Syscall(syscall.SYS_IOPRIO_GET, ioprioWhoProcess, 0, 0)
	if errno != 0 {
		return nice, 0, 0, errno
	}
	return nice, int(p) >> ioprioClassShift, int(p) & 0xff, nil
}

// eachThread calls set for every thread of this process. Linux keeps the
// nice value and the I/O priority per thread, and setpriority(2) and
// ioprio_set(2) given 0 change only the calling one; the Go runtime runs
// goroutines on several threads, some started before main, and starts new
// ones from whichever thread needs one (inheriting its priorities), so all
// must change.
func eachThread(set func(tid int) error) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return set(0)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread may have exited since the listing.
		if err := set(tid); err != nil && !errors.Is(err, syscall.ESRCH) {
			return err
		}
	}
	return nil
}
