package status

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// Kube records results in the status of BackupSession and RestoreSession
// objects through the API server, and emits Stash's host events.
type Kube struct {
	Client client.Client
	// Component names the event source (Stash: "Status Updater").
	Component string
}

// RecordBackup implements Recorder. It retries on conflicts, since several
// hosts and the operator write the same status.
func (k Kube) RecordBackup(ctx context.Context, ns, session string, target stashv1beta1.TargetRef, total int32, stats []stashv1beta1.HostBackupStats, conds []stashv1beta1.Condition, report *stashv1beta1.RepositoryReport) (*stashv1beta1.BackupSessionStatus, error) {
	bs := &stashv1beta1.BackupSession{}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: session}, bs); err != nil {
			return err
		}
		st, err := RecordBackupResult(bs.Status, target, total, stats, conds...)
		if err != nil {
			return err
		}
		bs.Status = st
		if report != nil {
			bs.Status.Repository = report
		}
		return k.Client.Status().Update(ctx, bs)
	})
	if err != nil {
		return nil, fmt.Errorf("record status of BackupSession %s/%s: %w", ns, session, err)
	}
	for _, s := range stats {
		k.hostEvent(ctx, bs, "Backup", s.Hostname, string(s.Phase), s.Error)
	}
	return &bs.Status, nil
}

// RecordRestore implements Recorder.
func (k Kube) RecordRestore(ctx context.Context, ns, session string, total int32, stats []stashv1beta1.HostRestoreStats, conds ...stashv1beta1.Condition) (*stashv1beta1.RestoreSessionStatus, error) {
	rs := &stashv1beta1.RestoreSession{}
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := k.Client.Get(ctx, client.ObjectKey{Namespace: ns, Name: session}, rs); err != nil {
			return err
		}
		st, err := RecordRestoreResult(rs.Status, total, stats, conds...)
		if err != nil {
			return err
		}
		rs.Status = st
		return k.Client.Status().Update(ctx, rs)
	})
	if err != nil {
		return nil, fmt.Errorf("record status of RestoreSession %s/%s: %w", ns, session, err)
	}
	for _, s := range stats {
		k.hostEvent(ctx, rs, "Restore", s.Hostname, string(s.Phase), s.Error)
	}
	for _, c := range conds {
		if c.Type == ConditionLatestOfSeveralInvokers && c.Status == "True" {
			k.event(ctx, rs, corev1.EventTypeWarning, "Latest Snapshot Of Several Invokers", c.Message)
		}
	}
	return &rs.Status, nil
}

// hostEvent emits Stash's "Host Backup/Restore Succeeded/Failed" event.
func (k Kube) hostEvent(ctx context.Context, obj client.Object, what, host, phase, errMsg string) {
	if phase == "Failed" {
		k.event(ctx, obj, corev1.EventTypeWarning, "Host "+what+" Failed", fmt.Sprintf("%s of host %s failed: %s", what, host, errMsg))
		return
	}
	k.event(ctx, obj, corev1.EventTypeNormal, "Host "+what+" Succeeded", fmt.Sprintf("%s of host %s succeeded.", what, host))
}

// event writes a core/v1 Event. A step has no event broadcaster and must
// not fail a backup because an event could not be written, so errors are
// dropped.
func (k Kube) event(ctx context.Context, obj client.Object, typ, reason, msg string) {
	gvk, err := k.Client.GroupVersionKindFor(obj)
	if err != nil {
		return
	}
	now := metav1.NewTime(time.Now())
	comp := k.Component
	if comp == "" {
		comp = "Status Updater"
	}
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: obj.GetName() + ".", Namespace: obj.GetNamespace()},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind,
			Namespace: obj.GetNamespace(), Name: obj.GetName(), UID: obj.GetUID(), ResourceVersion: obj.GetResourceVersion(),
		},
		Reason: reason, Message: msg, Type: typ,
		Source:         corev1.EventSource{Component: comp},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}
	_ = k.Client.Create(ctx, ev)
}
