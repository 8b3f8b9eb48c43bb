package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPVCSteps runs backup-pvc and restore-pvc with the pvc-backup and
// pvc-restore Functions' flags: a directory tree is backed up, damaged,
// and restored in place.
func TestPVCSteps(t *testing.T) {
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "repo")
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
	files := map[string]string{"a.txt": "alpha", "sub/b.txt": "beta", "sub/deeper/c.bin": string(make([]byte, 100000))}
	for name, content := range files {
		p := filepath.Join(data, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := t.TempDir()
	// --path is the repository's directory inside --bucket, as in Stash.
	common := []string{"--provider=local", "--bucket=" + dir, "--path=repo", "--storage-secret-name=repo-secret", "--namespace=demo",
		"--scratch-dir=" + t.TempDir(), "--output-dir=" + out, "-f", dir}
	mustRun(t, nil, append([]string{"backup-pvc", "--backup-paths=" + data, "--hostname=host-0", "--backupsession=s1",
		"--retention-keep-last=5", "--exclude=", "--args=", "--invoker-kind=BackupConfiguration", "--invoker-name=x",
		"--target-kind=PersistentVolumeClaim", "--target-name=data", "--target-namespace=demo"}, common...)...)
	hs := readOutput(t, out)["hostBackupStats"].([]any)[0].(map[string]any)
	if hs["phase"] != "Succeeded" || len(hs["snapshots"].([]any)) != 1 {
		t.Fatalf("backup output %v", hs)
	}
	// A dry run of a policy that would remove the first snapshot says so
	// and removes nothing.
	r := mustRun(t, nil, append([]string{"backup-pvc", "--backup-paths=" + data, "--hostname=host-0", "--backupsession=s2",
		"--invoker-name=x", "--retention-keep-last=1", "--retention-dry-run=true"}, common...)...)
	ret, _ := readOutput(t, out)["retention"].(map[string]any)
	if ret == nil || ret["dryRun"] != true || ret["snapshotsRemoved"] != float64(1) || !strings.Contains(r.stderr, "retention dry run: would forget snapshot") {
		t.Fatalf("dry run: output %v, stderr %s", ret, r.stderr)
	}
	if n := len(snapshots(t, filepath.Join(dir, "repository.yaml"), "-n", "demo", "--repository", "repo")); n != 2 {
		t.Fatalf("%d snapshots after a dry run, want 2", n)
	}

	// Damage the volume: one file changed, one removed.
	if err := os.WriteFile(filepath.Join(data, "a.txt"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(data, "sub")); err != nil {
		t.Fatal(err)
	}
	mustRun(t, nil, append([]string{"restore-pvc", "--hostname=host-0", "--source-hostname=", "--restore-paths=", "--snapshots=latest",
		"--include=", "--exclude=", "--args=", "--invoker-kind=RestoreSession", "--invoker-name=r", "--target-kind=PersistentVolumeClaim", "--target-name=data"}, common...)...)
	if hs := readOutput(t, out)["hostRestoreStats"].([]any)[0].(map[string]any); hs["phase"] != "Succeeded" {
		t.Fatalf("restore output %v", hs)
	}
	for name, content := range files {
		b, err := os.ReadFile(filepath.Join(data, name))
		if err != nil || string(b) != content {
			t.Errorf("%s after restore: %q %v", name, b, err)
		}
	}

	if _, err := os.Stat(filepath.Join(repoDir, "kopia.repository.f")); err != nil {
		t.Errorf("the repository is not in --bucket/--path: %v", err)
	}
	mustRun(t, nil, append([]string{"backup-pvc", "--backup-paths=" + data}, replace(common, "--path=repo", "--path=../elsewhere")...)...)
	if hs := readOutput(t, out)["hostBackupStats"].([]any)[0].(map[string]any); hs["phase"] != "Failed" || !strings.Contains(fmt.Sprint(hs["error"]), "must stay inside --bucket") {
		t.Errorf("--path leaving --bucket: %v", hs)
	}
	mustRun(t, nil, append([]string{"backup-pvc", "--backup-paths=" + data, "--retention-keep-last=-1"}, common...)...)
	if hs := readOutput(t, out)["hostBackupStats"].([]any)[0].(map[string]any); hs["phase"] != "Failed" || !strings.Contains(fmt.Sprint(hs["error"]), "--retention-keep-last=-1: must be 0 or more") {
		t.Errorf("a negative count: %v", hs)
	}
	// A backend from flags is faulted by its flags' names.
	if r := run(t, nil, "backup-pvc", "--backup-paths="+data, "--provider=s3", "--bucket=b", "--storage-secret-name=repo-secret", "--namespace=demo", "-f", dir); r.code == 0 || !strings.Contains(r.stderr, "--endpoint is required") {
		t.Errorf("s3 without --endpoint: %+v", r)
	}

	// No snapshot for the host: the failure is recorded, naming why.
	mustRun(t, nil, append([]string{"restore-pvc", "--hostname=host-9", "--snapshots=latest"}, common...)...)
	if hs := readOutput(t, out)["hostRestoreStats"].([]any)[0].(map[string]any); hs["phase"] != "Failed" {
		t.Fatalf("restore of a host without snapshots: %v", hs)
	}
}
