package location

import (
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	stashv1alpha1 "github.com/stash-backup/stash/api/stash/v1alpha1"
)

// FuzzResolveLocation turns a Repository backend and its storage Secret
// into a location, for each backend kind. What ResolveLocation promises
// must hold for any input: an error names the spec.backend field or the
// Secret key at fault; neither an error nor the location's description
// ever holds a Secret value; and a local hostPath location stays inside
// the hostPath.
func FuzzResolveLocation(f *testing.F) {
	f.Add(uint8(0), "b", "demo/app", "s3.amazonaws.com", "", "AKIAEXAMPLE", "wJalrXUtnFEMI")
	f.Add(uint8(0), "b", "/a/b/", "http://minio:9000", "", "minio", "")
	f.Add(uint8(0), "b", "", "ftp://x", "", "id", "key")
	f.Add(uint8(0), "b", "", "http://user:pass@minio:9000", "", "", "")
	f.Add(uint8(1), "g", "p", "", "", `{"type":"service_account"}`, "")
	f.Add(uint8(1), "g", "p", "", "", `{not json secret`, "")
	f.Add(uint8(2), "c", "p", "", "", "account", "accountkey")
	f.Add(uint8(3), "b", "p", "", "", "keyid", "")
	f.Add(uint8(4), "", "", "", "sub/dir", "", "")
	f.Add(uint8(4), "", "", "", "../../etc", "", "")
	f.Add(uint8(5), "", "", "", "", "", "")
	f.Add(uint8(6), "", "relative/mount", "", "", "", "")
	f.Fuzz(func(t *testing.T, kind uint8, bucket, prefix, endpoint, subPath, secretA, secretB string) {
		var b stashv1alpha1.Backend
		secret := map[string][]byte{}
		switch kind % 7 {
		case 0:
			b.S3 = &stashv1alpha1.S3Spec{Bucket: bucket, Prefix: prefix, Endpoint: endpoint}
			secret[KeyAWSAccessKeyID], secret[KeyAWSSecretAccessKey] = []byte(secretA), []byte(secretB)
		case 1:
			b.GCS = &stashv1alpha1.GCSSpec{Bucket: bucket, Prefix: prefix}
			secret[KeyGoogleSAJSON] = []byte(secretA)
		case 2:
			b.Azure = &stashv1alpha1.AzureSpec{Container: bucket, Prefix: prefix}
			secret[KeyAzureAccountName], secret[KeyAzureAccountKey] = []byte(secretA), []byte(secretB)
		case 3:
			b.B2 = &stashv1alpha1.B2Spec{Bucket: bucket, Prefix: prefix}
			secret[KeyB2AccountID], secret[KeyB2AccountKey] = []byte(secretA), []byte(secretB)
		case 4:
			b.Local = &stashv1alpha1.LocalSpec{MountPath: "/repo", SubPath: subPath,
				VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/backups"}}}
		case 5:
			// Two backends at once.
			b.S3 = &stashv1alpha1.S3Spec{Bucket: bucket, Endpoint: endpoint}
			b.GCS = &stashv1alpha1.GCSSpec{Bucket: bucket}
		case 6:
			b.Local = &stashv1alpha1.LocalSpec{MountPath: prefix}
		}
		secret[KeyPassword] = []byte(secretB)
		spec := strings.Join([]string{bucket, prefix, endpoint, subPath, "/srv/backups", "/repo"}, "\x00")
		// A Secret value counts as leaked only when it is long enough to
		// mean something and is not also spelled in the spec or in the
		// fixed text of a message.
		leaks := func(s string) string {
			for _, raw := range secret {
				v := string(raw)
				if len(v) >= 6 && strings.Contains(s, v) && !strings.Contains(spec, v) && !strings.Contains(locationMessages, v) {
					return v
				}
			}
			return ""
		}
		loc, err := Resolve(b, secret)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "spec.backend") && !strings.HasPrefix(msg, "storage Secret") {
				t.Fatalf("error names neither a field nor a Secret key: %q", msg)
			}
			if v := leaks(msg); v != "" {
				t.Fatalf("error holds the Secret value %q: %q", v, msg)
			}
			return
		}
		if v := leaks(loc.String()); v != "" {
			t.Fatalf("location %q holds the Secret value %q", loc.String(), v)
		}
		if kind%7 == 4 {
			rel, err := filepath.Rel("/srv/backups", loc.Filesystem.Path)
			if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
				t.Fatalf("subPath %q leads out of the hostPath: %s", subPath, loc.Filesystem.Path)
			}
		}
		if kind%7 == 5 {
			t.Fatal("two backends were accepted")
		}
	})
}

// locationMessages is the fixed text ResolveLocation's messages are made
// of, so that a Secret value that is an ordinary word of them ("bucket")
// does not count as leaked.
const locationMessages = "spec.backend: no backend set: set exactly one of local, s3, gcs, azure, b2 are all set: set exactly one backend " +
	"is required: name the bucket that holds the repository use s3.amazonaws.com for AWS, or your MinIO server's URL " +
	"is not a URL: use host[:port] or http(s)://host[:port] has scheme use http or https storage Secret has only one of " +
	"set both, or neither to use the node's IAM role is not valid JSON: paste the service account's JSON key file " +
	"storage Secret has no add the storage account name add the storage account key add the Backblaze application key's keyID key " +
	"name the blob container that holds the repository must not contain '..': name a directory inside the volume " +
	"spec.backend.local.mountPath is required: set the directory that holds the repository (or a hostPath volume) must be an absolute path " +
	"AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY GOOGLE_SERVICE_ACCOUNT_JSON_KEY AZURE_ACCOUNT_NAME AZURE_ACCOUNT_KEY B2_ACCOUNT_ID B2_ACCOUNT_KEY " +
	"local: s3:https:// s3:http:// gcs: azure: b2: :/"
