// Package location turns a Repository's spec.backend and its storage
// Secret into storage options: which backend, where, with which
// credentials. Local, S3, GCS, Azure and B2 resolve to kopia storage
// options; Swift and a restic REST server, which only hold Stash's old
// restic repositories, resolve to this package's own options, read by
// internal/repository/restic. It does no I/O.
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

	// restic REST server: HTTP basic auth (the password is optional).
	// KeyCACertData is the extra root CA of an https server.
	KeyRestUsername = "REST_SERVER_USERNAME"
	KeyRestPassword = "REST_SERVER_PASSWORD"

	// OpenStack Swift, keystone v1 (TempAuth and the like).
	KeySwiftV1Auth = "ST_AUTH"
	KeySwiftV1User = "ST_USER"
	KeySwiftV1Key  = "ST_KEY"
	// OpenStack Swift, keystone v2 and v3.
	KeyOSAuthURL           = "OS_AUTH_URL"
	KeyOSRegionName        = "OS_REGION_NAME"
	KeyOSUsername          = "OS_USERNAME"
	KeyOSPassword          = "OS_PASSWORD"
	KeyOSTenantID          = "OS_TENANT_ID"
	KeyOSTenantName        = "OS_TENANT_NAME"
	KeyOSUserDomainName    = "OS_USER_DOMAIN_NAME"
	KeyOSProjectName       = "OS_PROJECT_NAME"
	KeyOSProjectDomainName = "OS_PROJECT_DOMAIN_NAME"
	// OpenStack Swift, keystone v3 application credentials: by ID, or by
	// name with OS_USERNAME and OS_USER_DOMAIN_NAME.
	KeyOSApplicationCredentialID     = "OS_APPLICATION_CREDENTIAL_ID"
	KeyOSApplicationCredentialSecret = "OS_APPLICATION_CREDENTIAL_SECRET"
	KeyOSApplicationCredentialName   = "OS_APPLICATION_CREDENTIAL_NAME"
	// OpenStack Swift without authentication: a storage URL and a token
	// obtained elsewhere.
	KeyOSStorageURL = "OS_STORAGE_URL"
	KeyOSAuthToken  = "OS_AUTH_TOKEN"
)

// Backend kinds.
const (
	KindLocal = "local"
	KindS3    = "s3"
	KindGCS   = "gcs"
	KindAzure = "azure"
	KindB2    = "b2"
	KindSwift = "swift"
	KindRest  = "rest"
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
	Swift      *SwiftOptions
	Rest       *RestOptions
}

// SwiftOptions is an OpenStack Swift container holding a restic
// repository, and how to authenticate, as restic's swift backend reads its
// environment. Exactly one way to authenticate is set: AuthURL with
// UserName and APIKey (keystone v1, v2 or v3, told apart by the URL),
// AuthURL with an application credential, or StorageURL with AuthToken.
type SwiftOptions struct {
	// Container holds the repository.
	Container string
	// Prefix is the object-name prefix of the repository, without leading
	// or trailing slash; "" is the container's root.
	Prefix string

	// AuthURL is OS_AUTH_URL, else ST_AUTH.
	AuthURL string
	// UserName is OS_USERNAME, else ST_USER.
	UserName string
	// APIKey is OS_PASSWORD, else ST_KEY.
	APIKey string
	// Region is OS_REGION_NAME.
	Region string
	// TenantID is OS_TENANT_ID (keystone v2).
	TenantID string
	// Tenant is OS_PROJECT_NAME, else OS_TENANT_NAME.
	Tenant string
	// Domain is OS_USER_DOMAIN_NAME (keystone v3).
	Domain string
	// TenantDomain is OS_PROJECT_DOMAIN_NAME (keystone v3).
	TenantDomain string

	// ApplicationCredentialID, ApplicationCredentialName and
	// ApplicationCredentialSecret are OS_APPLICATION_CREDENTIAL_*.
	ApplicationCredentialID     string
	ApplicationCredentialName   string
	ApplicationCredentialSecret string

	// StorageURL and AuthToken are OS_STORAGE_URL and OS_AUTH_TOKEN: no
	// authentication request is made when both are set.
	StorageURL string
	AuthToken  string

	// RootCA is CA_CERT_DATA: PEM certificates trusted besides the
	// system's.
	RootCA []byte
}

// RestOptions is a restic REST server repository.
type RestOptions struct {
	// URL is the repository's http(s) URL, without userinfo and without
	// trailing slash.
	URL string
	// Username and Password are REST_SERVER_USERNAME and
	// REST_SERVER_PASSWORD, sent as HTTP basic auth when Username is set.
	Username string
	Password string
	// RootCA is CA_CERT_DATA: PEM certificates trusted besides the
	// system's.
	RootCA []byte
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
	case KindSwift:
		return "swift:" + l.Swift.Container + ":/" + l.Swift.Prefix
	case KindRest:
		return "rest:" + l.Rest.URL
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
		return nil, errors.New("spec.backend: no backend set: set exactly one of local, s3, gcs, azure, b2, swift, rest")
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
		o, err := swiftOptions(b.Swift, secret)
		if err != nil {
			return nil, err
		}
		return &Location{Kind: KindSwift, Swift: o}, nil

	default:
		o, err := restOptions(b.Rest, secret)
		if err != nil {
			return nil, err
		}
		return &Location{Kind: KindRest, Rest: o}, nil
	}
}

// swiftOptions reads the Swift credentials the way restic's swift backend
// reads its environment (an OS_* key wins over its ST_* counterpart), then
// checks that one way to authenticate is complete.
func swiftOptions(sw *stashv1alpha1.SwiftSpec, secret map[string][]byte) (*SwiftOptions, error) {
	if sw.Container == "" {
		return nil, errors.New("spec.backend.swift.container is required: name the Swift container that holds the repository")
	}
	str := func(k string) string { return string(secret[k]) }
	first := func(keys ...string) string {
		for _, k := range keys {
			if v := str(k); v != "" {
				return v
			}
		}
		return ""
	}
	o := &SwiftOptions{
		Container:                   sw.Container,
		Prefix:                      strings.TrimSuffix(normalizePrefix(sw.Prefix), "/"),
		AuthURL:                     first(KeyOSAuthURL, KeySwiftV1Auth),
		UserName:                    first(KeyOSUsername, KeySwiftV1User),
		APIKey:                      first(KeyOSPassword, KeySwiftV1Key),
		Region:                      str(KeyOSRegionName),
		TenantID:                    str(KeyOSTenantID),
		Tenant:                      first(KeyOSProjectName, KeyOSTenantName),
		Domain:                      str(KeyOSUserDomainName),
		TenantDomain:                str(KeyOSProjectDomainName),
		ApplicationCredentialID:     str(KeyOSApplicationCredentialID),
		ApplicationCredentialName:   str(KeyOSApplicationCredentialName),
		ApplicationCredentialSecret: str(KeyOSApplicationCredentialSecret),
		StorageURL:                  str(KeyOSStorageURL),
		AuthToken:                   str(KeyOSAuthToken),
		RootCA:                      secret[KeyCACertData],
	}
	for _, u := range []struct{ v, key string }{{o.AuthURL, KeyOSAuthURL + " or " + KeySwiftV1Auth}, {o.StorageURL, KeyOSStorageURL}} {
		if u.v == "" {
			continue
		}
		if p, err := url.Parse(u.v); err != nil || p.Host == "" || (p.Scheme != "http" && p.Scheme != "https") {
			return nil, fmt.Errorf("storage Secret key %s is not an http(s) URL: set the Swift endpoint, like https://keystone.example.com:5000/v3", u.key)
		}
	}
	if o.StorageURL != "" || o.AuthToken != "" {
		if o.StorageURL == "" || o.AuthToken == "" {
			return nil, fmt.Errorf("storage Secret has only one of %s and %s: set both to use a token obtained elsewhere", KeyOSStorageURL, KeyOSAuthToken)
		}
		return o, nil
	}
	if o.AuthURL == "" {
		return nil, fmt.Errorf("storage Secret has no Swift credentials: set %s, %s and %s (keystone v1), or %s with %s and %s or an application credential (keystone v2/v3), or %s and %s",
			KeySwiftV1Auth, KeySwiftV1User, KeySwiftV1Key, KeyOSAuthURL, KeyOSUsername, KeyOSPassword, KeyOSStorageURL, KeyOSAuthToken)
	}
	if o.ApplicationCredentialID != "" || o.ApplicationCredentialName != "" || o.ApplicationCredentialSecret != "" {
		switch {
		case o.ApplicationCredentialSecret == "":
			return nil, fmt.Errorf("storage Secret has no %s: add the application credential's secret", KeyOSApplicationCredentialSecret)
		case o.ApplicationCredentialID == "" && o.ApplicationCredentialName == "":
			return nil, fmt.Errorf("storage Secret has %s but neither %s nor %s: add the application credential's ID",
				KeyOSApplicationCredentialSecret, KeyOSApplicationCredentialID, KeyOSApplicationCredentialName)
		case o.ApplicationCredentialID == "" && o.UserName == "":
			return nil, fmt.Errorf("storage Secret has %s but no %s: a credential named, not identified, needs its user (and %s)",
				KeyOSApplicationCredentialName, KeyOSUsername, KeyOSUserDomainName)
		}
		return o, nil
	}
	if o.UserName == "" {
		return nil, fmt.Errorf("storage Secret has no %s (or %s): add the Swift user", KeyOSUsername, KeySwiftV1User)
	}
	if o.APIKey == "" {
		return nil, fmt.Errorf("storage Secret has no %s (or %s): add the Swift user's password or key", KeyOSPassword, KeySwiftV1Key)
	}
	return o, nil
}

// restOptions checks a REST server URL and takes its basic-auth
// credentials from the Secret, never from the URL.
func restOptions(r *stashv1alpha1.RestServerSpec, secret map[string][]byte) (*RestOptions, error) {
	if r.URL == "" {
		return nil, errors.New("spec.backend.rest.url is required: set the repository's URL on the REST server, like http://rest-server:8000/repo")
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		return nil, errors.New("spec.backend.rest.url is not a URL: set the repository's URL on the REST server, like http://rest-server:8000/repo")
	}
	if u.User != nil {
		return nil, fmt.Errorf("spec.backend.rest.url has credentials in it: remove them from the URL and put them in the storage Secret as %s and %s", KeyRestUsername, KeyRestPassword)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("spec.backend.rest.url %q must be http(s)://host[:port]/path", u.String())
	}
	if u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
		return nil, fmt.Errorf("spec.backend.rest.url %q must have no query or fragment: set http(s)://host[:port]/path", u.String())
	}
	user, pw := string(secret[KeyRestUsername]), string(secret[KeyRestPassword])
	if user == "" && pw != "" {
		return nil, fmt.Errorf("storage Secret has %s but no %s: add the user the password belongs to", KeyRestPassword, KeyRestUsername)
	}
	u.Path, u.RawPath = strings.TrimRight(u.Path, "/"), strings.TrimRight(u.RawPath, "/")
	return &RestOptions{URL: u.String(), Username: user, Password: pw, RootCA: secret[KeyCACertData]}, nil
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
