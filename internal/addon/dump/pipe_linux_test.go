package dump

import (
	"io"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// TestOutputPipe: the dump tool's end of its stdout pipe blocks, so a tool
// writing faster than stash reads waits instead of failing with EAGAIN; the
// read end goes through Go's poller (non-blocking), so the reading goroutine
// does not sit in a system call between the tool's writes.
func TestOutputPipe(t *testing.T) {
	pr, pw, err := newOutputPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	flags := func(fd uintptr) int {
		fl, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		if errno != 0 {
			t.Fatal(errno)
		}
		return int(fl)
	}
	if flags(pr.Fd())&syscall.O_NONBLOCK == 0 {
		t.Error("read end blocks; want it on the poller")
	}
	if flags(pw.Fd())&syscall.O_NONBLOCK != 0 {
		t.Fatal("write end (the tool's stdout) is non-blocking")
	}
	// Writes four times the pipe's size in one write each, to a reader
	// slower than the tool.
	const size = 32 << 20
	cmd := exec.Command("dd", "if=/dev/zero", "bs=4M", "count=8", "status=none")
	cmd.Stdout = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	time.Sleep(50 * time.Millisecond) // the pipe fills before the first read
	n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, slowReader{pr}, make([]byte, 1<<20))
	if werr := cmd.Wait(); werr != nil {
		t.Fatalf("the tool failed writing to its stdout: %v", werr)
	}
	if err != nil || n != size {
		t.Fatalf("read %d bytes (%v), want %d", n, err, size)
	}
}
