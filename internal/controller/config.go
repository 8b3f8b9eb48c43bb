// Package controller holds what the operator's reconcilers share: their
// configuration and the event reasons and sources of Stash.
package controller

import (
	"time"

	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/plan"
)

// Config is what every reconciler is built with.
type Config struct {
	// Image is the stash image: the trigger CronJob, update-status and
	// the Functions' ${STASH_DOCKER_*} variables use it.
	Image plan.Image
	// Catalog resolves Functions and Tasks not installed in the cluster.
	Catalog *catalog.Catalog
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Clock returns the current time.
func (c Config) Clock() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Event reasons and sources as Stash names them (§15 of the reference).
const (
	ReasonCronJobCreationFailed   = "CronJob Creation Failed"
	ReasonBackupJobCreated        = "Backup Job Created"
	ReasonBackupJobCreationFailed = "Backup Job Creation Failed"
	ReasonBackupSkipped           = "BackupSession Skipped"
	ReasonBackupRunning           = "BackupSession Running"
	ReasonBackupSucceeded         = "BackupSession Succeeded"
	ReasonBackupFailed            = "BackupSession Failed"
	ReasonRestoreJobCreated       = "Restore Job Created"
	ReasonRestoreJobFailed        = "Restore Job Creation Failed"
	ReasonRestoreSucceeded        = "RestoreSession Succeeded"
	ReasonRestoreFailed           = "RestoreSession Failed"
	ReasonRepositoryWipeOut       = "Repository WipeOut"
	ReasonRepositoryWipeOutFailed = "Repository WipeOut Failed"

	SourceBackupConfiguration = "BackupConfiguration Controller"
	SourceBackupSession       = "BackupSession Controller"
	SourceRestoreSession      = "RestoreSession Controller"
	SourceRepository          = "Repository Controller"
)
