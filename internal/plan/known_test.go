package plan

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestKnownVariables: every variable the resolver sets is known, whatever
// the session (restore or backup, backend, retention), and the names
// Stash defines but this project does not provide are not.
func TestKnownVariables(t *testing.T) {
	for _, tc := range []struct {
		name  string
		known bool
	}{
		{"NAMESPACE", true},
		{"BACKUP_SESSION", true},
		{"RESTORE_SESSION", true},
		{"INVOKER_KIND", true},
		{"INVOKER_NAME", true},
		{"HOSTNAME", true},
		{"SOURCE_HOSTNAME", true},
		{"TARGET_NAME", true},
		{"TARGET_KIND", true},
		{"TARGET_API_VERSION", true},
		{"TARGET_NAMESPACE", true},
		{"TARGET_PATHS", true},
		{"TARGET_MOUNT_PATH", true},
		{"TARGET_APP_REPLICAS", true},
		{"EXCLUDE_PATTERNS", true},
		{"INCLUDE_PATTERNS", true},
		{"DRIVER_ARGS", true},
		{"RESTORE_PATHS", true},
		{"RESTORE_SNAPSHOTS", true},
		{"REPOSITORY_NAME", true},
		{"REPOSITORY_NAMESPACE", true},
		{"REPOSITORY_PROVIDER", true},
		{"REPOSITORY_SECRET_NAME", true},
		{"REPOSITORY_SECRET_NAMESPACE", true},
		{"REPOSITORY_BUCKET", true},
		{"REPOSITORY_PREFIX", true},
		{"REPOSITORY_ENDPOINT", true}, // s3 and rest only
		{"REPOSITORY_REGION", true},   // s3 only
		{"REPOSITORY_INSECURE_TLS", true},
		{"MAX_CONNECTIONS", true},
		{"RETENTION_KEEP_LAST", true}, // only when set
		{"RETENTION_KEEP_HOURLY", true},
		{"RETENTION_KEEP_DAILY", true},
		{"RETENTION_KEEP_WEEKLY", true},
		{"RETENTION_KEEP_MONTHLY", true},
		{"RETENTION_KEEP_YEARLY", true},
		{"RETENTION_KEEP_TAGS", true},
		{"RETENTION_PRUNE", true},
		{"RETENTION_DRY_RUN", true},
		{"ENABLE_CACHE", true},
		{"INTERIM_DATA_DIR", true},
		{"STASH_DOCKER_REGISTRY", true},
		{"STASH_DOCKER_IMAGE", true},
		{"STASH_IMAGE_TAG", true},
		{"PROMETHEUS_JOB_NAME", true},
		{"ADDON_IMAGE", true},
		{"POD_ORDINAL", true},
		// Stash's, not provided here.
		{"PROMETHEUS_PUSHGATEWAY_URL", false},
		{"LICENSE_APISERVICE", false},
		{"HOOK_TYPE", false},
		{"REPOSITORY_URL", false},
		// Container environment, not template variables.
		{"POD_NAME", false},
		{"NODE_NAME", false},
		// Commonly guessed, never defined.
		{"REPO_BUCKET", false},
		{"SECRET_VOLUME", false},
		// Parameters.
		{"outputDir", false},
	} {
		if got := IsKnownVariable(tc.name); got != tc.known {
			t.Errorf("IsKnownVariable(%s) = %v, want %v", tc.name, got, tc.known)
		}
	}
	list := KnownVariables()
	if !slices.IsSorted(list) {
		t.Errorf("KnownVariables not sorted: %v", list)
	}
	for _, n := range list {
		if !IsKnownVariable(n) {
			t.Errorf("%s listed but not known", n)
		}
	}
	// Whatever a session, Variables sets only known names.
	for _, in := range []Invocation{{}, {Restore: true, Interim: true}} {
		for n := range Variables(in) {
			if !IsKnownVariable(n) {
				t.Errorf("Variables sets %s, which is not known", n)
			}
		}
	}
}

func TestUnresolved(t *testing.T) {
	vars := map[string]string{"SET": "v", "EMPTY": ""}
	for _, tc := range []struct {
		in      string
		want    []string
		syntax  bool
		comment string
	}{
		{"plain", nil, false, "no placeholder"},
		{"${SET}-${EMPTY}", nil, false, "set, even empty"},
		{"${A}/${b}/${A}", []string{"A", "b"}, false, "each once, sorted"},
		{"${a:=d} ${a:-d} ${a=d} ${a-d} ${a:+x} ${a+x} ${a:=}", nil, false, "defaults"},
		{"$${a} $${B}", nil, false, "escaped"},
		{"$HOME ${SET}", nil, false, "a bare $NAME is the shell's"},
		{"${a:=${b}}", []string{"b"}, false, "a used default's placeholder"},
		{"${SET:=${b}}", nil, false, "an unused default's placeholder"},
		{"${EMPTY:=${b:=x}}", nil, false, "a nested default"},
		{"${a:?give a} ${B:?} ${c}", []string{"B", "a", "c"}, false, "required"},
		{"${EMPTY:?}", []string{"EMPTY"}, false, "required and empty"},
		{"${a", nil, true, "unterminated"},
		{"${a:*x}", nil, true, "unknown operator"},
	} {
		got, err := Unresolved(tc.in, vars)
		var se *SyntaxError
		if tc.syntax != errors.As(err, &se) || (!tc.syntax && err != nil) {
			t.Errorf("%s: Unresolved(%q) error %v", tc.comment, tc.in, err)
			continue
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%s: Unresolved(%q) = %v, want %v", tc.comment, tc.in, got, tc.want)
		}
	}
	if _, ok := vars["a"]; ok || len(vars) != 2 {
		t.Errorf("vars changed: %v", vars)
	}
}
