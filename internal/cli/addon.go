package cli

import (
	"context"
	"errors"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/builtin"
	"github.com/stash-backup/stash/internal/manifest"
	"github.com/stash-backup/stash/internal/source"
	"github.com/stash-backup/stash/internal/step"
)

// stepFlags are the flags of Stash's addon Functions, shared by every
// backup-* and restore-* step command; they fill step.Options.
type stepFlags struct {
	o step.Options
	// files are the manifests outside a cluster (the local runtime).
	files []string
}

func (f *stepFlags) register(cmd *cobra.Command, restore bool) {
	o := &f.o
	fl := cmd.Flags()
	registerBackendFlags(fl, o)
	fl.StringVar(&o.SecretDir, "secret-dir", "", "directory holding the storage Secret's keys as files (Stash 0.9 Functions)")
	fl.StringVar(&o.ScratchDir, "scratch-dir", os.TempDir(), "scratch directory")
	fl.Bool("enable-cache", true, "accepted for compatibility; the data mover keeps no local cache")
	fl.StringVar(&o.Hostname, "hostname", "host-0", "Stash hostname of the snapshot")
	fl.StringVar(&o.Namespace, "namespace", manifest.DefaultNamespace, "namespace of the session")
	fl.StringVar(&o.AppBinding, "appbinding", "", "AppBinding of the database")
	fl.StringVar(&o.AppBindingNamespace, "appbinding-namespace", "", "namespace of the AppBinding (default --namespace)")
	fl.StringVar(&o.OutputDir, "output-dir", "", "write the result as output.json here (update-status reads it)")
	fl.IntVar(&o.WaitTimeout, "wait-timeout", 300, "seconds to wait for the database to accept connections")
	fl.String("license-apiservice", "", "accepted for compatibility; ignored")
	fl.StringSliceVarP(&f.files, "filename", "f", nil, "outside a cluster: manifests holding the AppBinding, Secrets and Repository")
	fl.StringVar(&o.Repository, "repository", "", "take the backend from this Repository in the manifests instead of --provider/--bucket/…")
	if restore {
		fl.StringVar(&o.SourceHostname, "source-hostname", "", "restore the snapshots of this host (default --hostname)")
		fl.StringVar(&o.Snapshot, "snapshot", "", "snapshot ID, or latest (default)")
		return
	}
	fl.StringVar(&o.BackupSession, "backupsession", "", "BackupSession this backup belongs to (recorded as a tag)")
	fl.StringVar(&o.InvokerKind, "invoker-kind", "", "kind of the session's invoker (default BackupConfiguration; recorded as a tag)")
	fl.StringVar(&o.InvokerName, "invoker-name", "", "the session's invoker (default: read from the BackupSession; recorded as a tag, and retention counts its snapshots apart)")
	r := &o.Retention
	fl.Int64Var(&r.KeepLast, "retention-keep-last", 0, "")
	fl.Int64Var(&r.KeepHourly, "retention-keep-hourly", 0, "")
	fl.Int64Var(&r.KeepDaily, "retention-keep-daily", 0, "")
	fl.Int64Var(&r.KeepWeekly, "retention-keep-weekly", 0, "")
	fl.Int64Var(&r.KeepMonthly, "retention-keep-monthly", 0, "")
	fl.Int64Var(&r.KeepYearly, "retention-keep-yearly", 0, "")
	fl.StringSliceVar(&r.KeepTags, "retention-keep-tags", nil, "")
	fl.BoolVar(&r.Prune, "retention-prune", false, "")
	fl.BoolVar(&r.DryRun, "retention-dry-run", false, "")
}

// registerBackendFlags registers the flags of Stash's Functions that name
// the repository's backend and storage Secret.
func registerBackendFlags(fl *pflag.FlagSet, o *step.Options) {
	fl.StringVar(&o.Provider, "provider", "", "backend: local, s3, gcs, azure, b2")
	fl.StringVar(&o.Bucket, "bucket", "", "bucket or container (local: the repository directory)")
	fl.StringVar(&o.Endpoint, "endpoint", "", "S3 endpoint")
	fl.StringVar(&o.Region, "region", "", "S3 region")
	fl.StringVar(&o.Prefix, "path", "", "prefix inside the bucket")
	fl.BoolVar(&o.InsecureTLS, "insecure-tls", false, "skip TLS verification of the S3 endpoint")
	fl.StringVar(&o.SecretName, "storage-secret-name", "", "Secret with RESTIC_PASSWORD and the backend's credentials")
	fl.StringVar(&o.SecretNamespace, "storage-secret-namespace", "", "namespace of that Secret (default --namespace)")
	fl.Int64Var(&o.MaxConnections, "max-connections", 0, "concurrent connections to the backend (0: no limit)")
}

// options are the step's options, finding objects in the manifests of -f
// or else in the cluster.
func (f *stepFlags) options() step.Options {
	o := f.o
	o.Stdout = stdout
	o.Source = func() (source.Source, error) {
		if len(f.files) == 0 {
			if clusterAvailable() {
				c, err := clusterClient()
				if err != nil {
					return nil, err
				}
				return source.Kube{Reader: c}, nil
			}
			return nil, errNoSource
		}
		set, err := manifest.Load(f.files...)
		if err != nil {
			return nil, err
		}
		return source.Manifests{Set: set}, nil
	}
	return o
}

var errNoSource = errors.New("no object source: outside a cluster pass -f with the manifests holding the AppBinding, Secrets and Repository")

// driverCommands are the backup-<name> and restore-<name> commands of
// every built-in driver.
func driverCommands() []*cobra.Command {
	var out []*cobra.Command
	for _, reg := range builtin.Drivers() {
		out = append(out,
			driverCommand(reg, false, reg.BackupShort, reg.BackupFlags, step.Backup),
			driverCommand(reg, true, reg.RestoreShort, reg.RestoreFlags, step.Restore))
	}
	return out
}

func driverCommand(reg addon.Registration, restore bool, short string, flags []addon.Flag,
	run func(context.Context, step.Options, addon.Registration, map[string]string) error) *cobra.Command {
	f := &stepFlags{}
	values := make(map[string]*string, len(flags))
	use := "backup-" + reg.Name
	if restore {
		use = "restore-" + reg.Name
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			own := make(map[string]string, len(values))
			for n, v := range values {
				own[n] = *v
			}
			return run(cmd.Context(), f.options(), reg, own)
		},
	}
	f.register(cmd, restore)
	for _, fl := range flags {
		values[fl.Name] = cmd.Flags().String(fl.Name, fl.Default, fl.Usage)
	}
	return cmd
}

// splitList splits Stash's comma-separated Function parameters.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
