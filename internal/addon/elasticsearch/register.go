package elasticsearch

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/stash-backup/stash/internal/addon"
)

// DefaultPath is where a file set is stored when no interim data
// directory is given: the one Stash's Functions used without an interim
// volume.
const DefaultPath = "/stash-tmp/stash-interim-volume/data"

// Registration is Elasticsearch as the backup-es and restore-es step
// commands, with the flags of Stash's elasticsearch-* Functions.
func Registration() addon.Registration {
	common := []addon.Flag{
		{Name: "es-args", Usage: "multielasticdump-style options: --match, --exclude, --include-hidden, --ignoreType, --includeType, --limit, --parallel, --scrollTime, --prefix, --suffix, --existing"},
		{Name: "interim-data-dir", Usage: "the path the index files are stored under (they stream into the repository; nothing is written there)"},
		{Name: "enable-dashboard", Default: "false", Usage: "back up or restore Kibana's saved objects too"},
	}
	newDriver := func(c addon.Config) (addon.Driver, error) {
		a, err := ParseArgs(strings.Fields(c.Flags["es-args"]))
		if err != nil {
			return nil, fmt.Errorf("--es-args: %w", err)
		}
		if v := c.Flags["enable-dashboard"]; v != "" {
			on, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("--enable-dashboard=%q: give true or false", v)
			}
			if on {
				return nil, fmt.Errorf("--enable-dashboard=true: Kibana's saved objects are not backed up by this addon yet; set the task param ENABLE_DASHBOARD_BACKUP (or _RESTORE) to false")
			}
		}
		path := c.Flags["interim-data-dir"]
		if path == "" {
			path = DefaultPath
		}
		return Driver{Options{Conn: c.Conn, Path: path, Args: a}}, nil
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
