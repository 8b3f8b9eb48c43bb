package validation

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/util/validation/field"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/plan"
)

// UpdateStatusFunction is the Function every Task must end with.
const UpdateStatusFunction = "update-status"

// advice is the BadValue of a field error that is a warning: the object is
// not wrong as given, but what uses it must supply something (a Task's
// parameter without a default). It prints as the value it stands for.
type advice string

func (a advice) String() string { return string(a) }

// MarshalJSON makes field.Error print the value as a quoted string.
func (a advice) MarshalJSON() ([]byte, error) { return json.Marshal(string(a)) }

// warning returns a field error that All reports as a warning.
func warning(p *field.Path, value, detail string) *field.Error {
	return field.Invalid(p, advice(value), detail)
}

// IsWarning says whether a field error of this package is a warning (a
// Task parameter its invokers must set) rather than an error. Callers
// other than All that refuse objects on errors should skip these.
func IsWarning(e *field.Error) bool {
	_, ok := e.BadValue.(advice)
	return ok
}

// lastStep checks that a Task ends with update-status: the last step runs
// as the Job's main container, and only update-status records the
// session's result, so with any other a session never succeeds.
func lastStep(p *field.Path, steps []stashv1beta1.FunctionRef) *field.Error {
	last := len(steps) - 1
	name := steps[last].Name
	if name == UpdateStatusFunction || name == "" {
		return nil
	}
	fix := "append `- name: update-status` with params [{name: outputDir, value: /stash-tmp/output}] to spec.steps, as every catalog Task does"
	for i, s := range steps[:last] {
		if s.Name == UpdateStatusFunction {
			fix = fmt.Sprintf("move step %d (update-status) to the end of spec.steps", i)
		}
	}
	return field.Invalid(p.Index(last).Child("name"), name,
		"the last step must be the Function update-status: the last step runs as the Job's main container and is the one that records the session's result "+
			"(it reads the steps' output.json into the BackupSession or RestoreSession), so without it a session can never succeed; "+fix)
}

// templated is one string of an object that holds a placeholder, and the
// field it is at.
type templated struct {
	path, value string
}

// templates returns the strings of v (as JSON) that hold "${", with their
// paths under root, in a stable order. Only values are substituted, never
// keys.
func templates(root string, v any) []templated {
	raw, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil
	}
	var out []templated
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch t := v.(type) {
		case string:
			if strings.Contains(t, "${") {
				out = append(out, templated{path, t})
			}
		case []any:
			for i, e := range t {
				walk(path+"["+strconv.Itoa(i)+"]", e)
			}
		case map[string]any:
			keys := make([]string, 0, len(t))
			for k := range t {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(path+"."+k, t[k])
			}
		}
	}
	walk(root, tree)
	return out
}

// knownValues gives every variable the resolver may provide a value, for
// plan.Unresolved.
var knownValues = sync.OnceValue(func() map[string]string {
	m := map[string]string{}
	for _, n := range plan.KnownVariables() {
		m[n] = "known"
	}
	return m
})

// withParams returns the known variables and the names params set.
func withParams(params ...[]stashv1beta1.Param) map[string]string {
	m := make(map[string]string, len(knownValues())+8)
	for k, v := range knownValues() {
		m[k] = v
	}
	for _, ps := range params {
		for _, p := range ps {
			// A non-empty stand-in: what counts is that the name is set.
			m[p.Name] = "set"
		}
	}
	return m
}

// unresolvedVar is a variable substitution would find without a value, and
// the first field it is used at.
type unresolvedVar struct {
	name, at string
}

// unresolvedIn returns the variables of strs without a value in vars, each
// once, in order of first use; strings with a malformed placeholder are
// skipped (reported where the string is defined).
func unresolvedIn(strs []templated, vars map[string]string) []unresolvedVar {
	var out []unresolvedVar
	seen := map[string]bool{}
	for _, s := range strs {
		names, err := plan.Unresolved(s.value, vars)
		if err != nil {
			continue
		}
		for _, n := range names {
			if !seen[n] {
				seen[n] = true
				out = append(out, unresolvedVar{n, s.path})
			}
		}
	}
	return out
}

// isParameterName says whether a variable is, by Stash's convention, a
// parameter (lower-camel: outputDir, args) rather than one the operator
// provides (UPPER_CASE).
func isParameterName(name string) bool { return strings.ToUpper(name) != name }

// environmentOnly are names that are the step container's environment, set
// by Kubernetes, not template variables.
var environmentOnly = map[string]bool{"POD_NAME": true, "NODE_NAME": true}

// stashOnly are the operator-provided variables of Stash that this project
// does not provide.
var stashOnly = map[string]bool{
	"PROMETHEUS_PUSHGATEWAY_URL": true, "LICENSE_APISERVICE": true, "HOOK_TYPE": true,
	"TARGET_RESOURCE": true, "TARGET_APP_VERSION": true, "TARGET_APP_TYPE": true, "TARGET_APP_GROUP": true, "TARGET_APP_RESOURCE": true,
	"REPOSITORY_URL": true, "NICE_ADJUSTMENT": true, "IONICE_CLASS": true, "IONICE_CLASS_DATA": true, "ENABLE_STATUS_SUBRESOURCE": true,
}

// unknownVariable explains an UPPER_CASE variable the operator does not
// provide, with the likely fix. candidates are the names it may be a
// misspelling of; inFunction says it is in a Function, where the step's
// params may set it and a shell script may have meant its own variable.
func unknownVariable(name string, candidates []string, inFunction bool) string {
	switch {
	case environmentOnly[name]:
		return name + " is set in the step container's environment, not substituted by Stash: write $(" + name + ") in command or args for Kubernetes to expand it, or $" + name + " in a shell script"
	case stashOnly[name]:
		return name + " is a Stash variable this operator does not provide: give it a default (${" + name + ":=value}) or set it in the step's params"
	}
	fix := "fix the name or give it a default with ${" + name + ":=value}"
	if inFunction {
		fix = "fix the name, set it in the step's params, or give it a default with ${" + name + ":=value}; a shell variable in a script is written $" + name + " or $${" + name + "}"
	}
	if s := suggest(name, candidates); s != "" {
		return name + " is not a variable Stash provides: did you mean " + s + "? Or " + fix
	}
	return name + " is not a variable Stash provides: " + fix
}

// suggest returns the one candidate name is likely a misspelling of: the
// same name in another case, the REPOSITORY_ name for a REPO_ one, or the
// only nearest name at edit distance 2 or less (1 for a name shorter than
// 6, where 2 edits make port of host).
func suggest(name string, candidates []string) string {
	for _, c := range candidates {
		if c != name && strings.EqualFold(c, name) {
			return c
		}
	}
	if rest, ok := strings.CutPrefix(name, "REPO_"); ok {
		for _, c := range candidates {
			if c == "REPOSITORY_"+rest {
				return c
			}
		}
	}
	maxD := 1
	if len(name) >= 6 {
		maxD = 2
	}
	best, bestD, ties := "", maxD+1, 0
	for _, c := range candidates {
		if c == name {
			continue
		}
		switch d := editDistance(name, c); {
		case d < bestD:
			best, bestD, ties = c, d, 1
		case d == bestD:
			ties++
		}
	}
	if ties != 1 {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance of two names.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func candidates(params []stashv1beta1.Param) []string {
	out := plan.KnownVariables()
	for _, p := range params {
		out = append(out, p.Name)
	}
	return out
}

// isVolumeSource says whether a Task field (from templates) is in the
// source of one of its volumes (which PVC, Secret or path it mounts) rather
// than its name.
func isVolumeSource(path string) bool {
	rest, ok := strings.CutPrefix(path, "spec.volumes[")
	if !ok {
		return false
	}
	_, key, _ := strings.Cut(rest, "].")
	return key != "name"
}

// taskVariables checks the variables of a Task and of the Functions its
// steps run, as the resolver will substitute them: an UPPER_CASE variable
// the operator does not provide and nothing sets is an error (a typo, most
// likely); a parameter the step does not set is a warning, since every
// invoker must then set it. Steps whose Function is unknown are skipped.
func taskVariables(t *stashv1beta1.Task, l Lookup) field.ErrorList {
	errs := placeholderSyntax(t.Spec)
	steps := field.NewPath("spec", "steps")
	// The Task itself is substituted with the operator's variables and
	// the invoker's params only: step params apply to their Function.
	for _, u := range unresolvedIn(templates("spec", t.Spec), withParams()) {
		value := "${" + u.name + "}"
		switch {
		case !isParameterName(u.name):
			errs = append(errs, field.Invalid(field.NewPath(u.at), value, "the Task uses "+value+" with no default, and "+unknownVariable(u.name, candidates(nil), false)))
		case isVolumeSource(u.at):
			errs = append(errs, field.Invalid(field.NewPath(u.at), value,
				"a volume's source uses the parameter "+value+" with no default, which nothing can set: a BackupConfiguration or RestoreSession may not choose what the Job's pod mounts (spec.task.params refuses it); use an operator variable such as ${TARGET_NAME} or ${REPOSITORY_SECRET_NAME}, or a fixed name"))
		default:
			errs = append(errs, warning(field.NewPath(u.at), value,
				"the Task uses the parameter "+value+" with no default: every BackupConfiguration/RestoreSession using this Task must set it in spec.task.params; or give it a default with ${"+u.name+":=value}"))
		}
	}
	if l == nil {
		return errs
	}
	for i, s := range t.Spec.Steps {
		fn, ok := l.Function(s.Name)
		if !ok || s.Name == "" {
			continue
		}
		for _, u := range unresolvedIn(templates("spec", fn.Spec), withParams(s.Params)) {
			value := "${" + u.name + "}"
			uses := fmt.Sprintf("Function %s uses %s (%s) with no default", fn.Name, value, u.at)
			if !isParameterName(u.name) {
				errs = append(errs, field.Invalid(steps.Index(i).Child("name"), value, uses+", and "+unknownVariable(u.name, candidates(s.Params), true)))
				continue
			}
			msg := uses + " and this step's params do not set it: every BackupConfiguration/RestoreSession using this Task must set it in spec.task.params; or set it here with `- {name: " + u.name + ", value: ...}`"
			if c := suggest(u.name, candidates(s.Params)); c != "" {
				msg += " (did you mean " + c + "?)"
			}
			errs = append(errs, warning(steps.Index(i).Child("params"), value, msg))
		}
	}
	return errs
}

// invokerVariables checks that the params of an invoker's Task (ref, with
// the AppBinding's StashAddon params merged in when fromAddon) set every
// parameter its Task and Functions use without a default and that the
// Task's steps do not set: otherwise the Job cannot be built. The Task's
// own faults (an unknown UPPER_CASE variable, a parameter in a volume's
// source) are reported on the Task. A Task or Function not found is
// skipped: taskRef reports it.
func invokerVariables(p *field.Path, ref stashv1beta1.TaskRef, ab *appcatalogv1alpha1.AppBinding, fromAddon, restore bool, l Lookup) field.ErrorList {
	if l == nil || ref.Name == "" {
		return nil
	}
	task, ok := l.Task(ref.Name)
	if !ok {
		return nil
	}
	sources, alsoAt := "spec.task.params", ""
	if fromAddon && ab != nil {
		key := "backupTask"
		if restore {
			key = "restoreTask"
		}
		sources += " nor the StashAddon params of AppBinding " + ab.Namespace + "/" + ab.Name
		alsoAt = " (or to the AppBinding's spec.parameters.stash.addon." + key + ".params)"
	}
	fix := func(name string) string {
		return "add `- {name: " + name + ", value: ...}` to spec.task.params" + alsoAt
	}
	var errs field.ErrorList
	for _, u := range unresolvedIn(templates("spec", task.Spec), withParams(ref.Params)) {
		if !isParameterName(u.name) || isVolumeSource(u.at) {
			continue
		}
		errs = append(errs, field.Required(p, fmt.Sprintf("Task %s uses the parameter ${%s} (%s) with no default, and %s does not set it: %s",
			task.Name, u.name, u.at, sources, fix(u.name))))
	}
	for i, s := range task.Spec.Steps {
		fn, ok := l.Function(s.Name)
		if !ok || s.Name == "" {
			continue
		}
		for _, u := range unresolvedIn(templates("spec", fn.Spec), withParams(s.Params, ref.Params)) {
			if !isParameterName(u.name) {
				continue
			}
			errs = append(errs, field.Required(p, fmt.Sprintf("Function %s (step %d of Task %s) uses the parameter ${%s} (%s) with no default, and neither the step's params nor %s set it: %s",
				fn.Name, i, task.Name, u.name, u.at, sources, fix(u.name))))
		}
	}
	return errs
}

// placeholderSyntax refuses a malformed placeholder in a Function's or
// Task's spec: the resolver could not substitute it, so no session could
// run it.
func placeholderSyntax(spec any) field.ErrorList {
	var errs field.ErrorList
	for _, s := range templates("spec", spec) {
		_, err := plan.Unresolved(s.value, nil)
		var se *plan.SyntaxError
		if errors.As(err, &se) {
			errs = append(errs, field.Invalid(field.NewPath(s.path), s.value, err.Error()+": write ${NAME}, ${NAME:=default}, or $${ for a literal ${"))
		}
	}
	return errs
}
