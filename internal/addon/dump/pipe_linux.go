package dump

import (
	"os"
	"syscall"
)

// fSetPipeSize is F_SETPIPE_SZ.
const fSetPipeSize = 1031

// newPipe returns a pipe with a buffer of up to 1 MiB whose ends both
// block: a database client reads a restore from it (StartWithStdin). The
// writer, stash, blocks in the kernel while the client is behind, instead
// of being woken through Go's poller for every read the client makes.
func newPipe() (r, w *os.File, err error) { return pipe(false) }

// newOutputPipe returns a pipe for a dump tool's stdout, with a buffer of
// up to 1 MiB, whose read end goes through Go's poller while the tool's end
// blocks, as a tool expects of its stdout.
//
// A blocking read leaves the reading goroutine in a system call while the
// tool produces its next MiB, and Go's sysmon thread then takes its
// processor back and polls often for a while. On a machine with few CPUs
// each of those wake-ups preempts the dump tool or the database server.
// Parked on the poller the goroutine holds no processor, and the tool and
// the server are preempted several times less often (counted with perf in
// docs/benchmarks-history.md). The
// poller's cost, one wake-up per write of the tool, is small because the
// tool writes through a 1 MiB stdio buffer (largeStdio) and batchReader
// pauses after a short read.
func newOutputPipe() (r, w *os.File, err error) { return pipe(true) }

func pipe(pollRead bool) (r, w *os.File, err error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC); err != nil {
		return nil, nil, err
	}
	// Best effort: an unprivileged process may be capped below 1 MiB
	// (/proc/sys/fs/pipe-max-size); the default 64 KiB still works.
	for size := 1 << 20; size >= 64<<10; size >>= 1 {
		if _, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fds[1]), fSetPipeSize, uintptr(size)); errno == 0 {
			break
		}
	}
	if pollRead {
		// O_NONBLOCK is per open file description: the write end, which
		// the tool inherits, stays blocking.
		if err := syscall.SetNonblock(fds[0], true); err != nil {
			syscall.Close(fds[0])
			syscall.Close(fds[1])
			return nil, nil, err
		}
	}
	// os.NewFile puts a non-blocking descriptor on the poller and keeps a
	// blocking one blocking.
	return os.NewFile(uintptr(fds[0]), "|0"), os.NewFile(uintptr(fds[1]), "|1"), nil
}
