// Package local is the local runtime: it runs the Jobs the planner builds
// as processes on this machine, keeps sessions in an embedded store, and
// records their status.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"syscall"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/runtime/container"
)

// ErrForeignImage means a step's image is not a Stash image and no
// container runtime can run it here.
var ErrForeignImage = errors.New("only Stash's own images run locally without a container runtime")

// IsStashImage reports whether an image is one of Stash's: the local
// runtime runs those as this very binary.
func IsStashImage(image string) bool { return plan.IsStashImage(image) }

// ContainerRunner runs one container of a Job to completion
// (container.Containerd).
type ContainerRunner interface {
	Run(ctx context.Context, req container.Request) error
}

// Executor runs a Job's containers in order: those of Stash's images as
// processes of this binary, the others in containers (Containers).
type Executor struct {
	// Binary is the stash binary to run (default: this process's).
	Binary string
	// Mounts maps container paths (/stash-tmp, a local repository's
	// mountPath) to directories on this machine.
	Mounts map[string]string
	// ExtraArgs are appended to every step (-f manifests, --state-dir).
	ExtraArgs func(c corev1.Container) []string
	// Env is added to every step's environment ("NAME=value"), after this
	// process's and before the container's own.
	Env []string
	// Stdout and Stderr receive the steps' output.
	Stdout, Stderr io.Writer

	// Containers runs the steps of other images; when nil, Containers
	// is found on first need (container.Detect), and without one such a
	// step fails the Job before anything runs.
	Containers ContainerRunner
	// Volumes maps the Job's volumes to directories of this machine for
	// those steps (see volumes.go).
	Volumes *VolumeMapper
}

// mapPath rewrites a container path under a mount to the local directory.
func (e *Executor) mapPath(s string) string {
	best := ""
	for from := range e.Mounts {
		if (s == from || strings.HasPrefix(s, from+"/")) && len(from) > len(best) {
			best = from
		}
	}
	if best == "" {
		return s
	}
	return e.Mounts[best] + strings.TrimPrefix(s, best)
}

// mapArg rewrites --flag=/container/path and bare paths.
func (e *Executor) mapArg(a string) string {
	if strings.HasPrefix(a, "-") {
		if k, v, ok := strings.Cut(a, "="); ok {
			return k + "=" + e.mapPath(v)
		}
		return a
	}
	return e.mapPath(a)
}

// Run runs every container of job (init containers, then the main one),
// stopping at the first that fails.
func (e *Executor) Run(ctx context.Context, job *batchv1.Job) error {
	pod := job.Spec.Template.Spec
	steps := append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...)
	// The first step of another image, if any: a missing container
	// runtime fails the Job before any step runs.
	foreign := slices.IndexFunc(steps, func(c corev1.Container) bool { return !IsStashImage(c.Image) })
	if foreign >= 0 && e.Containers == nil {
		rt, err := e.detect(ctx)
		if err != nil {
			c := steps[foreign]
			return fmt.Errorf("step %s: image %s is not a Stash image: %w: %v (install and start containerd, or run this step in a cluster)", c.Name, c.Image, ErrForeignImage, err)
		}
		e.Containers = rt
	}
	bin := e.Binary
	if bin == "" {
		var err error
		if bin, err = os.Executable(); err != nil {
			return err
		}
	}
	for from, dir := range e.Mounts {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		// A container's user reaches /stash-tmp and the interim volume
		// as in a pod, whose emptyDir is open to every user.
		if foreign >= 0 && (from == plan.ScratchDir || from == plan.InterimMountPath) {
			if err := os.Chmod(dir, 0o777); err != nil {
				return err
			}
		}
	}
	if e.Volumes != nil {
		defer e.Volumes.Release()
	}
	for _, c := range steps {
		if !IsStashImage(c.Image) {
			if err := e.runContainer(ctx, job, c); err != nil {
				return fmt.Errorf("step %s: %w", c.Name, err)
			}
			continue
		}
		args := make([]string, 0, len(c.Args)+4)
		for _, a := range c.Args {
			args = append(args, e.mapArg(a))
		}
		if e.ExtraArgs != nil {
			args = append(args, e.ExtraArgs(c)...)
		}
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), e.Env...)
		for _, ev := range c.Env {
			switch {
			case ev.ValueFrom == nil:
				// TMPDIR and HOME point into /stash-tmp, which is a
				// directory of this machine here.
				v := e.mapPath(ev.Value)
				if (ev.Name == "TMPDIR" || ev.Name == "HOME") && v != ev.Value {
					if err := os.MkdirAll(v, 0o700); err != nil {
						return fmt.Errorf("step %s: %s: %w", c.Name, ev.Name, err)
					}
				}
				cmd.Env = append(cmd.Env, ev.Name+"="+v)
			case ev.ValueFrom.FieldRef != nil:
				if v, ok := downwardValue(job, ev.ValueFrom.FieldRef.FieldPath); ok {
					cmd.Env = append(cmd.Env, ev.Name+"="+v)
				}
			}
		}
		cmd.Stdout, cmd.Stderr = e.Stdout, e.Stderr
		if err := runStep(cmd); err != nil {
			return fmt.Errorf("step %s: %w", c.Name, err)
		}
	}
	return nil
}

// runStep runs one step process so that it dies with the runtime: a killed
// runtime leaves no half-run step behind to write into the repository
// beside the next session.
//
//   - Pdeathsig (Linux): the kernel SIGKILLs the step when the thread that started
//     it exits. That thread is the one this goroutine is locked to until
//     the step is reaped, because Go may otherwise retire a thread (one
//     whose locked goroutine exited) while the step still runs
//     (golang/go#27505), which would kill a step of a live runtime.
//   - Setpgid: the step leads its own process group, so that cancelling
//     (timeOut, SIGINT/SIGTERM of `local trigger`) kills the tools it
//     started (pg_dump, psql, hook commands) with it, not the step alone.
//     The group's ID cannot be reused while the leader is unreaped, and
//     Cancel runs only before Wait reaps it.
func runStep(cmd *exec.Cmd) error {
	cmd.SysProcAttr = stepProcAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return cmd.Run()
}

// downwardValue is what the downward API gives a pod of job for path:
// the pod's name (here the Job's), its namespace and its node (this
// machine).
func downwardValue(job *batchv1.Job, path string) (string, bool) {
	switch path {
	case "metadata.name":
		return job.Name, true
	case "metadata.namespace":
		return job.Namespace, true
	case "spec.nodeName":
		host, _ := os.Hostname()
		return host, true
	}
	return "", false
}
