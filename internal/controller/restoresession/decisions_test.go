package restoresession

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/record"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/controller"
	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/status"
)

// The reconciler's decisions, on a fake client: what the envtest suite
// exercises end to end is decided here, one case at a time.

func newReconciler(t *testing.T, now time.Time, objs ...client.Object) (*Reconciler, client.Client) {
	t.Helper()
	c := fake.NewClientBuilder().WithScheme(kube.NewScheme()).WithObjects(objs...).WithStatusSubresource(objs...).Build()
	return &Reconciler{Client: c, APIReader: c, Events: record.NewFakeRecorder(10),
		Config: controller.Config{Now: func() time.Time { return now }}}, c
}

// TestConfigErrorsFailTheSession: a claim the API server refuses as
// invalid or forbidden, or a template that does not resolve, fails the
// session with the reason in its condition and looks again soon; an
// error that may pass (a conflict, a timeout) is returned for a retry and
// leaves the status alone.
func TestConfigErrorsFailTheSession(t *testing.T) {
	gr := schema.GroupResource{Resource: "persistentvolumeclaims"}
	for _, tt := range []struct {
		name      string
		err       error
		wantPhase stashv1beta1.RestorePhase
	}{
		{"invalid claim", apierrors.NewInvalid(schema.GroupKind{Kind: "PersistentVolumeClaim"}, "data-0", nil), stashv1beta1.RestoreFailed},
		{"forbidden by quota", apierrors.NewForbidden(gr, "data-0", errors.New("exceeded quota")), stashv1beta1.RestoreFailed},
		{"unresolved template", fmt.Errorf("spec.target.volumeClaimTemplates %q: %w: unknown variable", "data-${X}", errTemplate), stashv1beta1.RestoreFailed},
		{"conflict", apierrors.NewConflict(gr, "data-0", errors.New("changed")), ""},
		{"timeout", apierrors.NewServerTimeout(gr, "create", 1), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			rs := &stashv1beta1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "demo", Generation: 1}}
			r, c := newReconciler(t, time.Now(), rs)
			cur := &stashv1beta1.RestoreSession{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(rs), cur); err != nil {
				t.Fatal(err)
			}
			res, err := r.configFailed(ctx, cur, cur.Status.DeepCopy(), tt.err)
			got := &stashv1beta1.RestoreSession{}
			if gerr := c.Get(ctx, client.ObjectKeyFromObject(rs), got); gerr != nil {
				t.Fatal(gerr)
			}
			if got.Status.Phase != tt.wantPhase {
				t.Errorf("phase %q, want %q", got.Status.Phase, tt.wantPhase)
			}
			if tt.wantPhase == "" {
				if err == nil {
					t.Error("a passing error was not returned for a retry")
				}
				return
			}
			if err != nil || res.RequeueAfter != controller.Soon {
				t.Errorf("result %+v, %v: want no error and a look again soon", res, err)
			}
			cond := status.FindCondition(got.Status.Conditions, CondRestoreJobCreated)
			if cond == nil || cond.Status != metav1.ConditionFalse || !strings.Contains(cond.Message, tt.err.Error()) {
				t.Errorf("condition %+v, want %s False with the error", cond, CondRestoreJobCreated)
			}
		})
	}
}

// TestRequeueBeforeDeadline: a running session is looked at every minute,
// and just after its deadline when that comes sooner.
func TestRequeueBeforeDeadline(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	r, _ := newReconciler(t, now)
	for _, tt := range []struct {
		deadline *time.Time
		want     time.Duration
	}{
		{nil, time.Minute},
		{ptr(now.Add(time.Hour)), time.Minute},
		{ptr(now.Add(10 * time.Second)), 11 * time.Second},
	} {
		rs := &stashv1beta1.RestoreSession{}
		if tt.deadline != nil {
			d := metav1.NewTime(*tt.deadline)
			rs.Status.SessionDeadline = &d
		}
		if got := r.requeue(rs).RequeueAfter; got != tt.want {
			t.Errorf("deadline %v: requeue after %s, want %s", tt.deadline, got, tt.want)
		}
	}
}

func ptr[T any](v T) *T { return &v }
