package priority

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestFromEnv runs itself as a child with the variables set, so the
// priorities of the test process stay untouched.
func TestFromEnv(t *testing.T) {
	if os.Getenv("PRIORITY_CHILD") == "1" {
		if err := FromEnv(); err != nil {
			t.Fatal(err)
		}
		nice, class, data, err := Get()
		if err != nil {
			t.Fatal(err)
		}
		if nice != 7 || class != 3 {
			t.Fatalf("nice %d, io class %d data %d", nice, class, data)
		}
		// Every thread, not only the calling one: the runtime runs
		// goroutines on threads started before FromEnv.
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Skip(err)
		}
		for _, task := range tasks {
			b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/stat")
			if err != nil {
				continue // exited
			}
			// Field 19 is the nice value; the command name (field 2)
			// ends with the last ')'.
			f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
			if f[16] != "7" {
				t.Errorf("thread %s has nice %s, want 7", task.Name(), f[16])
			}
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=TestFromEnv", "-test.v")
	cmd.Env = append(os.Environ(), "PRIORITY_CHILD=1", "NICE_ADJUSTMENT=7", "IONICE_CLASS=3")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "PASS") {
		t.Fatalf("child: %v\n%s", err, out)
	}
}

func TestFromEnvRejectsBadValues(t *testing.T) {
	for _, env := range [][2]string{{"NICE_ADJUSTMENT", "99"}, {"IONICE_CLASS", "x"}} {
		t.Setenv(env[0], env[1])
		if err := FromEnv(); err == nil || !strings.Contains(err.Error(), env[0]) {
			t.Errorf("%s=%s: %v", env[0], env[1], err)
		}
		t.Setenv(env[0], "")
	}
}
