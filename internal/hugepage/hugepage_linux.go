package hugepage

import (
	"bufio"
	"bytes"
	"math"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

const madvHugepage = 14 // MADV_HUGEPAGE

// minMapping is the smallest mapping worth advising (two huge pages).
const minMapping = 4 << 20

// Enable grows the Go heap by reserve bytes without touching them, advises
// huge pages on the process's large private anonymous mappings (the heap
// arenas among them), and releases the reservation, so that later
// allocations reuse advised memory. It returns the bytes advised. It does
// nothing when the kernel has transparent huge pages off or overcommit is
// strict, and reserves at most a quarter of the machine's memory or of a
// cgroup memory limit. The advice only changes how memory is backed, never
// what a program computes.
func Enable(reserve int) (int64, error) {
	if mode, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil || bytes.Contains(mode, []byte("[never]")) {
		return 0, nil
	}
	// Under strict overcommit the untouched reservation still counts
	// against the commit limit; a failed heap growth is fatal in Go.
	if oc, err := os.ReadFile("/proc/sys/vm/overcommit_memory"); err != nil || strings.TrimSpace(string(oc)) == "2" {
		return 0, nil
	}
	reserve = min(reserve, cgroupLimit()/4, memTotal()/4)
	if reserve < minMapping {
		return 0, nil
	}
	// The Go runtime maps heap arenas when the heap grows and never
	// unmaps them; untouched, the reservation costs no memory.
	hold := make([]byte, reserve)
	advised, err := adviseMappings()
	runtime.KeepAlive(hold)
	// Free the reservation now, not at some later collection.
	runtime.GC()
	return advised, err
}

func adviseMappings() (int64, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var advised int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address perms offset dev inode [path]: anonymous mappings
		// have no path.
		fields := strings.Fields(sc.Text())
		if len(fields) != 5 || fields[1] != "rw-p" {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end-start < minMapping {
			continue
		}
		if _, _, errno := syscall.Syscall(syscall.SYS_MADVISE, uintptr(start), uintptr(end-start), madvHugepage); errno == 0 {
			advised += int64(end - start)
		}
	}
	return advised, sc.Err()
}

// cgroupLimit is the memory limit of the process's cgroup (v2, as in a
// Kubernetes pod), or a large number when there is none.
func cgroupLimit() int {
	b, err := os.ReadFile("/sys/fs/cgroup/memory.max")
	if err != nil {
		return math.MaxInt
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b))) // "max" when unlimited
	if err != nil {
		return math.MaxInt
	}
	return n
}

// memTotal is the machine's memory (MemTotal in /proc/meminfo), or a
// large number when unknown: on a small machine even an untouched
// reservation can exceed what the kernel's overcommit heuristic allows.
func memTotal() int {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return math.MaxInt
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err == nil {
				return kb << 10
			}
		}
	}
	return math.MaxInt
}
