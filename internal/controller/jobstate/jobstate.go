// Package jobstate reads the outcome of a step Job from the Job and its
// pods: whether it is still running, completed, or failed, and for a
// failure the step and the reason, taken from the container's
// termination message (the planner makes that the last log lines).
package jobstate

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// State is a Job's outcome.
type State int

// States of a step Job.
const (
	Running State = iota
	Complete
	Failed
)

// ImagePullGrace is how long a pod may fail to pull its image before the
// Job counts as failed (clusters without a registry never recover).
const ImagePullGrace = 2 * time.Minute

// Of returns the Job's state and, when it failed, why.
func Of(ctx context.Context, r client.Reader, job *batchv1.Job, now time.Time) (State, string, error) {
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(job.Namespace), client.MatchingLabels{"batch.kubernetes.io/job-name": job.Name}); err != nil {
		return Running, "", fmt.Errorf("list pods of Job %s/%s: %w", job.Namespace, job.Name, err)
	}
	s, msg := FromPods(job, pods.Items, now)
	return s, msg, nil
}

// FromPods is the pure part of Of.
func FromPods(job *batchv1.Job, pods []corev1.Pod, now time.Time) (State, string) {
	failed := false
	for _, c := range job.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete, batchv1.JobSuccessCriteriaMet:
			return Complete, ""
		case batchv1.JobFailed, batchv1.JobFailureTarget:
			failed = true
		}
	}
	sort.Slice(pods, func(i, j int) bool { return pods[i].CreationTimestamp.Before(&pods[j].CreationTimestamp) })
	for i := len(pods) - 1; i >= 0; i-- {
		if msg := podFailure(&pods[i], now); msg != "" {
			return Failed, msg
		}
	}
	if failed {
		for _, c := range job.Status.Conditions {
			if c.Type == batchv1.JobFailed && c.Status == corev1.ConditionTrue {
				return Failed, fmt.Sprintf("Job %s failed: %s %s", job.Name, c.Reason, c.Message)
			}
		}
		return Failed, "Job " + job.Name + " failed"
	}
	return Running, ""
}

// podFailure explains why a pod failed or cannot run, or returns "".
func podFailure(p *corev1.Pod, now time.Time) string {
	statuses := append(append([]corev1.ContainerStatus{}, p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...)
	for _, cs := range statuses {
		if t := cs.State.Terminated; t != nil && t.ExitCode != 0 {
			msg := strings.TrimSpace(t.Message)
			if msg == "" {
				msg = t.Reason
			}
			return fmt.Sprintf("step %s exited with code %d: %s", cs.Name, t.ExitCode, lastLines(msg, 5))
		}
		if w := cs.State.Waiting; w != nil {
			switch w.Reason {
			case "ErrImageNeverPull", "InvalidImageName":
				return fmt.Sprintf("step %s cannot start: %s: %s", cs.Name, w.Reason, w.Message)
			case "ImagePullBackOff", "ErrImagePull":
				if now.Sub(p.CreationTimestamp.Time) > ImagePullGrace {
					return fmt.Sprintf("step %s cannot start: image %s could not be pulled for %s: %s", cs.Name, cs.Image, ImagePullGrace, w.Message)
				}
			}
		}
	}
	if p.Status.Phase == corev1.PodFailed {
		return fmt.Sprintf("pod %s failed: %s %s", p.Name, p.Status.Reason, p.Status.Message)
	}
	return ""
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
