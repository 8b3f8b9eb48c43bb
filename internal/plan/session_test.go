package plan

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// TestNewBackupSession: a trigger's BackupSession is named and labelled
// as Stash's, owned by its BackupConfiguration, and labels its target
// with the configuration's namespace when the target names none.
func TestNewBackupSession(t *testing.T) {
	at := time.Unix(1764900000, 0)
	for _, tc := range []struct {
		name       string
		target     *stashv1beta1.BackupTarget
		wantTarget map[string]string
	}{
		{name: "no target"},
		{
			name:       "target in its own namespace",
			target:     &stashv1beta1.BackupTarget{Ref: stashv1beta1.TargetRef{Kind: "AppBinding", Name: "pg"}},
			wantTarget: map[string]string{"kind": "AppBinding", "name": "pg", "namespace": "demo"},
		},
		{
			name:       "target elsewhere",
			target:     &stashv1beta1.BackupTarget{Ref: stashv1beta1.TargetRef{Kind: "AppBinding", Name: "pg", Namespace: "db"}},
			wantTarget: map[string]string{"kind": "AppBinding", "name": "pg", "namespace": "db"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bc := &stashv1beta1.BackupConfiguration{
				ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "demo", UID: "uid-1"},
				Spec:       stashv1beta1.BackupConfigurationSpec{BackupConfigurationTemplateSpec: stashv1beta1.BackupConfigurationTemplateSpec{Target: tc.target}},
			}
			bs := NewBackupSession(bc, at, 2)
			if bs.Name != "nightly-1764900000" || bs.Namespace != "demo" || bs.Spec.RetryLeft != 2 {
				t.Errorf("name %s/%s, retryLeft %d", bs.Namespace, bs.Name, bs.Spec.RetryLeft)
			}
			if bs.Spec.Invoker.Kind != "BackupConfiguration" || bs.Spec.Invoker.Name != "nightly" || bs.Spec.Invoker.APIGroup != stashv1beta1.GroupVersion.Group {
				t.Errorf("invoker %+v", bs.Spec.Invoker)
			}
			if bs.Labels[LabelInvokerType] != "BackupConfiguration" || bs.Labels[LabelInvokerName] != "nightly" || bs.Labels[LabelManagedBy] != ManagedBy {
				t.Errorf("labels %v", bs.Labels)
			}
			if len(bs.OwnerReferences) != 1 {
				t.Fatalf("owners %+v", bs.OwnerReferences)
			}
			o := bs.OwnerReferences[0]
			if o.Kind != "BackupConfiguration" || o.Name != "nightly" || o.UID != "uid-1" || o.Controller == nil || !*o.Controller {
				t.Errorf("owner %+v", o)
			}
			for _, k := range []string{"kind", "name", "namespace"} {
				if got := bs.Labels["stash.appscode.com/target-"+k]; got != tc.wantTarget[k] {
					t.Errorf("target-%s label %q, want %q", k, got, tc.wantTarget[k])
				}
			}
		})
	}
}
