// Package location turns a Repository's spec.backend and its storage
// Secret into kopia storage options: which backend, where, with which
// credentials. It does no I/O.
package location

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/kopia/kopia/repo/blob/azure"
	"github.com/kopia/kopia/repo/blob/b2"
	"github.com/kopia/kopia/repo/blob/filesystem"
	"github.com/kopia/kopia/repo/blob/gcs"
	"github.com/kopia/kopia/repo/blob/s3"
	"github.com/kopia/kopia/repo/blob/throttling"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
)

// Storage Secret keys, as Stash names them.
const (
	KeyPassword           = "RESTIC_PASSWORD"
	KeyCACertData         = "CA_CERT_DATA"
	KeyAWSAccessKeyID     = "AWS_ACCESS_KEY_ID"
	KeyAWSSecretAccessKey = "AWS_SECRET_ACCESS_KEY"
	KeyAWSSessionToken    = "AWS_SESSION_TOKEN"
	KeyGoogleProjectID    = "GOOGLE_PROJECT_ID"
	KeyGoogleSAJSON       = "GOOGLE_SERVICE_ACCOUNT_JSON_KEY"
	KeyAzureAccountName   = "AZURE_ACCOUNT_NAME"
	KeyAzureAccountKey    = "AZURE_ACCOUNT_KEY"
	KeyB2AccountID        = "B2_ACCOUNT_ID"
	KeyB2AccountKey       = "B2_ACCOUNT_KEY"
)

// Backend kinds.
const (
	KindLocal = "local"
	KindS3    = "s3"
	KindGCS   = "gcs"
	KindAzure = "azure"
	KindB2    = "b2"
)

// Location is a resolved storage location: the kopia options of exactly
// one backend, built from a Repository's spec.backend and its Secret.
type Location struct {
	Kind       string
	Filesystem *filesystem.Options
	S3         *s3.Options
	GCS        *gcs.Options
	Azure      *azure.Options
	B2         *b2.Options
}

// String describes the location without credentials, for messages.
func (l *Location) String() string {
	switch l.Kind {
	case KindLocal:
		return "local:" + l.Filesystem.Path
	case KindS3:
		scheme := "https://"
		if l.S3.DoNotUseTLS {
			scheme = "http://"
		}
		return "s3:" + scheme + l.S3.Endpoint + "/" + l.S3.BucketName + "/" + l.S3.Prefix
	case KindGCS:
		return "gcs:" + l.GCS.BucketName + ":/" + l.GCS.Prefix
	case KindAzure:
		return "azure:" + l.Azure.Container + ":/" + l.Azure.Prefix
	case KindB2:
		return "b2:" + l.B2.BucketName + ":/" + l.B2.Prefix
	}
	return l.Kind
}

// Password returns the repository's encryption password from its storage
// Secret.
func Password(secret map[string][]byte) (string, error) {
	pw := string(secret[KeyPassword])
	if pw == "" {
		return "", fmt.Errorf("storage Secret has no %s: add the repository's encryption password under that key", KeyPassword)
	}
	return pw, nil
}

// ResolveLocation maps a Repository backend and its Secret's data to kopia
// storage options. It does no I/O. Errors name the field or Secret key at
// fault and never include a secret value.
func Resolve(b stashv1alpha1.Backend, secret map[string][]byte) (*Location, error) {
	var set []string
	if b.Local != nil {
		set = append(set, "local")
	}
	if b.S3 != nil {
		set = append(set, "s3")
	}
	if b.GCS != nil {
		set = append(set, "gcs")
	}
	if b.Azure != nil {
		set = append(set, "azure")
	}
	if b.B2 != nil {
		set = append(set, "b2")
	}
	if b.Swift != nil {
		set = append(set, "swift")
	}
	if b.Rest != nil {
		set = append(set, "rest")
	}
	switch len(set) {
	case 0:
		return nil, errors.New("spec.backend: no backend set: set exactly one of local, s3, gcs, azure, b2")
	case 1:
	default:
		return nil, fmt.Errorf("spec.backend: %s are all set: set exactly one backend", strings.Join(set, ", "))
	}
	str := func(k string) string { return string(secret[k]) }
	switch {
	case b.Local != nil:
		p, err := localPath(b.Local)
		if err != nil {
			return nil, err
		}
		return &Location{Kind: KindLocal, Filesystem: &filesystem.Options{Path: p}}, nil

	case b.S3 != nil:
		if b.S3.Bucket == "" {
			return nil, errors.New("spec.backend.s3.bucket is required: name the bucket that holds the repository")
		}
		if b.S3.Endpoint == "" {
			return nil, errors.New("spec.backend.s3.endpoint is required: use s3.amazonaws.com for AWS, or your MinIO server's URL")
		}
		host, plain, err := s3Endpoint(b.S3.Endpoint)
		if err != nil {
			return nil, err
		}
		id, key := str(KeyAWSAccessKeyID), str(KeyAWSSecretAccessKey)
		if (id == "") != (key == "") {
			return nil, fmt.Errorf("storage Secret has only one of %s and %s: set both, or neither to use the node's IAM role", KeyAWSAccessKeyID, KeyAWSSecretAccessKey)
		}
		return &Location{Kind: KindS3, S3: &s3.Options{
			BucketName:      b.S3.Bucket,
			Prefix:          normalizePrefix(b.S3.Prefix),
			Endpoint:        host,
			DoNotUseTLS:     plain,
			DoNotVerifyTLS:  b.S3.InsecureTLS,
			RootCA:          secret[KeyCACertData],
			AccessKeyID:     id,
			SecretAccessKey: key,
			SessionToken:    str(KeyAWSSessionToken),
			Region:          b.S3.Region,
		}}, nil

	case b.GCS != nil:
		if b.GCS.Bucket == "" {
			return nil, errors.New("spec.backend.gcs.bucket is required: name the bucket that holds the repository")
		}
		o := &gcs.Options{
			BucketName: b.GCS.Bucket,
			Prefix:     normalizePrefix(b.GCS.Prefix),
			Limits:     connectionLimits(b.GCS.MaxConnections),
		}
		if js := secret[KeyGoogleSAJSON]; len(js) > 0 {
			if !json.Valid(js) {
				return nil, fmt.Errorf("storage Secret key %s is not valid JSON: paste the service account's JSON key file", KeyGoogleSAJSON)
			}
			o.ServiceAccountCredentialJSON = json.RawMessage(js)
		}
		return &Location{Kind: KindGCS, GCS: o}, nil

	case b.Azure != nil:
		if b.Azure.Container == "" {
			return nil, errors.New("spec.backend.azure.container is required: name the blob container that holds the repository")
		}
		if str(KeyAzureAccountName) == "" {
			return nil, fmt.Errorf("storage Secret has no %s: add the storage account name", KeyAzureAccountName)
		}
		if str(KeyAzureAccountKey) == "" {
			return nil, fmt.Errorf("storage Secret has no %s: add the storage account key", KeyAzureAccountKey)
		}
		return &Location{Kind: KindAzure, Azure: &azure.Options{
			Container:      b.Azure.Container,
			Prefix:         normalizePrefix(b.Azure.Prefix),
			StorageAccount: str(KeyAzureAccountName),
			StorageKey:     str(KeyAzureAccountKey),
			Limits:         connectionLimits(b.Azure.MaxConnections),
		}}, nil

	case b.B2 != nil:
		if b.B2.Bucket == "" {
			return nil, errors.New("spec.backend.b2.bucket is required: name the bucket that holds the repository")
		}
		for _, k := range []string{KeyB2AccountID, KeyB2AccountKey} {
			if str(k) == "" {
				return nil, fmt.Errorf("storage Secret has no %s: add the Backblaze application key's %s", k, map[string]string{KeyB2AccountID: "keyID", KeyB2AccountKey: "key"}[k])
			}
		}
		return &Location{Kind: KindB2, B2: &b2.Options{
			BucketName: b.B2.Bucket,
			Prefix:     normalizePrefix(b.B2.Prefix),
			KeyID:      str(KeyB2AccountID),
			Key:        str(KeyB2AccountKey),
			Limits:     connectionLimits(b.B2.MaxConnections),
		}}, nil

	case b.Swift != nil:
		return nil, errors.New("spec.backend.swift is not supported: the kopia data mover has no Swift backend; use Swift's S3 API through spec.backend.s3")
	default:
		return nil, errors.New("spec.backend.rest is not supported: a restic REST server stores restic's format; use s3, gcs, azure, b2 or local")
	}
}

// localPath follows Stash outside Kubernetes: a hostPath volume's directory
// joined with subPath, else the container's mountPath.
func localPath(l *stashv1alpha1.LocalSpec) (string, error) {
	if l.HostPath != nil && l.HostPath.Path != "" {
		if strings.Contains(l.SubPath, "..") {
			return "", errors.New("spec.backend.local.subPath must not contain '..': name a directory inside the volume")
		}
		return filepath.Join(l.HostPath.Path, l.SubPath), nil
	}
	if l.MountPath == "" {
		return "", errors.New("spec.backend.local.mountPath is required: set the directory that holds the repository (or a hostPath volume)")
	}
	if !filepath.IsAbs(l.MountPath) {
		return "", fmt.Errorf("spec.backend.local.mountPath %q must be an absolute path", l.MountPath)
	}
	return filepath.Clean(l.MountPath), nil
}

// s3Endpoint splits a Stash endpoint, which may carry a scheme
// ("http://minio:9000") or not ("s3.amazonaws.com"), into host and whether
// to use plain HTTP.
func s3Endpoint(ep string) (host string, plain bool, err error) {
	if !strings.Contains(ep, "://") {
		return strings.TrimSuffix(ep, "/"), false, nil
	}
	u, err := url.Parse(ep)
	if err != nil || u.Host == "" {
		return "", false, fmt.Errorf("spec.backend.s3.endpoint %q is not a URL: use host[:port] or http(s)://host[:port]", ep)
	}
	switch u.Scheme {
	case "http":
		return u.Host, true, nil
	case "https":
		return u.Host, false, nil
	}
	return "", false, fmt.Errorf("spec.backend.s3.endpoint %q has scheme %q: use http or https", ep, u.Scheme)
}

// normalizePrefix makes a Stash prefix ("demo", "/a/b/") a kopia key prefix
// that acts as a directory ("demo/", "a/b/").
func normalizePrefix(p string) string {
	p = strings.Trim(p, "/")
	if p == "" {
		return ""
	}
	return p + "/"
}

func connectionLimits(maxConnections int64) throttling.Limits {
	if maxConnections <= 0 {
		return throttling.Limits{}
	}
	return throttling.Limits{ConcurrentReads: int(maxConnections), ConcurrentWrites: int(maxConnections)}
}
