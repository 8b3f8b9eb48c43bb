package postgres

import (
	"strings"

	"github.com/stash-backup/stash/internal/addon"
)

// Registration is PostgreSQL as the backup-pg and restore-pg step
// commands, with the flags of Stash's postgres-backup-* and
// postgres-restore-* Functions.
func Registration() addon.Registration {
	return addon.Registration{
		Name:         "pg",
		BackupShort:  "Back up a PostgreSQL database named by an AppBinding (the postgres-backup-* Function)",
		RestoreShort: "Restore a PostgreSQL dump into the database named by an AppBinding (the postgres-restore-* Function)",
		DefaultPort:  DefaultPort,
		UserKeys:     UserKeys,
		PasswordKeys: PasswordKeys,
		BackupFlags: []addon.Flag{
			{Name: "backup-cmd", Default: "pg_dumpall", Usage: "pg_dumpall or pg_dump"},
			{Name: "pg-args", Usage: "extra arguments for the dump tool"},
			{Name: "user", Usage: "database user (default: the AppBinding Secret's username)"},
		},
		RestoreFlags: []addon.Flag{
			{Name: "pg-args", Usage: "extra arguments for psql"},
			{Name: "user", Usage: "database user (default: the AppBinding Secret's username)"},
		},
		NewBackup: func(c addon.Config) (addon.Driver, error) {
			o := configOptions(c)
			o.BackupCmd = c.Flags["backup-cmd"]
			return Driver{o}, nil
		},
		NewRestore: func(c addon.Config) (addon.Driver, error) { return Driver{configOptions(c)}, nil },
	}
}

func configOptions(c addon.Config) Options {
	return Options{Conn: c.Conn, User: c.Flags["user"], Args: strings.Fields(c.Flags["pg-args"]), ScratchDir: c.ScratchDir}
}
