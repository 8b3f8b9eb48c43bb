package validation

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/manifest"
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

// TestValidateSelectorWithNamespaces: stash validate decides a
// usagePolicy selector from the Namespace manifests, and warns when it has
// none instead of passing or failing blindly.
func TestValidateSelectorWithNamespaces(t *testing.T) {
	const objects = `
apiVersion: v1
kind: Secret
metadata: {name: s3, namespace: b}
stringData: {RESTIC_PASSWORD: pw, AWS_ACCESS_KEY_ID: id, AWS_SECRET_ACCESS_KEY: key}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: repo, namespace: b}
spec:
  backend:
    s3: {endpoint: "http://127.0.0.1:9", bucket: stash, prefix: x}
    storageSecretName: s3
  usagePolicy:
    allowedNamespaces:
      from: Selector
      selector: {matchLabels: {team: c}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: %[1]s}
---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: rs, namespace: %[1]s}
spec:
  task: {name: pvc-restore}
  repository: {name: repo, namespace: b}
  target:
    ref: {apiVersion: v1, kind: PersistentVolumeClaim, name: data}
    volumeMounts: [{name: data, mountPath: /data}]
    rules: [{snapshots: [latest]}]
`
	const namespaces = `
---
apiVersion: v1
kind: Namespace
metadata: {name: a, labels: {team: a}}
---
apiVersion: v1
kind: Namespace
metadata: {name: c, labels: {team: c}}
`
	for _, tc := range []struct {
		name, ns, extra string
		err, warn       string
	}{
		{"matching namespace", "c", namespaces, "", ""},
		{"other namespace", "a", namespaces, "namespace a does not match", ""},
		{"no Namespace manifests", "a", "", "", "Namespace a is not in the given files: not checked (nor whether its labels match the usagePolicy selector of Repository b/repo)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "m.yaml"), []byte(fmt.Sprintf(objects, tc.ns)+tc.extra), 0o600); err != nil {
				t.Fatal(err)
			}
			set, err := manifest.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			cat, err := catalog.Builtin()
			if err != nil {
				t.Fatal(err)
			}
			var got Result
			for _, r := range All(set, cat) {
				if r.Kind == "RestoreSession" {
					got = r
				}
			}
			var errList, warnList []string
			for _, f := range got.Findings {
				if f.Level == LevelError {
					errList = append(errList, f.Message)
				} else {
					warnList = append(warnList, f.Message)
				}
			}
			errs, warns := strings.Join(errList, "; "), strings.Join(warnList, "; ")
			if (tc.err == "") != (errs == "") || !strings.Contains(errs, tc.err) {
				t.Errorf("errors %q, want %q", errs, tc.err)
			}
			if (tc.warn == "") != (warns == "") || !strings.Contains(warns, tc.warn) {
				t.Errorf("warnings %q, want %q", warns, tc.warn)
			}
		})
	}
}
