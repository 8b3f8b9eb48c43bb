package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/stash-backup/stash/internal/addon/dump"
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
			return f.runBackup(cmd.Context(), func(ctx context.Context, src source.Source) (driver, error) {
				o, err := pgOptions(ctx, f, src, user)
				o.BackupCmd, o.Args = backupCmd, splitArgs(pgArgs)
				return pgDriver(o), err
			})
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
			return f.runRestore(cmd.Context(), func(ctx context.Context, src source.Source) (driver, error) {
				o, err := pgOptions(ctx, f, src, user)
				o.Args = splitArgs(pgArgs)
				return pgDriver(o), err
			})
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&pgArgs, "pg-args", "", "extra arguments for psql")
	cmd.Flags().StringVar(&user, "user", "", "database user (default: the AppBinding Secret's username)")
	return cmd
}

func pgDriver(o postgres.Options) driver {
	return driver{
		dumpFile: postgres.DumpFile,
		wait:     func(ctx context.Context, d time.Duration) error { return postgres.Wait(ctx, o, d) },
		backup: func(ctx context.Context, repo dump.Repo, bo repository.BackupOptions) (*repository.SnapshotStats, error) {
			return postgres.Backup(ctx, repo, o, bo)
		},
		restore: func(ctx context.Context, r *repository.Repository, s repository.Snapshot) error {
			return postgres.Restore(ctx, r, s, o)
		},
	}
}

func pgOptions(ctx context.Context, f *addonFlags, src source.Source, user string) (postgres.Options, error) {
	conn, err := connection(ctx, f, src, postgres.DefaultPort, postgres.UserKeys, postgres.PasswordKeys)
	if err != nil {
		return postgres.Options{}, err
	}
	return postgres.Options{Conn: conn, User: user, ScratchDir: f.scratchDir}, nil
}

// connection resolves the AppBinding named by the flags, its Secret and
// its tlsSecret into a connection.
func connection(ctx context.Context, f *addonFlags, src source.Source, port int, userKeys, passwordKeys []string) (*appbinding.Connection, error) {
	if f.appBinding == "" {
		return nil, fmt.Errorf("--appbinding is empty: name the AppBinding of the database")
	}
	ns := orStr(f.appBindingNamespace, f.namespace)
	ab, err := src.AppBinding(ctx, ns, f.appBinding)
	if err != nil {
		return nil, err
	}
	var secret map[string][]byte
	if ab.Spec.Secret != nil {
		if secret, err = src.SecretData(ctx, ns, ab.Spec.Secret.Name); err != nil {
			return nil, fmt.Errorf("AppBinding %s/%s: spec.secret: %w", ns, ab.Name, err)
		}
	}
	conn, err := appbinding.Resolve(ab, secret, port, userKeys, passwordKeys)
	if err != nil {
		return nil, err
	}
	if ts := ab.Spec.TLSSecret; ts != nil {
		data, err := src.SecretData(ctx, ns, ts.Name)
		if err != nil {
			return nil, fmt.Errorf("AppBinding %s/%s: spec.tlsSecret: %w", ns, ab.Name, err)
		}
		if err := appbinding.ApplyTLS(conn, data); err != nil {
			return nil, fmt.Errorf("AppBinding %s/%s: %w", ns, ab.Name, err)
		}
	}
	return conn, nil
}
