package repository

import "strings"

// The tags that name the invoker of the session that took a snapshot.
const (
	TagInvokerKind      = "invoker-kind"
	TagInvokerName      = "invoker-name"
	TagInvokerNamespace = "invoker-namespace"
)

// Invoker is what started the session that took a snapshot: a
// BackupConfiguration (or BackupBatch) in a namespace. The zero Invoker
// stands for snapshots that name none.
type Invoker struct {
	Namespace string `json:"namespace,omitempty"`
	Kind      string `json:"kind,omitempty"`
	Name      string `json:"name,omitempty"`
}

// InvokerOf reads a snapshot's invoker from its tags. Without a name tag
// the snapshot names no invoker, whatever else it carries.
func InvokerOf(s Snapshot) Invoker {
	name := s.Tags[TagInvokerName]
	if name == "" {
		return Invoker{}
	}
	return Invoker{Namespace: s.Tags[TagInvokerNamespace], Kind: s.Tags[TagInvokerKind], Name: name}
}

// IsZero reports whether i names no invoker.
func (i Invoker) IsZero() bool { return i.Name == "" }

// String is "namespace/Kind/name" (parts that are unknown left empty), or
// "" for the zero Invoker.
func (i Invoker) String() string {
	if i.IsZero() {
		return ""
	}
	return strings.Join([]string{i.Namespace, i.Kind, i.Name}, "/")
}

// Tags are the snapshot tags that record i; none for the zero Invoker.
func (i Invoker) Tags() map[string]string {
	if i.IsZero() {
		return nil
	}
	t := map[string]string{TagInvokerName: i.Name}
	if i.Kind != "" {
		t[TagInvokerKind] = i.Kind
	}
	if i.Namespace != "" {
		t[TagInvokerNamespace] = i.Namespace
	}
	return t
}

// Invokers lists the distinct invokers of snaps in the order they first
// appear, the zero Invoker included when a snapshot names none.
func Invokers(snaps []Snapshot) []Invoker {
	var out []Invoker
	seen := map[Invoker]bool{}
	for _, s := range snaps {
		if i := InvokerOf(s); !seen[i] {
			seen[i] = true
			out = append(out, i)
		}
	}
	return out
}
