package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/manifest"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/source"
)

// addonFlags are the flags of Stash's addon Functions, shared by every
// backup-* and restore-* step command.
type addonFlags struct {
	provider, bucket, endpoint, region, prefix string
	insecureTLS                                bool
	secretName, secretNamespace, secretDir     string
	scratchDir                                 string
	enableCache                                bool
	maxConnections                             int64
	hostname, sourceHostname                   string
	namespace                                  string
	appBinding, appBindingNamespace            string
	backupSession, snapshot                    string
	outputDir                                  string
	waitTimeout                                int
	licenseAPIService                          string
	retention                                  stashv1alpha1.RetentionPolicy
	// invokerKind and invokerName name the session's invoker, recorded on
	// the snapshot (invoker.go).
	invokerKind, invokerName string
	// warnings are what a restore step reports beside its result.
	warnings []string
	// Local runtime extensions.
	files      []string
	repository string
}

func (f *addonFlags) register(cmd *cobra.Command, restore bool) {
	fl := cmd.Flags()
	fl.StringVar(&f.provider, "provider", "", "backend: local, s3, gcs, azure, b2")
	fl.StringVar(&f.bucket, "bucket", "", "bucket or container (local: the repository directory)")
	fl.StringVar(&f.endpoint, "endpoint", "", "S3 endpoint")
	fl.StringVar(&f.region, "region", "", "S3 region")
	fl.StringVar(&f.prefix, "path", "", "prefix inside the bucket")
	fl.BoolVar(&f.insecureTLS, "insecure-tls", false, "skip TLS verification of the S3 endpoint")
	fl.StringVar(&f.secretName, "storage-secret-name", "", "Secret with RESTIC_PASSWORD and the backend's credentials")
	fl.StringVar(&f.secretNamespace, "storage-secret-namespace", "", "namespace of that Secret (default --namespace)")
	fl.StringVar(&f.secretDir, "secret-dir", "", "directory holding the storage Secret's keys as files (Stash 0.9 Functions)")
	fl.StringVar(&f.scratchDir, "scratch-dir", os.TempDir(), "scratch directory")
	fl.BoolVar(&f.enableCache, "enable-cache", true, "accepted for compatibility; the data mover keeps no local cache")
	fl.Int64Var(&f.maxConnections, "max-connections", 0, "concurrent connections to the backend (0: no limit)")
	fl.StringVar(&f.hostname, "hostname", "host-0", "Stash hostname of the snapshot")
	fl.StringVar(&f.namespace, "namespace", manifest.DefaultNamespace, "namespace of the session")
	fl.StringVar(&f.appBinding, "appbinding", "", "AppBinding of the database")
	fl.StringVar(&f.appBindingNamespace, "appbinding-namespace", "", "namespace of the AppBinding (default --namespace)")
	fl.StringVar(&f.outputDir, "output-dir", "", "write the result as output.json here (update-status reads it)")
	fl.IntVar(&f.waitTimeout, "wait-timeout", 300, "seconds to wait for the database to accept connections")
	fl.StringVar(&f.licenseAPIService, "license-apiservice", "", "accepted for compatibility; ignored")
	fl.StringSliceVarP(&f.files, "filename", "f", nil, "outside a cluster: manifests holding the AppBinding, Secrets and Repository")
	fl.StringVar(&f.repository, "repository", "", "take the backend from this Repository in the manifests instead of --provider/--bucket/…")
	if restore {
		fl.StringVar(&f.sourceHostname, "source-hostname", "", "restore the snapshots of this host (default --hostname)")
		fl.StringVar(&f.snapshot, "snapshot", "", "snapshot ID, or latest (default)")
		return
	}
	fl.StringVar(&f.backupSession, "backupsession", "", "BackupSession this backup belongs to (recorded as a tag)")
	fl.StringVar(&f.invokerKind, "invoker-kind", "", "kind of the session's invoker (default BackupConfiguration; recorded as a tag)")
	fl.StringVar(&f.invokerName, "invoker-name", "", "the session's invoker (default: read from the BackupSession; recorded as a tag, and retention counts its snapshots apart)")
	fl.Int64Var(&f.retention.KeepLast, "retention-keep-last", 0, "")
	fl.Int64Var(&f.retention.KeepHourly, "retention-keep-hourly", 0, "")
	fl.Int64Var(&f.retention.KeepDaily, "retention-keep-daily", 0, "")
	fl.Int64Var(&f.retention.KeepWeekly, "retention-keep-weekly", 0, "")
	fl.Int64Var(&f.retention.KeepMonthly, "retention-keep-monthly", 0, "")
	fl.Int64Var(&f.retention.KeepYearly, "retention-keep-yearly", 0, "")
	fl.StringSliceVar(&f.retention.KeepTags, "retention-keep-tags", nil, "")
	fl.BoolVar(&f.retention.Prune, "retention-prune", false, "")
	fl.BoolVar(&f.retention.DryRun, "retention-dry-run", false, "")
}

func (f *addonFlags) source() (source.Source, error) {
	if len(f.files) == 0 {
		if clusterAvailable() {
			c, err := clusterClient()
			if err != nil {
				return nil, err
			}
			return source.Kube{Reader: c}, nil
		}
		return nil, errors.New("no object source: outside a cluster pass -f with the manifests holding the AppBinding, Secrets and Repository")
	}
	set, err := manifest.Load(f.files...)
	if err != nil {
		return nil, err
	}
	return source.Manifests{Set: set}, nil
}

// backendFlagNames turns the Repository fields in a backend error into the
// flags they came from.
var backendFlagNames = strings.NewReplacer(
	"spec.backend.local.mountPath", "--bucket (with --provider=local)",
	"spec.backend.s3.endpoint", "--endpoint",
	"spec.backend.s3.bucket", "--bucket",
	"spec.backend.gcs.bucket", "--bucket",
	"spec.backend.azure.container", "--bucket",
	"spec.backend.b2.bucket", "--bucket",
	"spec.backend.s3", "--provider=s3 with --endpoint",
)

// checkCounts refuses negative counts, which would otherwise read as unset:
// a --retention-keep-last=-1 would keep nothing by it.
func (f *addonFlags) checkCounts() error {
	for _, c := range []struct {
		flag string
		n    int64
	}{
		{"--max-connections", f.maxConnections},
		{"--retention-keep-last", f.retention.KeepLast},
		{"--retention-keep-hourly", f.retention.KeepHourly},
		{"--retention-keep-daily", f.retention.KeepDaily},
		{"--retention-keep-weekly", f.retention.KeepWeekly},
		{"--retention-keep-monthly", f.retention.KeepMonthly},
		{"--retention-keep-yearly", f.retention.KeepYearly},
		{"--wait-timeout", int64(f.waitTimeout)},
	} {
		if c.n < 0 {
			return fmt.Errorf("%s=%d: must be 0 or more", c.flag, c.n)
		}
	}
	return nil
}

// defaultHost makes an empty --hostname host-0, the job model's host, as
// the Functions pass it (--hostname=${HOSTNAME:=}): a backup needs a host,
// and a restore filtering on an empty one would match every host's
// snapshots.
func (f *addonFlags) defaultHost() {
	if f.hostname == "" {
		f.hostname = "host-0"
	}
}

func orStr(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

// openRepository builds the repository from the Function's flags (or a
// named Repository) and the storage Secret.
func (f *addonFlags) openRepository(ctx context.Context, src source.Source) (*repository.Repository, error) {
	var backend stashv1alpha1.Backend
	if f.repository != "" {
		r, err := src.Repository(ctx, f.namespace, f.repository)
		if err != nil {
			return nil, err
		}
		backend = r.Spec.Backend
		if f.secretName == "" {
			f.secretName, f.secretNamespace = backend.StorageSecretName, r.Namespace
		}
	} else {
		switch f.provider {
		case "local":
			// Stash's local repository is <bucket>/<path>: two databases
			// with their own --path must not share one repository.
			if slices.Contains(strings.Split(filepath.ToSlash(f.prefix), "/"), "..") {
				return nil, fmt.Errorf("--path %q: must stay inside --bucket (no \"..\")", f.prefix)
			}
			backend.Local = &stashv1alpha1.LocalSpec{MountPath: filepath.Join(f.bucket, f.prefix)}
		case "s3":
			backend.S3 = &stashv1alpha1.S3Spec{Endpoint: f.endpoint, Bucket: f.bucket, Prefix: f.prefix, Region: f.region, InsecureTLS: f.insecureTLS}
		case "gcs":
			backend.GCS = &stashv1alpha1.GCSSpec{Bucket: f.bucket, Prefix: f.prefix, MaxConnections: f.maxConnections}
		case "azure":
			backend.Azure = &stashv1alpha1.AzureSpec{Container: f.bucket, Prefix: f.prefix, MaxConnections: f.maxConnections}
		case "b2":
			backend.B2 = &stashv1alpha1.B2Spec{Bucket: f.bucket, Prefix: f.prefix, MaxConnections: f.maxConnections}
		case "":
			return nil, errors.New("--provider is empty: give the repository backend (local, s3, gcs, azure, b2) or --repository NAME")
		default:
			return nil, fmt.Errorf("--provider %q is not supported: use local, s3, gcs, azure or b2", f.provider)
		}
	}
	secret, err := f.storageSecret(ctx, src)
	if err != nil {
		return nil, err
	}
	loc, err := repository.ResolveLocation(backend, secret)
	if err != nil {
		if f.repository == "" {
			// The backend came from flags: name them, not the
			// Repository's fields the message speaks of.
			return nil, errors.New(backendFlagNames.Replace(err.Error()))
		}
		return nil, err
	}
	pw, err := repository.Password(secret)
	if err != nil {
		return nil, err
	}
	return repository.OpenOrInit(ctx, repository.Options{Location: loc, Password: pw})
}

func (f *addonFlags) storageSecret(ctx context.Context, src source.Source) (map[string][]byte, error) {
	if f.secretName != "" {
		return src.SecretData(ctx, orStr(f.secretNamespace, f.namespace), f.secretName)
	}
	if f.secretDir != "" {
		entries, err := os.ReadDir(f.secretDir)
		if err != nil {
			return nil, fmt.Errorf("--secret-dir: %w", err)
		}
		data := map[string][]byte{}
		for _, e := range entries {
			if e.IsDir() || strings.HasPrefix(e.Name(), ".") {
				continue
			}
			b, err := os.ReadFile(filepath.Join(f.secretDir, e.Name()))
			if err != nil {
				return nil, err
			}
			data[e.Name()] = b
		}
		return data, nil
	}
	return nil, errors.New("no storage Secret: pass --storage-secret-name (or --secret-dir)")
}

// Output is output.json: what a step reports to update-status.
type Output struct {
	HostBackupStats  []stashv1beta1.HostBackupStats  `json:"hostBackupStats,omitempty"`
	HostRestoreStats []stashv1beta1.HostRestoreStats `json:"hostRestoreStats,omitempty"`
	// Retention is what the --retention-* flags did after the backup;
	// absent when they set no policy.
	Retention *RetentionOutput `json:"retention,omitempty"`
	// Warnings are things the step did that the user may not expect
	// (a "latest" that matched several invokers' snapshots); update-status
	// turns them into conditions and events.
	Warnings []string `json:"warnings,omitempty"`
}

// RetentionOutput is the outcome of a backup step's retention policy. A
// failure here does not fail the backup, whose snapshot is committed;
// update-status turns it into RetentionPolicyApplied=False.
type RetentionOutput struct {
	// SnapshotsRemoved counts the snapshots forgotten, or on a dry run
	// those that would have been.
	SnapshotsRemoved int    `json:"snapshotsRemoved"`
	DryRun           bool   `json:"dryRun,omitempty"`
	Pruned           bool   `json:"pruned,omitempty"`
	Error            string `json:"error,omitempty"`
}

// OutputFile is the name of a step's result in --output-dir.
const OutputFile = "output.json"

func writeOutput(dir string, out Output) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("--output-dir: %w", err)
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, OutputFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, OutputFile))
}

func toAPIStats(s repository.SnapshotStats) stashv1beta1.SnapshotStats {
	return stashv1beta1.SnapshotStats{
		Name: s.Name, Path: s.Path, TotalSize: s.TotalSize, Uploaded: s.Uploaded, ProcessingTime: s.ProcessingTime,
		FileStats: stashv1beta1.FileStats{TotalFiles: s.FileStats.TotalFiles, NewFiles: s.FileStats.NewFiles,
			ModifiedFiles: s.FileStats.ModifiedFiles, UnmodifiedFiles: s.FileStats.UnmodifiedFiles},
	}
}

// finishBackup reports a backup's result and what retention did after it
// (ret; nil without a policy). With --output-dir the result, success or
// failure, goes to output.json and the step succeeds, so that
// update-status (the next step) records it, as in Stash; without, a
// failure, of the backup or of its retention, is the exit status.
func (f *addonFlags) finishBackup(start time.Time, stats []repository.SnapshotStats, ret *RetentionOutput, err error) error {
	hs := stashv1beta1.HostBackupStats{Hostname: f.hostname, Duration: time.Since(start).Round(time.Millisecond).String()}
	if err != nil {
		hs.Phase, hs.Error = "Failed", err.Error()
	} else {
		hs.Phase = "Succeeded"
		for _, s := range stats {
			hs.Snapshots = append(hs.Snapshots, toAPIStats(s))
		}
	}
	var retErr error
	if ret != nil && ret.Error != "" {
		retErr = fmt.Errorf("the backup succeeded, its retention policy failed: %s", ret.Error)
	}
	if f.outputDir != "" {
		if werr := writeOutput(f.outputDir, Output{HostBackupStats: []stashv1beta1.HostBackupStats{hs}, Retention: ret}); werr != nil {
			return errors.Join(err, werr)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "stash: backup failed (recorded in output.json):", err)
		}
		if retErr != nil {
			fmt.Fprintln(os.Stderr, "stash:", retErr, "(recorded in output.json)")
		}
		return nil
	}
	if err != nil {
		return err
	}
	if werr := writeJSON(stdout, hs); werr != nil {
		return werr
	}
	return retErr
}

func (f *addonFlags) finishRestore(start time.Time, err error) error {
	hs := stashv1beta1.HostRestoreStats{Hostname: f.hostname, Duration: time.Since(start).Round(time.Millisecond).String(), Phase: "Succeeded"}
	if err != nil {
		hs.Phase, hs.Error = "Failed", err.Error()
	}
	if f.outputDir != "" {
		if werr := writeOutput(f.outputDir, Output{HostRestoreStats: []stashv1beta1.HostRestoreStats{hs}, Warnings: f.warnings}); werr != nil {
			return errors.Join(err, werr)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "stash: restore failed (recorded in output.json):", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	return writeJSON(stdout, hs)
}

// applyRetention forgets (and prunes) this host's snapshots of paths by
// the --retention-* flags, after a successful backup. It returns nil when
// the flags set no policy; an error is in the result, not returned: the
// backup's snapshot is committed whatever retention does.
//
// Only inv's snapshots are decided: another BackupConfiguration writing
// the same host and path into the Repository keeps its own, by its own
// policy. The snapshots just taken (taken) are always kept, which matters
// to a policy of keepTags alone.
func (f *addonFlags) applyRetention(ctx context.Context, r *repository.Repository, inv repository.Invoker, taken []string, paths ...string) *RetentionOutput {
	p := repository.PolicyFromAPI(f.retention)
	if p.Empty() {
		maintain(ctx, r)
		return nil
	}
	p.KeepIDs = taken
	out := &RetentionOutput{DryRun: f.retention.DryRun}
	for _, path := range paths {
		res, err := r.Forget(ctx, p, repository.Filter{Host: f.hostname, Path: path, Invoker: &inv}, f.retention.DryRun)
		if err != nil {
			out.Error = fmt.Sprintf("apply retention policy to %s: %v", path, err)
			return out
		}
		out.SnapshotsRemoved += res.Removed
		if res.DryRun {
			// A dry run is for reading what would go.
			for _, g := range res.Groups {
				for _, d := range g.Decisions {
					if !d.Keep {
						fmt.Fprintf(os.Stderr, "stash: retention dry run: would forget snapshot %s of %s (%s)\n",
							d.Snapshot.ShortID(), path, d.Snapshot.Time.Format(time.RFC3339))
					}
				}
			}
		}
	}
	if f.retention.Prune && !f.retention.DryRun {
		if _, err := r.Prune(ctx); err != nil {
			out.Error = fmt.Sprintf("prune: %v", err)
			return out
		}
		out.Pruned = true
	} else if !f.retention.DryRun {
		maintain(ctx, r)
	}
	return out
}

// maintain runs kopia's safe maintenance when it is due, for repositories
// that never prune. The snapshot is already committed: a failure is a
// warning, and the next backup tries again.
func maintain(ctx context.Context, r *repository.Repository) {
	if _, err := r.Maintain(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "stash: warning: repository maintenance: %v (the backup is committed; the next backup retries)\n", err)
	}
}

func splitArgs(s string) []string { return strings.Fields(s) }

// driver is what the step commands need from a database driver.
type driver struct {
	dumpFile string
	wait     func(ctx context.Context, timeout time.Duration) error
	// backup starts the dump at once and takes the repository from repo
	// when it is open.
	backup  func(ctx context.Context, repo dump.Repo, bo repository.BackupOptions) (*repository.SnapshotStats, error)
	restore func(ctx context.Context, r *repository.Repository, s repository.Snapshot) error
}

// runBackup is the body of every backup-* step: find the objects, dump into
// the repository (waiting for the database only if the dump could not
// reach it), apply retention, report.
func (f *addonFlags) runBackup(ctx context.Context, prepare func(context.Context, source.Source) (driver, error)) error {
	start := time.Now()
	f.defaultHost()
	var ret *RetentionOutput
	stats, err := func() ([]repository.SnapshotStats, error) {
		if err := f.checkCounts(); err != nil {
			return nil, err
		}
		src, err := f.source()
		if err != nil {
			return nil, err
		}
		d, err := prepare(ctx, src)
		if err != nil {
			return nil, err
		}
		// The dump asks for the repository once the tool has started,
		// and it opens (key derivation) while the tool dumps.
		opening := dump.NewOpenOnce(func() (*repository.Repository, error) { return f.openRepository(ctx, src) })
		defer func() { _ = opening.Close(ctx) }()
		inv := f.invoker(ctx, src)
		tags := inv.Tags()
		if tags == nil {
			tags = map[string]string{}
		}
		tags["appbinding"] = f.appBinding
		if f.backupSession != "" {
			tags["backup-session"] = f.backupSession
		}
		st, err := dump.BackupWhenReady(ctx,
			func(ctx context.Context) error { return d.wait(ctx, time.Duration(f.waitTimeout)*time.Second) },
			func(ctx context.Context) (*repository.SnapshotStats, error) {
				return d.backup(ctx, opening.Get, repository.BackupOptions{Host: f.hostname, Tags: tags})
			})
		if err != nil {
			return nil, err
		}
		r, err := opening.Get()
		if err != nil {
			return nil, err
		}
		ret = f.applyRetention(ctx, r, inv, []string{st.Name}, d.dumpFile)
		return []repository.SnapshotStats{*st}, nil
	}()
	return f.finishBackup(start, stats, ret, err)
}

// pendingRepo is a repository opening in the background.
type pendingRepo struct {
	done chan struct{}
	r    *repository.Repository
	err  error
}

// startOpen opens the repository on a goroutine: opening derives the key
// (scrypt, a few hundred milliseconds), which need not wait for the
// database server or hold up the dump.
func (f *addonFlags) startOpen(ctx context.Context, src source.Source) *pendingRepo {
	p := &pendingRepo{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.r, p.err = f.openRepository(ctx, src)
	}()
	return p
}

// get waits for the repository to be open.
func (p *pendingRepo) get() (*repository.Repository, error) {
	<-p.done
	return p.r, p.err
}

// close waits for the open to finish and closes what it opened.
func (p *pendingRepo) close(ctx context.Context) {
	if r, err := p.get(); err == nil {
		_ = r.Close(ctx)
	}
}

// openWhileWaiting opens the repository while the database server comes
// up: both take time, and neither needs the other.
func (f *addonFlags) openWhileWaiting(ctx context.Context, src source.Source, d driver) (*repository.Repository, error) {
	opening := f.startOpen(ctx, src)
	if err := d.wait(ctx, time.Duration(f.waitTimeout)*time.Second); err != nil {
		opening.close(ctx)
		return nil, err
	}
	return opening.get()
}

// runRestore is the body of every restore-* step.
func (f *addonFlags) runRestore(ctx context.Context, prepare func(context.Context, source.Source) (driver, error)) error {
	start := time.Now()
	f.defaultHost()
	err := func() error {
		if err := f.checkCounts(); err != nil {
			return err
		}
		if strings.Contains(f.snapshot, ",") {
			// A restore rule's snapshots arrive joined by commas.
			return fmt.Errorf("--snapshot %q names several snapshots: a database restore takes one dump, give one snapshot ID or latest", f.snapshot)
		}
		src, err := f.source()
		if err != nil {
			return err
		}
		d, err := prepare(ctx, src)
		if err != nil {
			return err
		}
		r, err := f.openWhileWaiting(ctx, src, d)
		if err != nil {
			return err
		}
		defer r.Close(ctx) //nolint:errcheck
		filter := repository.Filter{Host: orStr(f.sourceHostname, f.hostname), Path: d.dumpFile}
		if f.snapshot != "" && f.snapshot != repository.Latest {
			// An ID names one snapshot, whichever host took it, as
			// Stash's restic dump <id> does.
			filter.Host = ""
		}
		s, err := r.Resolve(ctx, f.snapshot, filter)
		if err != nil {
			return err
		}
		if f.snapshot == "" || f.snapshot == repository.Latest {
			f.warnLatest(ctx, r, filter, s)
		}
		return d.restore(ctx, r, s)
	}()
	return f.finishRestore(start, err)
}
