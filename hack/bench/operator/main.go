// Command operator measures the Stash operator at scale: it starts a real
// kube-apiserver and etcd (bin/kube, as the controller tests), runs the
// `stash operator` binary against it with its webhooks, creates N
// BackupConfigurations (with their Repository, Secret and AppBinding),
// and reports how long until every one is Ready with its CronJob, and the
// operator's peak RSS.
//
//	go run ./hack/bench/operator -n 1000 -stash bin/stash
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	appcatalogv1alpha1 "github.com/stash-backup/stash/api/appcatalog/v1alpha1"
	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/testserver"
)

func main() {
	n := flag.Int("n", 1000, "BackupConfigurations to create")
	stash := flag.String("stash", "bin/stash", "the stash binary")
	flag.Parse()
	if err := run(*n, *stash); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// peakRSS reads VmHWM (peak resident set) of a process, in KiB.
func peakRSS(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			v, _ := strconv.Atoi(f[1])
			return v
		}
	}
	return 0
}

func run(n int, stash string) error {
	ctx := context.Background()
	api, err := testserver.StartKubeAPI()
	if err != nil {
		return err
	}
	defer api.Stop() //nolint:errcheck
	dir, err := os.MkdirTemp("", "stash-bench-operator-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	kc := filepath.Join(dir, "kubeconfig")
	if err := api.WriteKubeconfig(kc); err != nil {
		return err
	}
	c, err := client.New(api.Config, client.Options{Scheme: kube.NewScheme()})
	if err != nil {
		return err
	}
	for _, ns := range []string{"stash", "bench"} {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return err
		}
	}
	port := freePort()
	if err := testserver.InstallWebhooks(ctx, c, port); err != nil {
		return err
	}
	probe := "127.0.0.1:" + strconv.Itoa(freePort())
	op := exec.Command(stash, "operator", "--kubeconfig", kc, "--namespace", "stash", "--image", "localhost/stash:bench",
		"--webhook-host", "127.0.0.1", "--webhook-port", strconv.Itoa(port), "--webhook-cert-ip", "127.0.0.1",
		"--webhook-cert-dir", filepath.Join(dir, "certs"), "--metrics-bind-address", "127.0.0.1:"+strconv.Itoa(freePort()),
		"--health-probe-bind-address", probe)
	var logs bytes.Buffer
	op.Stdout, op.Stderr = &logs, &logs
	if err := op.Start(); err != nil {
		return err
	}
	defer func() { _ = op.Process.Kill(); _ = op.Wait() }()
	if err := waitReady(probe, 60*time.Second); err != nil {
		return fmt.Errorf("%w\n%s", err, logs.String())
	}
	idle := peakRSS(op.Process.Pid)

	fixtures := []client.Object{
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s3", Namespace: "bench"}, StringData: map[string]string{"RESTIC_PASSWORD": "x", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pg-auth", Namespace: "bench"}, StringData: map[string]string{"username": "u", "password": "p"}},
		&stashv1alpha1.Repository{ObjectMeta: metav1.ObjectMeta{Name: "repo", Namespace: "bench"}, Spec: stashv1alpha1.RepositorySpec{Backend: stashv1alpha1.Backend{
			S3: &stashv1alpha1.S3Spec{Endpoint: "http://127.0.0.1:9", Bucket: "b"}, StorageSecretName: "s3"}}},
		&appcatalogv1alpha1.AppBinding{ObjectMeta: metav1.ObjectMeta{Name: "pg", Namespace: "bench"}, Spec: appcatalogv1alpha1.AppBindingSpec{
			Type: "kubedb.com/postgres", Version: "14.0", Secret: &appcatalogv1alpha1.TypedLocalObjectReference{Name: "pg-auth"},
			ClientConfig: appcatalogv1alpha1.ClientConfig{Service: &appcatalogv1alpha1.ServiceReference{Name: "pg", Port: 5432, Scheme: "postgresql"}}}},
	}
	for _, o := range fixtures {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("create %s: %w", o.GetName(), err)
		}
	}

	start := time.Now()
	var created atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				bc := &stashv1beta1.BackupConfiguration{
					ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bc-%04d", i), Namespace: "bench"},
					Spec: stashv1beta1.BackupConfigurationSpec{
						Schedule:   fmt.Sprintf("%d * * * *", i%60),
						Repository: stashv1beta1.ObjectReference{Name: "repo"},
						BackupConfigurationTemplateSpec: stashv1beta1.BackupConfigurationTemplateSpec{
							Task:   stashv1beta1.TaskRef{Name: "postgres-backup-14.0"},
							Target: &stashv1beta1.BackupTarget{Ref: stashv1beta1.TargetRef{APIVersion: "appcatalog.appscode.com/v1alpha1", Kind: "AppBinding", Name: "pg"}},
						},
						RetentionPolicy: stashv1alpha1.RetentionPolicy{Name: "keep-5", KeepLast: 5},
					},
				}
				if err := c.Create(ctx, bc); err != nil {
					errs <- err
					return
				}
				created.Add(1)
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return fmt.Errorf("create BackupConfigurations: %w", err)
	}
	createdIn := time.Since(start)

	deadline := time.Now().Add(10 * time.Minute)
	var ready, cronjobs int
	for time.Now().Before(deadline) {
		var list stashv1beta1.BackupConfigurationList
		if err := c.List(ctx, &list, client.InNamespace("bench")); err != nil {
			return err
		}
		ready = 0
		for _, bc := range list.Items {
			if bc.Status.Phase == stashv1beta1.InvokerReady {
				ready++
			}
		}
		var cjs batchv1.CronJobList
		if err := c.List(ctx, &cjs, client.InNamespace("bench")); err != nil {
			return err
		}
		cronjobs = len(cjs.Items)
		if ready == n && cronjobs == n {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	allReady := time.Since(start)
	time.Sleep(5 * time.Second) // let the operator settle, then read its peak
	peak := peakRSS(op.Process.Pid)
	fmt.Printf("BackupConfigurations: %d created in %s (admission webhooks on)\n", created.Load(), createdIn.Round(time.Millisecond))
	fmt.Printf("Ready with CronJob:   %d/%d, %d CronJobs, all within %s of the first create\n", ready, n, cronjobs, allReady.Round(time.Millisecond))
	fmt.Printf("operator peak RSS:    %d MiB (idle before the load: %d MiB)\n", peak/1024, idle/1024)
	if ready != n || cronjobs != n {
		return fmt.Errorf("only %d of %d Ready", ready, n)
	}
	return nil
}

func waitReady(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("operator not ready within %s", d)
}
