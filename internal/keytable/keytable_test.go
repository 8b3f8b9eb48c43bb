package keytable

import (
	"runtime"
	"testing"
)

func TestForCommand(t *testing.T) {
	cases := []struct {
		args []string
		want bool
	}{
		{[]string{"repo", "-f", "repo.yaml", "restore", "--stdout", "dump.sql"}, true},
		{[]string{"backup-pg", "--provider", "local"}, true},
		{[]string{"--kubeconfig=/k", "restore-pvc"}, true},
		// The flag's value is taken for the command: missed here, started
		// by internal/cli once the command is parsed.
		{[]string{"--kubeconfig", "/k", "restore-pvc"}, false},
		{[]string{"operator"}, false},
		{[]string{"local", "run", "repo"}, false},
		{[]string{"--help"}, false},
		{[]string{"-test.run", "TestX"}, false},
		{nil, false},
	}
	for _, c := range cases {
		if got := ForCommand(c.args); got != c.want {
			t.Errorf("ForCommand(%q) = %v, want %v", c.args, got, c.want)
		}
	}
}

func TestStartOnceReleaseOnce(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	Release() // nothing pending: nothing to do
	Start()
	p := Pending()
	if p == nil {
		t.Fatal("Start began nothing with GOMAXPROCS 2")
	}
	Start()
	if Pending() != p {
		t.Error("a second Start replaced the pages being faulted in")
	}
	Release()
	if Pending() != nil {
		t.Error("Release left the pages pending")
	}
	Release()
}
