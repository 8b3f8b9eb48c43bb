package validation

import (
	"fmt"
	"sort"

	"k8s.io/apimachinery/pkg/util/validation/field"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/manifest"
)

// Level says whether a finding fails validation.
type Level string

const (
	// LevelError: the object is wrong as given.
	LevelError Level = "error"
	// LevelWarning: something the manifests do not let us check (an
	// object a reference points to is not among them), or that is likely
	// a mistake (a field Stash does not define). Fails only --strict.
	LevelWarning Level = "warning"
)

// Finding is one thing validation found about one object.
type Finding struct {
	Level Level `json:"level"`
	// Object is "Kind namespace/name", or "Kind name" when
	// cluster-scoped.
	Object  string `json:"object"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	// Source is the file and document the object came from.
	Source string `json:"source,omitempty"`
	// Missing is the object a reference points to that the manifests do
	// not hold, for a warning that a check was not made.
	Missing *Object `json:"missing,omitempty"`
	// blocking is the field error by which a runtime that runs from the
	// manifests alone refuses the object ("" when it does not).
	blocking string
}

// String is the finding as `stash validate` prints it:
// "warning: Kind namespace/name: field: message".
func (f Finding) String() string {
	at := ""
	if f.Field != "" {
		at = f.Field + ": "
	}
	return fmt.Sprintf("%s: %s: %s%s", f.Level, f.Object, at, f.Message)
}

// Result is the verdict on one object.
type Result struct {
	Kind     string    `json:"kind"`
	Name     string    `json:"name"`
	Source   string    `json:"source,omitempty"`
	Findings []Finding `json:"findings,omitempty"`
}

// Count returns the number of findings of a level.
func (r Result) Count(l Level) int {
	n := 0
	for _, f := range r.Findings {
		if f.Level == l {
			n++
		}
	}
	return n
}

// Valid says whether the object has no errors.
func (r Result) Valid() bool { return r.Count(LevelError) == 0 }

// Blocking returns, as field errors, what keeps a runtime that runs from
// the manifests alone (the local runtime) from running the object: its
// errors, and each Repository, Secret, Task, Function or AppBinding it
// names that neither the manifests nor the catalog hold. A missing
// Namespace (whose labels only a cluster's usagePolicy check reads), target
// workload or PVC, or a field Stash does not define, does not block it.
func (r Result) Blocking() []string {
	var out []string
	for _, f := range r.Findings {
		if f.blocking != "" || f.Level == LevelError {
			out = append(out, orString(f.blocking, f.Field+": "+f.Message))
		}
	}
	return out
}

func orString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Strict makes every warning an error, for `stash validate --strict`.
func Strict(results []Result) {
	for i := range results {
		for j := range results[i].Findings {
			results[i].Findings[j].Level = LevelError
		}
	}
}

// neededToRun are the kinds of the objects a session runs from.
var neededToRun = map[string]bool{"Repository": true, "Secret": true, "Task": true, "Function": true, "AppBinding": true}

// classify turns a field error of obj into a finding: an error, or a
// warning when it is a reference to an object the manifests lack.
func classify(obj, source string, e *field.Error) Finding {
	f := Finding{Level: LevelError, Object: obj, Field: e.Field, Message: e.ErrorBody(), Source: source, blocking: e.Error()}
	if IsWarning(e) {
		// Not wrong as given: what runs it must supply a value, and
		// that is checked (and refused) there.
		f.Level, f.Message, f.blocking = LevelWarning, e.Detail, ""
		return f
	}
	if ref, ok := MissingRef(e); ok {
		o := ref.Object
		f.Level, f.Message, f.Missing = LevelWarning, notInFiles(ref), &o
		if !neededToRun[o.Kind] {
			f.blocking = ""
		}
	}
	return f
}

// All validates every Stash object of a manifest set, sorted by kind and
// name. A reference to an object the manifests (and, for Tasks and
// Functions, the catalog) do not hold is a warning that it was not
// checked, so that each manifest of a set can be validated alone; fields
// Stash does not define are warnings too. Everything else is an error.
func All(set *manifest.Set, cat *catalog.Catalog) []Result {
	l := ManifestLookup{Set: set, Catalog: cat}
	decodeWarnings := map[string][]manifest.Warning{}
	for _, w := range set.Warnings {
		decodeWarnings[w.Kind+" "+w.Key] = append(decodeWarnings[w.Kind+" "+w.Key], w)
	}
	var out []Result
	add := func(kind, key string, errs field.ErrorList) {
		obj := kind + " " + key
		r := Result{Kind: kind, Name: key, Source: set.Source(kind, key)}
		for _, w := range decodeWarnings[obj] {
			r.Findings = append(r.Findings, Finding{Level: LevelWarning, Object: obj, Field: w.Field, Message: w.Message, Source: w.Source})
		}
		delete(decodeWarnings, obj)
		for _, e := range errs {
			r.Findings = append(r.Findings, classify(obj, r.Source, e))
		}
		out = append(out, r)
	}
	for _, k := range sortedKeys(set.Repositories) {
		add("Repository", k, Repository(set.Repositories[k], l))
	}
	for _, k := range sortedKeys(set.BackupConfigurations) {
		bc := set.BackupConfigurations[k]
		errs := BackupConfiguration(bc, l)
		if t := bc.Spec.Target; t != nil {
			errs = append(errs, targetInFiles(set, t.Ref, bc.Namespace)...)
		}
		add("BackupConfiguration", k, errs)
	}
	for _, k := range sortedKeys(set.RestoreSessions) {
		rs := set.RestoreSessions[k]
		errs := RestoreSession(rs, l)
		// A restore into new claims creates its target afterwards.
		if t := rs.Spec.Target; t != nil && len(t.VolumeClaimTemplates) == 0 {
			errs = append(errs, targetInFiles(set, t.Ref, rs.Namespace)...)
		}
		add("RestoreSession", k, errs)
	}
	for _, k := range sortedKeys(set.Functions) {
		add("Function", k, Function(set.Functions[k]))
	}
	for _, k := range sortedKeys(set.Tasks) {
		add("Task", k, Task(set.Tasks[k], l))
	}
	for _, k := range sortedKeys(set.AppBindings) {
		add("AppBinding", k, AppBinding(set.AppBindings[k], l))
	}
	for _, k := range sortedKeys(set.BackupBlueprints) {
		bb := set.BackupBlueprints[k]
		errs := Repository(&stashv1alpha1.Repository{Spec: bb.Spec.RepositorySpec}, nil)
		if bb.Spec.Schedule != "" {
			errs = append(errs, Schedule(nil, bb.Spec.Schedule)...)
		}
		add("BackupBlueprint", k, errs)
	}
	// Objects of kinds not validated (Secrets, sessions) with fields
	// Stash does not define.
	for _, obj := range sortedKeys(decodeWarnings) {
		w := decodeWarnings[obj][0]
		add(w.Kind, w.Key, nil)
	}
	return out
}

// targetInFiles reports a target workload or PVC that the manifests do
// not hold: that it exists is not checked. (A missing AppBinding is
// reported by the Lookup.) ns is the invoker's namespace, which the
// manifest loader has defaulted.
func targetInFiles(set *manifest.Set, ref stashv1beta1.TargetRef, ns string) field.ErrorList {
	if ref.Kind == "" || ref.Name == "" || ref.Kind == "AppBinding" {
		return nil
	}
	if ref.Namespace != "" {
		ns = ref.Namespace
	}
	if set.Source(ref.Kind, manifest.Key(ns, ref.Name)) != "" {
		return nil
	}
	o := Object{Kind: ref.Kind, Namespace: ns, Name: ref.Name}
	return field.ErrorList{notFound(field.NewPath("spec", "target", "ref"), Ref{Object: o}, o.String())}
}

func sortedKeys[T any](m map[string]T) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
