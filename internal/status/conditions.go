package status

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// ConditionLatestOfSeveralInvokers is set on a RestoreSession whose
// "latest" matched snapshots of several invokers (BackupConfigurations
// sharing a Repository, host and path): the newest was restored, which may
// not be the one the user meant. Its message names them.
const ConditionLatestOfSeveralInvokers = "LatestSnapshotOfSeveralInvokers"

// SetCondition puts c into conds, replacing a condition of the same type.
// The transition time is kept when the status did not change, so that it
// says when the condition last flipped.
func SetCondition(conds []stashv1beta1.Condition, c stashv1beta1.Condition, now metav1.Time) []stashv1beta1.Condition {
	out := append([]stashv1beta1.Condition(nil), conds...)
	for i := range out {
		if out[i].Type != c.Type {
			continue
		}
		c.LastTransitionTime = out[i].LastTransitionTime
		if out[i].Status != c.Status || c.LastTransitionTime.IsZero() {
			c.LastTransitionTime = now
		}
		out[i] = c
		return out
	}
	c.LastTransitionTime = now
	return append(out, c)
}

// FindCondition returns the condition of type t, or nil.
func FindCondition(conds []stashv1beta1.Condition, t string) *stashv1beta1.Condition {
	for i := range conds {
		if conds[i].Type == t {
			return &conds[i]
		}
	}
	return nil
}

// IsConditionTrue says whether a condition of type t has status True.
func IsConditionTrue(conds []stashv1beta1.Condition, t string) bool {
	c := FindCondition(conds, t)
	return c != nil && c.Status == metav1.ConditionTrue
}
