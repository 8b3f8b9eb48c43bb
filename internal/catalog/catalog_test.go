package catalog

import (
	"strings"
	"testing"
)

func TestBuiltinCatalog(t *testing.T) {
	c, err := Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"postgres-backup-11.9", "postgres-restore-11.9", "postgres-backup-16.1", "mysql-backup-8.0.21",
		"mysql-restore-8.0.21", "mariadb-backup-10.6.23", "mongodb-backup-4.2.3", "elasticsearch-backup-7.14.0",
		"perconaxtradb-backup-8.0", "pvc-backup", "pvc-restore",
	} {
		task, ok := c.Task(name)
		if !ok {
			t.Errorf("Task %s missing", name)
			continue
		}
		steps := task.Spec.Steps
		if len(steps) != 2 || steps[len(steps)-1].Name != "update-status" {
			t.Errorf("Task %s steps %+v: want the addon step then update-status", name, steps)
		}
		for _, s := range steps {
			if _, ok := c.Function(s.Name); !ok {
				t.Errorf("Task %s: Function %s missing", name, s.Name)
			}
		}
	}
	fn, _ := c.Function("postgres-backup-11.9")
	args := strings.Join(fn.Spec.Args, " ")
	for _, flag := range []string{"backup-pg", "--provider=${REPOSITORY_PROVIDER:=}", "--backup-cmd=${backupCMD:=pg_dumpall}",
		"--retention-keep-last=${RETENTION_KEEP_LAST:=0}", "--appbinding=${TARGET_NAME:=}", "--output-dir=${outputDir:=}"} {
		if !strings.Contains(args, flag) {
			t.Errorf("postgres-backup-11.9 lacks %s", flag)
		}
	}
	out, err := c.Manifests()
	if err != nil || !strings.Contains(string(out), "kind: Task") || strings.Count(string(out), "---\n") != len(c.Functions)+len(c.Tasks) {
		t.Errorf("manifests: %v", err)
	}
}
