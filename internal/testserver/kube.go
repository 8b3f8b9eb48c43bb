package testserver

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// KubeVersion is the Kubernetes release hack/build-kube.sh builds.
const KubeVersion = "v1.37.2"

// KubeAssets is the directory holding kube-apiserver and etcd built by
// hack/build-kube.sh, and whether both are there.
func KubeAssets() (string, bool) {
	dir := filepath.Join(RepoRoot(), "bin", "kube", KubeVersion)
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return dir, false
		}
	}
	return dir, true
}

// KubeAPI is a real kube-apiserver and etcd (controller-runtime's envtest)
// with Stash's CRDs installed.
type KubeAPI struct {
	Env    *envtest.Environment
	Config *rest.Config
}

// StartKubeAPI starts kube-apiserver and etcd from bin/kube. It returns
// ErrKubeMissing when they are not built.
func StartKubeAPI() (*KubeAPI, error) {
	dir, ok := KubeAssets()
	if !ok {
		return nil, ErrKubeMissing
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: dir,
	}
	// With only loopback addresses the apiserver's endpoint reconciler
	// cannot publish the kubernetes Service; tests need none.
	env.ControlPlane.GetAPIServer().Configure().Set("endpoint-reconciler-type", "none")
	cfg, err := env.Start()
	if err != nil {
		return nil, fmt.Errorf("start kube-apiserver and etcd from %s: %w", dir, err)
	}
	return &KubeAPI{Env: env, Config: cfg}, nil
}

// Stop stops the API server and etcd.
func (k *KubeAPI) Stop() error { return k.Env.Stop() }

// ErrKubeMissing says that kube-apiserver and etcd are not built.
var ErrKubeMissing = fmt.Errorf("kube-apiserver and etcd are missing from bin/kube/%s: run hack/build-kube.sh", KubeVersion)

// WriteKubeconfig writes a kubeconfig for the API server's admin user.
func (k *KubeAPI) WriteKubeconfig(path string) error {
	c := k.Config
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["envtest"] = &clientcmdapi.Cluster{Server: c.Host, CertificateAuthorityData: c.CAData}
	cfg.AuthInfos["admin"] = &clientcmdapi.AuthInfo{ClientCertificateData: c.CertData, ClientKeyData: c.KeyData, Token: c.BearerToken}
	cfg.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "admin"}
	cfg.CurrentContext = "envtest"
	return clientcmd.WriteToFile(*cfg, path)
}
