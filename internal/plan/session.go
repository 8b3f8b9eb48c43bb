package plan

import (
	"cmp"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// NewBackupSession is the BackupSession a trigger (the CronJob, `stash
// trigger`, a retry) creates for bc at t, as Stash names and labels it.
func NewBackupSession(bc *stashv1beta1.BackupConfiguration, t time.Time, retryLeft int32) *stashv1beta1.BackupSession {
	yes := true
	bs := &stashv1beta1.BackupSession{
		ObjectMeta: metav1.ObjectMeta{
			Name: fmt.Sprintf("%s-%d", bc.Name, t.Unix()), Namespace: bc.Namespace,
			Labels: map[string]string{
				LabelInvokerType: "BackupConfiguration", LabelInvokerName: LabelValue(bc.Name),
				LabelComponent: "stash-backup", LabelManagedBy: ManagedBy,
			},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: stashv1beta1.GroupVersion.String(), Kind: "BackupConfiguration", Name: bc.Name, UID: bc.UID,
				Controller: &yes, BlockOwnerDeletion: &yes,
			}},
		},
		Spec: stashv1beta1.BackupSessionSpec{
			Invoker:   stashv1beta1.BackupInvokerRef{APIGroup: stashv1beta1.GroupVersion.Group, Kind: "BackupConfiguration", Name: bc.Name},
			RetryLeft: retryLeft,
		},
	}
	if bc.Spec.Target != nil {
		ref := bc.Spec.Target.Ref
		bs.Labels["stash.appscode.com/target-kind"] = ref.Kind
		bs.Labels["stash.appscode.com/target-name"] = LabelValue(ref.Name)
		bs.Labels["stash.appscode.com/target-namespace"] = cmp.Or(ref.Namespace, bc.Namespace)
	}
	return bs
}
