// Package operator assembles the Kubernetes runtime: a controller-runtime
// manager with the reconcilers of internal/controller, the admission
// webhooks with self-managed certificates, leader election, /metrics with
// Stash's metrics, and /healthz and /readyz.
package operator

import (
	"context"
	"fmt"
	"net"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrlconfig "sigs.k8s.io/controller-runtime/pkg/config"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/controller"
	"github.com/stash-backup/stash/internal/controller/backupconfiguration"
	"github.com/stash-backup/stash/internal/controller/backupsession"
	"github.com/stash-backup/stash/internal/controller/grant"
	"github.com/stash-backup/stash/internal/controller/jobstate"
	"github.com/stash-backup/stash/internal/controller/rbac"
	repocontroller "github.com/stash-backup/stash/internal/controller/repository"
	"github.com/stash-backup/stash/internal/controller/restoresession"
	"github.com/stash-backup/stash/internal/controller/workload"
	"github.com/stash-backup/stash/internal/kube"
	"github.com/stash-backup/stash/internal/metrics"
	"github.com/stash-backup/stash/internal/metricsauth"
	"github.com/stash-backup/stash/internal/plan"
	"github.com/stash-backup/stash/internal/sidecar"
	stashwebhook "github.com/stash-backup/stash/internal/webhook"
)

// Options configure the operator.
type Options struct {
	// Image is the stash image the operator's Jobs and CronJobs run.
	Image plan.Image
	// MetricsAddr and ProbeAddr are listen addresses ("0" disables).
	MetricsAddr, ProbeAddr string
	// SecureMetrics serves /metrics over HTTPS, to clients that present a
	// Kubernetes token allowed to get the /metrics non-resource URL
	// (TokenReview and SubjectAccessReview against the API server).
	SecureMetrics  bool
	LeaderElection bool
	// Namespace is where the operator runs: the leader lease and the
	// webhook certificate Secret live there.
	Namespace string

	// PendingLimit is how long a step's pod may stay Pending or
	// uncreated before its session fails (0: the default).
	PendingLimit time.Duration
	// DefaultTimeout is the deadline of sessions whose invoker sets no
	// timeOut (0: the default).
	DefaultTimeout time.Duration

	// Webhooks enables the admission webhooks.
	Webhooks    bool
	WebhookHost string
	WebhookPort int
	CertDir     string
	// ServiceName is the operator's Service; the serving certificate is
	// issued for its DNS names.
	ServiceName string
	// ExtraIPs go into the serving certificate too (127.0.0.1 in tests).
	ExtraIPs []net.IP
	// ValidatingWebhook and MutatingWebhook name the webhook
	// configurations whose caBundle the operator keeps current.
	ValidatingWebhook, MutatingWebhook string
	// SidecarResources are the default resources of the backup sidecar
	// and restore init container (nil: the steps' default requests).
	SidecarResources *corev1.ResourceRequirements
	// Restartable lets one process build the manager more than once
	// (tests restart the operator); controller names are then not
	// checked for uniqueness.
	Restartable bool
}

// DefaultOptions are the flags' defaults.
func DefaultOptions() Options {
	return Options{
		Image: plan.DefaultImage, MetricsAddr: ":8080", ProbeAddr: ":8081", Namespace: "stash",
		PendingLimit: jobstate.DefaultPendingLimit, DefaultTimeout: plan.DefaultSessionTimeout,
		Webhooks: true, WebhookPort: 9443, CertDir: "/tmp/stash-webhook-certs", ServiceName: "stash-operator",
		ValidatingWebhook: "stash-validating-webhook", MutatingWebhook: "stash-mutating-webhook",
	}
}

func metricsOptions(o Options) metricsserver.Options {
	m := metricsserver.Options{BindAddress: o.MetricsAddr}
	if o.SecureMetrics {
		m.SecureServing = true
		m.FilterProvider = metricsauth.Provider
	}
	return m
}

// New builds the manager with everything registered; Start runs it.
func New(ctx context.Context, cfg *rest.Config, o Options) (manager.Manager, error) {
	scheme := kube.NewScheme()
	managed := labels.SelectorFromSet(labels.Set{rbac.LabelManagedBy: rbac.ManagedBy})
	hasSidecar, err := labels.Parse(plan.LabelInjected)
	if err != nil {
		return nil, err
	}
	mopts := ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOptions(o),
		HealthProbeBindAddress:  o.ProbeAddr,
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        "stash-operator-leader",
		LeaderElectionNamespace: o.Namespace,
		// A restarted or new leader derives every session's state from
		// its Jobs, so leadership can move at any time.
		LeaderElectionReleaseOnCancel: true,
		Controller:                    ctrlconfig.Controller{SkipNameValidation: &o.Restartable},
		Client: client.Options{Cache: &client.CacheOptions{
			// Secrets are read one by one when needed; caching every
			// Secret of the cluster would cost memory for nothing.
			DisableFor: []client.Object{&corev1.Secret{}},
		}},
		// The operator reads and changes only the RBAC objects it made:
		// caching only those keeps memory flat on large clusters, and a
		// user's object of a name it wants is never seen, so never
		// adopted (internal/controller/rbac refuses it).
		Cache: cache.Options{ByObject: map[client.Object]cache.ByObject{
			&rbacv1.Role{}:           {Label: managed},
			&rbacv1.RoleBinding{}:    {Label: managed},
			&corev1.ServiceAccount{}: {Label: managed},
			// Step pods, to see an eviction or a lost node at once.
			&corev1.Pod{}: {Label: managed},
			// Sidecar channels and Leases.
			&corev1.ConfigMap{}:     {Label: managed},
			&coordinationv1.Lease{}: {Label: managed},
			// Workloads the operator gave a sidecar; others are read
			// when a BackupConfiguration names them.
			&appsv1.Deployment{}:            {Label: hasSidecar},
			&appsv1.StatefulSet{}:           {Label: hasSidecar},
			&appsv1.DaemonSet{}:             {Label: hasSidecar},
			&appsv1.ReplicaSet{}:            {Label: hasSidecar},
			&corev1.ReplicationController{}: {Label: hasSidecar},
		}},
	}
	if o.Webhooks {
		mopts.WebhookServer = webhook.NewServer(webhook.Options{Host: o.WebhookHost, Port: o.WebhookPort, CertDir: o.CertDir})
	}
	mgr, err := ctrl.NewManager(cfg, mopts)
	if err != nil {
		return nil, fmt.Errorf("create manager: %w", err)
	}
	cat, err := catalog.Builtin()
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	if err := m.Register(ctrlmetrics.Registry); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	cc := controller.Config{Image: o.Image, SidecarResources: o.SidecarResources, Catalog: cat, PendingLimit: o.PendingLimit, DefaultTimeout: o.DefaultTimeout}
	c, api := mgr.GetClient(), mgr.GetAPIReader()
	if err := (&backupconfiguration.Reconciler{Client: c, APIReader: api, Config: cc, Events: mgr.GetEventRecorderFor(controller.SourceBackupConfiguration)}).SetupWithManager(mgr); err != nil { //nolint:staticcheck
		return nil, err
	}
	if err := (&backupsession.Reconciler{Client: c, APIReader: api, Config: cc, Metrics: m, Events: mgr.GetEventRecorderFor(controller.SourceBackupSession)}).SetupWithManager(mgr); err != nil { //nolint:staticcheck
		return nil, err
	}
	if err := (&restoresession.Reconciler{Client: c, APIReader: api, Config: cc, Metrics: m, Events: mgr.GetEventRecorderFor(controller.SourceRestoreSession)}).SetupWithManager(mgr); err != nil { //nolint:staticcheck
		return nil, err
	}
	if err := (&repocontroller.Reconciler{Client: c, APIReader: api, Config: cc, Metrics: m, Events: mgr.GetEventRecorderFor(controller.SourceRepository)}).SetupWithManager(mgr); err != nil { //nolint:staticcheck
		return nil, err
	}
	if err := (&grant.Reconciler{Client: c, APIReader: api}).SetupWithManager(mgr); err != nil {
		return nil, err
	}
	for _, kind := range sidecar.Kinds {
		if err := (&workload.Reconciler{Client: c, APIReader: api, Config: cc, Kind: kind}).SetupWithManager(mgr); err != nil {
			return nil, err
		}
	}
	if err := mgr.AddHealthzCheck("ping", healthz.Ping); err != nil {
		return nil, err
	}
	if !o.Webhooks {
		if err := mgr.AddReadyzCheck("ping", healthz.Ping); err != nil {
			return nil, err
		}
		return mgr, nil
	}

	// Webhooks: the certificate must exist before the server starts, so
	// it is issued with a direct client before the manager runs.
	direct, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	certs := &stashwebhook.Certs{
		Client: direct, Secret: client.ObjectKey{Namespace: o.Namespace, Name: o.ServiceName + "-webhook-cert"},
		DNSNames: []string{o.ServiceName, o.ServiceName + "." + o.Namespace, o.ServiceName + "." + o.Namespace + ".svc", o.ServiceName + "." + o.Namespace + ".svc.cluster.local"},
		IPs:      o.ExtraIPs, Dir: o.CertDir,
		Validating: o.ValidatingWebhook, Mutating: o.MutatingWebhook,
	}
	if err := certs.Ensure(ctx); err != nil {
		return nil, err
	}
	if err := mgr.Add(certs.Runnable(stashwebhook.Refresh)); err != nil {
		return nil, err
	}
	vr, vb, vs := stashwebhook.Validators(mgr.GetAPIReader(), cat)
	if err := ctrl.NewWebhookManagedBy(mgr, &stashv1alpha1.Repository{}).WithValidator(vr).Complete(); err != nil {
		return nil, err
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &stashv1beta1.BackupConfiguration{}).WithValidator(vb).WithDefaulter(stashwebhook.BackupConfigurationDefaulter{}).Complete(); err != nil {
		return nil, err
	}
	if err := ctrl.NewWebhookManagedBy(mgr, &stashv1beta1.RestoreSession{}).WithValidator(vs).WithDefaulter(stashwebhook.RestoreSessionDefaulter{}).Complete(); err != nil {
		return nil, err
	}
	mgr.GetWebhookServer().Register(stashwebhook.WorkloadPath, &webhook.Admission{Handler: stashwebhook.Workloads{
		Reader: mgr.GetAPIReader(), Injection: sidecar.Injection{Image: o.Image, Resources: o.SidecarResources}, Decoder: admission.NewDecoder(scheme),
	}})
	if err := mgr.AddReadyzCheck("webhook", mgr.GetWebhookServer().StartedChecker()); err != nil {
		return nil, err
	}
	return mgr, nil
}

// Run builds the manager and runs it until ctx ends.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	mgr, err := New(ctx, cfg, o)
	if err != nil {
		return err
	}
	return mgr.Start(ctx)
}
