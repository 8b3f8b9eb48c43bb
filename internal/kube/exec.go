package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/streaming/pkg/httpstream"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
)

// PodExec runs argv in a container of a pod through the API server's
// pods/exec (what `kubectl exec` does), writing stdout and stderr to out.
// An empty container is the pod's first.
func PodExec(ctx context.Context, cfg *rest.Config, namespace, pod, container string, argv []string, out io.Writer) error {
	q := url.Values{"stdout": {"true"}, "stderr": {"true"}}
	for _, a := range argv {
		q.Add("command", a)
	}
	if container != "" {
		q.Set("container", container)
	}
	u, err := url.Parse(cfg.Host)
	if err != nil {
		return fmt.Errorf("API server address %q: %w", cfg.Host, err)
	}
	u.Path = fmt.Sprintf("%s/api/v1/namespaces/%s/pods/%s/exec", u.Path, url.PathEscape(namespace), url.PathEscape(pod))
	u.RawQuery = q.Encode()
	ws, err := remotecommand.NewWebSocketExecutor(cfg, "GET", u.String())
	if err != nil {
		return err
	}
	spdy, err := remotecommand.NewSPDYExecutor(cfg, "POST", u)
	if err != nil {
		return err
	}
	// WebSocket first (Kubernetes 1.30+), SPDY only when the upgrade
	// itself was refused (as kubectl does): a command that ran and failed
	// must never run a second time.
	exec, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool {
		return httpstream.IsUpgradeFailure(err) || httpstream.IsHTTPSProxyError(err)
	})
	if err != nil {
		return err
	}
	if err := exec.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: out, Stderr: out}); err != nil {
		return fmt.Errorf("exec in pod %s/%s: %w", namespace, pod, err)
	}
	return nil
}

// appBindingPods are the database's pods: those of the Service the
// AppBinding names, or, for a URL, of the Service whose cluster IP or name
// is the URL's host, or the pod whose IP it is.
func appBindingPods(ctx context.Context, r client.Reader, ab *appcatalogv1alpha1.AppBinding) ([]corev1.Pod, error) {
	ns := ab.Namespace
	cc := ab.Spec.ClientConfig
	var svc *corev1.Service
	switch {
	case cc.Service != nil && cc.Service.Name != "":
		svc = &corev1.Service{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: cc.Service.Name}, svc); err != nil {
			return nil, fmt.Errorf("Service %s/%s of AppBinding %s: %w", ns, cc.Service.Name, ab.Name, err)
		}
	case cc.URL != nil:
		raw := *cc.URL
		if !strings.Contains(raw, "://") {
			raw = "tcp://" + raw
		}
		u, err := url.Parse(raw)
		if err != nil || u.Hostname() == "" {
			return nil, fmt.Errorf("AppBinding %s/%s: its URL names no host to find the database's pod by", ns, ab.Name)
		}
		host := u.Hostname()
		var list corev1.ServiceList
		if err := r.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return nil, err
		}
		for i := range list.Items {
			s := &list.Items[i]
			if s.Spec.ClusterIP == host || s.Name == host || strings.HasPrefix(host, s.Name+"."+ns+".") {
				svc = s
				break
			}
		}
		if svc == nil {
			var pods corev1.PodList
			if err := r.List(ctx, &pods, client.InNamespace(ns)); err != nil {
				return nil, err
			}
			for _, p := range pods.Items {
				if p.Status.PodIP == host {
					return []corev1.Pod{p}, nil
				}
			}
			return nil, fmt.Errorf("AppBinding %s/%s: no Service or pod of namespace %s has the address %s, so no pod to run an exec hook in: use an httpGet, httpPost or tcpSocket hook", ns, ab.Name, ns, host)
		}
	default:
		return nil, fmt.Errorf("AppBinding %s/%s names no Service or URL, so no pod to run an exec hook in", ns, ab.Name)
	}
	if len(svc.Spec.Selector) == 0 {
		return nil, fmt.Errorf("Service %s/%s selects no pods: an exec hook needs the database's pod", ns, svc.Name)
	}
	var pods corev1.PodList
	if err := r.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabelsSelector{Selector: labels.SelectorFromSet(svc.Spec.Selector)}); err != nil {
		return nil, err
	}
	return pods.Items, nil
}

// ErrNoPod is returned when a hook's target has no running pod.
var ErrNoPod = errors.New("no running pod")

// TargetPod finds the pod an exec hook of a job-model session runs in: a
// running pod behind the AppBinding's Service (the database), or one that
// mounts the PersistentVolumeClaim.
func TargetPod(ctx context.Context, r client.Reader, namespace, kind, name string) (*corev1.Pod, error) {
	var pods corev1.PodList
	switch kind {
	case "AppBinding":
		ab := &appcatalogv1alpha1.AppBinding{}
		if err := r.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, ab); err != nil {
			return nil, fmt.Errorf("AppBinding %s/%s: %w", namespace, name, err)
		}
		found, err := appBindingPods(ctx, r, ab)
		if err != nil {
			return nil, err
		}
		pods.Items = found
	case "PersistentVolumeClaim":
		var all corev1.PodList
		if err := r.List(ctx, &all, client.InNamespace(namespace)); err != nil {
			return nil, err
		}
		for _, p := range all.Items {
			for _, v := range p.Spec.Volumes {
				if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == name {
					pods.Items = append(pods.Items, p)
				}
			}
		}
	default:
		return nil, fmt.Errorf("an exec hook of a %s target runs in its sidecar's pod, not from a Job", kind)
	}
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
			return p, nil
		}
	}
	return nil, fmt.Errorf("%w for %s %s/%s to run the exec hook in", ErrNoPod, kind, namespace, name)
}
