package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/sidecar"
)

// IsKubectlPlugin says whether the binary runs as `kubectl stash`
// (installed as kubectl-stash on the PATH).
func IsKubectlPlugin() bool {
	return strings.HasPrefix(filepath.Base(os.Args[0]), "kubectl-stash")
}

// clusterNamespace is -n, or the kubeconfig's namespace, or default.
func clusterNamespace(flag string) string {
	if flag != "" {
		return flag
	}
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	return "default"
}

func newTriggerCommand() *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "trigger BACKUPCONFIGURATION",
		Short: "Start a backup now: create a BackupSession for a BackupConfiguration",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := clusterClient()
			if err != nil {
				return err
			}
			bs, err := createBackupSession(cmd.Context(), c, clusterNamespace(namespace), args[0], true)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "BackupSession %s/%s created\n", bs.Namespace, bs.Name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of the BackupConfiguration")
	return cmd
}

// createBackupSession creates a BackupSession for BackupConfiguration
// name. Instant triggers use generateName, as kubectl stash does; the
// CronJob uses Stash's <name>-<unix seconds>.
func createBackupSession(ctx context.Context, c client.Client, ns, name string, instant bool) (*stashv1beta1.BackupSession, error) {
	bc := &stashv1beta1.BackupConfiguration{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, bc); err != nil {
		return nil, fmt.Errorf("BackupConfiguration %s/%s: %w", ns, name, err)
	}
	retry := int32(0)
	if rc := bc.Spec.RetryConfig; rc != nil {
		retry = rc.MaxRetry
	}
	bs := plan.NewBackupSession(bc, time.Now(), retry)
	if instant {
		bs.Name, bs.GenerateName = "", bc.Name+"-"
	}
	if err := c.Create(ctx, bs); err != nil {
		return nil, fmt.Errorf("create BackupSession for %s/%s: %w", ns, name, err)
	}
	return bs, nil
}

func newCreateBackupSessionCommand() *cobra.Command {
	var namespace, kind, name string
	cmd := &cobra.Command{
		Use:   "create-backupsession --invoker-kind=BackupConfiguration --invoker-name=NAME",
		Short: "Create a BackupSession (what the trigger CronJob runs)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kind != "" && kind != "BackupConfiguration" {
				return fmt.Errorf("--invoker-kind %q: only BackupConfiguration is supported", kind)
			}
			if name == "" {
				return errors.New("--invoker-name is empty: name the BackupConfiguration")
			}
			c, err := clusterClient()
			if err != nil {
				return err
			}
			bs, err := createBackupSession(cmd.Context(), c, clusterNamespace(namespace), name, false)
			if apierrors.IsAlreadyExists(err) {
				// The CronJob's pod was retried within the same second.
				return nil
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "BackupSession %s/%s created\n", bs.Namespace, bs.Name)
			return nil
		},
	}
	cmd.Flags().StringVar(&namespace, "namespace", "", "namespace of the invoker")
	cmd.Flags().StringVar(&kind, "invoker-kind", "BackupConfiguration", "kind of the invoker")
	cmd.Flags().StringVar(&name, "invoker-name", "", "name of the invoker")
	return cmd
}

func newPauseResumeCommand(pause bool) *cobra.Command {
	var namespace, bcName string
	verb := map[bool]string{true: "pause", false: "resume"}[pause]
	cmd := &cobra.Command{
		Use:   verb + " [backup] (BACKUPCONFIGURATION | --backupconfig NAME)",
		Short: map[bool]string{true: "Pause scheduled backups of a BackupConfiguration", false: "Resume scheduled backups of a BackupConfiguration"}[pause],
		Args:  cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 && args[0] == "backup" {
				args = args[1:]
			}
			if bcName == "" && len(args) == 1 {
				bcName = args[0]
			}
			if bcName == "" {
				return errors.New("name the BackupConfiguration (argument or --backupconfig)")
			}
			c, err := clusterClient()
			if err != nil {
				return err
			}
			ns := clusterNamespace(namespace)
			bc := &stashv1beta1.BackupConfiguration{}
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: bcName}, bc); err != nil {
				return fmt.Errorf("BackupConfiguration %s/%s: %w", ns, bcName, err)
			}
			patch := client.MergeFrom(bc.DeepCopy())
			bc.Spec.Paused = pause
			if err := c.Patch(cmd.Context(), bc, patch); err != nil {
				return fmt.Errorf("%s BackupConfiguration %s/%s: %w", verb, ns, bcName, err)
			}
			fmt.Fprintf(stdout, "BackupConfiguration %s/%s %sd\n", ns, bcName, verb)
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of the BackupConfiguration")
	cmd.Flags().StringVar(&bcName, "backupconfig", "", "the BackupConfiguration")
	return cmd
}

func newDescribeCommand() *cobra.Command {
	var namespace string
	cmd := &cobra.Command{
		Use:   "describe (backupconfiguration | backupsession | restoresession) NAME",
		Short: "Show a session's phase, hosts and snapshot stats, or a BackupConfiguration's state (its sidecar's, for a workload)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := clusterClient()
			if err != nil {
				return err
			}
			ns := clusterNamespace(namespace)
			key := client.ObjectKey{Namespace: ns, Name: args[1]}
			w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			defer w.Flush()
			switch strings.ToLower(args[0]) {
			case "backupsession", "backupsessions", "bs":
				bs := &stashv1beta1.BackupSession{}
				if err := c.Get(cmd.Context(), key, bs); err != nil {
					return err
				}
				fmt.Fprintf(w, "BackupSession:\t%s/%s\n", bs.Namespace, bs.Name)
				fmt.Fprintf(w, "Invoker:\t%s/%s\n", bs.Spec.Invoker.Kind, bs.Spec.Invoker.Name)
				fmt.Fprintf(w, "Phase:\t%s\n", bs.Status.Phase)
				fmt.Fprintf(w, "Duration:\t%s\n", bs.Status.SessionDuration)
				for _, t := range bs.Status.Targets {
					fmt.Fprintf(w, "Target:\t%s %s/%s\t%s\n", t.Ref.Kind, t.Ref.Namespace, t.Ref.Name, t.Phase)
					for _, h := range t.Stats {
						fmt.Fprintf(w, "  Host %s:\t%s\t%s\t%s\n", h.Hostname, h.Phase, h.Duration, h.Error)
						for _, s := range h.Snapshots {
							fmt.Fprintf(w, "    Snapshot %s:\t%s\ttotal %s\tuploaded %s\n", s.Name, s.Path, s.TotalSize, s.Uploaded)
						}
					}
				}
				for _, t := range bs.Status.Targets {
					for _, cd := range t.Conditions {
						fmt.Fprintf(w, "Condition %s:\t%s\t%s\n", cd.Type, cd.Status, cd.Message)
					}
				}
				for _, cd := range bs.Status.Conditions {
					fmt.Fprintf(w, "Condition %s:\t%s\t%s\n", cd.Type, cd.Status, cd.Message)
				}
			case "backupconfiguration", "backupconfigurations", "bc":
				bc := &stashv1beta1.BackupConfiguration{}
				if err := c.Get(cmd.Context(), key, bc); err != nil {
					return err
				}
				fmt.Fprintf(w, "BackupConfiguration:\t%s/%s\n", bc.Namespace, bc.Name)
				fmt.Fprintf(w, "Phase:\t%s\n", bc.Status.Phase)
				fmt.Fprintf(w, "Schedule:\t%s\tpaused=%v\n", bc.Spec.Schedule, bc.Spec.Paused)
				if t := bc.Spec.Target; t != nil {
					model := "job (Task " + bc.Spec.Task.Name + ")"
					if bc.Spec.Task.Name == "" && sidecar.NewWorkload(t.Ref.Kind) != nil {
						model = "sidecar"
					}
					fmt.Fprintf(w, "Target:\t%s %s\t%s\n", t.Ref.Kind, t.Ref.Name, model)
					if model == "sidecar" {
						obj := sidecar.NewWorkload(t.Ref.Kind)
						if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: t.Ref.Name}, obj); err == nil {
							fmt.Fprintf(w, "Sidecar in pod template:\t%v\n", plan.HasSidecar(sidecar.Template(obj)))
						}
					}
				}
				for _, cd := range bc.Status.Conditions {
					fmt.Fprintf(w, "Condition %s:\t%s\t%s\n", cd.Type, cd.Status, cd.Message)
				}
			case "restoresession", "restoresessions", "rs":
				rs := &stashv1beta1.RestoreSession{}
				if err := c.Get(cmd.Context(), key, rs); err != nil {
					return err
				}
				fmt.Fprintf(w, "RestoreSession:\t%s/%s\n", rs.Namespace, rs.Name)
				fmt.Fprintf(w, "Phase:\t%s\n", rs.Status.Phase)
				fmt.Fprintf(w, "Duration:\t%s\n", rs.Status.SessionDuration)
				for _, h := range rs.Status.Stats {
					fmt.Fprintf(w, "  Host %s:\t%s\t%s\t%s\n", h.Hostname, h.Phase, h.Duration, h.Error)
				}
				for _, cd := range rs.Status.Conditions {
					fmt.Fprintf(w, "Condition %s:\t%s\t%s\n", cd.Type, cd.Status, cd.Message)
				}
			default:
				return fmt.Errorf("describe %q: use backupconfiguration, backupsession or restoresession", args[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of the session")
	return cmd
}
