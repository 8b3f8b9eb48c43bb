package affinity

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"testing"
	"time"
)

func set(cpus ...int) cpuSet {
	var s cpuSet
	for _, c := range cpus {
		s[c/64] |= 1 << (uint(c) % 64)
	}
	return s
}

func TestParseStat(t *testing.T) {
	for _, tc := range []struct {
		line  string
		state byte
		cpu   int
		ok    bool
	}{
		{"1234 (mariadb-dump) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 1 0 0\n", 'R', 1, true},
		// A command name with spaces and parentheses.
		{"7 (a) b (c)) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 70 0\n", 'S', 70, true},
		{"7 (short) R 1 2 3\n", 0, 0, false},
		{"no parenthesis", 0, 0, false},
		{"7 (x) R 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 cpu\n", 0, 0, false},
	} {
		state, cpu, ok := parseStat([]byte(tc.line))
		if state != tc.state || cpu != tc.cpu || ok != tc.ok {
			t.Errorf("parseStat(%q) = %q, %d, %v; want %q, %d, %v", tc.line, state, cpu, ok, tc.state, tc.cpu, tc.ok)
		}
	}
}

// TestFollower: a running tool's CPU is left out at once; a sleeping
// tool's CPU is given back only after idlePolls polls in a row; the last
// CPU is never left out.
func TestFollower(t *testing.T) {
	all := set(0, 1, 2)
	type poll struct {
		state   byte
		cpu     int
		want    cpuSet
		changed bool
	}
	for _, tc := range []struct {
		name  string
		all   cpuSet
		polls []poll
	}{
		{"follows a running tool", all, []poll{
			{'R', 1, set(0, 2), true},
			{'R', 1, set(0, 2), false},
			{'R', 2, set(0, 1), true},
			{'R', 0, set(1, 2), true},
		}},
		{"short sleeps keep the tool's CPU out", all, []poll{
			{'R', 1, set(0, 2), true},
			{'S', 1, set(0, 2), false},
			{'S', 1, set(0, 2), false},
			{'R', 1, set(0, 2), false},
			{'S', 1, set(0, 2), false},
			{'S', 1, set(0, 2), false},
			{'S', 1, set(0, 2), false},
			{'S', 1, all, true},
			{'D', 1, all, false},
		}},
		{"a tool that always sleeps changes nothing", all, []poll{
			{'S', 0, all, false},
			{'S', 0, all, false},
			{'S', 0, all, false},
			{'S', 0, all, false},
			{'S', 0, all, false},
		}},
		{"a CPU outside the set", set(0, 1), []poll{
			{'R', 5, set(0, 1), false},
			{'R', 2000, set(0, 1), false},
			{'R', 1, set(0), true},
		}},
		{"one CPU is never left out", set(3), []poll{
			{'R', 3, set(3), false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := follower{all: tc.all, cur: tc.all}
			for i, p := range tc.polls {
				got, changed := f.next(p.state, p.cpu)
				if got != p.want || changed != p.changed {
					t.Fatalf("poll %d (%c on %d): %v, %v; want %v, %v", i, p.state, p.cpu, got, changed, p.want, p.changed)
				}
			}
		})
	}
}

// spin is run by the test binary as a busy child: TestMain turns it into
// a loop that never sleeps.
const spinEnv = "AFFINITY_TEST_SPIN"

func TestMain(m *testing.M) {
	if os.Getenv(spinEnv) != "" {
		x := 0
		for {
			x++
		}
	}
	os.Exit(m.Run())
}

// threadSets returns the CPUs of every thread of this process.
func threadSets(t *testing.T) map[int]cpuSet {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	sets := map[int]cpuSet{}
	for _, e := range tasks {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if s, ok := threadAllowed(tid); ok {
			sets[tid] = s
		}
	}
	return sets
}

// twoCPUs returns the CPUs this process may use, and skips the test
// where Avoid has nothing to do: off Linux, or with one CPU.
func twoCPUs(t *testing.T) cpuSet {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("CPU affinity is Linux's")
	}
	all, ok := allowed()
	if !ok || count(all) < 2 {
		t.Skip("needs two CPUs")
	}
	return all
}

// TestAvoidBusyChild runs a real busy process and checks that every
// thread of this one keeps off its CPU while Avoid runs, with GOMAXPROCS
// kept (never raised above what Go chose), and that stop gives everything
// back.
func TestAvoidBusyChild(t *testing.T) {
	all := twoCPUs(t)
	t.Setenv("GOMAXPROCS", "")
	os.Unsetenv("GOMAXPROCS")
	procsBefore := runtime.GOMAXPROCS(0)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), spinEnv+"=1")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	stop := Avoid(cmd.Process.Pid)
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	// The child may move between polls: wait for a moment when every
	// thread keeps off the CPU it is on.
	deadline := time.Now().Add(5 * time.Second)
	for {
		state, cpu, ok := procState(cmd.Process.Pid)
		sets := threadSets(t)
		clear := ok && state == 'R' && len(sets) > 0
		for _, s := range sets {
			if s[cpu/64]&(1<<(uint(cpu)%64)) != 0 || count(s) != count(all)-1 {
				clear = false
			}
		}
		if clear {
			if got := runtime.GOMAXPROCS(0); got != procsBefore {
				t.Errorf("GOMAXPROCS %d while avoiding, want %d as before", got, procsBefore)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 5 s, threads' CPUs %v, the busy child on CPU %d (state %c)", sets, cpu, state)
		}
		time.Sleep(poll)
	}

	stop()
	stopped = true
	for tid, s := range threadSets(t) {
		if s != all {
			t.Errorf("thread %d keeps CPUs %v after stop, want %v", tid, s, all)
		}
	}
	if got := runtime.GOMAXPROCS(0); got != procsBefore {
		t.Errorf("GOMAXPROCS %d after stop, want %d", got, procsBefore)
	}
}

// TestAvoidSleepingChild: a tool that waits (as pg_dumpall waits for its
// pg_dump) leaves every CPU to the process.
func TestAvoidSleepingChild(t *testing.T) {
	all := twoCPUs(t)
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	procs := runtime.GOMAXPROCS(0)
	stop := Avoid(cmd.Process.Pid)
	defer stop()
	time.Sleep(10 * poll)
	for tid, s := range threadSets(t) {
		if s != all {
			t.Errorf("thread %d has CPUs %v beside a sleeping tool, want %v", tid, s, all)
		}
	}
	if got := runtime.GOMAXPROCS(0); got != procs {
		t.Errorf("GOMAXPROCS %d beside a sleeping tool, want %d", got, procs)
	}
}
