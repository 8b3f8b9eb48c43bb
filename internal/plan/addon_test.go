package plan_test

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/plan"
)

func TestAddonTask(t *testing.T) {
	ab := &appcatalogv1alpha1.AppBinding{ObjectMeta: metaNS("pg", "demo")}
	ab.Spec.Parameters = &runtime.RawExtension{Raw: []byte(`{"kind":"StashAddon","stash":{"addon":{
		"backupTask":{"name":"postgres-backup-13.1","params":[{"name":"args","value":"--clean"},{"name":"user","value":"u"}]},
		"restoreTask":{"name":"postgres-restore-13.1"}}}}`)}
	invoker := stashv1beta1.TaskRef{Params: []stashv1beta1.Param{{Name: "args", Value: "--if-exists"}}}
	got, err := plan.AddonTask(ab, false, invoker)
	if err != nil || got.Name != "postgres-backup-13.1" || len(got.Params) != 2 || got.Params[0].Value != "--if-exists" || got.Params[1].Value != "u" {
		t.Errorf("backup: %+v %v", got, err)
	}
	got, _ = plan.AddonTask(ab, true, stashv1beta1.TaskRef{})
	if got.Name != "postgres-restore-13.1" {
		t.Errorf("restore: %+v", got)
	}
	got, _ = plan.AddonTask(ab, false, stashv1beta1.TaskRef{Name: "mine"})
	if got.Name != "mine" {
		t.Errorf("the invoker's task must win: %+v", got)
	}
	ab.Spec.Parameters.Raw = []byte(`{"kind":"MongoDBConfiguration"}`)
	if got, err := plan.AddonTask(ab, false, stashv1beta1.TaskRef{}); err != nil || got.Name != "" {
		t.Errorf("other parameters: %+v %v", got, err)
	}
	ab.Spec.Parameters.Raw = []byte(`{not json`)
	if _, err := plan.AddonTask(ab, false, stashv1beta1.TaskRef{}); err == nil {
		t.Error("bad parameters accepted")
	}
}
