// Command gen-catalog writes the addon catalog (addons/<app>/<version>/*.yaml)
// from one table, so that every addon's Functions carry the same flags as
// Stash's addon Functions. Run by hack/generate.sh; the output is committed
// and embedded into the stash binary.
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

type addon struct {
	app      string // catalog directory and name prefix
	image    string // image family
	backup   string // stash subcommand
	restore  string
	versions []string
	// extra backup and restore flags (tool pass-through params)
	backupFlags  []string
	restoreFlags []string
	interim      bool // uses the interim data directory
}

var addons = []addon{
	{
		app: "postgres", image: "stash-postgres", backup: "backup-pg", restore: "restore-pg",
		versions:     []string{"9.6.19", "10.2", "10.6", "10.14", "11.1", "11.2", "11.9", "12.4", "13.1", "14.0", "15.1", "16.1", "17.2", "18.2"},
		backupFlags:  []string{"--backup-cmd=${backupCMD:=pg_dumpall}", "--pg-args=${args:=}", "--user=${user:=}"},
		restoreFlags: []string{"--pg-args=${args:=}", "--user=${user:=}"},
	},
	{
		app: "mysql", image: "stash-mysql", backup: "backup-mysql", restore: "restore-mysql",
		versions:     []string{"5.7.25", "8.0.3", "8.0.14", "8.0.21"},
		backupFlags:  []string{"--mysql-args=${args:=--all-databases}", "--multi-dump-args=${multiDumpArgs:=}"},
		restoreFlags: []string{"--mysql-args=${args:=}"},
	},
	{
		app: "mariadb", image: "stash-mysql", backup: "backup-mysql", restore: "restore-mysql",
		versions:     []string{"10.5.8", "10.6.23"},
		backupFlags:  []string{"--mysql-args=${args:=--all-databases}", "--multi-dump-args=${multiDumpArgs:=}"},
		restoreFlags: []string{"--mysql-args=${args:=}"},
	},
	{
		app: "mongodb", image: "stash-mongodb", backup: "backup-mongo", restore: "restore-mongo",
		versions: []string{"3.4.17", "3.4.22", "3.6.8", "3.6.13", "4.0.3", "4.0.5", "4.0.11", "4.1.4", "4.1.7", "4.1.13",
			"4.2.3", "4.4.6", "5.0.3", "5.0.15", "6.0.5"},
		backupFlags:  []string{"--mongo-args=${args:=}", "--authentication-database=${authenticationDatabase:=admin}", "--max-concurrency=${MAX_CONCURRENCY:=3}"},
		restoreFlags: []string{"--mongo-args=${args:=}", "--authentication-database=${authenticationDatabase:=admin}", "--max-concurrency=${MAX_CONCURRENCY:=3}"},
	},
	{
		app: "elasticsearch", image: "stash-elasticsearch", backup: "backup-es", restore: "restore-es",
		versions:     []string{"5.6.4", "6.2.4", "6.3.0", "6.4.0", "6.5.3", "6.8.0", "7.2.0", "7.3.2", "7.14.0", "8.2.0"},
		backupFlags:  []string{"--es-args=${args:=}", "--interim-data-dir=${INTERIM_DATA_DIR}", "--enable-dashboard=${ENABLE_DASHBOARD_BACKUP:=false}"},
		restoreFlags: []string{"--es-args=${args:=}", "--interim-data-dir=${INTERIM_DATA_DIR}", "--enable-dashboard=${ENABLE_DASHBOARD_RESTORE:=false}"},
		interim:      true,
	},
	{
		app: "perconaxtradb", image: "stash-percona-xtradb", backup: "backup-percona-xtradb", restore: "restore-percona-xtradb",
		versions:     []string{"5.7", "8.0", "8.4"},
		backupFlags:  galeraBackupFlags,
		restoreFlags: galeraRestoreFlags("xtrabackup-v2"),
	},
	// MariaDB Galera, which Stash never had: the same commands, with
	// mariabackup as the SST method and its tools in the image.
	{
		app: "mariadb-galera", image: "stash-mariadb-galera", backup: "backup-percona-xtradb", restore: "restore-percona-xtradb",
		versions:     []string{"10.5", "10.6", "10.11"},
		backupFlags:  galeraBackupFlags,
		restoreFlags: galeraRestoreFlags("mariabackup"),
	},
}

// galeraBackupFlags are the flags of a Galera cluster's backup Function:
// Stash's, then backupMode (physical or logical) and the SST's timeout.
var galeraBackupFlags = []string{"--xtradb-args=${args:=}", "--socat-retry=${socatRetry:=30}",
	"--backup-mode=${backupMode:=physical}", "--sst-timeout=${sstTimeout:=300}"}

// galeraRestoreFlags are the flags of a Galera cluster's restore Function:
// a replica's data directory is its claim's mount (or, in the local
// runtime, a restore rule's path), and its ordinal says who bootstraps.
func galeraRestoreFlags(method string) []string {
	return []string{"--xtradb-args=${args:=}", "--target-app-replicas=${TARGET_APP_REPLICAS:=1}",
		"--sst-method=" + method, "--data-dir=${RESTORE_PATHS:=}", "--mount-path=${TARGET_MOUNT_PATH:=/var/lib/mysql}",
		"--pod-ordinal=${POD_ORDINAL:=0}", "--data-owner=${dataOwner:=1001:1001}"}
}

// repoFlags are the repository and session flags of every addon Function.
var repoFlags = []string{
	"--provider=${REPOSITORY_PROVIDER:=}",
	"--bucket=${REPOSITORY_BUCKET:=}",
	"--endpoint=${REPOSITORY_ENDPOINT:=}",
	"--region=${REPOSITORY_REGION:=}",
	"--path=${REPOSITORY_PREFIX:=}",
	"--insecure-tls=${REPOSITORY_INSECURE_TLS:=false}",
	"--storage-secret-name=${REPOSITORY_SECRET_NAME:=}",
	"--storage-secret-namespace=${REPOSITORY_SECRET_NAMESPACE:=}",
	"--scratch-dir=/stash-tmp",
	"--enable-cache=${ENABLE_CACHE:=true}",
	"--max-connections=${MAX_CONNECTIONS:=0}",
	"--wait-timeout=${waitTimeout:=300}",
	"--namespace=${NAMESPACE:=default}",
	"--appbinding=${TARGET_NAME:=}",
	"--appbinding-namespace=${TARGET_NAMESPACE:=}",
}

var retentionFlags = []string{
	"--retention-keep-last=${RETENTION_KEEP_LAST:=0}",
	"--retention-keep-hourly=${RETENTION_KEEP_HOURLY:=0}",
	"--retention-keep-daily=${RETENTION_KEEP_DAILY:=0}",
	"--retention-keep-weekly=${RETENTION_KEEP_WEEKLY:=0}",
	"--retention-keep-monthly=${RETENTION_KEEP_MONTHLY:=0}",
	"--retention-keep-yearly=${RETENTION_KEEP_YEARLY:=0}",
	"--retention-keep-tags=${RETENTION_KEEP_TAGS:=}",
	"--retention-prune=${RETENTION_PRUNE:=false}",
	"--retention-dry-run=${RETENTION_DRY_RUN:=false}",
}

const header = "# Generated by hack/gen-catalog from one table; do not edit.\n"

func image(family string) string {
	return "${STASH_DOCKER_REGISTRY:=ghcr.io/stash-backup}/" + family + ":${STASH_IMAGE_TAG:=latest}"
}

func function(name, img string, args []string, extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: stash.appscode.com/v1beta1\nkind: Function\nmetadata:\n  name: %s\nspec:\n  image: %s\n  args:\n", name, img)
	for _, a := range args {
		fmt.Fprintf(&b, "  - %s\n", a)
	}
	b.WriteString(extra)
	return b.String()
}

func task(name string, steps [][2]string, volumes string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: stash.appscode.com/v1beta1\nkind: Task\nmetadata:\n  name: %s\nspec:\n  steps:\n", name)
	for _, s := range steps {
		fmt.Fprintf(&b, "  - name: %s\n    params:\n    - name: outputDir\n      value: /stash-tmp/output\n", s[0])
		if s[1] != "" {
			fmt.Fprintf(&b, "    - name: %s\n", s[1])
		}
	}
	b.WriteString(volumes)
	return b.String()
}

func write(root, rel, content string) {
	p := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		panic(err)
	}
	if err := os.WriteFile(p, []byte(header+content), 0o644); err != nil {
		panic(err)
	}
}

func concat(parts ...[]string) []string {
	var out []string
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func main() {
	root := "addons"
	if len(os.Args) > 1 {
		root = os.Args[1]
	}
	// Regenerate the directories of this table; the Go files that embed
	// the catalog, and addons written by hand as a user writes one
	// (addons/redis), stay.
	generated := []string{"stash"}
	for _, a := range addons {
		generated = append(generated, a.app)
	}
	for _, d := range generated {
		if err := os.RemoveAll(filepath.Join(root, d)); err != nil {
			panic(err)
		}
	}
	stash := image("stash")
	// Built-ins, as Stash's operator creates them.
	write(root, "stash/update-status.yaml", function("update-status", stash, concat(
		[]string{"update-status"}, repoFlags[:11],
		[]string{
			"--namespace=${NAMESPACE:=default}",
			"--backupsession=${BACKUP_SESSION:=}",
			"--restoresession=${RESTORE_SESSION:=}",
			"--invoker-kind=${INVOKER_KIND:=}",
			"--invoker-name=${INVOKER_NAME:=}",
			"--target-kind=${TARGET_KIND:=}",
			"--target-name=${TARGET_NAME:=}",
			"--target-namespace=${TARGET_NAMESPACE:=}",
			"--output-dir=${outputDir:=}",
			"--metrics-enabled=true",
		}), ""))
	pvcMount := "  volumeMounts:\n  - name: ${targetVolume}\n    mountPath: ${TARGET_MOUNT_PATH}\n"
	// The PVC steps read and write files of every owner, so they ask for
	// root explicitly, with only the capabilities that needs (all within
	// the baseline Pod Security Standard, which does not allow
	// DAC_READ_SEARCH: a backup reads through DAC_OVERRIDE). A restore
	// also keeps owners, modes (setgid included) and times.
	rootSettings := func(caps ...string) string {
		return "  runtimeSettings:\n    securityContext:\n      runAsUser: 0\n      runAsGroup: 0\n      runAsNonRoot: false\n" +
			"      capabilities:\n        drop:\n        - ALL\n        add:\n        - " + strings.Join(caps, "\n        - ") + "\n"
	}
	pvcVolumes := "  volumes:\n  - name: stash-volume\n    persistentVolumeClaim:\n      claimName: ${TARGET_NAME}\n"
	write(root, "stash/pvc-backup.yaml", function("pvc-backup", stash, concat(
		[]string{"backup-pvc"}, repoFlags[:11],
		[]string{
			"--hostname=${HOSTNAME:=}", "--backup-paths=${TARGET_PATHS}", "--exclude=${EXCLUDE_PATTERNS:=}",
			"--args=${DRIVER_ARGS:=}", "--namespace=${NAMESPACE:=default}", "--backupsession=${BACKUP_SESSION:=}",
			"--invoker-kind=${INVOKER_KIND:=}", "--invoker-name=${INVOKER_NAME:=}",
			"--target-kind=${TARGET_KIND:=}", "--target-name=${TARGET_NAME:=}", "--target-namespace=${TARGET_NAMESPACE:=}",
		}, retentionFlags, []string{"--output-dir=${outputDir:=}"}), pvcMount+rootSettings("DAC_OVERRIDE"))+
		"---\n"+task("pvc-backup", [][2]string{{"pvc-backup", "targetVolume\n      value: stash-volume"}, {"update-status", ""}}, pvcVolumes))
	write(root, "stash/pvc-restore.yaml", function("pvc-restore", stash, concat(
		[]string{"restore-pvc"}, repoFlags[:11],
		[]string{
			"--hostname=${HOSTNAME:=}", "--source-hostname=${SOURCE_HOSTNAME:=}", "--restore-paths=${RESTORE_PATHS:=}",
			"--snapshots=${RESTORE_SNAPSHOTS:=}", "--include=${INCLUDE_PATTERNS:=}", "--exclude=${EXCLUDE_PATTERNS:=}",
			"--args=${DRIVER_ARGS:=}", "--namespace=${NAMESPACE:=default}", "--invoker-kind=${INVOKER_KIND:=}",
			"--invoker-name=${INVOKER_NAME:=}", "--target-kind=${TARGET_KIND:=}", "--target-name=${TARGET_NAME:=}",
			"--output-dir=${outputDir:=}",
		}), pvcMount+rootSettings("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID"))+
		"---\n"+task("pvc-restore", [][2]string{{"pvc-restore", "targetVolume\n      value: stash-volume"}, {"update-status", ""}}, pvcVolumes))

	// The hand-over steps of a user's own addon (docs/guides/
	// write-your-own-addon.md): their dump step leaves files in the
	// interim directory, upload backs them up; download puts a snapshot
	// there for their load step.
	write(root, "stash/upload.yaml", function("upload", stash, concat(
		[]string{"upload"}, repoFlags[:11],
		[]string{
			"--hostname=${HOSTNAME:=}", "--namespace=${NAMESPACE:=default}", "--backupsession=${BACKUP_SESSION:=}",
			"--invoker-kind=${INVOKER_KIND:=}", "--invoker-name=${INVOKER_NAME:=}",
		}, retentionFlags, []string{"--interim-data-dir=${INTERIM_DATA_DIR}", "--output-dir=${outputDir:=}"}), ""))
	write(root, "stash/download.yaml", function("download", stash, concat(
		[]string{"download"}, repoFlags[:11],
		[]string{
			"--hostname=${HOSTNAME:=}", "--source-hostname=${SOURCE_HOSTNAME:=}", "--snapshot=${RESTORE_SNAPSHOTS:=}",
			"--namespace=${NAMESPACE:=default}", "--paths=${downloadPaths:=}",
			"--interim-data-dir=${INTERIM_DATA_DIR}", "--output-dir=${outputDir:=}",
		}), ""))

	for _, a := range addons {
		for _, v := range a.versions {
			img := image(a.image)
			bname, rname := a.app+"-backup-"+v, a.app+"-restore-"+v
			backup := function(bname, img, concat([]string{a.backup}, repoFlags,
				[]string{"--hostname=${HOSTNAME:=}", "--backupsession=${BACKUP_SESSION:=}"},
				retentionFlags, a.backupFlags, []string{"--output-dir=${outputDir:=}"}), "")
			restore := function(rname, img, concat([]string{a.restore}, repoFlags,
				[]string{"--hostname=${HOSTNAME:=}", "--source-hostname=${SOURCE_HOSTNAME:=}", "--snapshot=${RESTORE_SNAPSHOTS:=}"},
				a.restoreFlags, []string{"--output-dir=${outputDir:=}"}), "")
			dir := filepath.Join(a.app, v)
			write(root, filepath.Join(dir, "backup.yaml"), backup+"---\n"+task(bname, [][2]string{{bname, ""}, {"update-status", ""}}, ""))
			write(root, filepath.Join(dir, "restore.yaml"), restore+"---\n"+task(rname, [][2]string{{rname, ""}, {"update-status", ""}}, ""))
		}
	}
}
