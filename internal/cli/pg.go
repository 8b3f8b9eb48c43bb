package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/stash-backup/stash/internal/addon/postgres"
	"github.com/stash-backup/stash/internal/appbinding"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/source"
)

func newBackupPGCommand() *cobra.Command {
	f := &addonFlags{}
	var backupCmd, pgArgs, user string
	cmd := &cobra.Command{
		Use:   "backup-pg",
		Short: "Back up a PostgreSQL database named by an AppBinding (the postgres-backup-* Function)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			start := time.Now()
			stats, err := func() ([]repository.SnapshotStats, error) {
				src, err := f.source()
				if err != nil {
					return nil, err
				}
				o, err := pgOptions(cmd, f, src, user)
				if err != nil {
					return nil, err
				}
				o.BackupCmd, o.Args = backupCmd, splitArgs(pgArgs)
				if err := postgres.Wait(ctx, o, time.Duration(f.waitTimeout)*time.Second); err != nil {
					return nil, err
				}
				r, err := f.openRepository(ctx, src)
				if err != nil {
					return nil, err
				}
				defer r.Close(ctx) //nolint:errcheck
				tags := map[string]string{"appbinding": f.appBinding}
				if f.backupSession != "" {
					tags["backup-session"] = f.backupSession
				}
				st, err := postgres.Backup(ctx, r, o, repository.BackupOptions{Host: f.hostname, Tags: tags})
				if err != nil {
					return nil, err
				}
				if err := f.applyRetention(ctx, r, postgres.DumpFile); err != nil {
					return nil, err
				}
				return []repository.SnapshotStats{*st}, nil
			}()
			return f.finishBackup(start, stats, err)
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&backupCmd, "backup-cmd", "pg_dumpall", "pg_dumpall or pg_dump")
	cmd.Flags().StringVar(&pgArgs, "pg-args", "", "extra arguments for the dump tool")
	cmd.Flags().StringVar(&user, "user", "", "database user (default: the AppBinding Secret's username)")
	return cmd
}

func newRestorePGCommand() *cobra.Command {
	f := &addonFlags{}
	var pgArgs, user string
	cmd := &cobra.Command{
		Use:   "restore-pg",
		Short: "Restore a PostgreSQL dump into the database named by an AppBinding (the postgres-restore-* Function)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			start := time.Now()
			err := func() error {
				src, err := f.source()
				if err != nil {
					return err
				}
				o, err := pgOptions(cmd, f, src, user)
				if err != nil {
					return err
				}
				o.Args = splitArgs(pgArgs)
				if err := postgres.Wait(ctx, o, time.Duration(f.waitTimeout)*time.Second); err != nil {
					return err
				}
				r, err := f.openRepository(ctx, src)
				if err != nil {
					return err
				}
				defer r.Close(ctx) //nolint:errcheck
				s, err := r.Resolve(ctx, f.snapshot, repository.Filter{Host: orStr(f.sourceHostname, f.hostname), Path: postgres.DumpFile})
				if err != nil {
					return err
				}
				return postgres.Restore(ctx, r, s, o)
			}()
			return f.finishRestore(start, err)
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&pgArgs, "pg-args", "", "extra arguments for psql")
	cmd.Flags().StringVar(&user, "user", "", "database user (default: the AppBinding Secret's username)")
	return cmd
}

func pgOptions(cmd *cobra.Command, f *addonFlags, src source.Source, user string) (postgres.Options, error) {
	ctx := cmd.Context()
	if f.appBinding == "" {
		return postgres.Options{}, fmt.Errorf("--appbinding is empty: name the AppBinding of the database")
	}
	ns := orStr(f.appBindingNamespace, f.namespace)
	ab, err := src.AppBinding(ctx, ns, f.appBinding)
	if err != nil {
		return postgres.Options{}, err
	}
	var secret map[string][]byte
	if ab.Spec.Secret != nil {
		secret, err = src.SecretData(ctx, ns, ab.Spec.Secret.Name)
		if err != nil {
			return postgres.Options{}, fmt.Errorf("AppBinding %s/%s: spec.secret: %w", ns, ab.Name, err)
		}
	}
	conn, err := appbinding.Resolve(ab, secret, postgres.DefaultPort, postgres.UserKeys, postgres.PasswordKeys)
	if err != nil {
		return postgres.Options{}, err
	}
	if ts := ab.Spec.TLSSecret; ts != nil {
		data, err := src.SecretData(ctx, ns, ts.Name)
		if err != nil {
			return postgres.Options{}, fmt.Errorf("AppBinding %s/%s: spec.tlsSecret: %w", ns, ab.Name, err)
		}
		if err := appbinding.ApplyTLS(conn, data); err != nil {
			return postgres.Options{}, fmt.Errorf("AppBinding %s/%s: %w", ns, ab.Name, err)
		}
	}
	return postgres.Options{Conn: conn, User: user, ScratchDir: f.scratchDir}, nil
}
