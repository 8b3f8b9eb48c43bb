package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/source"
)

// kubeconfig is the root --kubeconfig flag.
var kubeconfig string

// clusterAvailable says whether objects come from a Kubernetes API: the
// process runs in a pod, or a kubeconfig was named. Manifest files (-f)
// always take precedence.
func clusterAvailable() bool {
	return kubeconfig != "" || os.Getenv("KUBERNETES_SERVICE_HOST") != "" || os.Getenv("KUBECONFIG") != ""
}

// clusterClient returns a client for the cluster of --kubeconfig,
// $KUBECONFIG or the pod's service account.
func clusterClient() (client.Client, error) {
	if kubeconfig != "" {
		if err := os.Setenv("KUBECONFIG", kubeconfig); err != nil {
			return nil, err
		}
	}
	cfg, err := config.GetConfig()
	if err != nil {
		return nil, fmt.Errorf("connect to Kubernetes: %w (outside a cluster pass -f with manifests instead)", err)
	}
	cfg.UserAgent = "stash/" + Version
	c, err := client.New(cfg, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		return nil, fmt.Errorf("connect to Kubernetes: %w", err)
	}
	return c, nil
}

// clusterRepository reads a Repository and its storage Secret from the
// cluster.
func clusterRepository(ctx context.Context, namespace, name string) (*stashv1alpha1.Repository, map[string][]byte, error) {
	if name == "" {
		return nil, nil, errors.New("--repository is empty: name the Repository to use")
	}
	c, err := clusterClient()
	if err != nil {
		return nil, nil, err
	}
	src := source.Kube{Reader: c}
	repo, err := src.Repository(ctx, namespace, name)
	if err != nil {
		return nil, nil, err
	}
	secret, err := src.SecretData(ctx, repo.Namespace, repo.Spec.Backend.StorageSecretName)
	if err != nil {
		return nil, nil, fmt.Errorf("Repository %s/%s: storage Secret: %w", repo.Namespace, repo.Name, err)
	}
	return repo, secret, nil
}
