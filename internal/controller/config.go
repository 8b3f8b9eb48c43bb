// Package controller holds what the operator's reconcilers share: their
// configuration and the event reasons and sources of Stash.
package controller

import (
	corev1 "k8s.io/api/core/v1"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/stash-backup/stash/internal/catalog"
	"github.com/stash-backup/stash/internal/controller/jobstate"
	"github.com/stash-backup/stash/internal/plan"
)

// Config is what every reconciler is built with.
type Config struct {
	// Image is the stash image: the trigger CronJob, update-status and
	// the Functions' ${STASH_DOCKER_*} variables use it.
	Image plan.Image
	// SidecarResources, when set, are the default resources of the
	// backup sidecar and restore init container.
	SidecarResources *corev1.ResourceRequirements
	// Catalog resolves Functions and Tasks not installed in the cluster.
	Catalog *catalog.Catalog
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// PendingLimit is how long a step's pod may stay Pending (or not be
	// created) before its session fails; zero means
	// jobstate.DefaultPendingLimit.
	PendingLimit time.Duration
	// DefaultTimeout is the deadline of a session whose invoker sets no
	// timeOut; zero means plan.DefaultSessionTimeout, which the local
	// runtime shares.
	DefaultTimeout time.Duration
}

// Timeout is a session's deadline from its invoker's timeOut, or the
// default.
func (c Config) Timeout(timeOut *metav1.Duration) time.Duration {
	return plan.SessionTimeout(timeOut, c.DefaultTimeout)
}

// Limits are the step start limits for jobstate.
func (c Config) Limits() jobstate.Limits { return jobstate.Limits{Pending: c.PendingLimit} }

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
	ReasonBackupTriggerFailed     = "Backup Trigger Failed"
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

// Soon is when a reconciler looks again at an object whose phase it has
// just changed, so that the new phase's work (cleanup of a finished
// session, the next step of a started one) follows at once even when
// the status write was skipped as unchanged. A bare Requeue would go
// through the rate limiter's growing backoff instead.
const Soon = time.Second
