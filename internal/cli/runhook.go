package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/kube"

	"github.com/spf13/cobra"

	"github.com/stash-backup/stash/internal/manifest"
	"github.com/stash-backup/stash/internal/runtime/local"
	"github.com/stash-backup/stash/internal/step"
)

func newRunHookCommand() *cobra.Command {
	var (
		h        step.Hook
		files    []string
		stateDir string
	)
	cmd := &cobra.Command{
		Use:   "run-hook",
		Short: "Run an invoker's preBackup, postBackup, preRestore or postRestore hook (the hook containers of a Job)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(files) == 0 {
				// In a cluster: the invoker and the session from the API,
				// exec hooks in the target's pod through pods/exec.
				return runHookInCluster(cmd.Context(), h)
			}
			set, err := manifest.Load(files...)
			if err != nil {
				return err
			}
			if stateDir != "" {
				h.SessionStatus = func(kind, ns, name string) []byte {
					store, err := local.OpenStore(stateDir)
					if err != nil {
						return nil
					}
					defer store.Close()
					if s, err := store.Get(kind, ns, name); err == nil && s != nil {
						return s.Status
					}
					return nil
				}
			}
			return step.RunHook(cmd.Context(), step.ManifestInvokers{Set: set}, h)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&h.Type, "hook-type", "", "preBackup, postBackup, preRestore or postRestore")
	fl.StringVar(&h.BackupSession, "backupsession", "", "the BackupSession")
	fl.StringVar(&h.RestoreSession, "restoresession", "", "the RestoreSession")
	fl.StringVar(&h.Namespace, "namespace", manifest.DefaultNamespace, "namespace of the session")
	fl.StringVar(&h.InvokerKind, "invoker-kind", "", "BackupConfiguration or RestoreSession")
	fl.StringVar(&h.InvokerName, "invoker-name", "", "name of the invoker")
	fl.StringVar(&h.TargetKind, "target-kind", "", "kind of the target")
	fl.StringVar(&h.TargetName, "target-name", "", "name of the target")
	fl.String("hostname", "", "host of the session")
	fl.StringVar(&stateDir, "state-dir", os.Getenv("STASH_STATE_DIR"), "outside a cluster: the local runtime's state directory, which holds the session's status")
	fl.StringSliceVarP(&files, "filename", "f", nil, "outside a cluster: manifests holding the invoker (in a cluster, it is read from the API)")
	return cmd
}

// runHookInCluster runs a hook of a job-model session from its hook
// container: the invoker and the session's status come from the API, and
// an exec hook runs in the target's pod (the database's, or the one that
// mounts the claim), which HTTP and TCP hooks without a host reach too.
func runHookInCluster(ctx context.Context, h step.Hook) error {
	cfg, err := config.GetConfig()
	if err != nil {
		return fmt.Errorf("connect to Kubernetes: %w (outside a cluster pass -f with the manifests holding the invoker)", err)
	}
	cfg.UserAgent = "stash/" + Version
	c, err := client.New(cfg, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		return fmt.Errorf("connect to Kubernetes: %w", err)
	}
	h.SessionStatus = func(kind, ns, name string) []byte {
		var obj client.Object = &stashv1beta1.BackupSession{}
		if kind == "RestoreSession" {
			obj = &stashv1beta1.RestoreSession{}
		}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, obj); err != nil {
			return nil
		}
		var st any
		switch o := obj.(type) {
		case *stashv1beta1.BackupSession:
			st = o.Status
		case *stashv1beta1.RestoreSession:
			st = o.Status
		}
		b, _ := json.Marshal(st)
		return b
	}
	pod := func() (*corev1.Pod, error) { return kube.TargetPod(ctx, c, h.Namespace, h.TargetKind, h.TargetName) }
	h.Target.Exec = func(ctx context.Context, container string, argv []string, out io.Writer) error {
		p, err := pod()
		if err != nil {
			return err
		}
		return kube.PodExec(ctx, cfg, p.Namespace, p.Name, container, argv, out)
	}
	if p, err := pod(); err == nil {
		h.Target.Host = p.Status.PodIP
	}
	return step.RunHook(ctx, step.KubeInvokers{Reader: c}, h)
}
