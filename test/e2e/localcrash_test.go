package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stash-backup/stash/internal/testserver"
)

// processesWith lists the PIDs (other than skip) whose command line holds
// s: the step processes of one test's runtime, whose args name its
// manifest directory.
func processesWith(s string, skip int) []int {
	var out []int
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil || pid == skip || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(d, "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(s)) {
			out = append(out, pid)
		}
	}
	return out
}

func procStateOf(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return ""
	}
	return string(b[i+2 : i+3])
}

// TestLocalRuntimeKilledUnreaped: a runtime SIGKILLed mid-session and left
// a zombie (its parent, this test, does not wait for it) still answers
// kill(pid, 0). Its step dies with it, and the next trigger fails its
// session with the reason and runs, instead of being Skipped behind it.
func TestLocalRuntimeKilledUnreaped(t *testing.T) {
	pg := testserver.StartPostgres(t)
	pg.SQL(t, "postgres", "CREATE DATABASE app; \\connect app\n CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 100);")
	// The slow AppBinding points at a port nobody listens on: the backup
	// step waits for it (waitTimeout) until the runtime is killed.
	deadURL := fmt.Sprintf("postgresql://127.0.0.1:%d/postgres", testserver.FreePort(t))
	dir := localRuntimeManifests(t, pg, fmt.Sprintf(`---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: slow, namespace: demo}
spec:
  clientConfig: {url: %q}
  secret: {name: pg-auth}
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: slow-backup, namespace: demo}
spec:
  schedule: "@daily"
  task:
    name: postgres-backup-15.1
    params: [{name: waitTimeout, value: "600"}]
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: slow}}
  retentionPolicy: {name: k, keepLast: 5, prune: false}
  backupHistoryLimit: 5
`, deadURL))
	state := t.TempDir()
	// The repository exists, as it would: a step killed while it creates
	// one leaves a creation marker that holds the next creator back for
	// two minutes (internal/repository/initlock.go), another matter.
	mustRun(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "pg-backup")
	cmd := exec.Command(stashBin, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "slow-backup")
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := false
	defer func() {
		if !reaped {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()
	runtimePID := cmd.Process.Pid
	// Running, with its backup step started.
	waitFor(t, 60*time.Second, func() bool {
		for _, pid := range processesWith(dir, runtimePID) {
			if cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); bytes.Contains(cl, []byte("backup-pg")) {
				return true
			}
		}
		return false
	})
	var first string
	for _, s := range listSessions(t, state) {
		if s.InvokerName == "slow-backup" && s.Phase == "Running" {
			first = s.Name
		}
	}
	if first == "" {
		t.Fatalf("no Running session of slow-backup: %+v\n%s", listSessions(t, state), logs.String())
	}

	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, func() bool { return procStateOf(runtimePID) == "Z" })
	// The step goes with its runtime (parent-death signal).
	waitFor(t, 10*time.Second, func() bool { return len(processesWith(dir, runtimePID)) == 0 })

	// The same BackupConfiguration, its target now up.
	manifestFile := filepath.Join(dir, "repository.yaml")
	orig, err := os.ReadFile(manifestFile)
	if err != nil {
		t.Fatal(err)
	}
	up := strings.Replace(string(orig), deadURL, fmt.Sprintf("postgresql://%s:%d/postgres", pg.Host, pg.Port), 1)
	if err := os.WriteFile(manifestFile, []byte(up), 0o600); err != nil {
		t.Fatal(err)
	}
	r := run(t, nil, "local", "trigger", "-f", dir, "--state-dir", state, "-n", "demo", "slow-backup")
	if r.code != 0 || !strings.Contains(r.stdout, ": Succeeded") {
		t.Fatalf("trigger after the kill: %+v", r)
	}
	if procStateOf(runtimePID) != "Z" {
		t.Fatal("the killed runtime was reaped before the trigger: this test no longer covers a zombie")
	}
	var phases []string
	for _, s := range listSessions(t, state) {
		if s.InvokerName != "slow-backup" {
			continue
		}
		phases = append(phases, s.Phase)
		if s.Name == first && (s.Phase != "Failed" || !strings.Contains(s.Error, "the runtime that ran it stopped (killed or crashed) before it finished")) {
			t.Errorf("session of the killed runtime: %+v", s)
		}
	}
	if strings.Join(phases, ",") != "Failed,Succeeded" {
		t.Errorf("slow-backup sessions %v, want the killed one Failed and the next Succeeded", phases)
	}
	// Both BackupConfigurations dump host-0's dumpfile.sql into one
	// Repository: each snapshot names its invoker, and neither one's
	// retention took the other's.
	byInvoker := map[string]int{}
	for _, s := range snapshots(t, manifestFile, "-n", "demo", "--repository", "repo") {
		if s.Tags["invoker-kind"] != "BackupConfiguration" || s.Tags["invoker-namespace"] != "demo" {
			t.Errorf("snapshot %s tags %v", s.ID, s.Tags)
		}
		byInvoker[s.Tags["invoker-name"]]++
	}
	if byInvoker["pg-backup"] != 1 || byInvoker["slow-backup"] != 1 || len(byInvoker) != 2 {
		t.Errorf("snapshots by invoker %v, want one of pg-backup and one of slow-backup", byInvoker)
	}
	_ = cmd.Wait()
	reaped = true
}

// TestLocalRuntimeKilledHookDies: a preBackup exec hook's command (a
// grandchild of the runtime, started by the run-hook step) dies with a
// killed runtime too, instead of running on outside any session.
func TestLocalRuntimeKilledHookDies(t *testing.T) {
	pg := testserver.StartPostgres(t)
	// A duration no other process on the machine sleeps for.
	marker := fmt.Sprintf("%d.%d", 3000+os.Getpid()%1000, time.Now().UnixNano()%1000000)
	dir := localRuntimeManifests(t, pg, fmt.Sprintf(`---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: hooked, namespace: demo}
spec:
  schedule: "@daily"
  task: {name: postgres-backup-15.1}
  repository: {name: repo}
  target: {ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: pg}}
  retentionPolicy: {name: k, keepLast: 5, prune: false}
  hooks:
    preBackup:
      exec: {command: ["sleep", %q]}
`, marker))
	cmd := exec.Command(stashBin, "local", "trigger", "-f", dir, "--state-dir", t.TempDir(), "-n", "demo", "hooked")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	waitFor(t, 60*time.Second, func() bool { return len(processesWith(marker, cmd.Process.Pid)) > 0 })
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(processesWith(marker, cmd.Process.Pid)) > 0 {
		if time.Now().After(deadline) {
			for _, pid := range processesWith(marker, cmd.Process.Pid) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			t.Fatal("the hook's command outlived the killed runtime")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
