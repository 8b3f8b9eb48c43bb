package step

import (
	"context"
	"fmt"
	"os"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/source"
)

// The local runtime tells a step its session's invoker through these
// variables: Stash's database Functions pass no --invoker-* flags, and
// outside a cluster there is no BackupSession object to read it from.
const (
	EnvInvokerKind = "STASH_INVOKER_KIND"
	EnvInvokerName = "STASH_INVOKER_NAME"
)

// invoker names the BackupConfiguration (or BackupBatch) whose session
// runs this backup step, for the snapshot's tags and for retention, which
// decides each invoker's snapshots apart. It comes from --invoker-kind and
// --invoker-name (the pvc-backup Function passes them), else from the
// local runtime's variables, else, in a cluster, from the BackupSession's
// spec.invoker. A backup of no session (run by hand) has none.
func (o *Options) invoker(ctx context.Context, src source.Source) repository.Invoker {
	kind, name := o.InvokerKind, o.InvokerName
	if name == "" {
		kind, name = os.Getenv(EnvInvokerKind), os.Getenv(EnvInvokerName)
	}
	if name == "" && o.BackupSession != "" {
		if k, ok := src.(source.Kube); ok {
			bs := &stashv1beta1.BackupSession{}
			if err := k.Reader.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.BackupSession}, bs); err != nil {
				o.warn("read the invoker of BackupSession %s/%s: %v", o.Namespace, o.BackupSession, err)
			} else {
				kind, name = bs.Spec.Invoker.Kind, bs.Spec.Invoker.Name
			}
		}
	}
	if name == "" {
		if o.BackupSession != "" {
			o.warn("the invoker of this session is unknown (no --invoker-name): the snapshot names none, and retention counts it with the other such snapshots of its host and path")
		}
		return repository.Invoker{}
	}
	if kind == "" {
		kind = "BackupConfiguration"
	}
	return repository.Invoker{Namespace: o.Namespace, Kind: kind, Name: name}
}

// latestWarning explains what "latest" chose (chosen, the newest of snaps,
// which all match one host and path) when snaps were taken by several
// invokers: Stash's latest is the newest for the host and path, whoever
// took it, which is not always the one meant when BackupConfigurations
// share a Repository. Empty when one invoker took them all.
func latestWarning(snaps []repository.Snapshot, chosen repository.Snapshot) string {
	invokers := repository.Invokers(snaps)
	if len(invokers) < 2 {
		return ""
	}
	names := make([]string, len(invokers))
	for i, inv := range invokers {
		names[i] = invokerLabel(inv)
	}
	return fmt.Sprintf("snapshot latest of host %s and path %s matched the snapshots of %d invokers (%s); restored the newest, %s of %s taken %s: give its ID (or another's) to choose",
		chosen.Host, chosen.Path, len(invokers), strings.Join(names, ", "), chosen.ShortID(),
		invokerLabel(repository.InvokerOf(chosen)), chosen.Time.UTC().Format("2006-01-02T15:04:05Z"))
}

func invokerLabel(inv repository.Invoker) string {
	if inv.IsZero() {
		return "snapshots naming no invoker"
	}
	return inv.String()
}

// warnLatest returns latestWarning for a restore of "latest" that chose
// chosen among the snapshots matching filter, having logged it; the
// result goes to output.json for update-status (a condition, and an event
// in a cluster). It is advice: if the listing fails, the restore goes on
// without it.
func (o *Options) warnLatest(ctx context.Context, r repository.SnapshotReader, filter repository.Filter, chosen repository.Snapshot) []string {
	snaps, err := r.Snapshots(ctx, filter)
	if err != nil {
		return nil
	}
	w := latestWarning(snaps, chosen)
	if w == "" {
		return nil
	}
	o.warn("%s", w)
	return []string{w}
}
