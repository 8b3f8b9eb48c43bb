package jobstate

import (
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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
