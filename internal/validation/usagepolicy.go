package validation

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
)

// UsageAllowed says whether objects in namespace ns may use repo, given
// that namespace's labels. It is pure: callers read the live Repository and
// Namespace. A Repository allows its own namespace always; other namespaces
// only through spec.usagePolicy.allowedNamespaces (All, or Selector matched
// against nsLabels). The reason explains a refusal and names the fix.
func UsageAllowed(repo *stashv1alpha1.Repository, ns string, nsLabels map[string]string) (bool, string) {
	if repo.Namespace == ns {
		return true, ""
	}
	from := stashv1alpha1.NamespacesFromSame
	var sel *metav1.LabelSelector
	if up := repo.Spec.UsagePolicy; up != nil {
		if up.AllowedNamespaces.From != nil {
			from = *up.AllowedNamespaces.From
		}
		sel = up.AllowedNamespaces.Selector
	}
	where := fmt.Sprintf("Repository %s/%s", repo.Namespace, repo.Name)
	switch from {
	case stashv1alpha1.NamespacesFromAll:
		return true, ""
	case stashv1alpha1.NamespacesFromSelector:
		if sel == nil {
			return false, where + " has usagePolicy.allowedNamespaces.from: Selector without a selector, which allows no other namespace: add spec.usagePolicy.allowedNamespaces.selector"
		}
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil {
			return false, fmt.Sprintf("%s has an invalid usagePolicy.allowedNamespaces.selector (%v), which allows no other namespace", where, err)
		}
		// An empty selector matches every namespace, as everywhere in
		// Kubernetes (and in Stash).
		if s.Matches(labels.Set(nsLabels)) {
			return true, ""
		}
		return false, fmt.Sprintf("%s allows namespaces matching %q; namespace %s does not match: label it, or change the Repository's spec.usagePolicy.allowedNamespaces", where, s.String(), ns)
	default:
		return false, where + " allows only its own namespace: set its spec.usagePolicy.allowedNamespaces.from to All or Selector"
	}
}

// NeedsNamespaceLabels says whether UsageAllowed needs the referencing
// namespace's labels for repo (its policy is a selector).
func NeedsNamespaceLabels(repo *stashv1alpha1.Repository) bool {
	up := repo.Spec.UsagePolicy
	return up != nil && up.AllowedNamespaces.From != nil && *up.AllowedNamespaces.From == stashv1alpha1.NamespacesFromSelector
}
