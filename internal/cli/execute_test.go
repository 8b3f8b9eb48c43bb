package cli

import "testing"

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
