package plan

import (
	"errors"
	"strings"
	"testing"
)

func TestSubstitute(t *testing.T) {
	vars := map[string]string{
		"NAMESPACE": "demo", "EMPTY": "", "outputDir": "/stash-tmp/output", "N": "3",
	}
	tests := []struct {
		in, want string
		missing  []string
		errHas   string
	}{
		{in: "plain text", want: "plain text"},
		{in: "--namespace=${NAMESPACE}", want: "--namespace=demo"},
		{in: "${NAMESPACE}/${outputDir}", want: "demo//stash-tmp/output"},
		{in: "--x=${UNSET:=fallback}", want: "--x=fallback"},
		{in: "--x=${EMPTY:=fallback}", want: "--x=fallback"},
		{in: "--x=${EMPTY=fallback}", want: "--x="},
		{in: "--x=${UNSET=fallback}", want: "--x=fallback"},
		{in: "--x=${EMPTY:-d}", want: "--x=d"},
		{in: "--x=${UNSET-d}", want: "--x=d"},
		{in: "--x=${UNSET:=}", want: "--x="},
		{in: "--x=${NAMESPACE:=other}", want: "--x=demo"},
		{in: "${N:+has-n}${UNSET:+no}${EMPTY+set}", want: "has-nset"},
		{in: "${UNSET:=${NAMESPACE}-d}", want: "demo-d"},
		{in: "${NAMESPACE:=${ALSO_UNSET}}", want: "demo"},
		{in: "${UNSET:=a{b}c}", want: "a{bc}"}, // the first } closes the placeholder
		{in: "shell $HOME and $1 stay", want: "shell $HOME and $1 stay"},
		{in: "literal $${NAMESPACE}", want: "literal ${NAMESPACE}"},
		{in: "${A} and ${B} and ${A}", missing: []string{"A", "B"}},
		{in: "${UNSET:=${INNER}}", missing: []string{"INNER"}},
		{in: "${", errHas: "expected a variable name"},
		{in: "${NAMESPACE", errHas: "unterminated"},
		{in: "${X:=abc", errHas: "unterminated"},
		{in: "${1X}", errHas: "expected a variable name"},
		{in: "${X*y}", errHas: "unknown operator"},
		{in: "${UNSET:?set the target}", errHas: "${UNSET}: set the target"},
		{in: "${NAMESPACE:?x}", want: "demo"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Substitute(tt.in, vars)
			switch {
			case tt.missing != nil:
				var ue *UnresolvedError
				if !errors.As(err, &ue) || strings.Join(ue.Names, ",") != strings.Join(tt.missing, ",") {
					t.Fatalf("err %v, want unresolved %v", err, tt.missing)
				}
			case tt.errHas != "":
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("err %v, want %q", err, tt.errHas)
				}
			default:
				if err != nil || got != tt.want {
					t.Fatalf("got %q, %v; want %q", got, err, tt.want)
				}
			}
		})
	}
}

func TestSubstituteAll(t *testing.T) {
	tree := map[string]any{
		"args": []any{"--ns=${NAMESPACE}", "--out=${outputDir:=/tmp}", 3.0, true},
		"env":  map[string]any{"value": "${MISSING_ONE}", "other": "${MISSING_TWO}"},
	}
	_, err := SubstituteAll(tree, map[string]string{"NAMESPACE": "n"})
	var ue *UnresolvedError
	if !errors.As(err, &ue) || strings.Join(ue.Names, ",") != "MISSING_ONE,MISSING_TWO" {
		t.Fatalf("err %v", err)
	}
	out, err := SubstituteAll(tree, map[string]string{"NAMESPACE": "n", "MISSING_ONE": "1", "MISSING_TWO": "2"})
	if err != nil {
		t.Fatal(err)
	}
	m := out.(map[string]any)
	if a := m["args"].([]any); a[0] != "--ns=n" || a[1] != "--out=/tmp" || a[2] != 3.0 || a[3] != true {
		t.Errorf("args %v", a)
	}
	if tree["args"].([]any)[0] != "--ns=${NAMESPACE}" {
		t.Error("input tree was modified")
	}
}

func FuzzSubstitute(f *testing.F) {
	for _, s := range []string{"${A}", "${A:=b}", "${A:=${B:-c}}", "$${", "${", "}", "${A:?}", "x${A+y}z", "${A:=}}"} {
		f.Add(s)
	}
	vars := map[string]string{"A": "a", "B": "", "C": "${A}"}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := Substitute(s, vars)
		if err == nil && !strings.Contains(s, "${") && !strings.Contains(s, "$${") && out != s {
			t.Fatalf("text without placeholders changed: %q -> %q", s, out)
		}
	})
}
