// Package jobstate reads the outcome of a step Job from the Job and its
// pods: whether it is still running, completed, or failed, and for a
// failure the step and the reason, taken from the container's
// termination message (the planner makes that the last log lines).
package jobstate

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"
)

// State is a Job's outcome.
type State int

// States of a step Job.
const (
	Running State = iota
	Complete
	Failed
)

// ImagePullGrace is how long a pod may fail to pull its image, or to
// build its containers' configuration (a Secret or ConfigMap that may yet
// appear), before the Job counts as failed.
const ImagePullGrace = 2 * time.Minute

// CreateGrace is how long the Job controller may fail to create a pod
// (ResourceQuota, a webhook, a missing ServiceAccount) before the Job
// counts as failed. Pod Security rejections fail at once: they never
// change by waiting.
const CreateGrace = time.Minute

// DefaultPendingLimit is how long a step's pod may stay Pending
// (unschedulable, waiting for a volume, Multi-Attach) by default.
const DefaultPendingLimit = 10 * time.Minute

// Limits bound how long a step may wait to start.
type Limits struct {
	// Pending is how long a pod may stay Pending; zero means
	// DefaultPendingLimit.
	Pending time.Duration
}

func (l Limits) pending() time.Duration {
	if l.Pending > 0 {
		return l.Pending
	}
	return DefaultPendingLimit
}

// Input is what a Job's state is read from.
type Input struct {
	Job  *batchv1.Job
	Pods []corev1.Pod
	// Events are the Job's and its Pending pods' events (FailedCreate,
	// FailedScheduling, FailedAttachVolume, FailedMount).
	Events []corev1.Event
}

// Of returns the Job's state and, when it failed, why.
func Of(ctx context.Context, r client.Reader, job *batchv1.Job, now time.Time, lim Limits) (State, string, error) {
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(job.Namespace), client.MatchingLabels{"batch.kubernetes.io/job-name": job.Name}); err != nil {
		return Running, "", fmt.Errorf("list pods of Job %s/%s: %w", job.Namespace, job.Name, err)
	}
	in := Input{Job: job, Pods: pods.Items}
	var uids []types.UID
	if len(pods.Items) == 0 && job.UID != "" {
		uids = append(uids, job.UID)
	}
	for _, p := range pods.Items {
		if p.Status.Phase == corev1.PodPending {
			uids = append(uids, p.UID)
		}
	}
	for _, uid := range uids {
		var ev corev1.EventList
		// Events explain what no status field does (a quota, a volume
		// attached elsewhere); without them the cause is still given,
		// only less precisely.
		if err := r.List(ctx, &ev, client.InNamespace(job.Namespace), client.MatchingFields{"involvedObject.uid": string(uid)}); err != nil {
			log.FromContext(ctx).Error(err, "list events of a step; its failure will be explained less precisely", "job", job.Name)
			continue
		}
		in.Events = append(in.Events, ev.Items...)
	}
	s, msg := FromInput(in, now, lim)
	return s, msg, nil
}

// Ended reports whether the Job controller has finished job, one way or
// the other: none of its pods runs again.
func Ended(job *batchv1.Job) bool {
	for _, c := range job.Status.Conditions {
		if c.Status == corev1.ConditionTrue && (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) {
			return true
		}
	}
	return false
}

// FromPods is FromInput without events and with default limits.
func FromPods(job *batchv1.Job, pods []corev1.Pod, now time.Time) (State, string) {
	return FromInput(Input{Job: job, Pods: pods}, now, Limits{})
}

// FromInput is the pure part of Of.
func FromInput(in Input, now time.Time, lim Limits) (State, string) {
	job, pods := in.Job, in.Pods
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
		if msg := podFailure(&pods[i], in.Events, now, lim); msg != "" {
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
	if len(pods) == 0 {
		if msg := createFailure(in, now, lim); msg != "" {
			return Failed, msg
		}
	}
	return Running, ""
}

// createFailure explains why a Job has no pod, once that has lasted.
func createFailure(in Input, now time.Time, lim Limits) string {
	if ev := newest(in.Events, in.Job.UID, "FailedCreate"); ev != nil {
		msg := ev.Message
		if strings.Contains(msg, "violates PodSecurity") {
			return fmt.Sprintf("the step's pod cannot be created: %s (the namespace's Pod Security level refuses it; docs/security.md says what each step needs)", msg)
		}
		// The Job controller retries with a new pod name each time, so
		// each refusal is a new event: how long creation has failed is
		// told by the oldest.
		if now.Sub(oldestSeen(in.Events, in.Job.UID, "FailedCreate")) >= CreateGrace {
			return fmt.Sprintf("the step's pod could not be created for %s: %s", CreateGrace, msg)
		}
		return ""
	}
	if created := in.Job.CreationTimestamp.Time; !created.IsZero() && now.Sub(created) >= lim.pending() {
		return fmt.Sprintf("no pod of Job %s was created within %s", in.Job.Name, lim.pending())
	}
	return ""
}

func firstSeen(e *corev1.Event) time.Time {
	for _, t := range []time.Time{e.FirstTimestamp.Time, e.EventTime.Time, e.LastTimestamp.Time, e.CreationTimestamp.Time} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

// oldestSeen is when the first event about uid with reason was seen.
func oldestSeen(events []corev1.Event, uid types.UID, reason string) time.Time {
	var first time.Time
	for i := range events {
		e := &events[i]
		if e.InvolvedObject.UID != uid || e.Reason != reason {
			continue
		}
		if t := firstSeen(e); first.IsZero() || t.Before(first) {
			first = t
		}
	}
	return first
}

// newest returns the newest event about uid with one of reasons.
func newest(events []corev1.Event, uid types.UID, reasons ...string) *corev1.Event {
	var best *corev1.Event
	var bestAt time.Time
	for i := range events {
		e := &events[i]
		if e.InvolvedObject.UID != uid || !slices.Contains(reasons, e.Reason) {
			continue
		}
		at := e.LastTimestamp.Time
		if at.IsZero() {
			at = firstSeen(e)
		}
		if best == nil || at.After(bestAt) {
			best, bestAt = e, at
		}
	}
	return best
}

// podFailure explains why a pod failed or cannot run, or returns "".
func podFailure(p *corev1.Pod, events []corev1.Event, now time.Time, lim Limits) string {
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
			case "CreateContainerConfigError", "CreateContainerError":
				if now.Sub(p.CreationTimestamp.Time) > ImagePullGrace {
					return fmt.Sprintf("step %s cannot start: %s for %s: %s", cs.Name, w.Reason, ImagePullGrace, w.Message)
				}
			}
		}
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.DisruptionTarget && c.Status == corev1.ConditionTrue {
			return fmt.Sprintf("pod %s was stopped before its step finished (%s): %s", p.Name, c.Reason, c.Message)
		}
	}
	switch p.Status.Phase {
	case corev1.PodFailed:
		return fmt.Sprintf("pod %s failed: %s %s", p.Name, p.Status.Reason, p.Status.Message)
	case corev1.PodSucceeded:
		return ""
	case corev1.PodUnknown:
		return fmt.Sprintf("pod %s is in phase Unknown: its node stopped reporting %s", p.Name, p.Status.Reason)
	}
	if !p.DeletionTimestamp.IsZero() {
		return fmt.Sprintf("pod %s was deleted before its step finished", p.Name)
	}
	if p.Status.Phase == corev1.PodPending || p.Status.Phase == "" {
		if now.Sub(p.CreationTimestamp.Time) >= lim.pending() {
			return fmt.Sprintf("pod %s stayed Pending for %s: %s", p.Name, lim.pending(), pendingCause(p, events))
		}
	}
	return ""
}

// pendingCause says why a pod is Pending: the scheduler's reason, or the
// newest volume or scheduling event (a Multi-Attach error, say).
func pendingCause(p *corev1.Pod, events []corev1.Event) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Message != "" {
			return c.Reason + ": " + c.Message
		}
	}
	if e := newest(events, p.UID, "FailedAttachVolume", "FailedMount", "FailedScheduling"); e != nil {
		return e.Reason + ": " + e.Message
	}
	return "no reason reported"
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
