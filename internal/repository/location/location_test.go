package location

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
)

func TestResolveLocation(t *testing.T) {
	creds := map[string][]byte{
		KeyPassword: []byte("pw"), KeyAWSAccessKeyID: []byte("AKID"), KeyAWSSecretAccessKey: []byte("SECRETKEY"),
		KeyCACertData: []byte("PEM"), KeyGoogleSAJSON: []byte(`{"type":"service_account"}`),
		KeyAzureAccountName: []byte("acct"), KeyAzureAccountKey: []byte("AZKEY"),
		KeyB2AccountID: []byte("b2id"), KeyB2AccountKey: []byte("B2KEY"),
	}
	tests := []struct {
		name    string
		backend stashv1alpha1.Backend
		secret  map[string][]byte
		check   func(t *testing.T, l *Location)
		wantErr string
	}{
		{
			name: "local hostPath joined with subPath",
			backend: stashv1alpha1.Backend{Local: &stashv1alpha1.LocalSpec{
				VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/data/stash"}},
				MountPath:    "/safe/data", SubPath: "demo",
			}},
			check: func(t *testing.T, l *Location) {
				if l.Kind != KindLocal || l.Filesystem.Path != "/data/stash/demo" {
					t.Errorf("got %s %q", l.Kind, l.Filesystem.Path)
				}
			},
		},
		{
			name: "local other volume uses mountPath",
			backend: stashv1alpha1.Backend{Local: &stashv1alpha1.LocalSpec{
				VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "c"}},
				MountPath:    "/safe/data/", SubPath: "x",
			}},
			check: func(t *testing.T, l *Location) {
				if l.Filesystem.Path != "/safe/data" {
					t.Errorf("path %q", l.Filesystem.Path)
				}
			},
		},
		{
			name:    "local without mountPath",
			backend: stashv1alpha1.Backend{Local: &stashv1alpha1.LocalSpec{}},
			wantErr: "spec.backend.local.mountPath is required",
		},
		{
			name:    "local relative mountPath",
			backend: stashv1alpha1.Backend{Local: &stashv1alpha1.LocalSpec{MountPath: "data"}},
			wantErr: "must be an absolute path",
		},
		{
			name: "local subPath escaping",
			backend: stashv1alpha1.Backend{Local: &stashv1alpha1.LocalSpec{
				VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/d"}}, SubPath: "../etc",
			}},
			wantErr: "subPath must not contain '..'",
		},
		{
			name:    "s3 http endpoint",
			backend: stashv1alpha1.Backend{S3: &stashv1alpha1.S3Spec{Endpoint: "http://minio.storage:9000", Bucket: "b", Prefix: "/demo/pg/", Region: "us-east-1", InsecureTLS: true}},
			secret:  creds,
			check: func(t *testing.T, l *Location) {
				o := l.S3
				if o.Endpoint != "minio.storage:9000" || !o.DoNotUseTLS || !o.DoNotVerifyTLS || o.BucketName != "b" ||
					o.Prefix != "demo/pg/" || o.Region != "us-east-1" || o.AccessKeyID != "AKID" ||
					o.SecretAccessKey != "SECRETKEY" || string(o.RootCA) != "PEM" {
					t.Errorf("options %+v", o)
				}
			},
		},
		{
			name:    "s3 aws endpoint without scheme uses TLS",
			backend: stashv1alpha1.Backend{S3: &stashv1alpha1.S3Spec{Endpoint: "s3.amazonaws.com", Bucket: "b"}},
			secret:  map[string][]byte{KeyPassword: []byte("pw")},
			check: func(t *testing.T, l *Location) {
				if l.S3.Endpoint != "s3.amazonaws.com" || l.S3.DoNotUseTLS || l.S3.Prefix != "" || l.S3.AccessKeyID != "" {
					t.Errorf("options %+v", l.S3)
				}
			},
		},
		{
			name:    "s3 https endpoint",
			backend: stashv1alpha1.Backend{S3: &stashv1alpha1.S3Spec{Endpoint: "https://s3.example.com/", Bucket: "b"}},
			check: func(t *testing.T, l *Location) {
				if l.S3.Endpoint != "s3.example.com" || l.S3.DoNotUseTLS {
					t.Errorf("options %+v", l.S3)
				}
			},
		},
		{
			name:    "s3 bad scheme",
			backend: stashv1alpha1.Backend{S3: &stashv1alpha1.S3Spec{Endpoint: "ftp://x", Bucket: "b"}},
			wantErr: `has scheme "ftp"`,
		},
		{
			name:    "s3 missing bucket",
			backend: stashv1alpha1.Backend{S3: &stashv1alpha1.S3Spec{Endpoint: "s3.amazonaws.com"}},
			wantErr: "spec.backend.s3.bucket is required",
		},
		{
			name:    "s3 missing endpoint",
			backend: stashv1alpha1.Backend{S3: &stashv1alpha1.S3Spec{Bucket: "b"}},
			wantErr: "spec.backend.s3.endpoint is required",
		},
		{
			name:    "s3 half credentials",
			backend: stashv1alpha1.Backend{S3: &stashv1alpha1.S3Spec{Endpoint: "s3.amazonaws.com", Bucket: "b"}},
			secret:  map[string][]byte{KeyAWSAccessKeyID: []byte("AKID")},
			wantErr: "only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
		},
		{
			name:    "gcs",
			backend: stashv1alpha1.Backend{GCS: &stashv1alpha1.GCSSpec{Bucket: "g", Prefix: "p", MaxConnections: 8}},
			secret:  creds,
			check: func(t *testing.T, l *Location) {
				o := l.GCS
				if o.BucketName != "g" || o.Prefix != "p/" || string(o.ServiceAccountCredentialJSON) != `{"type":"service_account"}` ||
					o.Limits.ConcurrentReads != 8 || o.Limits.ConcurrentWrites != 8 {
					t.Errorf("options %+v", o)
				}
			},
		},
		{
			name:    "gcs bad json key",
			backend: stashv1alpha1.Backend{GCS: &stashv1alpha1.GCSSpec{Bucket: "g"}},
			secret:  map[string][]byte{KeyGoogleSAJSON: []byte("not json SECRET")},
			wantErr: "GOOGLE_SERVICE_ACCOUNT_JSON_KEY is not valid JSON",
		},
		{
			name:    "azure",
			backend: stashv1alpha1.Backend{Azure: &stashv1alpha1.AzureSpec{Container: "c", Prefix: "x/y", MaxConnections: 3}},
			secret:  creds,
			check: func(t *testing.T, l *Location) {
				o := l.Azure
				if o.Container != "c" || o.Prefix != "x/y/" || o.StorageAccount != "acct" || o.StorageKey != "AZKEY" || o.Limits.ConcurrentWrites != 3 {
					t.Errorf("options %+v", o)
				}
			},
		},
		{
			name:    "azure missing key",
			backend: stashv1alpha1.Backend{Azure: &stashv1alpha1.AzureSpec{Container: "c"}},
			secret:  map[string][]byte{KeyAzureAccountName: []byte("acct")},
			wantErr: "storage Secret has no AZURE_ACCOUNT_KEY",
		},
		{
			name:    "azure missing container",
			backend: stashv1alpha1.Backend{Azure: &stashv1alpha1.AzureSpec{}},
			wantErr: "spec.backend.azure.container is required",
		},
		{
			name:    "b2",
			backend: stashv1alpha1.Backend{B2: &stashv1alpha1.B2Spec{Bucket: "bb", MaxConnections: 2}},
			secret:  creds,
			check: func(t *testing.T, l *Location) {
				o := l.B2
				if o.BucketName != "bb" || o.KeyID != "b2id" || o.Key != "B2KEY" || o.Limits.ConcurrentReads != 2 {
					t.Errorf("options %+v", o)
				}
			},
		},
		{
			name:    "b2 missing account id",
			backend: stashv1alpha1.Backend{B2: &stashv1alpha1.B2Spec{Bucket: "bb"}},
			secret:  map[string][]byte{KeyB2AccountKey: []byte("B2KEY")},
			wantErr: "storage Secret has no B2_ACCOUNT_ID",
		},
		{
			name:    "no backend",
			backend: stashv1alpha1.Backend{StorageSecretName: "s"},
			wantErr: "no backend set",
		},
		{
			name: "two backends",
			backend: stashv1alpha1.Backend{
				S3: &stashv1alpha1.S3Spec{Endpoint: "e", Bucket: "b"}, GCS: &stashv1alpha1.GCSSpec{Bucket: "g"},
			},
			wantErr: "s3, gcs are all set",
		},
		{
			name:    "swift keystone v1",
			backend: stashv1alpha1.Backend{Swift: &stashv1alpha1.SwiftSpec{Container: "c", Prefix: "/demo/app/"}},
			secret:  map[string][]byte{KeySwiftV1Auth: []byte("http://swift:8080/auth/v1.0"), KeySwiftV1User: []byte("test:tester"), KeySwiftV1Key: []byte("STKEYVALUE"), KeyCACertData: []byte("PEM")},
			check: func(t *testing.T, l *Location) {
				o := l.Swift
				if l.Kind != KindSwift || o.Container != "c" || o.Prefix != "demo/app" || o.AuthURL != "http://swift:8080/auth/v1.0" ||
					o.UserName != "test:tester" || o.APIKey != "STKEYVALUE" || string(o.RootCA) != "PEM" || o.StorageURL != "" {
					t.Errorf("options %+v", o)
				}
				if l.String() != "swift:c:/demo/app" {
					t.Errorf("String() = %q", l.String())
				}
			},
		},
		{
			name:    "swift root of the container",
			backend: stashv1alpha1.Backend{Swift: &stashv1alpha1.SwiftSpec{Container: "c", Prefix: "/"}},
			secret:  map[string][]byte{KeySwiftV1Auth: []byte("https://swift/auth/v1.0"), KeySwiftV1User: []byte("u"), KeySwiftV1Key: []byte("STKEYVALUE")},
			check: func(t *testing.T, l *Location) {
				if l.Swift.Prefix != "" || l.String() != "swift:c:/" {
					t.Errorf("prefix %q, String() %q", l.Swift.Prefix, l.String())
				}
			},
		},
		{
			name:    "swift keystone v3 wins over v1 keys",
			backend: stashv1alpha1.Backend{Swift: &stashv1alpha1.SwiftSpec{Container: "c", Prefix: "p"}},
			secret: map[string][]byte{
				KeyOSAuthURL: []byte("https://keystone:5000/v3"), KeyOSUsername: []byte("alice"), KeyOSPassword: []byte("OSPASSVALUE"),
				KeyOSRegionName: []byte("RegionOne"), KeyOSUserDomainName: []byte("Default"), KeyOSProjectName: []byte("proj"),
				KeyOSProjectDomainName: []byte("pdom"), KeyOSTenantName: []byte("tenant"), KeyOSTenantID: []byte("tid"),
				KeySwiftV1Auth: []byte("http://old/auth/v1.0"), KeySwiftV1User: []byte("bob"), KeySwiftV1Key: []byte("STKEYVALUE"),
			},
			check: func(t *testing.T, l *Location) {
				o := l.Swift
				if o.AuthURL != "https://keystone:5000/v3" || o.UserName != "alice" || o.APIKey != "OSPASSVALUE" || o.Region != "RegionOne" ||
					o.Domain != "Default" || o.Tenant != "proj" || o.TenantDomain != "pdom" || o.TenantID != "tid" {
					t.Errorf("options %+v", o)
				}
			},
		},
		{
			name:    "swift keystone v2 tenant name",
			backend: stashv1alpha1.Backend{Swift: &stashv1alpha1.SwiftSpec{Container: "c"}},
			secret: map[string][]byte{KeyOSAuthURL: []byte("https://keystone:5000/v2.0"), KeyOSUsername: []byte("alice"),
				KeyOSPassword: []byte("OSPASSVALUE"), KeyOSTenantName: []byte("tenant")},
			check: func(t *testing.T, l *Location) {
				if l.Swift.Tenant != "tenant" || l.Swift.Prefix != "" {
					t.Errorf("options %+v", l.Swift)
				}
			},
		},
		{
			name:    "swift application credential by ID",
			backend: stashv1alpha1.Backend{Swift: &stashv1alpha1.SwiftSpec{Container: "c"}},
			secret: map[string][]byte{KeyOSAuthURL: []byte("https://keystone:5000/v3"), KeyOSApplicationCredentialID: []byte("acid"),
				KeyOSApplicationCredentialSecret: []byte("ACSECRETVALUE")},
			check: func(t *testing.T, l *Location) {
				if l.Swift.ApplicationCredentialID != "acid" || l.Swift.ApplicationCredentialSecret != "ACSECRETVALUE" || l.Swift.UserName != "" {
					t.Errorf("options %+v", l.Swift)
				}
			},
		},
		{
			name:    "swift application credential by name without user",
			backend: stashv1alpha1.Backend{Swift: &stashv1alpha1.SwiftSpec{Container: "c"}},
			secret: map[string][]byte{KeyOSAuthURL: []byte("https://keystone:5000/v3"), KeyOSApplicationCredentialName: []byte("acname"),
				KeyOSApplicationCredentialSecret: []byte("ACSECRETVALUE")},
			wantErr: "storage Secret has OS_APPLICATION_CREDENTIAL_NAME but no OS_USERNAME",
		},
		{
			name:    "swift application credential without secret",
			backend: stashv1alpha1.Backend{Swift: &stashv1alpha1.SwiftSpec{Container: "c"}},
			secret:  map[string][]byte{KeyOSAuthURL: []byte("https://keystone:5000/v3"), KeyOSApplicationCredentialID: []byte("acid")},
			wantErr: "storage Secret has no OS_APPLICATION_CREDENTIAL_SECRET",
		},
		{
			name:    "swift storage URL and token",
			backend: stashv1alpha1.Backend{Swift: &stashv1alpha1.SwiftSpec{Container: "c"}},
			secret:  map[string][]byte{KeyOSStorageURL: []byte("https://swift:8080/v1/AUTH_x"), KeyOSAuthToken: []byte("TOKENVALUE")},
			check: func(t *testing.T, l *Location) {
				if l.Swift.StorageURL != "https://swift:8080/v1/AUTH_x" || l.Swift.AuthToken != "TOKENVALUE" || l.Swift.AuthURL != "" {
					t.Errorf("options %+v", l.Swift)
				}
			},
		},
		{
			name:    "swift token without storage URL",
			backend: stashv1alpha1.Backend{Swift: &stashv1alpha1.SwiftSpec{Container: "c"}},
			secret:  map[string][]byte{KeyOSAuthToken: []byte("TOKENVALUE")},
			wantErr: "only one of OS_STORAGE_URL and OS_AUTH_TOKEN",
		},
		{
			name:    "swift missing container",
			backend: stashv1alpha1.Backend{Swift: &stashv1alpha1.SwiftSpec{Prefix: "p"}},
			secret:  map[string][]byte{KeySwiftV1Auth: []byte("http://swift/auth/v1.0"), KeySwiftV1User: []byte("u"), KeySwiftV1Key: []byte("STKEYVALUE")},
			wantErr: "spec.backend.swift.container is required",
		},
		{
			name:    "swift without credentials",
			backend: stashv1alpha1.Backend{Swift: &stashv1alpha1.SwiftSpec{Container: "c"}},
			secret:  map[string][]byte{KeyPassword: []byte("pw")},
			wantErr: "storage Secret has no Swift credentials: set ST_AUTH, ST_USER and ST_KEY",
		},
		{
			name:    "swift v1 without key",
			backend: stashv1alpha1.Backend{Swift: &stashv1alpha1.SwiftSpec{Container: "c"}},
			secret:  map[string][]byte{KeySwiftV1Auth: []byte("http://swift/auth/v1.0"), KeySwiftV1User: []byte("u")},
			wantErr: "storage Secret has no OS_PASSWORD (or ST_KEY)",
		},
		{
			name:    "swift auth URL not a URL",
			backend: stashv1alpha1.Backend{Swift: &stashv1alpha1.SwiftSpec{Container: "c"}},
			secret:  map[string][]byte{KeyOSAuthURL: []byte("keystone-SECRETHOST"), KeyOSUsername: []byte("u"), KeyOSPassword: []byte("OSPASSVALUE")},
			wantErr: "storage Secret key OS_AUTH_URL or ST_AUTH is not an http(s) URL",
		},
		{
			name:    "rest without auth",
			backend: stashv1alpha1.Backend{Rest: &stashv1alpha1.RestServerSpec{URL: "http://rest-server.demo.svc:8000/stash-backup-demo/"}},
			secret:  map[string][]byte{KeyPassword: []byte("pw")},
			check: func(t *testing.T, l *Location) {
				o := l.Rest
				if l.Kind != KindRest || o.URL != "http://rest-server.demo.svc:8000/stash-backup-demo" || o.Username != "" || o.Password != "" || o.RootCA != nil {
					t.Errorf("options %+v", o)
				}
				if l.String() != "rest:http://rest-server.demo.svc:8000/stash-backup-demo" {
					t.Errorf("String() = %q", l.String())
				}
			},
		},
		{
			name:    "rest https with basic auth and CA",
			backend: stashv1alpha1.Backend{Rest: &stashv1alpha1.RestServerSpec{URL: "https://rest:8000"}},
			secret:  map[string][]byte{KeyRestUsername: []byte("alice"), KeyRestPassword: []byte("RESTPWVALUE"), KeyCACertData: []byte("PEM")},
			check: func(t *testing.T, l *Location) {
				o := l.Rest
				if o.URL != "https://rest:8000" || o.Username != "alice" || o.Password != "RESTPWVALUE" || string(o.RootCA) != "PEM" {
					t.Errorf("options %+v", o)
				}
			},
		},
		{
			name:    "rest username without password",
			backend: stashv1alpha1.Backend{Rest: &stashv1alpha1.RestServerSpec{URL: "http://rest:8000/r"}},
			secret:  map[string][]byte{KeyRestUsername: []byte("alice")},
			check: func(t *testing.T, l *Location) {
				if l.Rest.Username != "alice" || l.Rest.Password != "" {
					t.Errorf("options %+v", l.Rest)
				}
			},
		},
		{
			name:    "rest password without username",
			backend: stashv1alpha1.Backend{Rest: &stashv1alpha1.RestServerSpec{URL: "http://rest:8000/r"}},
			secret:  map[string][]byte{KeyRestPassword: []byte("RESTPWVALUE")},
			wantErr: "storage Secret has REST_SERVER_PASSWORD but no REST_SERVER_USERNAME",
		},
		{
			name:    "rest credentials in the URL",
			backend: stashv1alpha1.Backend{Rest: &stashv1alpha1.RestServerSpec{URL: "http://alice:URLPASSWORD@rest:8000/r"}},
			wantErr: "spec.backend.rest.url has credentials in it: remove them from the URL and put them in the storage Secret as REST_SERVER_USERNAME and REST_SERVER_PASSWORD",
		},
		{
			name:    "rest ftp URL",
			backend: stashv1alpha1.Backend{Rest: &stashv1alpha1.RestServerSpec{URL: "ftp://rest/r"}},
			wantErr: `spec.backend.rest.url "ftp://rest/r" must be http(s)`,
		},
		{
			name:    "rest URL without scheme",
			backend: stashv1alpha1.Backend{Rest: &stashv1alpha1.RestServerSpec{URL: "rest:8000/r"}},
			wantErr: "must be http(s)",
		},
		{
			name:    "rest URL with a query",
			backend: stashv1alpha1.Backend{Rest: &stashv1alpha1.RestServerSpec{URL: "http://rest:8000/r?x=1"}},
			wantErr: "must have no query or fragment",
		},
		{
			name:    "rest missing URL",
			backend: stashv1alpha1.Backend{Rest: &stashv1alpha1.RestServerSpec{}},
			wantErr: "spec.backend.rest.url is required",
		},
		{
			name: "swift and rest",
			backend: stashv1alpha1.Backend{
				Swift: &stashv1alpha1.SwiftSpec{Container: "c"}, Rest: &stashv1alpha1.RestServerSpec{URL: "http://rest:8000"},
			},
			wantErr: "swift, rest are all set",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Resolve(tt.backend, tt.secret)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				for _, v := range tt.secret {
					if len(v) > 3 && strings.Contains(err.Error(), string(v)) {
						t.Errorf("error leaks a secret value: %v", err)
					}
				}
				if strings.Contains(err.Error(), "URLPASSWORD") {
					t.Errorf("error leaks the password of a URL: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, l)
			for _, v := range []string{"SECRETKEY", "AZKEY", "B2KEY", "STKEYVALUE", "OSPASSVALUE", "ACSECRETVALUE", "TOKENVALUE", "RESTPWVALUE"} {
				if strings.Contains(l.String(), v) {
					t.Errorf("location string leaks a secret: %s", l)
				}
			}
		})
	}
}

func TestPassword(t *testing.T) {
	if _, err := Password(map[string][]byte{}); err == nil || !strings.Contains(err.Error(), "RESTIC_PASSWORD") {
		t.Fatalf("missing password: %v", err)
	}
	pw, err := Password(map[string][]byte{KeyPassword: []byte("x")})
	if err != nil || pw != "x" {
		t.Fatalf("got %q, %v", pw, err)
	}
}
