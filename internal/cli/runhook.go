package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/hook"
	"github.com/stash-backup/stash/internal/manifest"
)

func newRunHookCommand() *cobra.Command {
	var (
		hookType, backupSession, restoreSession, namespace string
		invokerKind, invokerName, targetKind, targetName   string
		hostname, stateDir                                 string
		files                                              []string
	)
	cmd := &cobra.Command{
		Use:   "run-hook",
		Short: "Run an invoker's preBackup, postBackup, preRestore or postRestore hook (the hook containers of a Job)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				return errors.New("no object source: outside a cluster pass -f with the manifests holding the invoker")
			}
			set, err := manifest.Load(files...)
			if err != nil {
				return err
			}
			var (
				pre       *stashv1beta1.Handler
				post      *stashv1beta1.PostHook
				final     = true
				session   = backupSession
				statusDir = "backupsessions"
			)
			switch invokerKind {
			case "BackupConfiguration":
				bc, ok := set.BackupConfigurations[manifest.Key(namespace, invokerName)]
				if !ok {
					return fmt.Errorf("BackupConfiguration %s not found in the manifests", manifest.Key(namespace, invokerName))
				}
				if bc.Spec.Hooks != nil {
					pre, post = bc.Spec.Hooks.PreBackup, bc.Spec.Hooks.PostBackup
				}
				final = bc.Spec.RetryConfig == nil || bc.Spec.RetryConfig.MaxRetry == 0
			case "RestoreSession":
				rs, ok := set.RestoreSessions[manifest.Key(namespace, invokerName)]
				if !ok {
					return fmt.Errorf("RestoreSession %s not found in the manifests", manifest.Key(namespace, invokerName))
				}
				if rs.Spec.Hooks != nil {
					pre, post = rs.Spec.Hooks.PreRestore, rs.Spec.Hooks.PostRestore
				}
				session, statusDir = restoreSession, "restoresessions"
			default:
				return fmt.Errorf("--invoker-kind %q: use BackupConfiguration or RestoreSession", invokerKind)
			}
			var sum hook.Summary
			sum.Name, sum.Namespace = session, namespace
			sum.Invoker.Kind, sum.Invoker.Name = invokerKind, invokerName
			sum.Target.Kind, sum.Target.Name = targetKind, targetName
			if stateDir != "" && session != "" {
				if b, err := os.ReadFile(filepath.Join(stateDir, namespace, statusDir, session+".json")); err == nil {
					var st struct {
						Phase           string `json:"phase"`
						SessionDuration string `json:"sessionDuration"`
						Targets         []struct {
							Stats []stashv1beta1.HostBackupStats `json:"stats"`
						} `json:"targets"`
						Stats []stashv1beta1.HostRestoreStats `json:"stats"`
					}
					if json.Unmarshal(b, &st) == nil {
						sum.Status.Phase, sum.Status.Duration = st.Phase, st.SessionDuration
						for _, t := range st.Targets {
							for _, h := range t.Stats {
								if h.Error != "" {
									sum.Status.Error = h.Error
								}
								if sum.Status.Duration == "" {
									sum.Status.Duration = h.Duration
								}
							}
						}
						for _, h := range st.Stats {
							if h.Error != "" {
								sum.Status.Error = h.Error
							}
						}
					}
				}
			}
			var h *stashv1beta1.Handler
			switch hookType {
			case "preBackup", "preRestore":
				h = pre
			case "postBackup", "postRestore":
				if post != nil {
					if !hook.ShouldRun(post.ExecutionPolicy, sum.Status.Phase, final) {
						fmt.Fprintf(os.Stderr, "%s hook skipped: executionPolicy %s, session %s\n", hookType, post.ExecutionPolicy, sum.Status.Phase)
						return nil
					}
					h = &post.Handler
				}
			default:
				return fmt.Errorf("--hook-type %q: use preBackup, postBackup, preRestore or postRestore", hookType)
			}
			if h == nil {
				return fmt.Errorf("%s %s has no %s hook", invokerKind, invokerName, hookType)
			}
			if err := hook.Execute(cmd.Context(), h, sum, "127.0.0.1", os.Stderr); err != nil {
				return fmt.Errorf("%s hook: %w", hookType, err)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&hookType, "hook-type", "", "preBackup, postBackup, preRestore or postRestore")
	fl.StringVar(&backupSession, "backupsession", "", "the BackupSession")
	fl.StringVar(&restoreSession, "restoresession", "", "the RestoreSession")
	fl.StringVar(&namespace, "namespace", manifest.DefaultNamespace, "namespace of the session")
	fl.StringVar(&invokerKind, "invoker-kind", "", "BackupConfiguration or RestoreSession")
	fl.StringVar(&invokerName, "invoker-name", "", "name of the invoker")
	fl.StringVar(&targetKind, "target-kind", "", "kind of the target")
	fl.StringVar(&targetName, "target-name", "", "name of the target")
	fl.StringVar(&hostname, "hostname", "", "host of the session")
	fl.StringVar(&stateDir, "state-dir", os.Getenv("STASH_STATE_DIR"), "outside a cluster: the status store directory")
	fl.StringSliceVarP(&files, "filename", "f", nil, "outside a cluster: manifests holding the invoker")
	return cmd
}
