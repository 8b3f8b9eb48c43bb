package jobstate

import (
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestFromPods(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	job := func(conds ...batchv1.JobConditionType) *batchv1.Job {
		j := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "stash-backup-x-0"}}
		for _, c := range conds {
			j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: c, Status: corev1.ConditionTrue, Reason: "BackoffLimitExceeded"})
		}
		return j
	}
	pod := func(age time.Duration, init, main []corev1.ContainerStatus) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", CreationTimestamp: metav1.NewTime(now.Add(-age))},
			Status: corev1.PodStatus{InitContainerStatuses: init, ContainerStatuses: main}}
	}
	exited := func(name string, code int32, msg string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Message: msg, Reason: "Error"}}}
	}
	waiting := func(name, reason string) corev1.ContainerStatus {
		return corev1.ContainerStatus{Name: name, Image: "img:1", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}}
	}
	tests := []struct {
		name string
		job  *batchv1.Job
		pods []corev1.Pod
		want State
		msg  string
	}{
		{"no pods yet", job(), nil, Running, ""},
		{"complete", job(batchv1.JobComplete), nil, Complete, ""},
		{"success criteria met", job(batchv1.JobSuccessCriteriaMet), nil, Complete, ""},
		{"failed init step quotes its message", job(batchv1.JobFailed), []corev1.Pod{pod(time.Minute, []corev1.ContainerStatus{exited("backup-pg-0", 1, "a\nb\nc\nd\ne\nf\nconnection refused")}, nil)}, Failed, "step backup-pg-0 exited with code 1: c | d | e | f | connection refused"},
		{"failed step before the Job says so", job(), []corev1.Pod{pod(time.Minute, nil, []corev1.ContainerStatus{exited("update-status-1", 2, "")})}, Failed, "step update-status-1 exited with code 2: Error"},
		{"failed Job without pods", job(batchv1.JobFailed), nil, Failed, "Job stash-backup-x-0 failed: BackoffLimitExceeded"},
		{"image never pulled fails at once", job(), []corev1.Pod{pod(5*time.Second, []corev1.ContainerStatus{waiting("s", "ErrImageNeverPull")}, nil)}, Failed, "step s cannot start: ErrImageNeverPull"},
		{"image pull back-off within grace", job(), []corev1.Pod{pod(time.Minute, []corev1.ContainerStatus{waiting("s", "ImagePullBackOff")}, nil)}, Running, ""},
		{"image pull back-off past grace", job(), []corev1.Pod{pod(3*time.Minute, []corev1.ContainerStatus{waiting("s", "ImagePullBackOff")}, nil)}, Failed, "image img:1 could not be pulled"},
		{"successful exit is not a failure", job(), []corev1.Pod{pod(time.Minute, []corev1.ContainerStatus{exited("s", 0, "")}, nil)}, Running, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := FromPods(tt.job, tt.pods, now)
			if got != tt.want || !strings.Contains(msg, tt.msg) {
				t.Fatalf("FromPods = %v %q, want %v containing %q", got, msg, tt.want, tt.msg)
			}
		})
	}
}

func TestFromInputStartFailures(t *testing.T) {
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "stash-backup-x", UID: "job-uid", CreationTimestamp: metav1.NewTime(now.Add(-2 * time.Minute))}}
	event := func(uid types.UID, reason, msg string, age time.Duration) corev1.Event {
		return corev1.Event{InvolvedObject: corev1.ObjectReference{UID: uid}, Reason: reason, Message: msg,
			FirstTimestamp: metav1.NewTime(now.Add(-age)), LastTimestamp: metav1.NewTime(now.Add(-age / 2))}
	}
	pod := func(age time.Duration, phase corev1.PodPhase, mutate func(*corev1.Pod)) corev1.Pod {
		p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", UID: "pod-uid", CreationTimestamp: metav1.NewTime(now.Add(-age))}, Status: corev1.PodStatus{Phase: phase}}
		if mutate != nil {
			mutate(&p)
		}
		return p
	}
	waiting := func(reason string) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "backup", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: "secret \"x\" not found"}}}}
		}
	}
	lim := Limits{Pending: 5 * time.Minute}
	tests := []struct {
		name   string
		pods   []corev1.Pod
		events []corev1.Event
		want   State
		msg    string
	}{
		{"Pod Security rejection fails at once", nil, []corev1.Event{event("job-uid", "FailedCreate", `pods "x" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true`, time.Second)}, Failed, "violates PodSecurity"},
		{"quota within grace waits", nil, []corev1.Event{event("job-uid", "FailedCreate", `pods "x" is forbidden: exceeded quota: no-pods`, 10*time.Second)}, Running, ""},
		{"quota past grace names the quota", nil, []corev1.Event{event("job-uid", "FailedCreate", `pods "x" is forbidden: exceeded quota: no-pods, requested: pods=1`, 90*time.Second)}, Failed, "exceeded quota: no-pods"},
		{"quota refused again and again (a new event per pod name)", nil, []corev1.Event{
			event("job-uid", "FailedCreate", `pods "x-1" is forbidden: exceeded quota: no-pods`, 90*time.Second),
			event("job-uid", "FailedCreate", `pods "x-2" is forbidden: exceeded quota: no-pods`, 4*time.Second)}, Failed, `pods "x-2" is forbidden: exceeded quota: no-pods`},
		{"missing ServiceAccount past grace", nil, []corev1.Event{event("job-uid", "FailedCreate", `pods "x" is forbidden: error looking up service account ns/sa: serviceaccount "sa" not found`, 2*time.Minute)}, Failed, `serviceaccount "sa" not found`},
		{"another object's event is not the Job's", nil, []corev1.Event{event("other", "FailedCreate", "violates PodSecurity", time.Hour)}, Running, ""},
		{"unschedulable within the limit", []corev1.Pod{pod(time.Minute, corev1.PodPending, nil)}, nil, Running, ""},
		{"unschedulable past the limit", []corev1.Pod{pod(6*time.Minute, corev1.PodPending, func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/1 nodes are available: 1 Insufficient memory."}}
		})}, nil, Failed, "Insufficient memory"},
		{"Multi-Attach past the limit", []corev1.Pod{pod(6*time.Minute, corev1.PodPending, nil)}, []corev1.Event{event("pod-uid", "FailedAttachVolume", "Multi-Attach error for volume \"pvc-1\" Volume is already exclusively attached to one node", time.Minute)}, Failed, "Multi-Attach error"},
		{"config error within grace", []corev1.Pod{pod(time.Minute, corev1.PodPending, waiting("CreateContainerConfigError"))}, nil, Running, ""},
		{"config error past grace", []corev1.Pod{pod(3*time.Minute, corev1.PodPending, waiting("CreateContainerConfigError"))}, nil, Failed, "CreateContainerConfigError"},
		{"evicted", []corev1.Pod{pod(time.Minute, corev1.PodFailed, func(p *corev1.Pod) {
			p.Status.Reason, p.Status.Message = "Evicted", "The node was low on resource: memory."
		})}, nil, Failed, "Evicted"},
		{"disrupted (node gone, pod GC)", []corev1.Pod{pod(time.Minute, corev1.PodRunning, func(p *corev1.Pod) {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "DeletionByPodGC", Message: "PodGC: node no longer exists"}}
		})}, nil, Failed, "node no longer exists"},
		{"node stopped reporting", []corev1.Pod{pod(time.Minute, corev1.PodUnknown, func(p *corev1.Pod) { p.Status.Reason = "NodeLost" })}, nil, Failed, "Unknown"},
		{"deleted mid-step", []corev1.Pod{pod(time.Minute, corev1.PodRunning, func(p *corev1.Pod) { n := metav1.NewTime(now); p.DeletionTimestamp = &n })}, nil, Failed, "deleted before its step finished"},
		{"running is running", []corev1.Pod{pod(time.Hour, corev1.PodRunning, nil)}, nil, Running, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, msg := FromInput(Input{Job: job, Pods: tt.pods, Events: tt.events}, now, lim)
			if got != tt.want || !strings.Contains(msg, tt.msg) {
				t.Fatalf("FromInput = %v %q, want %v containing %q", got, msg, tt.want, tt.msg)
			}
		})
	}
	// No pod and no event: the pending limit still ends it.
	old := job.DeepCopy()
	old.CreationTimestamp = metav1.NewTime(now.Add(-6 * time.Minute))
	if got, msg := FromInput(Input{Job: old}, now, lim); got != Failed || !strings.Contains(msg, "no pod") {
		t.Errorf("Job without pods past the limit: %v %q", got, msg)
	}
}

func TestEnded(t *testing.T) {
	cond := func(typ batchv1.JobConditionType, s corev1.ConditionStatus) *batchv1.Job {
		return &batchv1.Job{Status: batchv1.JobStatus{Conditions: []batchv1.JobCondition{{Type: typ, Status: s}}}}
	}
	for _, tc := range []struct {
		name string
		job  *batchv1.Job
		want bool
	}{
		{"running", &batchv1.Job{}, false},
		{"complete", cond(batchv1.JobComplete, corev1.ConditionTrue), true},
		{"failed", cond(batchv1.JobFailed, corev1.ConditionTrue), true},
		{"failing, pods still terminating", cond(batchv1.JobFailureTarget, corev1.ConditionTrue), false},
		{"suspended", cond(batchv1.JobSuspended, corev1.ConditionTrue), false},
		{"failed condition false", cond(batchv1.JobFailed, corev1.ConditionFalse), false},
	} {
		if got := Ended(tc.job); got != tc.want {
			t.Errorf("%s: Ended = %v, want %v", tc.name, got, tc.want)
		}
	}
}
