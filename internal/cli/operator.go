package cli

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/config"

	"github.com/stash-backup/stash/internal/operator"
	"github.com/stash-backup/stash/internal/plan"
)

func newOperatorCommand() *cobra.Command {
	o := operator.DefaultOptions()
	var image, sidecarResources string
	var extraIPs []string
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Run the Kubernetes operator (controllers and admission webhooks)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctrl.SetLogger(logr.FromSlogHandler(slog.NewJSONHandler(os.Stderr, nil)))
			img, err := parseImage(image)
			if err != nil {
				return err
			}
			o.Image = img
			if sidecarResources != "" {
				var rr corev1.ResourceRequirements
				if err := json.Unmarshal([]byte(sidecarResources), &rr); err != nil {
					return fmt.Errorf(`--sidecar-resources %q: %w (give JSON such as {"requests":{"cpu":"50m","memory":"128Mi"},"limits":{"memory":"512Mi"}})`, sidecarResources, err)
				}
				o.SidecarResources = &rr
			}
			for _, s := range extraIPs {
				ip := net.ParseIP(s)
				if ip == nil {
					return fmt.Errorf("--webhook-cert-ip %q is not an IP address", s)
				}
				o.ExtraIPs = append(o.ExtraIPs, ip)
			}
			if kubeconfig != "" {
				if err := os.Setenv("KUBECONFIG", kubeconfig); err != nil {
					return err
				}
			}
			cfg, err := config.GetConfig()
			if err != nil {
				return fmt.Errorf("connect to Kubernetes: %w", err)
			}
			return operator.Run(cmd.Context(), cfg, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&image, "image", envOr("STASH_IMAGE", plan.DefaultImage.String()), "stash image for Jobs and CronJobs (registry/name:tag)")
	fl.StringVar(&o.MetricsAddr, "metrics-bind-address", o.MetricsAddr, "address of /metrics (0 disables)")
	fl.BoolVar(&o.SecureMetrics, "metrics-secure", false, "serve /metrics over HTTPS to clients whose Kubernetes token may get the /metrics URL (the Helm chart turns this on)")
	fl.StringVar(&o.ProbeAddr, "health-probe-bind-address", o.ProbeAddr, "address of /healthz and /readyz")
	fl.BoolVar(&o.LeaderElection, "leader-elect", false, "elect a leader, for more than one replica")
	fl.StringVar(&o.Namespace, "namespace", envOr("POD_NAMESPACE", o.Namespace), "the operator's namespace (leader lease, webhook certificate)")
	fl.DurationVar(&o.PendingLimit, "pending-timeout", o.PendingLimit, "how long a step's pod may stay Pending (unschedulable, waiting for a volume) or uncreated before its session fails")
	fl.DurationVar(&o.DefaultTimeout, "default-session-timeout", o.DefaultTimeout, "deadline of sessions whose invoker sets no spec.timeOut")
	fl.BoolVar(&o.Webhooks, "enable-webhooks", o.Webhooks, "serve the admission webhooks")
	fl.IntVar(&o.WebhookPort, "webhook-port", o.WebhookPort, "port of the webhook server")
	fl.StringVar(&o.WebhookHost, "webhook-host", "", "address the webhook server listens on (default all)")
	fl.StringVar(&o.CertDir, "webhook-cert-dir", o.CertDir, "where the serving certificate is written")
	fl.StringVar(&o.ServiceName, "service-name", o.ServiceName, "the operator's Service (names in the serving certificate)")
	fl.StringSliceVar(&extraIPs, "webhook-cert-ip", nil, "extra IP addresses for the serving certificate")
	fl.StringVar(&o.ValidatingWebhook, "validating-webhook", o.ValidatingWebhook, "ValidatingWebhookConfiguration whose caBundle the operator keeps current")
	fl.StringVar(&sidecarResources, "sidecar-resources", "", "default resources of the backup sidecar and restore init container, as JSON (a BackupConfiguration's runtimeSettings.container.resources still win)")
	fl.StringVar(&o.MutatingWebhook, "mutating-webhook", o.MutatingWebhook, "MutatingWebhookConfiguration whose caBundle the operator keeps current")
	return cmd
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}
