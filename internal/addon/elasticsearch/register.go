package elasticsearch

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/stash-backup/stash/internal/addon"
)

// DefaultPath is the path a backup's file set is stored under, whatever
// the interim directory (nothing is written there): the data directory of
// Stash's interim volume, which Stash's Elasticsearch backups were taken
// of. StashTmpPath is the one Stash used without an interim volume; a
// restore looks under both, then under --interim-data-dir.
const (
	DefaultPath  = "/stash-interim-volume/data"
	StashTmpPath = "/stash-tmp/stash-interim-volume/data"
)

// Registration is Elasticsearch as the backup-es and restore-es step
// commands, with the flags of Stash's elasticsearch-* Functions.
func Registration() addon.Registration {
	common := []addon.Flag{
		{Name: "es-args", Usage: "multielasticdump-style options: --match, --exclude, --include-hidden, --ignoreType, --includeType, --limit, --parallel, --scrollTime, --prefix, --suffix, --existing"},
		{Name: "interim-data-dir", Usage: "Stash's interim directory: nothing is written there (the files stream into the repository as " + DefaultPath + "); a restore also looks for snapshots of this path"},
		{Name: "enable-dashboard", Default: "false", Usage: "back up or restore Kibana's saved objects too"},
	}
	newDriver := func(c addon.Config) (addon.Driver, error) {
		a, err := ParseArgs(strings.Fields(c.Flags["es-args"]))
		if err != nil {
			return nil, fmt.Errorf("--es-args: %w", err)
		}
		dashboard := false
		if v := c.Flags["enable-dashboard"]; v != "" {
			if dashboard, err = strconv.ParseBool(v); err != nil {
				return nil, fmt.Errorf("--enable-dashboard=%q: give true or false", v)
			}
		}
		return Driver{Options{Conn: c.Conn, Path: DefaultPath, Args: a, InterimDir: c.Flags["interim-data-dir"], Dashboard: dashboard}}, nil
	}
	return addon.Registration{
		Name:         "es",
		BackupShort:  "Back up the indices of an Elasticsearch or OpenSearch server named by an AppBinding (the elasticsearch-backup-* Functions)",
		RestoreShort: "Restore indices into the Elasticsearch or OpenSearch server named by an AppBinding",
		DefaultPort:  DefaultPort,
		UserKeys:     UserKeys,
		PasswordKeys: PasswordKeys,
		BackupFlags:  common,
		RestoreFlags: common,
		NewBackup:    newDriver,
		NewRestore:   newDriver,
	}
}
