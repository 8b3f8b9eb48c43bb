package plan

import (
	"strconv"
	"strings"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
	stashv1beta1 "github.com/stash-backup/stash/api/stash/v1beta1"
)

// Image is the stash image the operator runs (STASH_DOCKER_* variables).
type Image struct {
	Registry string
	Name     string
	Tag      string
}

// DefaultImage is used when a runtime names none.
var DefaultImage = Image{Registry: "ghcr.io/stash-backup", Name: "stash", Tag: "latest"}

// String renders registry/name:tag.
func (i Image) String() string { return i.Registry + "/" + i.Name + ":" + i.Tag }

// Well-known paths of a step's pod.
const (
	ScratchDir         = "/stash-tmp"
	ScratchVolume      = "stash-tmp-dir"
	InterimMountPath   = "/stash-interim-volume"
	InterimVolume      = "stash-interim-volume"
	LocalBackendVolume = "stash-local-backend"
	DefaultTargetMount = "/stash-data"
)

// Target is what a session works on, flattened from BackupTarget or
// RestoreTarget.
type Target struct {
	Ref          stashv1beta1.TargetRef
	Alias        string
	Paths        []string
	MountPath    string
	Exclude      []string
	Include      []string
	Args         []string
	Replicas     *int32
	Snapshots    []string
	RestorePaths []string
	SourceHost   string
}

// Invocation is everything the variables of one session come from.
type Invocation struct {
	// Restore is true for a RestoreSession, false for a BackupSession.
	Restore     bool
	Namespace   string
	Session     string
	InvokerKind string
	InvokerName string
	Repository  *stashv1alpha1.Repository
	Target      Target
	Retention   stashv1alpha1.RetentionPolicy
	TempDir     stashv1beta1.EmptyDirSettings
	Interim     bool
	Image       Image
	Hostname    string
}

// Variables returns the operator-provided variables of §10 of the Stash
// reference for one session.
func Variables(in Invocation) map[string]string {
	v := map[string]string{
		"NAMESPACE":             in.Namespace,
		"INVOKER_KIND":          in.InvokerKind,
		"INVOKER_NAME":          in.InvokerName,
		"HOSTNAME":              in.Hostname,
		"TARGET_NAME":           in.Target.Ref.Name,
		"TARGET_KIND":           in.Target.Ref.Kind,
		"TARGET_API_VERSION":    in.Target.Ref.APIVersion,
		"TARGET_NAMESPACE":      orDefault(in.Target.Ref.Namespace, in.Namespace),
		"TARGET_PATHS":          orDefault(strings.Join(in.Target.Paths, ","), DefaultTargetMount),
		"TARGET_MOUNT_PATH":     orDefault(in.Target.MountPath, DefaultTargetMount),
		"EXCLUDE_PATTERNS":      strings.Join(in.Target.Exclude, ","),
		"INCLUDE_PATTERNS":      strings.Join(in.Target.Include, ","),
		"DRIVER_ARGS":           strings.Join(in.Target.Args, " "),
		"ENABLE_CACHE":          strconv.FormatBool(!in.TempDir.DisableCaching),
		"STASH_DOCKER_REGISTRY": in.Image.Registry,
		"STASH_DOCKER_IMAGE":    in.Image.Name,
		"STASH_IMAGE_TAG":       in.Image.Tag,
		"PROMETHEUS_JOB_NAME":   in.InvokerName,
	}
	if in.Interim {
		v["INTERIM_DATA_DIR"] = InterimMountPath + "/data"
	} else {
		v["INTERIM_DATA_DIR"] = ScratchDir + "/" + InterimVolume + "/data"
	}
	if in.Restore {
		v["RESTORE_SESSION"] = in.Session
		v["SOURCE_HOSTNAME"] = orDefault(in.Target.SourceHost, in.Hostname)
		v["RESTORE_SNAPSHOTS"] = strings.Join(in.Target.Snapshots, ",")
		v["RESTORE_PATHS"] = strings.Join(in.Target.RestorePaths, ",")
		replicas := int32(1)
		if in.Target.Replicas != nil {
			replicas = *in.Target.Replicas
		}
		v["TARGET_APP_REPLICAS"] = strconv.Itoa(int(replicas))
	} else {
		v["BACKUP_SESSION"] = in.Session
	}
	if r := in.Repository; r != nil {
		v["REPOSITORY_NAME"] = r.Name
		v["REPOSITORY_NAMESPACE"] = r.Namespace
		v["REPOSITORY_SECRET_NAME"] = r.Spec.Backend.StorageSecretName
		v["REPOSITORY_SECRET_NAMESPACE"] = r.Namespace
		for k, val := range backendVariables(r.Spec.Backend) {
			v[k] = val
		}
	}
	p := in.Retention
	setInt := func(k string, n int64) {
		if n > 0 {
			v[k] = strconv.FormatInt(n, 10)
		}
	}
	setInt("RETENTION_KEEP_LAST", p.KeepLast)
	setInt("RETENTION_KEEP_HOURLY", p.KeepHourly)
	setInt("RETENTION_KEEP_DAILY", p.KeepDaily)
	setInt("RETENTION_KEEP_WEEKLY", p.KeepWeekly)
	setInt("RETENTION_KEEP_MONTHLY", p.KeepMonthly)
	setInt("RETENTION_KEEP_YEARLY", p.KeepYearly)
	if len(p.KeepTags) > 0 {
		v["RETENTION_KEEP_TAGS"] = strings.Join(p.KeepTags, ",")
	}
	if p.Prune {
		v["RETENTION_PRUNE"] = "true"
	}
	if p.DryRun {
		v["RETENTION_DRY_RUN"] = "true"
	}
	return v
}

func backendVariables(b stashv1alpha1.Backend) map[string]string {
	v := map[string]string{"REPOSITORY_INSECURE_TLS": "false", "MAX_CONNECTIONS": "0"}
	maxConn := func(n int64) { v["MAX_CONNECTIONS"] = strconv.FormatInt(n, 10) }
	switch {
	case b.Local != nil:
		v["REPOSITORY_PROVIDER"] = "local"
		v["REPOSITORY_BUCKET"] = b.Local.MountPath
		v["REPOSITORY_PREFIX"] = ""
	case b.S3 != nil:
		v["REPOSITORY_PROVIDER"] = "s3"
		v["REPOSITORY_BUCKET"] = b.S3.Bucket
		v["REPOSITORY_PREFIX"] = b.S3.Prefix
		v["REPOSITORY_ENDPOINT"] = b.S3.Endpoint
		v["REPOSITORY_REGION"] = b.S3.Region
		v["REPOSITORY_INSECURE_TLS"] = strconv.FormatBool(b.S3.InsecureTLS)
	case b.GCS != nil:
		v["REPOSITORY_PROVIDER"] = "gcs"
		v["REPOSITORY_BUCKET"] = b.GCS.Bucket
		v["REPOSITORY_PREFIX"] = b.GCS.Prefix
		maxConn(b.GCS.MaxConnections)
	case b.Azure != nil:
		v["REPOSITORY_PROVIDER"] = "azure"
		v["REPOSITORY_BUCKET"] = b.Azure.Container
		v["REPOSITORY_PREFIX"] = b.Azure.Prefix
		maxConn(b.Azure.MaxConnections)
	case b.B2 != nil:
		v["REPOSITORY_PROVIDER"] = "b2"
		v["REPOSITORY_BUCKET"] = b.B2.Bucket
		v["REPOSITORY_PREFIX"] = b.B2.Prefix
		maxConn(b.B2.MaxConnections)
	case b.Swift != nil:
		v["REPOSITORY_PROVIDER"] = "swift"
		v["REPOSITORY_BUCKET"] = b.Swift.Container
		v["REPOSITORY_PREFIX"] = b.Swift.Prefix
	case b.Rest != nil:
		v["REPOSITORY_PROVIDER"] = "rest"
		v["REPOSITORY_ENDPOINT"] = b.Rest.URL
	}
	return v
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
