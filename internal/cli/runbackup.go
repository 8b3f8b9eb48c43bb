package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/sidecar"
)

func newRunBackupCommand() *cobra.Command {
	var (
		r           sidecar.Runner
		invokerKind string
	)
	cmd := &cobra.Command{
		Use:   "run-backup --invoker-name=BC --target-kind=KIND --target-name=NAME",
		Short: "The backup sidecar of a workload: runs its BackupConfiguration's sessions in the pod (injected by the operator)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if invokerKind != "" && invokerKind != "BackupConfiguration" {
				return fmt.Errorf("--invoker-kind=%s: the backup sidecar serves BackupConfigurations", invokerKind)
			}
			c, ns, err := sidecarClient(r.Namespace)
			if err != nil {
				return err
			}
			r.Client, r.Namespace = c, ns
			r.Pod, r.PodUID, r.Node = os.Getenv("POD_NAME"), os.Getenv("POD_UID"), os.Getenv("NODE_NAME")
			// Exec hooks run in the application's container of this pod.
			r.Exec = func(ctx context.Context, container string, argv []string, out io.Writer) error {
				cfg, err := config.GetConfig()
				if err != nil {
					return err
				}
				return kube.PodExec(ctx, cfg, r.Namespace, r.Pod, container, argv, out)
			}
			return r.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&invokerKind, "invoker-kind", "BackupConfiguration", "kind of the invoker")
	fl.StringVar(&r.Invoker, "invoker-name", "", "the BackupConfiguration")
	fl.StringVar(&r.Kind, "target-kind", "", "kind of the workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController)")
	fl.StringVar(&r.Name, "target-name", "", "name of the workload")
	fl.StringVar(&r.Namespace, "target-namespace", "", "namespace of the workload (default: the pod's)")
	fl.StringVar(&r.SecretDir, "secret-dir", plan.SidecarSecretDir, "where the Repository's storage Secret is mounted")
	fl.StringVar(&r.ScratchDir, "scratch-dir", plan.StepTempDir, "where results are staged")
	for _, n := range []string{"enable-cache", "max-connections", "metrics-enabled", "pushgateway-url", "backup-configuration"} {
		fl.String(n, "", "accepted for compatibility with Stash's sidecar")
	}
	return cmd
}

func newRestoreInitCommand() *cobra.Command {
	var (
		r           sidecar.RestoreRunner
		invokerKind string
	)
	cmd := &cobra.Command{
		Use:   "restore --invoker-name=RS --target-kind=KIND --target-name=NAME",
		Short: "The restore init container of a workload: restores the pod's host by its RestoreSession, once (injected by the operator)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if invokerKind != "" && invokerKind != "RestoreSession" {
				return fmt.Errorf("--invoker-kind=%s: the restore init container serves RestoreSessions", invokerKind)
			}
			c, ns, err := sidecarClient(r.Namespace)
			if err != nil {
				return err
			}
			r.Client, r.Namespace = c, ns
			r.Pod, r.PodUID, r.Node = os.Getenv("POD_NAME"), os.Getenv("POD_UID"), os.Getenv("NODE_NAME")
			return r.Run(cmd.Context())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&invokerKind, "invoker-kind", "RestoreSession", "kind of the invoker")
	fl.StringVar(&r.Session, "invoker-name", "", "the RestoreSession")
	fl.StringVar(&r.Kind, "target-kind", "", "kind of the workload (Deployment, StatefulSet, DaemonSet, ReplicaSet, ReplicationController)")
	fl.StringVar(&r.Name, "target-name", "", "name of the workload")
	fl.StringVar(&r.Namespace, "target-namespace", "", "namespace of the workload (default: the pod's)")
	fl.StringVar(&r.SecretDir, "secret-dir", plan.SidecarSecretDir, "where the Repository's storage Secret is mounted")
	fl.StringVar(&r.ScratchDir, "scratch-dir", plan.StepTempDir, "where results are staged")
	for _, n := range []string{"enable-cache", "max-connections", "metrics-enabled", "pushgateway-url"} {
		fl.String(n, "", "accepted for compatibility with Stash's init container")
	}
	return cmd
}

// sidecarClient connects as the pod's ServiceAccount (its projected
// token) and finds the namespace when none is given.
func sidecarClient(ns string) (client.WithWatch, string, error) {
	if ns == "" {
		b, err := os.ReadFile(plan.ServiceAccountTokenDir + "/namespace")
		if err != nil {
			return nil, "", errors.New("--target-namespace is empty and the pod's namespace cannot be read")
		}
		ns = string(b)
	}
	cfg, err := config.GetConfig()
	if err != nil {
		return nil, "", fmt.Errorf("connect to Kubernetes: %w", err)
	}
	cfg.UserAgent = "stash-sidecar/" + Version
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		return nil, "", fmt.Errorf("connect to Kubernetes: %w", err)
	}
	return c, ns, nil
}
