package cli

import (
	"testing"

	"github.com/stash-backup/stash/internal/keytable"
)

// TestDataCommands: the process is tuned for the commands that move data
// (and their subcommands), and for no other.
func TestDataCommands(t *testing.T) {
	root := NewRootCommand()
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"repo", "-f", "r.yaml", "restore", "--target", "/x"}, true},
		{[]string{"repo", "snapshots"}, true},
		{[]string{"backup-pg", "--appbinding", "operator"}, true},
		{[]string{"restore-pvc"}, true},
		{[]string{"--kubeconfig", "/k", "operator", "--leader-elect"}, false},
		{[]string{"plan"}, false},
		{[]string{"update-status"}, false},
		{[]string{"local", "run"}, false},
	} {
		cmd, _, err := root.Find(tc.args)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got := isDataCommand(cmd); got != tc.want {
			t.Errorf("%q (%s): data command %v, want %v", tc.args, cmd.CommandPath(), got, tc.want)
		}
	}
}

// TestKeyTableKnowsTheDataCommands keeps keytable's list, read from the
// command line before the packages initialize, in step with the data
// commands.
func TestKeyTableKnowsTheDataCommands(t *testing.T) {
	names := map[string]bool{}
	for _, c := range NewRootCommand().Commands() {
		names[c.Name()] = true
		if got, want := keytable.ForCommand([]string{c.Name()}), isDataCommand(c); got != want {
			t.Errorf("keytable.ForCommand(%q) = %v, but isDataCommand is %v: update keytable.DataCommands", c.Name(), got, want)
		}
	}
	for _, n := range keytable.DataCommands {
		if !names[n] {
			t.Errorf("keytable.DataCommands names %q, which is no command", n)
		}
	}
}
