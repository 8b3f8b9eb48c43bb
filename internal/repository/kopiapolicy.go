package repository

import (
	"context"
	"errors"
	"fmt"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/snapshot/policy"
)

// keepEverything makes kopia's own retention keep every snapshot. kopia
// applies it whenever its uploader saves a checkpoint of a directory backup
// that runs longer than the checkpoint interval, and without a policy in
// the repository it uses its defaults (latest 10, 48 hourly, 7 daily, …),
// deleting snapshots that Stash's retention (Forget) keeps. All counts 0 is
// kopia's "keep everything" (RetentionPolicy.EffectiveKeepLatest). It
// writes the global policy only when it is not already so.
func keepEverything(ctx context.Context, w repo.RepositoryWriter) error {
	p, err := policy.GetDefinedPolicy(ctx, w, policy.GlobalPolicySourceInfo)
	switch {
	case errors.Is(err, policy.ErrPolicyNotFound):
		p = &policy.Policy{}
	case err != nil:
		return fmt.Errorf("read kopia's global policy: %w", err)
	case keepsEverything(p.RetentionPolicy):
		return nil
	}
	zero := policy.OptionalInt(0)
	rp := &p.RetentionPolicy
	rp.KeepLatest, rp.KeepHourly, rp.KeepDaily, rp.KeepWeekly, rp.KeepMonthly, rp.KeepAnnual = &zero, &zero, &zero, &zero, &zero, &zero
	if err := policy.SetPolicy(ctx, w, policy.GlobalPolicySourceInfo, p); err != nil {
		return fmt.Errorf("set kopia's global retention to keep everything: %w", err)
	}
	return nil
}

func keepsEverything(rp policy.RetentionPolicy) bool {
	for _, n := range []*policy.OptionalInt{rp.KeepLatest, rp.KeepHourly, rp.KeepDaily, rp.KeepWeekly, rp.KeepMonthly, rp.KeepAnnual} {
		if n == nil || *n != 0 {
			return false
		}
	}
	return true
}
