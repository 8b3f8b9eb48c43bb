package validation

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/manifest"
	"github.com/stash-backup/stash/internal/testserver"
)

// TestCatalogTasksAndFunctionsAreValid: every Task of the embedded catalog
// ends with update-status, and it and its Functions use only variables
// that will have a value, with no warning either; every Function's
// placeholders are well-formed.
func TestCatalogTasksAndFunctionsAreValid(t *testing.T) {
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	if len(cat.Tasks) < 90 {
		t.Fatalf("only %d Tasks", len(cat.Tasks))
	}
	l := ManifestLookup{Set: &manifest.Set{}, Catalog: cat}
	for _, name := range cat.TaskNames() {
		task, _ := cat.Task(name)
		for _, e := range Task(task, l) {
			t.Errorf("Task %s (%s): %v", name, cat.Files["Task/"+name], e)
		}
	}
	for name, fn := range cat.Functions {
		for _, e := range Function(fn) {
			t.Errorf("Function %s (%s): %v", name, cat.Files["Function/"+name], e)
		}
	}
}

// TestExamplesAreValid: each manifest under examples/ validates with no
// finding but references the file does not hold.
func TestExamplesAreValid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(testserver.RepoRoot(), "examples", "*", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("examples: %v %v", files, err)
	}
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	for _, file := range files {
		set, err := manifest.Load(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range All(set, cat.With(set.Functions, set.Tasks)) {
			for _, f := range r.Findings {
				if f.Missing == nil {
					t.Errorf("%s: %s", file, f)
				}
			}
		}
	}
}

// The Function and Task an addon author writes: a third-party image, a
// script, a password from a Secret.
func fnDoc(args string) string {
	return `apiVersion: stash.appscode.com/v1beta1
kind: Function
metadata: {name: my-dump}
spec:
  image: localhost/redis-tools:e2e
  command: [sh, -c]
  args:
` + args + `
  runtimeSettings:
    env:
    - name: REDISCLI_AUTH
      valueFrom: {secretKeyRef: {name: redis-auth, key: password}}
`
}

const updateStatusStep = `  - name: update-status
    params: [{name: outputDir, value: /stash-tmp/output}]
`

func taskDoc(steps string) string {
	return `apiVersion: stash.appscode.com/v1beta1
kind: Task
metadata: {name: my-task}
spec:
  steps:
` + steps
}

const myDumpStep = "  - name: my-dump\n    params: [{name: outputDir, value: /stash-tmp/output}]\n"

// TestTaskChecks: a Task must end with update-status; every UPPER_CASE
// variable its Functions use without a default must be one the operator
// provides (or a step param); a parameter without a default that the step
// does not set is a warning, as each invoker must set it.
func TestTaskChecks(t *testing.T) {
	ok := fnDoc(`  - redis-cli --rdb /stash-tmp/dump.rdb -h ${host:=redis} && echo ${outputDir} ${HOSTNAME} ${TARGET_NAME:=x} $${HOME} $$HOME $PATH`)
	for _, tc := range []struct {
		name, doc string
		// want: each is part of one finding ("level: Object: field:
		// message"); there are no others.
		want []string
	}{
		{"catalog shape", docs(ok, taskDoc(myDumpStep+updateStatusStep)), nil},
		{"no update-status", docs(ok, taskDoc(myDumpStep)), []string{
			"error: Task my-task: spec.steps[0].name: Invalid value: \"my-dump\": the last step must be the Function update-status: " +
				"the last step runs as the Job's main container and is the one that records the session's result " +
				"(it reads the steps' output.json into the BackupSession or RestoreSession), so without it a session can never succeed; " +
				"append `- name: update-status` with params [{name: outputDir, value: /stash-tmp/output}] to spec.steps, as every catalog Task does"}},
		{"update-status not last", docs(ok, taskDoc(updateStatusStep+myDumpStep)), []string{
			"error: Task my-task: spec.steps[1].name: Invalid value: \"my-dump\": the last step must be the Function update-status",
			"move step 0 (update-status) to the end of spec.steps"}},
		{"misspelt operator variable", docs(fnDoc(`  - echo ${REPO_BUCKET} ${HOSTNAM}`), taskDoc(myDumpStep+updateStatusStep)), []string{
			"error: Task my-task: spec.steps[0].name: Invalid value: \"${REPO_BUCKET}\": Function my-dump uses ${REPO_BUCKET} (spec.args[0]) with no default, " +
				"and REPO_BUCKET is not a variable Stash provides: did you mean REPOSITORY_BUCKET? Or fix the name, set it in the step's params, or give it a default with ${REPO_BUCKET:=value}",
			"error: Task my-task: spec.steps[0].name: Invalid value: \"${HOSTNAM}\": Function my-dump uses ${HOSTNAM} (spec.args[0]) with no default, " +
				"and HOSTNAM is not a variable Stash provides: did you mean HOSTNAME?"}},
		{"unknown, far from any", docs(fnDoc(`  - echo ${REDIS_HOST}`), taskDoc(myDumpStep+updateStatusStep)), []string{
			"REDIS_HOST is not a variable Stash provides: fix the name, set it in the step's params, or give it a default with ${REDIS_HOST:=value}; " +
				"a shell variable in a script is written $REDIS_HOST or $${REDIS_HOST}"}},
		{"UPPER_CASE set by the step", docs(fnDoc(`  - echo ${REDIS_HOST}`), taskDoc("  - name: my-dump\n    params: [{name: REDIS_HOST, value: r}]\n"+updateStatusStep)), nil},
		{"container environment", docs(fnDoc(`  - echo ${POD_NAME}`), taskDoc(myDumpStep+updateStatusStep)), []string{
			"POD_NAME is set in the step container's environment, not substituted by Stash: write $(POD_NAME) in command or args for Kubernetes to expand it, or $POD_NAME in a shell script"}},
		{"Stash's, not provided", docs(fnDoc(`  - --license-apiservice=${LICENSE_APISERVICE}`), taskDoc(myDumpStep+updateStatusStep)), []string{
			"LICENSE_APISERVICE is a Stash variable this operator does not provide: give it a default (${LICENSE_APISERVICE:=value}) or set it in the step's params"}},
		{"unknown in a used default", docs(fnDoc(`  - echo ${db:=${DB_NAME}}`), taskDoc(myDumpStep+updateStatusStep)), []string{
			"error: Task my-task: spec.steps[0].name: Invalid value: \"${DB_NAME}\": Function my-dump uses ${DB_NAME}"}},
		{"parameter the step does not set", docs(fnDoc(`  - redis-cli -n ${database}`), taskDoc(myDumpStep+updateStatusStep)), []string{
			"warning: Task my-task: spec.steps[0].params: Function my-dump uses ${database} (spec.args[0]) with no default and this step's params do not set it: " +
				"every BackupConfiguration/RestoreSession using this Task must set it in spec.task.params; or set it here with `- {name: database, value: ...}`"}},
		{"parameter misspelt", docs(fnDoc(`  - echo ${outputdir}`), taskDoc(myDumpStep+updateStatusStep)), []string{
			"warning: Task my-task: spec.steps[0].params: Function my-dump uses ${outputdir}", "(did you mean outputDir?)"}},
		{"parameter of a step param's value", docs(ok, taskDoc("  - name: my-dump\n    params: [{name: outputDir, value: '${dir}'}]\n"+updateStatusStep)), []string{
			"warning: Task my-task: spec.steps[0].params[0].value: the Task uses the parameter ${dir} with no default: every BackupConfiguration/RestoreSession using this Task must set it in spec.task.params"}},
		{"volumes", docs(ok, taskDoc(myDumpStep+updateStatusStep)+`  volumes:
  - name: data
    persistentVolumeClaim: {claimName: '${TARGET_NAME}'}
  - name: mine
    persistentVolumeClaim: {claimName: '${claim}'}
  - name: typo
    secret: {secretName: '${REPOSITORY_SECERT_NAME}'}
  - name: far
    secret: {secretName: '${SECRET_VOLUME}'}
`), []string{
			"error: Task my-task: spec.volumes[1].persistentVolumeClaim.claimName: Invalid value: \"${claim}\": a volume's source uses the parameter ${claim} with no default, which nothing can set",
			"error: Task my-task: spec.volumes[2].secret.secretName: Invalid value: \"${REPOSITORY_SECERT_NAME}\": the Task uses ${REPOSITORY_SECERT_NAME} with no default, " +
				"and REPOSITORY_SECERT_NAME is not a variable Stash provides: did you mean REPOSITORY_SECRET_NAME? Or fix the name or give it a default with ${REPOSITORY_SECERT_NAME:=value}",
			"error: Task my-task: spec.volumes[3].secret.secretName: Invalid value: \"${SECRET_VOLUME}\": the Task uses ${SECRET_VOLUME} with no default, " +
				"and SECRET_VOLUME is not a variable Stash provides: fix the name or give it a default with ${SECRET_VOLUME:=value}"}},
		{"malformed placeholder", docs(fnDoc(`  - echo ${a`), taskDoc(myDumpStep+updateStatusStep)), []string{
			"error: Function my-dump: spec.args[0]: Invalid value: \"echo ${a\": bad placeholder at offset 5: unterminated ${a: write ${NAME}, ${NAME:=default}, or $${ for a literal ${"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			results := validateDoc(t, tc.doc)
			var got []string
			for _, r := range results {
				for _, f := range r.Findings {
					got = append(got, f.String())
				}
				if r.Kind == "Task" && r.Count(LevelError) == 0 && len(r.Blocking()) > 0 {
					t.Errorf("a warning blocks the local runtime: %v", r.Blocking())
				}
			}
			joined := strings.Join(got, "\n")
			for _, w := range tc.want {
				if !strings.Contains(joined, w) {
					t.Errorf("no finding contains\n%s\nfindings:\n%s", w, joined)
				}
			}
			if want := countFindings(tc.want); len(got) != want {
				t.Errorf("%d findings, want %d:\n%s", len(got), want, joined)
			}
		})
	}
}

// countFindings counts the wanted findings: a part that does not start
// with a level continues the previous one.
func countFindings(want []string) int {
	n := 0
	for _, w := range want {
		if strings.HasPrefix(w, "error: ") || strings.HasPrefix(w, "warning: ") || n == 0 {
			n++
		}
	}
	return n
}

// TestTaskParamWarningUnderStrict: a parameter warning fails --strict, and
// never blocks the local runtime.
func TestTaskParamWarningUnderStrict(t *testing.T) {
	results := validateDoc(t, docs(fnDoc(`  - redis-cli -n ${database}`), taskDoc(myDumpStep+updateStatusStep)))
	for _, r := range results {
		if len(r.Blocking()) > 0 || !r.Valid() {
			t.Errorf("%s %s: %v", r.Kind, r.Name, r.Findings)
		}
	}
	Strict(results)
	for _, r := range results {
		if r.Kind == "Task" && r.Valid() {
			t.Errorf("--strict: Task valid: %v", r.Findings)
		}
	}
}

// TestInvokerParams: a parameter the Task uses without a default and its
// step does not set must come from the invoker's spec.task.params, or the
// AppBinding's StashAddon params when the invoker names no Task; without
// it the Job cannot be built, an error.
func TestInvokerParams(t *testing.T) {
	fn := fnDoc(`  - redis-cli -n ${database} --rdb ${outputDir}/dump.rdb`)
	task := taskDoc(myDumpStep + updateStatusStep)
	bc := func(params string) string {
		return `apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: bc, namespace: demo}
spec:
  schedule: "@daily"
  task: {name: my-task` + params + `}
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: db}}
  retentionPolicy: {name: k, keepLast: 1, prune: true}
`
	}
	rs := func(task string) string {
		return `apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: rs, namespace: demo}
spec:
  ` + task + `
  repository: {name: repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: db}
    rules: [{snapshots: [latest]}]
`
	}
	addonBinding := func(params string) string {
		return `apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: db, namespace: demo}
spec:
  clientConfig:
    service: {name: db, port: 6379}
  parameters:
    apiVersion: stash.appscode.com/v1alpha1
    kind: StashAddon
    stash:
      addon:
        backupTask: {name: my-task}
        restoreTask: {name: my-task` + params + `}
`
	}
	const taskWarning = "warning: Task my-task: spec.steps[0].params: Function my-dump uses ${database}"
	for _, tc := range []struct {
		name, doc string
		want      []string
	}{
		{"BackupConfiguration without the param", docs(fn, task, bc("")), []string{taskWarning,
			"error: BackupConfiguration demo/bc: spec.task.params: Required value: Function my-dump (step 0 of Task my-task) uses the parameter ${database} (spec.args[0]) with no default, " +
				"and neither the step's params nor spec.task.params set it: add `- {name: database, value: ...}` to spec.task.params"}},
		{"BackupConfiguration with the param", docs(fn, task, bc(", params: [{name: database, value: '2'}]")), []string{taskWarning}},
		{"RestoreSession without the param", docs(fn, task, rs("task: {name: my-task}")), []string{taskWarning,
			"error: RestoreSession demo/rs: spec.task.params: Required value: Function my-dump (step 0 of Task my-task) uses the parameter ${database}"}},
		{"the AppBinding names the Task, without the param", docs(fn, task, addonBinding(""), rs("")), []string{taskWarning,
			"error: RestoreSession demo/rs: spec.task.params: Required value: Function my-dump (step 0 of Task my-task) uses the parameter ${database} (spec.args[0]) with no default, " +
				"and neither the step's params nor spec.task.params nor the StashAddon params of AppBinding demo/db set it: add `- {name: database, value: ...}` to spec.task.params " +
				"(or to the AppBinding's spec.parameters.stash.addon.restoreTask.params)"}},
		{"the AppBinding's params set it", docs(fn, task, addonBinding(", params: [{name: database, value: '2'}]"), rs("")), []string{taskWarning}},
		{"the invoker's params set it", docs(fn, task, addonBinding(""), rs("task: {params: [{name: database, value: '2'}]}")), []string{taskWarning}},
		{"a parameter of the Task itself", docs(fnDoc(`  - echo ${outputDir}`), taskDoc("  - name: my-dump\n    params: [{name: outputDir, value: '${dir}'}]\n"+updateStatusStep), bc("")), []string{
			"warning: Task my-task: spec.steps[0].params[0].value: the Task uses the parameter ${dir}",
			"error: BackupConfiguration demo/bc: spec.task.params: Required value: Task my-task uses the parameter ${dir} (spec.steps[0].params[0].value) with no default, and spec.task.params does not set it: add `- {name: dir, value: ...}` to spec.task.params"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, r := range validateDoc(t, docs(secretDoc, repoDoc, tc.doc)) {
				for _, f := range r.Findings {
					if f.Missing == nil {
						got = append(got, f.String())
					}
				}
			}
			joined := strings.Join(got, "\n")
			for _, w := range tc.want {
				if !strings.Contains(joined, w) {
					t.Errorf("no finding contains\n%s\nfindings:\n%s", w, joined)
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("%d findings, want %d:\n%s", len(got), len(tc.want), joined)
			}
		})
	}
}

func TestSuggest(t *testing.T) {
	names := append(candidates(nil), "host", "outputDir")
	for _, tc := range []struct{ name, want string }{
		{"HOSTNAM", "HOSTNAME"},
		{"REPO_BUCKET", "REPOSITORY_BUCKET"},
		{"REPO_PREFIX", "REPOSITORY_PREFIX"},
		{"hostname", "HOSTNAME"},
		{"TARGET_PATH", "TARGET_PATHS"},
		{"RESTORE_SNAPSHOT", "RESTORE_SNAPSHOTS"},
		{"REPOSITORY_SECRET", ""},
		{"SECRET_VOLUME", ""},
		{"REDIS_HOST", ""},
		{"port", ""},
	} {
		if got := suggest(tc.name, names); got != tc.want {
			t.Errorf("suggest(%s) = %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := suggest("outputdir", []string{"outputDir"}); got != "outputDir" {
		t.Errorf("suggest(outputdir) = %q", got)
	}
}
