package testserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
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

// InstallWebhooks installs config/webhook/webhooks.yaml with each service
// reference turned into a URL of a webhook server on 127.0.0.1:port,
// replacing configurations an earlier install made.
func InstallWebhooks(ctx context.Context, c client.Client, port int) error {
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "config", "webhook", "webhooks.yaml"))
	if err != nil {
		return err
	}
	url := func(cc *admissionregistrationv1.WebhookClientConfig) {
		u := fmt.Sprintf("https://127.0.0.1:%d%s", port, *cc.Service.Path)
		cc.URL, cc.Service = &u, nil
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var obj client.Object
		switch {
		case strings.Contains(doc, "kind: ValidatingWebhookConfiguration"):
			v := &admissionregistrationv1.ValidatingWebhookConfiguration{}
			if err := yaml.Unmarshal([]byte(doc), v); err != nil {
				return err
			}
			for i := range v.Webhooks {
				url(&v.Webhooks[i].ClientConfig)
			}
			obj = v
		case strings.Contains(doc, "kind: MutatingWebhookConfiguration"):
			m := &admissionregistrationv1.MutatingWebhookConfiguration{}
			if err := yaml.Unmarshal([]byte(doc), m); err != nil {
				return err
			}
			for i := range m.Webhooks {
				url(&m.Webhooks[i].ClientConfig)
			}
			obj = m
		default:
			continue
		}
		if err := c.Delete(ctx, obj.DeepCopyObject().(client.Object)); client.IgnoreNotFound(err) != nil {
			return err
		}
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("install webhook configuration %s: %w", obj.GetName(), err)
		}
	}
	return nil
}

// InstallAdmissionPolicy installs config/admission (the
// ValidatingAdmissionPolicy the chart ships), replacing an earlier install.
func InstallAdmissionPolicy(ctx context.Context, c client.Client) error {
	b, err := os.ReadFile(filepath.Join(RepoRoot(), "config", "admission", "runtime-settings.yaml"))
	if err != nil {
		return err
	}
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var obj client.Object
		switch {
		case strings.Contains(doc, "kind: ValidatingAdmissionPolicyBinding"):
			obj = &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
		case strings.Contains(doc, "kind: ValidatingAdmissionPolicy"):
			obj = &admissionregistrationv1.ValidatingAdmissionPolicy{}
		default:
			continue
		}
		if err := yaml.Unmarshal([]byte(doc), obj); err != nil {
			return err
		}
		if err := c.Delete(ctx, obj.DeepCopyObject().(client.Object)); client.IgnoreNotFound(err) != nil {
			return err
		}
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("install %s: %w", obj.GetName(), err)
		}
	}
	return nil
}
