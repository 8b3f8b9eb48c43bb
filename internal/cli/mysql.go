package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/stash-backup/stash/internal/addon/mysql"
	"github.com/stash-backup/stash/internal/appbinding"
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
			ctx := cmd.Context()
			start := time.Now()
			stats, err := func() ([]repository.SnapshotStats, error) {
				if multiDump != "" {
					return nil, errors.New("--multi-dump-args is not supported: back up each selection with its own BackupConfiguration and --mysql-args")
				}
				src, err := f.source()
				if err != nil {
					return nil, err
				}
				o, err := mysqlOptions(ctx, f, src)
				if err != nil {
					return nil, err
				}
				o.Args = splitArgs(mysqlArgs)
				if err := mysql.Wait(ctx, o, time.Duration(f.waitTimeout)*time.Second); err != nil {
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
				st, err := mysql.Backup(ctx, r, o, repository.BackupOptions{Host: f.hostname, Tags: tags})
				if err != nil {
					return nil, err
				}
				if err := f.applyRetention(ctx, r, mysql.DumpFile); err != nil {
					return nil, err
				}
				return []repository.SnapshotStats{*st}, nil
			}()
			return f.finishBackup(start, stats, err)
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
			ctx := cmd.Context()
			start := time.Now()
			err := func() error {
				src, err := f.source()
				if err != nil {
					return err
				}
				o, err := mysqlOptions(ctx, f, src)
				if err != nil {
					return err
				}
				o.Args = splitArgs(mysqlArgs)
				if err := mysql.Wait(ctx, o, time.Duration(f.waitTimeout)*time.Second); err != nil {
					return err
				}
				r, err := f.openRepository(ctx, src)
				if err != nil {
					return err
				}
				defer r.Close(ctx) //nolint:errcheck
				s, err := r.Resolve(ctx, f.snapshot, repository.Filter{Host: orStr(f.sourceHostname, f.hostname), Path: mysql.DumpFile})
				if err != nil {
					return err
				}
				return mysql.Restore(ctx, r, s, o)
			}()
			return f.finishRestore(start, err)
		},
	}
	f.register(cmd, true)
	cmd.Flags().StringVar(&mysqlArgs, "mysql-args", "", "extra arguments for the mysql client")
	return cmd
}

func mysqlOptions(ctx context.Context, f *addonFlags, src source.Source) (mysql.Options, error) {
	if f.appBinding == "" {
		return mysql.Options{}, errors.New("--appbinding is empty: name the AppBinding of the database")
	}
	ns := orStr(f.appBindingNamespace, f.namespace)
	ab, err := src.AppBinding(ctx, ns, f.appBinding)
	if err != nil {
		return mysql.Options{}, err
	}
	var secret map[string][]byte
	if ab.Spec.Secret != nil {
		if secret, err = src.SecretData(ctx, ns, ab.Spec.Secret.Name); err != nil {
			return mysql.Options{}, fmt.Errorf("AppBinding %s/%s: spec.secret: %w", ns, ab.Name, err)
		}
	}
	conn, err := appbinding.Resolve(ab, secret, mysql.DefaultPort, mysql.UserKeys, mysql.PasswordKeys)
	if err != nil {
		return mysql.Options{}, err
	}
	if ts := ab.Spec.TLSSecret; ts != nil {
		data, err := src.SecretData(ctx, ns, ts.Name)
		if err != nil {
			return mysql.Options{}, fmt.Errorf("AppBinding %s/%s: spec.tlsSecret: %w", ns, ab.Name, err)
		}
		if err := appbinding.ApplyTLS(conn, data); err != nil {
			return mysql.Options{}, fmt.Errorf("AppBinding %s/%s: %w", ns, ab.Name, err)
		}
	}
	return mysql.Options{Conn: conn, ScratchDir: f.scratchDir}, nil
}
