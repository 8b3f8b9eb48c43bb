package sidecar

import (
	"context"
	"errors"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Turn is the Lease a workload's pods take turns on: one pod of a
// Deployment runs a session; StatefulSet and DaemonSet pods back up one
// after another. The operator creates the Lease (a Role cannot name an
// object for create); pods only take and hand it back.
type Turn struct {
	Client   client.Client
	Key      client.ObjectKey
	Holder   string
	Duration time.Duration
	// Poll is how often a waiting pod looks at the Lease again.
	Poll time.Duration
	Now  func() time.Time
}

func (t *Turn) now() metav1.MicroTime {
	if t.Now != nil {
		return metav1.NewMicroTime(t.Now())
	}
	return metav1.NewMicroTime(time.Now())
}

// ErrTurnLost is the cause of a turn's context ending because another pod
// took the Lease (this one stalled past its duration, or lost the API).
var ErrTurnLost = errors.New("lost the backup turn: another pod took the Lease")

// Take waits until the Lease is free (or held by this pod, or expired)
// and takes it. The returned context ends when the turn is lost (renewal
// failed past the Lease's duration): work under it stops rather than run
// beside another pod's. release hands the Lease back.
func (t *Turn) Take(ctx context.Context, until time.Time) (context.Context, func(), error) {
	for {
		ok, err := t.try(ctx)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			break
		}
		if !until.IsZero() && time.Now().After(until) {
			return nil, nil, fmt.Errorf("did not get a turn on Lease %s before %s", t.Key, until.UTC().Format(time.RFC3339))
		}
		select {
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		case <-time.After(t.Poll):
		}
	}
	turnCtx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go t.renew(turnCtx, cancel, done)
	release := func() {
		cancel(nil)
		<-done
		t.release(context.WithoutCancel(ctx))
	}
	return turnCtx, release, nil
}

// try takes the Lease if it is free; it reports whether it did.
func (t *Turn) try(ctx context.Context) (bool, error) {
	l := &coordinationv1.Lease{}
	if err := t.Client.Get(ctx, t.Key, l); err != nil {
		if apierrors.IsNotFound(err) {
			// The operator makes it with the sidecar's Role: wait.
			return false, nil
		}
		return false, fmt.Errorf("read Lease %s: %w", t.Key, err)
	}
	now := t.now()
	s := &l.Spec
	holder := ""
	if s.HolderIdentity != nil {
		holder = *s.HolderIdentity
	}
	if holder != "" && holder != t.Holder && !expired(s, now.Time) {
		return false, nil
	}
	secs := int32(t.Duration / time.Second)
	s.HolderIdentity, s.LeaseDurationSeconds = &t.Holder, &secs
	s.AcquireTime, s.RenewTime = &now, &now
	if err := t.Client.Update(ctx, l); err != nil {
		if apierrors.IsConflict(err) {
			return false, nil
		}
		return false, fmt.Errorf("take Lease %s: %w", t.Key, err)
	}
	return true, nil
}

func expired(s *coordinationv1.LeaseSpec, now time.Time) bool {
	if s.RenewTime == nil || s.LeaseDurationSeconds == nil {
		return true
	}
	return now.After(s.RenewTime.Add(time.Duration(*s.LeaseDurationSeconds) * time.Second))
}

// renew keeps the Lease while the turn lasts, at a third of its duration;
// when it cannot for a whole duration, or finds another holder, the turn
// is lost.
func (t *Turn) renew(ctx context.Context, cancel context.CancelCauseFunc, done chan<- struct{}) {
	defer close(done)
	last := time.Now()
	tick := time.NewTicker(t.Duration / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		l := &coordinationv1.Lease{}
		err := t.Client.Get(ctx, t.Key, l)
		if err == nil {
			if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != t.Holder {
				cancel(ErrTurnLost)
				return
			}
			now := t.now()
			l.Spec.RenewTime = &now
			err = t.Client.Update(ctx, l)
		}
		if err == nil {
			last = time.Now()
			continue
		}
		if time.Since(last) >= t.Duration {
			cancel(fmt.Errorf("%w (last renewal error: %v)", ErrTurnLost, err))
			return
		}
	}
}

// release hands the Lease back if this pod still holds it, so the next
// pod need not wait for it to expire.
func (t *Turn) release(ctx context.Context) {
	l := &coordinationv1.Lease{}
	if err := t.Client.Get(ctx, t.Key, l); err != nil {
		return
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != t.Holder {
		return
	}
	empty := ""
	l.Spec.HolderIdentity = &empty
	_ = t.Client.Update(ctx, l)
}
