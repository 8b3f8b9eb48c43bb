package mongodb

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/stash-backup/stash/internal/addon"
)

// Registration is MongoDB as the backup-mongo and restore-mongo step
// commands, with the flags of Stash's mongodb-* Functions.
func Registration() addon.Registration {
	common := []addon.Flag{
		{Name: "mongo-args", Usage: "mongodump (backup) or mongorestore (restore) options: namespace selection and the like"},
		{Name: "authentication-database", Default: "admin", Usage: "the database the AppBinding's user is defined in"},
		{Name: "max-concurrency", Default: "3", Usage: "how many components of a sharded cluster are dumped or restored at once"},
	}
	return addon.Registration{
		Name:         "mongo",
		BackupShort:  "Back up a MongoDB server named by an AppBinding into a mongodump archive (the mongodb-backup-* Functions)",
		RestoreShort: "Restore a mongodump archive into the MongoDB server named by an AppBinding",
		DefaultPort:  DefaultPort,
		UserKeys:     UserKeys,
		PasswordKeys: PasswordKeys,
		BackupFlags:  common,
		RestoreFlags: common,
		NewBackup: func(c addon.Config) (addon.Driver, error) {
			o, err := newOptions(c)
			if err != nil {
				return nil, err
			}
			if o.DumpArgs, err = ParseDumpArgs(strings.Fields(c.Flags["mongo-args"])); err != nil {
				return nil, fmt.Errorf("--mongo-args: %w", err)
			}
			return Driver{o}, nil
		},
		NewRestore: func(c addon.Config) (addon.Driver, error) {
			o, err := newOptions(c)
			if err != nil {
				return nil, err
			}
			if o.RestoreArgs, err = ParseRestoreArgs(strings.Fields(c.Flags["mongo-args"])); err != nil {
				return nil, fmt.Errorf("--mongo-args: %w", err)
			}
			return Driver{o}, nil
		},
	}
}

func newOptions(c addon.Config) (Options, error) {
	o := Options{Conn: c.Conn, AuthDatabase: c.Flags["authentication-database"]}
	if v := c.Flags["max-concurrency"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return o, fmt.Errorf("--max-concurrency=%q: give a number of at least 1", v)
		}
		o.MaxConcurrency = n
	}
	if c.Conn != nil {
		t, err := ParseTopology(c.Conn.Parameters)
		if err != nil {
			return o, err
		}
		o.Topology = t
	}
	return o, nil
}
