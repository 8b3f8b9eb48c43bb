package operator_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/operator"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/testserver"
)

// The controller tests run against a real kube-apiserver and etcd
// (envtest, built by hack/build-kube.sh). There is no kube-controller-
// manager or kubelet: Jobs never run here, so tests set Job and Pod
// status the way those components would. Real runs are the e2e suite's.

var api *testserver.KubeAPI

func TestMain(m *testing.M) {
	// Errors only: a passing run stays quiet, a failing one shows why.
	ctrl.SetLogger(logr.FromSlogHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if !testserver.Integration() {
		// Every test needing the API server skips in newClient, saying so.
		os.Exit(m.Run())
	}
	k, err := testserver.StartKubeAPI()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v (%s=1)\n", err, testserver.IntegrationEnv)
		os.Exit(1)
	}
	api = k
	code := m.Run()
	if err := k.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stop kube-apiserver:", err)
	}
	os.Exit(code)
}

var testImage = plan.Image{Registry: "localhost", Name: "stash", Tag: "test"}

func newClient(t testing.TB) client.Client {
	t.Helper()
	testserver.NeedIntegration(t)
	c, err := client.New(api.Config, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func freePort(t testing.TB) int { return testserver.FreePort(t) }

// runningOperator is an operator started by a test.
type runningOperator struct {
	stop        func()
	metricsAddr string
}

// startOperator runs the operator (controllers and webhooks) until the
// test ends or stop is called. The webhook configurations are the ones in
// config/webhook, pointed at the local webhook server.
func startOperator(t *testing.T) *runningOperator { return runOperator(t, nil) }

// runOperator runs the operator with the test defaults changed by mutate
// (when not nil). The runtime-settings admission policy is always
// installed; the webhook configurations only when o.Webhooks stays true.
func runOperator(t *testing.T, mutate func(*operator.Options)) *runningOperator {
	t.Helper()
	c := newClient(t)
	ctx := context.Background()
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "stash"}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	if err := testserver.InstallAdmissionPolicy(ctx, c); err != nil {
		t.Fatal(err)
	}
	o := operator.DefaultOptions()
	o.Image = testImage
	o.MetricsAddr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	o.ProbeAddr = "127.0.0.1:" + strconv.Itoa(freePort(t))
	o.CertDir = t.TempDir()
	o.ExtraIPs = []net.IP{net.ParseIP("127.0.0.1")}
	o.Restartable = true
	if mutate != nil {
		mutate(&o)
	}
	if o.Webhooks {
		port := freePort(t)
		if err := testserver.InstallWebhooks(ctx, c, port); err != nil {
			t.Fatal(err)
		}
		o.WebhookHost, o.WebhookPort = "127.0.0.1", port
	}
	runCtx, cancel := context.WithCancel(ctx)
	mgr, err := operator.New(runCtx, api.Config, o)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(runCtx) }()
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("operator: %v", err)
		}
	}
	t.Cleanup(stop)
	// Ready when /readyz says so (the webhook server is serving).
	eventually(t, 30*time.Second, "operator ready", func() error {
		resp, err := http.Get("http://" + o.ProbeAddr + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
	return &runningOperator{stop: stop, metricsAddr: o.MetricsAddr}
}

func splitYAML(t testing.TB, b []byte) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufioReader(b))
	var docs [][]byte
	for {
		d, err := r.Read()
		if err != nil {
			break
		}
		if len(bytes.TrimSpace(d)) > 0 {
			docs = append(docs, d)
		}
	}
	return docs
}

// apply creates every object of a YAML stream in namespace ns.
func apply(t testing.TB, c client.Client, ns, manifests string) error {
	t.Helper()
	dec := serializer.NewCodecFactory(c.Scheme()).UniversalDeserializer()
	for _, doc := range splitYAML(t, []byte(manifests)) {
		obj, _, err := dec.Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decode %s: %v", doc, err)
		}
		o := obj.(client.Object)
		if o.GetNamespace() == "" {
			o.SetNamespace(ns)
		}
		if err := c.Create(context.Background(), o); err != nil {
			return err
		}
	}
	return nil
}

func mustApply(t testing.TB, c client.Client, ns, manifests string) {
	t.Helper()
	if err := apply(t, c, ns, manifests); err != nil {
		t.Fatal(err)
	}
}

var nsCounter int

// newNamespace creates a fresh namespace for one test.
func newNamespace(t testing.TB, c client.Client) string {
	t.Helper()
	nsCounter++
	name := fmt.Sprintf("t%d-%s", nsCounter, strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(t.Name())))
	if len(name) > 60 {
		name = name[:60]
	}
	name = strings.TrimRight(name, "-")
	if err := c.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
		t.Fatal(err)
	}
	return name
}

// eventually polls f until it returns nil or the timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, timeout, err)
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }
