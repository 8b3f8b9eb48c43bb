package step

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/hook"
	"github.com/stash-backup/stash/internal/manifest"
)

// Hook names the hook run-hook runs and the session it belongs to.
type Hook struct {
	// Type is preBackup, postBackup, preRestore or postRestore.
	Type                          string
	BackupSession, RestoreSession string
	Namespace                     string
	// InvokerKind is BackupConfiguration or RestoreSession.
	InvokerKind, InvokerName string
	TargetKind, TargetName   string
	// SessionStatus returns, outside a cluster, the session's recorded
	// status (JSON), which a post hook's executionPolicy and its
	// templates read; nil when none is recorded.
	SessionStatus func(kind, namespace, name string) []byte
	// Log receives what the hook prints (default: standard error).
	Log io.Writer
	// Target is where the hook acts: its host and, in a cluster, how an
	// exec hook reaches the target's pod. The zero Target is this
	// machine (the local runtime).
	Target hook.Target
}

// Invokers finds the invoker whose hook runs: in manifests (the local
// runtime) or in the cluster.
type Invokers interface {
	BackupConfiguration(ctx context.Context, namespace, name string) (*stashv1beta1.BackupConfiguration, error)
	RestoreSession(ctx context.Context, namespace, name string) (*stashv1beta1.RestoreSession, error)
}

// ManifestInvokers finds invokers in manifest files.
type ManifestInvokers struct{ Set *manifest.Set }

// BackupConfiguration implements Invokers.
func (m ManifestInvokers) BackupConfiguration(_ context.Context, ns, name string) (*stashv1beta1.BackupConfiguration, error) {
	bc, ok := m.Set.BackupConfigurations[manifest.Key(ns, name)]
	if !ok {
		return nil, fmt.Errorf("BackupConfiguration %s not found in the manifests", manifest.Key(ns, name))
	}
	return bc, nil
}

// RestoreSession implements Invokers.
func (m ManifestInvokers) RestoreSession(_ context.Context, ns, name string) (*stashv1beta1.RestoreSession, error) {
	rs, ok := m.Set.RestoreSessions[manifest.Key(ns, name)]
	if !ok {
		return nil, fmt.Errorf("RestoreSession %s not found in the manifests", manifest.Key(ns, name))
	}
	return rs, nil
}

// KubeInvokers finds invokers in the cluster.
type KubeInvokers struct{ Reader client.Reader }

// BackupConfiguration implements Invokers.
func (k KubeInvokers) BackupConfiguration(ctx context.Context, ns, name string) (*stashv1beta1.BackupConfiguration, error) {
	bc := &stashv1beta1.BackupConfiguration{}
	if err := k.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, bc); err != nil {
		return nil, fmt.Errorf("BackupConfiguration %s/%s: %w", ns, name, err)
	}
	return bc, nil
}

// RestoreSession implements Invokers.
func (k KubeInvokers) RestoreSession(ctx context.Context, ns, name string) (*stashv1beta1.RestoreSession, error) {
	rs := &stashv1beta1.RestoreSession{}
	if err := k.Reader.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, rs); err != nil {
		return nil, fmt.Errorf("RestoreSession %s/%s: %w", ns, name, err)
	}
	return rs, nil
}

// RunHook runs an invoker's hook, as src defines it.
func RunHook(ctx context.Context, src Invokers, h Hook) error {
	log := h.Log
	if log == nil {
		log = os.Stderr
	}
	var (
		pre     *stashv1beta1.Handler
		post    *stashv1beta1.PostHook
		final   = true
		session = h.BackupSession
		kind    = "BackupSession"
	)
	switch h.InvokerKind {
	case "BackupConfiguration":
		bc, err := src.BackupConfiguration(ctx, h.Namespace, h.InvokerName)
		if err != nil {
			return err
		}
		if bc.Spec.Hooks != nil {
			pre, post = bc.Spec.Hooks.PreBackup, bc.Spec.Hooks.PostBackup
		}
		final = bc.Spec.RetryConfig == nil || bc.Spec.RetryConfig.MaxRetry == 0
	case "RestoreSession":
		rs, err := src.RestoreSession(ctx, h.Namespace, h.InvokerName)
		if err != nil {
			return err
		}
		if rs.Spec.Hooks != nil {
			pre, post = rs.Spec.Hooks.PreRestore, rs.Spec.Hooks.PostRestore
		}
		session, kind = h.RestoreSession, "RestoreSession"
	default:
		return fmt.Errorf("--invoker-kind %q: use BackupConfiguration or RestoreSession", h.InvokerKind)
	}
	var sum hook.Summary
	sum.Name, sum.Namespace = session, h.Namespace
	sum.Invoker.Kind, sum.Invoker.Name = h.InvokerKind, h.InvokerName
	sum.Target.Kind, sum.Target.Name = h.TargetKind, h.TargetName
	if h.SessionStatus != nil && session != "" {
		sum.Status = sessionStatus(h.SessionStatus(kind, h.Namespace, session))
	}
	var handler *stashv1beta1.Handler
	switch h.Type {
	case "preBackup", "preRestore":
		handler = pre
	case "postBackup", "postRestore":
		if post != nil {
			if !hook.ShouldRun(post.ExecutionPolicy, sum.Status.Phase, final) {
				fmt.Fprintf(log, "%s hook skipped: executionPolicy %s, session %s\n", h.Type, post.ExecutionPolicy, sum.Status.Phase)
				return nil
			}
			handler = &post.Handler
		}
	default:
		return fmt.Errorf("--hook-type %q: use preBackup, postBackup, preRestore or postRestore", h.Type)
	}
	if handler == nil {
		return fmt.Errorf("%s %s has no %s hook", h.InvokerKind, h.InvokerName, h.Type)
	}
	target := h.Target
	if target.Host == "" && target.Exec == nil {
		target.Host = "127.0.0.1"
	}
	if err := hook.Execute(ctx, handler, sum, target, log); err != nil {
		return fmt.Errorf("%s hook: %w", h.Type, err)
	}
	return nil
}

// sessionStatus reads the phase, duration and error of a session from
// its recorded status; none or an unreadable one gives none, as a session
// that has not reported yet.
func sessionStatus(b []byte) (st struct{ Phase, Duration, Error string }) {
	if len(b) == 0 {
		return st
	}
	var s struct {
		Phase           string `json:"phase"`
		SessionDuration string `json:"sessionDuration"`
		Targets         []struct {
			Stats []stashv1beta1.HostBackupStats `json:"stats"`
		} `json:"targets"`
		Stats []stashv1beta1.HostRestoreStats `json:"stats"`
	}
	if json.Unmarshal(b, &s) != nil {
		return st
	}
	st.Phase, st.Duration = s.Phase, s.SessionDuration
	for _, t := range s.Targets {
		for _, h := range t.Stats {
			if h.Error != "" {
				st.Error = h.Error
			}
			if st.Duration == "" {
				st.Duration = h.Duration
			}
		}
	}
	for _, h := range s.Stats {
		if h.Error != "" {
			st.Error = h.Error
		}
	}
	return st
}
