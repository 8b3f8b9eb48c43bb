package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/stash-backup/stash/internal/addon/dump"
	"github.com/stash-backup/stash/internal/addon/mysql"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/source"
)

const defaultMySQLArgs = "--all-databases"

func newBackupMySQLCommand() *cobra.Command {
	f := &addonFlags{}
	var mysqlArgs, multiDump string
	cmd := &cobra.Command{
		Use:   "backup-mysql",
		Short: "Back up a MySQL or MariaDB server named by an AppBinding (the mysql-backup-* and mariadb-backup-* Functions)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.runBackup(cmd.Context(), func(ctx context.Context, src source.Source) (driver, error) {
				multi, err := mysql.ParseMultiDump(multiDump)
				if err != nil {
					return driver{}, fmt.Errorf("--multi-dump-args: %w", err)
				}
				o, err := mysqlOptions(ctx, f, src)
				o.Args = splitArgs(mysqlArgs)
				o.MultiDump = multi
				if len(multi) > 0 && mysqlArgs == defaultMySQLArgs {
					// The Function's default selection would override each
					// dump's own --databases.
					o.Args = nil
				}
				return mysqlDriver(o), err
			})
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&mysqlArgs, "mysql-args", defaultMySQLArgs, "mysqldump selection and options")
	cmd.Flags().StringVar(&multiDump, "multi-dump-args", "", `several dumps into one backup, run in order: "$args=<mysqldump args> $args=<mysqldump args> …"`)
	return cmd
}

func newRestoreMySQLCommand() *cobra.Command {
	f := &addonFlags{}
	var mysqlArgs string
	cmd := &cobra.Command{
		Use:   "restore-mysql",
		Short: "Restore a MySQL or MariaDB dump into the server named by an AppBinding",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.runRestore(cmd.Context(), func(ctx context.Context, src source.Source) (driver, error) {
				o, err := mysqlOptions(ctx, f, src)
				o.Args = splitArgs(mysqlArgs)
				return mysqlDriver(o), err
			})
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&mysqlArgs, "mysql-args", "", "extra arguments for the mysql client")
	return cmd
}

func mysqlDriver(o mysql.Options) driver {
	return driver{
		dumpFile: mysql.DumpFile,
		wait:     func(ctx context.Context, d time.Duration) error { return mysql.Wait(ctx, o, d) },
		backup: func(ctx context.Context, repo dump.Repo, bo repository.BackupOptions) (*repository.SnapshotStats, error) {
			return mysql.Backup(ctx, repo, o, bo)
		},
		restore: func(ctx context.Context, r *repository.Repository, s repository.Snapshot) error {
			return mysql.Restore(ctx, r, s, o)
		},
	}
}

func mysqlOptions(ctx context.Context, f *addonFlags, src source.Source) (mysql.Options, error) {
	conn, err := connection(ctx, f, src, mysql.DefaultPort, mysql.UserKeys, mysql.PasswordKeys)
	if err != nil {
		return mysql.Options{}, err
	}
	return mysql.Options{Conn: conn, ScratchDir: f.scratchDir}, nil
}
