package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// Kubernetes limits on the names Stash derives from its objects' names,
// which may themselves be up to 253 characters long.
const (
	// MaxNameLength bounds Job and ServiceAccount names: the Job
	// controller copies a Job's name into its pods' job-name label, whose
	// values may not exceed 63 characters, and label values (such as the
	// invoker-name label) have the same limit.
	MaxNameLength = 63
	// MaxCronJobNameLength bounds CronJob names: the CronJob controller
	// appends "-<11 digits>" to name each Job, which must stay within 63.
	MaxCronJobNameLength = 52
	// hashLength is the number of hex digits of the hash suffix: 40 bits,
	// so two long names sharing a truncated prefix collide with odds of
	// one in a trillion.
	hashLength = 10
)

// BoundedName returns prefix+name+suffix when it fits in max characters.
// Otherwise it truncates name and inserts "-" and a hash of the whole
// untruncated string before suffix, so that the result is exactly max long,
// stays a valid DNS name (the truncated part never ends in '-' or '.'),
// and two long names that share a prefix still differ. The same input
// always yields the same name, so a runtime can find again what it created.
// prefix and suffix must leave room for the hash (11 characters).
//
// A short name could be chosen to equal another's hashed name; both are
// then in the same namespace, whose users are granted the same either way.
func BoundedName(prefix, name, suffix string, max int) string {
	full := prefix + name + suffix
	if len(full) <= max {
		return full
	}
	sum := sha256.Sum256([]byte(full))
	tail := "-" + hex.EncodeToString(sum[:])[:hashLength] + suffix
	keep := max - len(prefix) - len(tail)
	if keep < 0 {
		// prefix and suffix are the caller's constants and leave room;
		// were they too long, the name would be too, not wrong.
		keep = 0
	}
	head := strings.TrimRight(prefix+name[:keep], "-.")
	return head + tail
}

// LabelValue returns name as a label value: unchanged when it fits in 63
// characters, else truncated with a hash suffix (see BoundedName).
func LabelValue(name string) string { return BoundedName("", name, "", MaxNameLength) }

// BackupJobName is the name of a BackupSession's Job.
func BackupJobName(session string) string {
	return BoundedName("stash-backup-", session, "-0", MaxNameLength)
}

// RestoreJobName is the name of a RestoreSession's Job; ordinal is the
// replica of a per-replica restore, or negative for the single Job.
func RestoreJobName(rs string, ordinal int) string {
	suffix := "-0"
	if ordinal >= 0 {
		suffix += "-" + strconv.Itoa(ordinal)
	}
	return BoundedName("stash-restore-", rs, suffix, MaxNameLength)
}

// BackupServiceAccount is the ServiceAccount (and Role) of a
// BackupConfiguration's backup Jobs.
func BackupServiceAccount(bc string) string {
	return BoundedName("stash-backup-", bc, "", MaxNameLength)
}

// RestoreServiceAccount is the ServiceAccount (and Role) of a
// RestoreSession's Jobs.
func RestoreServiceAccount(rs string) string {
	return BoundedName("stash-restore-", rs, "", MaxNameLength)
}

// TriggerName is the name of a BackupConfiguration's trigger CronJob and
// of its ServiceAccount.
func TriggerName(bc string) string {
	return BoundedName("stash-trigger-", bc, "", MaxCronJobNameLength)
}
