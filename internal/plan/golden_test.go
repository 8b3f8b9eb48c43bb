package plan_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/plan"
)

var update = flag.Bool("update", false, "rewrite the golden files")

var goldenRepo = &stashv1alpha1.Repository{
	ObjectMeta: metaNS("s3-repo", "demo"),
	Spec: stashv1alpha1.RepositorySpec{Backend: stashv1alpha1.Backend{
		StorageSecretName: "s3-secret",
		S3:                &stashv1alpha1.S3Spec{Endpoint: "s3.amazonaws.com", Bucket: "stash-backup", Prefix: "demo/app", Region: "us-east-1"},
	}},
}

// TestGoldenJobs resolves every Task of the catalog into its Job and
// compares it with testdata/golden/<task>.yaml (go test -update rewrites).
func TestGoldenJobs(t *testing.T) {
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range cat.TaskNames() {
		t.Run(name, func(t *testing.T) {
			var docs []any
			for _, j := range catalogJobs(t, cat, name, goldenRepo) {
				docs = append(docs, j)
			}
			var got []byte
			for _, d := range docs {
				raw, err := yaml.Marshal(d)
				if err != nil {
					t.Fatal(err)
				}
				got = append(append(got, "---\n"...), raw...)
			}
			path := filepath.Join("testdata", "golden", name+".yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/plan -run TestGoldenJobs -update)", err)
			}
			if string(want) != string(got) {
				t.Errorf("Job for %s differs from %s; run with -update if the change is intended\n%s", name, path, diffLines(string(want), string(got)))
			}
		})
	}
}

// catalogJobs builds the Jobs of one catalog Task as the golden files
// show them: an AppBinding target, or a PVC for the pvc-* Tasks.
func catalogJobs(t *testing.T, cat plan.Catalog, name string, repo *stashv1alpha1.Repository) []*batchv1.Job {
	t.Helper()
	target := stashv1beta1.TargetRef{APIVersion: "appcatalog.appscode.com/v1alpha1", Kind: "AppBinding", Name: "sample-app"}
	if strings.HasPrefix(name, "pvc-") {
		target = stashv1beta1.TargetRef{APIVersion: "v1", Kind: "PersistentVolumeClaim", Name: "data-pvc"}
	}
	if strings.Contains(name, "-backup") {
		bc := &stashv1beta1.BackupConfiguration{ObjectMeta: metaNS("app-backup", "demo")}
		bc.Spec.Task = stashv1beta1.TaskRef{Name: name}
		bc.Spec.Target = &stashv1beta1.BackupTarget{Ref: target, Paths: []string{"/data"}}
		bc.Spec.Repository = stashv1beta1.ObjectReference{Name: repo.Name}
		bc.Spec.RetentionPolicy = stashv1alpha1.RetentionPolicy{Name: "keep", KeepLast: 5, Prune: true}
		job, err := plan.BackupJob(plan.BackupRequest{Config: bc, Session: "app-backup-1700000000", Repository: repo, Catalog: cat})
		if err != nil {
			t.Fatal(err)
		}
		return []*batchv1.Job{job}
	}
	rs := &stashv1beta1.RestoreSession{ObjectMeta: metaNS("app-restore", "demo")}
	rs.Spec.Task = stashv1beta1.TaskRef{Name: name}
	rs.Spec.Target = &stashv1beta1.RestoreTarget{Ref: target, Rules: []stashv1beta1.Rule{{Snapshots: []string{"latest"}}}}
	rs.Spec.Repository = stashv1beta1.ObjectReference{Name: repo.Name}
	jobs, err := plan.RestoreJobs(plan.RestoreRequest{Session: rs, Repository: repo, Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

func diffLines(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out []string
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			out = append(out, "- "+x, "+ "+y)
			if len(out) > 20 {
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
