package local

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ownerHelperEnv makes the test binary a runtime stand-in: it takes an
// owner lock, records a Running session owned by it in the state directory
// the variable names, says "ready" and sleeps until killed.
const ownerHelperEnv = "STASH_TEST_OWNER_HELPER"

func TestMain(m *testing.M) {
	if dir := os.Getenv(ownerHelperEnv); dir != "" {
		os.Exit(ownerHelper(dir))
	}
	os.Exit(m.Run())
}

func ownerHelper(stateDir string) int {
	rt := &Runtime{StateDir: stateDir}
	own, err := rt.owner()
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	store, err := OpenStore(stateDir)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	sess := &Session{Name: "bc-1", Namespace: "demo", Kind: "BackupSession", InvokerName: "bc",
		Start: time.Now().UTC(), PID: os.Getpid(), Owner: own.id}
	if running, err := store.Begin(sess, SessionAlive(stateDir)); err != nil || running != nil {
		fmt.Println("error: begin:", running, err)
		return 1
	}
	fmt.Println("ready")
	time.Sleep(10 * time.Minute)
	return 0
}

// procState is the state letter of /proc/<pid>/stat (R, S, Z, ...).
func procState(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("read state of pid %d: %v", pid, err)
	}
	// pid (comm) state ...: comm may hold spaces, the state follows its ')'.
	rest := string(b[strings.LastIndexByte(string(b), ')')+2:])
	return rest[:1]
}

func sessionByName(t *testing.T, s *Store, name string) Session {
	t.Helper()
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range list {
		if x.Name == name {
			return x
		}
	}
	t.Fatalf("no session %s in %+v", name, list)
	return Session{}
}

// A runtime SIGKILLed and never reaped stays a zombie with its PID: kill(pid,
// 0) says it lives. Its lock went when it died, and that is what counts.
func TestSessionOfKilledUnreapedRuntimeFails(t *testing.T) {
	state := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), ownerHelperEnv+"="+state)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := false
	defer func() {
		if !reaped {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper: %q %v", line, err)
	}
	store, err := OpenStore(state)
	if err != nil {
		t.Fatal(err)
	}
	alive := SessionAlive(state)
	if n, err := store.FailInterrupted(alive); err != nil || n != 0 {
		t.Fatalf("FailInterrupted with the runtime alive: %d %v", n, err)
	}
	if got := sessionByName(t, store, "bc-1"); got.Phase != "Running" || got.Owner == "" {
		t.Fatalf("session of a live runtime: %+v", got)
	}
	// A second trigger of the same invoker while it lives is refused.
	if running, err := store.Begin(&Session{Name: "bc-2", Namespace: "demo", Kind: "BackupSession", InvokerName: "bc", Start: time.Now()}, alive); err != nil || running == nil || running.Name != "bc-1" {
		t.Fatalf("Begin beside a live session: %+v %v", running, err)
	}

	pid := cmd.Process.Pid
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for procState(t, pid) != "Z" {
		if time.Now().After(deadline) {
			t.Fatalf("pid %d did not become a zombie: state %s", pid, procState(t, pid))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !ProcessAlive(pid) {
		t.Fatal("kill(pid, 0) of a zombie failed: this test no longer shows why a PID is not enough")
	}
	// The leader of a Go process turns Z before its other threads finish
	// exiting, and the files go with the last of them: a moment later.
	own := sessionByName(t, store, "bc-1").Owner
	for start := time.Now(); ; time.Sleep(10 * time.Millisecond) {
		held, err := ownerHeld(state, own)
		if err != nil {
			t.Fatal(err)
		}
		if !held {
			t.Logf("lock free %s after the zombie appeared", time.Since(start))
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("the lock of a killed runtime is still held 10 s after it died")
		}
	}
	// The next trigger of the invoker fails the dead session and runs.
	next := &Session{Name: "bc-3", Namespace: "demo", Kind: "BackupSession", InvokerName: "bc", Start: time.Now().UTC()}
	running, err := store.Begin(next, alive)
	if err != nil || running != nil {
		t.Fatalf("Begin after the runtime died: %+v %v", running, err)
	}
	if got := sessionByName(t, store, "bc-1"); got.Phase != "Failed" || got.Error != InterruptedReason || got.End.IsZero() {
		t.Errorf("session of the killed runtime: %+v", got)
	}
	if got := sessionByName(t, store, "bc-3"); got.Phase != "Running" {
		t.Errorf("new session: %+v", got)
	}
	if procState(t, pid) != "Z" {
		t.Fatal("the runtime was reaped during the test")
	}
	// The dead runtime's lock file goes with the next sweep.
	removeDeadOwners(state)
	if left, _ := filepath.Glob(filepath.Join(state, ownersDir, "*")); len(left) != 0 {
		t.Errorf("owner files left: %v", left)
	}
	_ = cmd.Wait()
	reaped = true
}

// A session whose recorded PID now belongs to a live, unrelated process (a
// reboot handed it on) but whose lock is free is dead.
func TestSessionWithReusedPIDFails(t *testing.T) {
	state := t.TempDir()
	store, err := OpenStore(state)
	if err != nil {
		t.Fatal(err)
	}
	// The owner file of a runtime that died: present, unlocked.
	if err := os.MkdirAll(filepath.Join(state, ownersDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ownerPath(state, "0123456789abcdef01234567"), []byte("pid 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// This process's own lock: its sessions live.
	rt := &Runtime{StateDir: state}
	defer rt.Close()
	own, err := rt.owner()
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC()
	for _, s := range []Session{
		{Name: "unlocked", Owner: "0123456789abcdef01234567"},
		{Name: "removed", Owner: "fedcba9876543210fedcba98"},
		{Name: "mine", Owner: own.id},
	} {
		s.Namespace, s.Kind, s.InvokerName, s.Phase, s.Start, s.PID = "demo", "BackupSession", s.Name, "Running", base, os.Getpid()
		if err := store.Put(&s); err != nil {
			t.Fatal(err)
		}
	}
	n, err := rt.sweep(store)
	if err != nil || n != 2 {
		t.Fatalf("sweep: %d %v", n, err)
	}
	for name, want := range map[string]string{"unlocked": "Failed", "removed": "Failed", "mine": "Running"} {
		if got := sessionByName(t, store, name); got.Phase != want {
			t.Errorf("%s: %s (%s), want %s", name, got.Phase, got.Error, want)
		}
	}
	if _, err := os.Stat(ownerPath(state, "0123456789abcdef01234567")); !os.IsNotExist(err) {
		t.Errorf("the dead owner's file is still there: %v", err)
	}
	if _, err := os.Stat(ownerPath(state, own.id)); err != nil {
		t.Errorf("the live owner's file: %v", err)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(ownerPath(state, own.id)); !os.IsNotExist(err) {
		t.Errorf("Close left the owner file: %v", err)
	}
}
