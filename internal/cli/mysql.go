package cli

import (
	"context"
	"errors"
	"time"

	"github.com/spf13/cobra"

	"github.com/stash-backup/stash/internal/addon/mysql"
	"github.com/stash-backup/stash/internal/repository"
	"github.com/stash-backup/stash/internal/source"
)

func newBackupMySQLCommand() *cobra.Command {
	f := &addonFlags{}
	var mysqlArgs, multiDump string
	cmd := &cobra.Command{
		Use:   "backup-mysql",
		Short: "Back up a MySQL or MariaDB server named by an AppBinding (the mysql-backup-* and mariadb-backup-* Functions)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.runBackup(cmd.Context(), func(ctx context.Context, src source.Source) (driver, error) {
				if multiDump != "" {
					return driver{}, errors.New("--multi-dump-args is not supported: back up each selection with its own BackupConfiguration and --mysql-args")
				}
				o, err := mysqlOptions(ctx, f, src)
				o.Args = splitArgs(mysqlArgs)
				return mysqlDriver(o), err
			})
		},
	}
	f.register(cmd, false)
	cmd.Flags().StringVar(&mysqlArgs, "mysql-args", "--all-databases", "mysqldump selection and options")
	cmd.Flags().StringVar(&multiDump, "multi-dump-args", "", "not supported")
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
		backup: func(ctx context.Context, r *repository.Repository, bo repository.BackupOptions) (*repository.SnapshotStats, error) {
			return mysql.Backup(ctx, r, o, bo)
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
