package mysql

import (
	"fmt"
	"strings"

	"github.com/stash-backup/stash/internal/addon"
)

// defaultArgs is --mysql-args as Stash's Functions default it.
const defaultArgs = "--all-databases"

// Registration is MySQL and MariaDB as the backup-mysql and restore-mysql
// step commands, with the flags of Stash's mysql-* and mariadb-*
// Functions.
func Registration() addon.Registration {
	return addon.Registration{
		Name:         "mysql",
		BackupShort:  "Back up a MySQL or MariaDB server named by an AppBinding (the mysql-backup-* and mariadb-backup-* Functions)",
		RestoreShort: "Restore a MySQL or MariaDB dump into the server named by an AppBinding",
		DefaultPort:  DefaultPort,
		UserKeys:     UserKeys,
		PasswordKeys: PasswordKeys,
		BackupFlags: []addon.Flag{
			{Name: "mysql-args", Default: defaultArgs, Usage: "mysqldump selection and options"},
			{Name: "multi-dump-args", Usage: `several dumps into one backup, run in order: "$args=<mysqldump args> $args=<mysqldump args> …"`},
		},
		RestoreFlags: []addon.Flag{
			{Name: "mysql-args", Usage: "extra arguments for the mysql client"},
		},
		NewBackup: func(c addon.Config) (addon.Driver, error) {
			multi, err := ParseMultiDump(c.Flags["multi-dump-args"])
			if err != nil {
				return nil, fmt.Errorf("--multi-dump-args: %w", err)
			}
			o := Options{Conn: c.Conn, ScratchDir: c.ScratchDir, Args: strings.Fields(c.Flags["mysql-args"]), MultiDump: multi}
			if len(multi) > 0 && c.Flags["mysql-args"] == defaultArgs {
				// The Function's default selection would override each
				// dump's own --databases.
				o.Args = nil
			}
			return Driver{o}, nil
		},
		NewRestore: func(c addon.Config) (addon.Driver, error) {
			return Driver{Options{Conn: c.Conn, ScratchDir: c.ScratchDir, Args: strings.Fields(c.Flags["mysql-args"])}}, nil
		},
	}
}
