package validation

import (
	"encoding/json"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Object names an object: its kind, namespace (empty for cluster-scoped
// kinds) and name.
type Object struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// String returns "Kind namespace/name", or "Kind name" for a
// cluster-scoped object.
func (o Object) String() string {
	if o.Namespace == "" {
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Namespace + "/" + o.Name
}

// Ref is the BadValue of every NotFound error this package returns: the
// object a reference points to, which the Lookup does not hold. Reconcilers
// and the webhook treat such an error as "wait for it"; `stash validate`
// as a check it could not make from the given files. It prints as the
// error's value always has, so field errors read the same.
type Ref struct {
	Object
	// Catalog says the object may also come from the addon catalog
	// (Tasks and Functions).
	Catalog bool
	// Unchecked says, in the parentheses after "not checked", what else
	// could not be checked without the object ("nor its Functions").
	Unchecked string
	shown     string
}

func (r Ref) String() string { return r.shown }

// MarshalJSON makes field.Error print the value as a quoted string.
func (r Ref) MarshalJSON() ([]byte, error) { return json.Marshal(r.shown) }

// notFound returns the NotFound error of a reference at p to r, whose
// value prints as shown.
func notFound(p *field.Path, r Ref, shown string) *field.Error {
	r.shown = shown
	return field.NotFound(p, r)
}

// MissingRef returns the object a NotFound error of this package names.
func MissingRef(e *field.Error) (Ref, bool) {
	if e.Type != field.ErrorTypeNotFound {
		return Ref{}, false
	}
	r, ok := e.BadValue.(Ref)
	return r, ok
}

// notInFiles is the warning `stash validate` gives for a missing
// reference: what was not checked, and how to check it.
func notInFiles(r Ref) string {
	where := "the given files"
	if r.Catalog {
		where += " nor the built-in catalog (stash addons list)"
	}
	extra := ""
	if r.Unchecked != "" {
		extra = " (" + r.Unchecked + ")"
	}
	return r.Object.String() + " is not in " + where + ": not checked" + extra + "; pass it with -f to check it"
}
