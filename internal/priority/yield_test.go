package priority

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// threadNice reads the nice value of every thread of this process.
func threadNice(t *testing.T) map[int]int {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Skip(err)
	}
	out := map[int]int{}
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		if n, err := niceOf(tid); err == nil {
			out[tid] = n
		}
	}
	return out
}

// childNice starts a shell with start and returns the nice value it ran at.
func childNice(t *testing.T, start func(*exec.Cmd) error) string {
	t.Helper()
	// Field 19 of stat is the nice value (the command name, field 2, is
	// "cut", without spaces).
	cmd := exec.Command("sh", "-c", `cut -d' ' -f19 /proc/self/stat`)
	var out strings.Builder
	cmd.Stdout = &out
	if err := start(cmd); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out.String())
}

// TestYield runs itself as a child: Yield lowers the process's threads for
// good, which the other tests must not inherit.
func TestYield(t *testing.T) {
	if os.Getenv("PRIORITY_CHILD") != "yield" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestYield$", "-test.v")
		cmd.Env = append(os.Environ(), "PRIORITY_CHILD=yield")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "PASS") {
			t.Fatalf("child: %v\n%s", err, out)
		}
		return
	}
	base, _, _, err := Get()
	if err != nil {
		t.Fatal(err)
	}
	want := strconv.Itoa(base)
	if got := childNice(t, Start); got != want {
		t.Fatalf("first tool ran at nice %s, want the process's %s", got, want)
	}
	if err := Yield(10); err != nil {
		t.Fatal(err)
	}
	lowered := min(base+10, 19)
	l := theLauncher()
	for tid, n := range threadNice(t) {
		switch {
		case tid == l.tid && n != base:
			t.Errorf("the launcher thread %d has nice %d, want %d", tid, n, base)
		case tid != l.tid && n != lowered:
			t.Errorf("thread %d has nice %d, want %d", tid, n, lowered)
		}
	}
	// A tool started after the lowering still runs at the process's own
	// priority; one forked from any other thread inherits the lowered one.
	if got := childNice(t, Start); got != want {
		t.Errorf("tool started after Yield ran at nice %s, want %s", got, want)
	}
	if got := childNice(t, (*exec.Cmd).Start); got != strconv.Itoa(lowered) {
		t.Errorf("control: a tool forked from a lowered thread ran at nice %s, want %d", got, lowered)
	}
	// Yielding again changes nothing, and 0 does nothing.
	if err := Yield(10); err != nil {
		t.Fatal(err)
	}
	if err := Yield(0); err != nil {
		t.Fatal(err)
	}
	if n, _ := niceOf(l.tid); n != base {
		t.Errorf("launcher nice %d after a second Yield, want %d", n, base)
	}
}
