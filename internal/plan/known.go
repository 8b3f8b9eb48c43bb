package plan

import (
	"errors"
	"sort"
	"sync"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
)

// resolverVariables are the variables the resolver sets beside those of
// Variables: the Function's own image, set per step, and the replica of a
// per-replica restore.
var resolverVariables = []string{"ADDON_IMAGE", "POD_ORDINAL"}

// knownVariables is computed from Variables itself, so that a variable
// added there is known here without a second list to keep in step.
var knownVariables = sync.OnceValue(func() map[string]bool {
	// Variables sets some names only for a restore, a backend or a
	// non-zero retention rule: ask it once for each.
	backends := []stashv1alpha1.Backend{
		{Local: &stashv1alpha1.LocalSpec{}},
		{S3: &stashv1alpha1.S3Spec{}},
		{GCS: &stashv1alpha1.GCSSpec{}},
		{Azure: &stashv1alpha1.AzureSpec{}},
		{B2: &stashv1alpha1.B2Spec{}},
		{Swift: &stashv1alpha1.SwiftSpec{}},
		{Rest: &stashv1alpha1.RestServerSpec{}},
	}
	retention := stashv1alpha1.RetentionPolicy{
		KeepLast: 1, KeepHourly: 1, KeepDaily: 1, KeepWeekly: 1, KeepMonthly: 1, KeepYearly: 1,
		KeepTags: []string{"t"}, Prune: true, DryRun: true,
	}
	known := map[string]bool{}
	for _, n := range resolverVariables {
		known[n] = true
	}
	for _, restore := range []bool{false, true} {
		for _, b := range backends {
			in := Invocation{Restore: restore, Retention: retention, Repository: &stashv1alpha1.Repository{Spec: stashv1alpha1.RepositorySpec{Backend: b}}}
			for n := range Variables(in) {
				known[n] = true
			}
		}
	}
	return known
})

// KnownVariables lists, sorted, every variable this project's resolver
// may give a Task or Function: the operator-provided variables of Stash
// that Variables sets (some only for a restore, a backend or a retention
// rule), ADDON_IMAGE and POD_ORDINAL. A ${NAME} with no default outside
// this list resolves only if task params set it.
func KnownVariables() []string {
	out := make([]string, 0, len(knownVariables()))
	for n := range knownVariables() {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// IsKnownVariable says whether the resolver may provide name (see
// KnownVariables).
func IsKnownVariable(name string) bool { return knownVariables()[name] }

// Unresolved returns, sorted, the variables that substituting vars into s
// would find without a value: ${NAME} and ${NAME:?msg} with NAME unset,
// and the placeholders in a default that is used. A placeholder with a
// default (${NAME:=d}) and the escaped $${NAME} are not among them. It
// returns a *SyntaxError for a malformed placeholder. Validation uses it
// to tell, before any session runs, what substitution would refuse; it
// runs Substitute itself so that the two cannot disagree.
func Unresolved(s string, vars map[string]string) ([]string, error) {
	var names []string
	with, copied := vars, false
	for {
		_, err := Substitute(s, with)
		var ue *UnresolvedError
		var re *RequiredError
		switch {
		case err == nil:
			return dedupe(names), nil
		case errors.As(err, &ue):
			return dedupe(append(names, ue.Names...)), nil
		case !errors.As(err, &re):
			return nil, err
		}
		// ${NAME:?msg} stops substitution at the first unset NAME: note
		// it, give it a value and look for the others.
		names = append(names, re.Name)
		if !copied {
			with, copied = make(map[string]string, len(vars)+1), true
			for k, v := range vars {
				with[k] = v
			}
		}
		with[re.Name] = "set"
	}
}
