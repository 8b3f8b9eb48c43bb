package status

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

func TestSetCondition(t *testing.T) {
	t0 := metav1.NewTime(time.Unix(1000, 0))
	t1 := metav1.NewTime(time.Unix(2000, 0))
	cond := func(typ string, s metav1.ConditionStatus, msg string, at metav1.Time) stashv1beta1.Condition {
		return stashv1beta1.Condition{Type: typ, Status: s, Message: msg, LastTransitionTime: at}
	}
	tests := []struct {
		name string
		in   []stashv1beta1.Condition
		set  stashv1beta1.Condition
		want []stashv1beta1.Condition
	}{
		{"added", nil, cond("A", "True", "m", metav1.Time{}), []stashv1beta1.Condition{cond("A", "True", "m", t1)}},
		{"same status keeps the transition time", []stashv1beta1.Condition{cond("A", "True", "old", t0)}, cond("A", "True", "new", metav1.Time{}),
			[]stashv1beta1.Condition{cond("A", "True", "new", t0)}},
		{"flip updates the transition time", []stashv1beta1.Condition{cond("A", "True", "m", t0), cond("B", "False", "b", t0)}, cond("A", "False", "m", metav1.Time{}),
			[]stashv1beta1.Condition{cond("A", "False", "m", t1), cond("B", "False", "b", t0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := append([]stashv1beta1.Condition(nil), tt.in...)
			got := SetCondition(in, tt.set, t1)
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v", got)
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if g.Type != w.Type || g.Status != w.Status || g.Message != w.Message || !g.LastTransitionTime.Equal(&w.LastTransitionTime) {
					t.Errorf("[%d] = %+v, want %+v", i, g, w)
				}
			}
			for i := range tt.in {
				if in[i] != tt.in[i] {
					t.Errorf("input changed")
				}
			}
		})
	}
	if IsConditionTrue(nil, "A") || !IsConditionTrue([]stashv1beta1.Condition{cond("A", "True", "", t0)}, "A") {
		t.Error("IsConditionTrue")
	}
}
