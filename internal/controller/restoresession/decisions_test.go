package restoresession

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/controller"
	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/plan"
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

// TestValidatesOnLiveObjects: a Repository whose usage policy was just
// changed to allow the session's namespace is judged as the API server
// holds it, not as a lagging cache does; an Invalid RestoreSession is
// final, so a stale refusal would never heal.
func TestValidatesOnLiveObjects(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	repo := func(team string) *stashv1alpha1.Repository {
		sel := stashv1alpha1.NamespacesFromSelector
		return &stashv1alpha1.Repository{
			ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: "b"},
			Spec: stashv1alpha1.RepositorySpec{
				Backend: stashv1alpha1.Backend{StorageSecretName: "s", S3: &stashv1alpha1.S3Spec{Endpoint: "https://s3.example", Bucket: "b"}},
				UsagePolicy: &stashv1alpha1.UsagePolicy{AllowedNamespaces: stashv1alpha1.AllowedNamespaces{
					From: &sel, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"team": team}}}},
			},
		}
	}
	rs := &stashv1beta1.RestoreSession{
		ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "c", Generation: 1},
		Spec: stashv1beta1.RestoreSessionSpec{
			Repository: stashv1beta1.ObjectReference{Name: "repo", Namespace: "b"},
			RestoreTargetSpec: stashv1beta1.RestoreTargetSpec{
				Task:   stashv1beta1.TaskRef{Name: "pvc-restore"},
				Target: &stashv1beta1.RestoreTarget{Ref: stashv1beta1.TargetRef{APIVersion: "v1", Kind: "PersistentVolumeClaim", Name: "data"}},
			},
		},
	}
	common := []client.Object{
		&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "c", Labels: map[string]string{"team": "c"}}},
		&corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: "data", Namespace: "c"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s", Namespace: "b"}},
	}
	build := func(objs ...client.Object) client.Client {
		return fake.NewClientBuilder().WithScheme(kube.NewScheme()).WithObjects(append(objs, common...)...).WithStatusSubresource(&stashv1beta1.RestoreSession{}).Build()
	}
	for _, tt := range []struct {
		name        string
		cache, live string
		wantInvalid bool
	}{
		{"stale cache refuses, live allows", "x", "c", false},
		{"live refuses", "c", "x", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cached := build(repo(tt.cache), rs.DeepCopy())
			live := build(repo(tt.live))
			r := &Reconciler{Client: cached, APIReader: live, Events: record.NewFakeRecorder(10),
				Config: controller.Config{Catalog: cat, Image: plan.DefaultImage, Now: time.Now}}
			cur := &stashv1beta1.RestoreSession{}
			if err := cached.Get(ctx, client.ObjectKeyFromObject(rs), cur); err != nil {
				t.Fatal(err)
			}
			if _, err := r.start(ctx, cur); err != nil {
				t.Fatal(err)
			}
			got := &stashv1beta1.RestoreSession{}
			if err := cached.Get(ctx, client.ObjectKeyFromObject(rs), got); err != nil {
				t.Fatal(err)
			}
			cond := status.FindCondition(got.Status.Conditions, CondValidationPassed)
			invalid := got.Status.Phase == stashv1beta1.RestoreInvalid && cond != nil && strings.Contains(cond.Message, "Repository b/repo allows namespaces")
			if invalid != tt.wantInvalid {
				t.Errorf("phase %q (conditions %+v), want refused by the usage policy: %v", got.Status.Phase, got.Status.Conditions, tt.wantInvalid)
			}
			if !tt.wantInvalid && got.Status.Phase != stashv1beta1.RestoreRunning {
				t.Errorf("phase %q (conditions %+v), want Running", got.Status.Phase, got.Status.Conditions)
			}
		})
	}
}

// TestInitHosts: the hosts an init-container restore waits for are named
// as the workload's pods name themselves, so that a channel lost mid-way
// fails each of them; a DaemonSet's (its nodes) are not known here.
func TestInitHosts(t *testing.T) {
	for _, tt := range []struct {
		kind, alias string
		total       int32
		want        []string
	}{
		{"StatefulSet", "", 3, []string{"host-0", "host-1", "host-2"}},
		{"StatefulSet", "db", 2, []string{"db-0", "db-1"}},
		{"Deployment", "", 1, []string{"host-0"}},
		{"ReplicaSet", "web", 1, []string{"web"}},
		{"DaemonSet", "", 4, nil},
	} {
		t.Run(tt.kind+"/"+tt.alias, func(t *testing.T) {
			rs := &stashv1beta1.RestoreSession{}
			rs.Spec.Target = &stashv1beta1.RestoreTarget{Ref: stashv1beta1.TargetRef{Kind: tt.kind, Name: "app"}, Alias: tt.alias}
			if got := initHosts(rs, tt.total); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("initHosts = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMissingJobFailsItsHost: of three hosts, host-2's Job is gone and
// host-0 reported: host-2 fails by its name, host-0's result stands, and
// host-1, whose Job runs, is left to report.
func TestMissingJobFailsItsHost(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	three := int32(3)
	rs := &stashv1beta1.RestoreSession{ObjectMeta: metav1.ObjectMeta{Name: "r", Namespace: "demo", Generation: 1, UID: "rs-uid"}}
	rs.Spec.Target = &stashv1beta1.RestoreTarget{Replicas: &three,
		VolumeClaimTemplates: []stashv1beta1.PersistentVolumeClaim{{PartialObjectMeta: stashv1beta1.PartialObjectMeta{Name: "data-${POD_ORDINAL}"}}}}
	deadline := metav1.NewTime(now.Add(time.Hour))
	rs.Status = stashv1beta1.RestoreSessionStatus{Phase: stashv1beta1.RestoreRunning, TotalHosts: &three, SessionDeadline: &deadline,
		Stats: []stashv1beta1.HostRestoreStats{{Hostname: "host-0", Phase: "Succeeded"}}}
	var objs []client.Object
	for ord, host := range []string{"host-0", "host-1"} {
		objs = append(objs, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: plan.RestoreJobName("r", ord), Namespace: "demo",
			Labels:      map[string]string{plan.LabelInvokerName: "r", plan.LabelInvokerType: "RestoreSession"},
			Annotations: map[string]string{plan.AnnotationHostname: host}}})
	}
	r, c := newReconciler(t, now, append(objs, rs)...)
	if _, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(rs)}); err != nil {
		t.Fatal(err)
	}
	got := &stashv1beta1.RestoreSession{}
	if err := c.Get(ctx, client.ObjectKeyFromObject(rs), got); err != nil {
		t.Fatal(err)
	}
	hosts := map[string]stashv1beta1.HostRestoreStats{}
	for _, s := range got.Status.Stats {
		hosts[s.Hostname] = s
	}
	if len(hosts) != 2 || hosts["host-0"].Phase != "Succeeded" || hosts["host-2"].Phase != "Failed" || !strings.Contains(hosts["host-2"].Error, "host-2") {
		t.Errorf("stats %+v: want host-0 Succeeded and host-2 Failed for its Job", got.Status.Stats)
	}
	if got.Status.Phase != stashv1beta1.RestoreRunning {
		t.Errorf("phase %s, want Running while host-1 restores", got.Status.Phase)
	}
}
