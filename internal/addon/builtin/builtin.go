// Package builtin lists every driver built into stash: the one place an
// addon is registered. Each entry becomes the step commands
// backup-<name> and restore-<name>.
package builtin

import (
	"github.com/stash-backup/stash/internal/addon"
	"github.com/stash-backup/stash/internal/addon/elasticsearch"
	"github.com/stash-backup/stash/internal/addon/galera"
	"github.com/stash-backup/stash/internal/addon/mongodb"
	"github.com/stash-backup/stash/internal/addon/mysql"
	"github.com/stash-backup/stash/internal/addon/postgres"
)

// Drivers returns the built-in drivers, in the order their commands are
// listed.
func Drivers() []addon.Registration {
	return []addon.Registration{
		postgres.Registration(),
		mysql.Registration(),
		mongodb.Registration(),
		elasticsearch.Registration(),
		galera.Registration(),
	}
}
