package webhook

import (
	"context"
	"encoding/json"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/stash-backup/stash/internal/sidecar"
)

// WorkloadPath is where the workload mutating webhook is served.
const WorkloadPath = "/mutate-stash-workload"

// Workloads re-adds the backup sidecar to a workload whose manifest a user
// applies again without it, so that the pods do not roll twice (once
// without the sidecar, once with it when the operator notices). Its
// configuration selects only workloads carrying plan.LabelInjected and
// ignores failures: an operator outage never blocks a workload, and the
// workload controller re-adds the sidecar once the operator is back.
type Workloads struct {
	Reader    client.Reader
	Injection sidecar.Injection
	Decoder   admission.Decoder
}

// Handle implements admission.Handler. It never refuses: at worst it
// admits the object unchanged.
func (w Workloads) Handle(ctx context.Context, req admission.Request) admission.Response {
	obj := sidecar.NewWorkload(req.Kind.Kind)
	if obj == nil {
		return admission.Allowed("not a workload Stash backs up by sidecar")
	}
	if err := w.Decoder.DecodeRaw(req.Object, obj); err != nil {
		return admission.Allowed("").WithWarnings("stash: could not read the workload to add its backup sidecar: " + err.Error())
	}
	if obj.GetNamespace() == "" {
		obj.SetNamespace(req.Namespace)
	}
	if obj.GetName() == "" {
		obj.SetName(req.Name)
	}
	changed, err := sidecar.Apply(ctx, w.Reader, w.Injection, obj)
	if err != nil {
		return admission.Allowed("").WithWarnings("stash: the backup sidecar was not added: " + err.Error() + "; the operator adds it shortly")
	}
	if !changed {
		return admission.Allowed("")
	}
	b, err := json.Marshal(obj)
	if err != nil {
		return admission.Allowed("").WithWarnings("stash: the backup sidecar was not added: " + err.Error())
	}
	return admission.PatchResponseFromRaw(req.Object.Raw, b)
}
