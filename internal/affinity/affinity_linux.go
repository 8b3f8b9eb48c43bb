//go:build linux

package affinity

import (
	"os"
	"strconv"
	"syscall"
	"unsafe"
)

// allowed returns the CPUs this process may use.
func allowed() (cpuSet, bool) {
	var s cpuSet
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(s), uintptr(unsafe.Pointer(&s)))
	return s, errno == 0
}

// setAll gives every thread of this process the CPUs s, best effort: a
// thread may exit meanwhile, and one created later inherits the mask of
// the thread that made it, which this has already set.
func setAll(s cpuSet) {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		_, _, _ = syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(s), uintptr(unsafe.Pointer(&s)))
	}
}

// procState reads the state and the last CPU of process pid from
// /proc/PID/stat.
func procState(pid int) (state byte, cpu int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	return parseStat(b)
}

// threadAllowed returns the CPUs of thread tid.
func threadAllowed(tid int) (cpuSet, bool) {
	var s cpuSet
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, uintptr(tid), unsafe.Sizeof(s), uintptr(unsafe.Pointer(&s)))
	return s, errno == 0
}
