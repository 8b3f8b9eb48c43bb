package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSharedRepositoryInvokers: BackupConfigurations writing the same host
// and path into one Repository. Each one's retention decides its own
// snapshots only, a keepTags-only policy keeps the snapshot just taken, and
// a restore of latest takes the newest and warns, in its log, output.json
// and the RestoreSession's status, that several invokers' snapshots
// matched.
func TestSharedRepositoryInvokers(t *testing.T) {
	dir := t.TempDir()
	writeManifest(t, dir, `apiVersion: v1
kind: Secret
metadata: {name: repo-secret, namespace: demo}
stringData: {RESTIC_PASSWORD: e2e}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: repo, namespace: demo}
spec:
  backend:
    storageSecretName: repo-secret
    local: {mountPath: /safe/data, hostPath: {path: `+dir+`}, subPath: repo}
`)
	data := filepath.Join(t.TempDir(), "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	common := []string{"--provider=local", "--bucket=" + dir, "--path=repo", "--storage-secret-name=repo-secret", "--namespace=demo",
		"--scratch-dir=" + t.TempDir(), "--output-dir=" + out, "-f", dir, "--hostname=host-0", "--backup-paths=" + data}
	backup := func(invoker, content string, policy ...string) string {
		t.Helper()
		if err := os.WriteFile(filepath.Join(data, "f.txt"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		args := append([]string{"backup-pvc", "--invoker-kind=BackupConfiguration", "--invoker-name=" + invoker, "--backupsession=" + invoker + "-" + content}, policy...)
		mustRun(t, nil, append(args, common...)...)
		o := readOutput(t, out)
		hs := o["hostBackupStats"].([]any)[0].(map[string]any)
		if hs["phase"] != "Succeeded" || o["retention"] == nil {
			t.Fatalf("backup of %s: %v", invoker, o)
		}
		if ret := o["retention"].(map[string]any); ret["error"] != nil {
			t.Fatalf("retention of %s: %v", invoker, ret)
		}
		return hs["snapshots"].([]any)[0].(map[string]any)["name"].(string)
	}
	// Two invokers, keepLast 1 each, taking turns.
	backup("a", "a1", "--retention-keep-last=1")
	backup("b", "b1", "--retention-keep-last=1")
	a2 := backup("a", "a2", "--retention-keep-last=1")
	b2 := backup("b", "b2", "--retention-keep-last=1")
	// A third keeps only tagged snapshots: its own newest stays anyway.
	backup("c", "c1", "--retention-keep-tags=pinned")
	c2 := backup("c", "c2", "--retention-keep-tags=pinned")

	left := map[string]string{}
	for _, s := range snapshots(t, filepath.Join(dir, "repository.yaml"), "-n", "demo", "--repository", "repo") {
		if s.Tags["invoker-namespace"] != "demo" || s.Tags["invoker-kind"] != "BackupConfiguration" {
			t.Errorf("snapshot %s tags %v", s.ID, s.Tags)
		}
		left[s.Tags["invoker-name"]] += s.ID
	}
	if want := map[string]string{"a": a2, "b": b2, "c": c2}; !equalMaps(left, want) {
		t.Fatalf("snapshots left by invoker %v, want %v", left, want)
	}

	// latest is the newest for the host and path (c's), with a warning.
	r := mustRun(t, nil, append([]string{"restore-pvc", "--snapshots=latest", "--restore-paths=" + data, "--invoker-kind=RestoreSession", "--invoker-name=r"}, common[:len(common)-1]...)...)
	if b, _ := os.ReadFile(filepath.Join(data, "f.txt")); string(b) != "c2" {
		t.Errorf("latest restored %q, want c2 (the newest)", b)
	}
	for _, want := range []string{"stash: warning: snapshot latest of host host-0 and path " + data, "matched the snapshots of 3 invokers",
		"demo/BackupConfiguration/a", "demo/BackupConfiguration/b", "restored the newest, " + c2[:8] + " of demo/BackupConfiguration/c"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("restore log lacks %q:\n%s", want, r.stderr)
		}
	}
	warnings, _ := readOutput(t, out)["warnings"].([]any)
	if len(warnings) != 1 || !strings.Contains(warnings[0].(string), "3 invokers") {
		t.Errorf("output.json warnings %v", warnings)
	}
	state := t.TempDir()
	mustRun(t, nil, "update-status", "--namespace=demo", "--restoresession=rs", "--output-dir="+out, "--state-dir="+state)
	raw := recordedStatus(t, state, "RestoreSession", "rs")
	var st struct {
		Phase      string
		Conditions []struct{ Type, Status, Message string }
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	if st.Phase != "Succeeded" || len(st.Conditions) != 1 || st.Conditions[0].Type != "LatestSnapshotOfSeveralInvokers" ||
		st.Conditions[0].Status != "True" || !strings.Contains(st.Conditions[0].Message, "3 invokers") {
		t.Errorf("RestoreSession status %s", raw)
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
