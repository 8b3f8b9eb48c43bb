package controller

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestRequireNode(t *testing.T) {
	on := corev1.NodeSelectorRequirement{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n1"}}
	zone := corev1.NodeSelectorRequirement{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}
	// No affinity: one term, by the node's name.
	var p corev1.PodSpec
	requireNode(&p, "n1")
	want := []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{on}}}
	if got := p.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms; !reflect.DeepEqual(got, want) {
		t.Errorf("terms %+v", got)
	}
	// A user's terms (ORed) each get the node added (ANDed).
	p = corev1.PodSpec{Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{zone}}, {MatchExpressions: []corev1.NodeSelectorRequirement{zone}}},
	}}}}
	requireNode(&p, "n1")
	for i, term := range p.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		if !reflect.DeepEqual(term.MatchFields, []corev1.NodeSelectorRequirement{on}) || len(term.MatchExpressions) != 1 {
			t.Errorf("term %d %+v: want the user's zone and the node", i, term)
		}
	}
}
