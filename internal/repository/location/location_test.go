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
			name:    "swift unsupported",
			backend: stashv1alpha1.Backend{Swift: &stashv1alpha1.SwiftSpec{Container: "c"}},
			wantErr: "spec.backend.swift is not supported",
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
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, l)
			for _, v := range []string{"SECRETKEY", "AZKEY", "B2KEY"} {
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
