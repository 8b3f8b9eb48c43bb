package main

import "testing"

func TestIsOperator(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"stash", "operator"}, true},
		{[]string{"stash", "--kubeconfig", "/k", "operator", "--leader-elect"}, true},
		{[]string{"stash", "--kubeconfig=/k", "operator"}, true},
		{[]string{"stash", "repo", "backup", "--host", "operator"}, false},
		{[]string{"stash", "backup-pg", "--appbinding", "operator"}, false},
		{[]string{"stash"}, false},
	} {
		if got := isOperator(tc.args); got != tc.want {
			t.Errorf("isOperator(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
