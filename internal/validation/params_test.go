package validation

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/manifest"
)

// TestTaskParamsThatEscalate validates BackupConfigurations and
// RestoreSessions with one param each, with the catalog and without a
// Lookup (the webhook's schema-only pass): the refused ones get a
// Forbidden error at the param's name, the allowed ones none.
func TestTaskParamsThatEscalate(t *testing.T) {
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	l := ManifestLookup{Set: loadDoc(t, base), Catalog: cat}
	tests := []struct {
		param string
		want  string // "" when allowed
	}{
		{"STASH_DOCKER_REGISTRY", "chooses the registry of the step's image"},
		{"STASH_IMAGE_TAG", "chooses the tag of the step's image"},
		{"STASH_DOCKER_IMAGE", "chooses the step's image"},
		{"REPOSITORY_BUCKET", "chooses the repository"},
		{"REPOSITORY_SECRET_NAMESPACE", "chooses the repository"},
		{"NAMESPACE", "chooses the namespace"},
		{"TARGET_NAMESPACE", "chooses the namespace of the target"},
		{"TARGET_NAME", "set spec.target.ref instead"},
		{"BACKUP_SESSION", "status the step's ServiceAccount writes"},
		{"args", ""},
		{"HOSTNAME", ""},
		{"TARGET_PATHS", ""},
		{"ENABLE_CACHE", ""},
		{"RETENTION_KEEP_LAST", ""},
	}
	for _, tt := range tests {
		t.Run(tt.param, func(t *testing.T) {
			params := []stashv1beta1.Param{{Name: "user", Value: "u"}, {Name: "waitTimeout", Value: "5"}, {Name: tt.param, Value: "x"}}
			bc := &stashv1beta1.BackupConfiguration{}
			bc.Name, bc.Namespace = "bc", "demo"
			bc.Spec.Schedule = "@daily"
			bc.Spec.Task = stashv1beta1.TaskRef{Name: "postgres-backup-16.1", Params: params}
			bc.Spec.Repository.Name = "repo"
			bc.Spec.Target = &stashv1beta1.BackupTarget{Ref: stashv1beta1.TargetRef{Kind: "AppBinding", Name: "db"}}
			bc.Spec.RetentionPolicy.Name = "k"
			rs := &stashv1beta1.RestoreSession{}
			rs.Name, rs.Namespace = "rs", "demo"
			rs.Spec.Task = stashv1beta1.TaskRef{Name: "postgres-restore-16.1", Params: params}
			rs.Spec.Repository.Name = "repo"
			rs.Spec.Target = &stashv1beta1.RestoreTarget{Ref: bc.Spec.Target.Ref}
			for _, lookup := range []Lookup{l, nil} {
				for kind, errs := range map[string][]string{
					"BackupConfiguration": errorStrings(BackupConfiguration(bc, lookup)),
					"RestoreSession":      errorStrings(RestoreSession(rs, lookup)),
				} {
					joined := strings.Join(errs, "\n")
					if tt.want == "" {
						if len(errs) > 0 {
							t.Errorf("%s (lookup %v): allowed param refused: %s", kind, lookup != nil, joined)
						}
						continue
					}
					prefix := "spec.task.params[2].name: Forbidden: " + tt.param + " "
					if !strings.Contains(joined, prefix) || !strings.Contains(joined, tt.want) || !strings.Contains(joined, "remove the param") {
						t.Errorf("%s (lookup %v): want %q...%q, got:\n%s", kind, lookup != nil, prefix, tt.want, joined)
					}
				}
			}
		})
	}
}

// TestAppBindingTaskParamsThatEscalate: the Task an AppBinding names
// brings its params; a refused one is reported on spec.target.ref with the
// AppBinding's field.
func TestAppBindingTaskParamsThatEscalate(t *testing.T) {
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	set := loadDoc(t, base)
	ab := set.AppBindings[manifest.Key("demo", "db")]
	ab.Spec.Parameters = &runtime.RawExtension{Raw: []byte(`{"kind":"StashAddon","stash":{"addon":{
		"backupTask":{"name":"postgres-backup-16.1"},
		"restoreTask":{"name":"postgres-restore-16.1","params":[{"name":"STASH_IMAGE_TAG","value":"evil"}]}}}}`)}
	rs := &stashv1beta1.RestoreSession{}
	rs.Name, rs.Namespace = "rs", "demo"
	rs.Spec.Repository.Name = "repo"
	rs.Spec.Target = &stashv1beta1.RestoreTarget{Ref: stashv1beta1.TargetRef{Kind: "AppBinding", Name: "db"}}
	joined := strings.Join(errorStrings(RestoreSession(rs, ManifestLookup{Set: set, Catalog: cat})), "\n")
	want := "spec.target.ref: Forbidden: AppBinding demo/db spec.parameters.stash.addon.restoreTask.params[0].name: STASH_IMAGE_TAG chooses the tag"
	if !strings.Contains(joined, want) {
		t.Errorf("want %q, got:\n%s", want, joined)
	}
}

func errorStrings(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Error())
	}
	return out
}

func loadDoc(t *testing.T, doc string) *manifest.Set {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "m.yaml"), []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	set, err := manifest.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return set
}
