package validation

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
)

func TestUsageAllowed(t *testing.T) {
	from := func(f stashv1alpha1.FromNamespaces, sel *metav1.LabelSelector) *stashv1alpha1.UsagePolicy {
		return &stashv1alpha1.UsagePolicy{AllowedNamespaces: stashv1alpha1.AllowedNamespaces{From: &f, Selector: sel}}
	}
	teamC := &metav1.LabelSelector{MatchLabels: map[string]string{"team": "c"}}
	expr := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"prod", "stage"}}}}
	bad := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: "Near"}}}
	for _, tc := range []struct {
		name   string
		policy *stashv1alpha1.UsagePolicy
		ns     string
		labels map[string]string
		ok     bool
		why    string
	}{
		{"own namespace without policy", nil, "b", nil, true, ""},
		{"own namespace with Same", from(stashv1alpha1.NamespacesFromSame, nil), "b", nil, true, ""},
		{"other namespace without policy", nil, "a", nil, false, "allows only its own namespace"},
		{"other namespace with Same", from(stashv1alpha1.NamespacesFromSame, nil), "a", nil, false, "allows only its own namespace"},
		{"All", from(stashv1alpha1.NamespacesFromAll, nil), "a", nil, true, ""},
		{"selector matches", from(stashv1alpha1.NamespacesFromSelector, teamC), "c", map[string]string{"team": "c", "x": "y"}, true, ""},
		{"selector does not match", from(stashv1alpha1.NamespacesFromSelector, teamC), "a", map[string]string{"team": "a"}, false, `namespace a does not match`},
		{"selector, namespace without labels", from(stashv1alpha1.NamespacesFromSelector, teamC), "a", nil, false, "does not match"},
		{"expression matches", from(stashv1alpha1.NamespacesFromSelector, expr), "c", map[string]string{"tier": "stage"}, true, ""},
		{"expression does not match", from(stashv1alpha1.NamespacesFromSelector, expr), "c", map[string]string{"tier": "dev"}, false, "does not match"},
		{"Selector without selector", from(stashv1alpha1.NamespacesFromSelector, nil), "c", map[string]string{"team": "c"}, false, "without a selector"},
		{"invalid selector allows nothing", from(stashv1alpha1.NamespacesFromSelector, bad), "c", map[string]string{"tier": "x"}, false, "invalid usagePolicy"},
		{"empty selector matches all", from(stashv1alpha1.NamespacesFromSelector, &metav1.LabelSelector{}), "c", nil, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			repo := &stashv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "r"}, Spec: stashv1alpha1.RepositorySpec{UsagePolicy: tc.policy}}
			ok, why := UsageAllowed(repo, tc.ns, tc.labels)
			if ok != tc.ok || !strings.Contains(why, tc.why) {
				t.Errorf("UsageAllowed = %v, %q; want %v, containing %q", ok, why, tc.ok, tc.why)
			}
			if !ok && !strings.Contains(why, "Repository b/r") {
				t.Errorf("reason does not name the Repository: %q", why)
			}
		})
	}
}
