#!/usr/bin/env bash
# The main job, end to end on this machine: builds stash, describes a local
# encrypted repository with Stash's own manifests (a Repository and its
# Secret), backs up a directory and a database-dump-like stream, changes the
# data, backs up again, restores both and proves the restored data equals
# what was backed up, then applies retention with prune and verifies the
# repository. Everything lives in one throwaway directory.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo=${DEMO_DIR:-$(mktemp -d /tmp/stash-demo.XXXXXX)}
mkdir -p "$demo"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "build bin/stash"
go build -o bin/stash ./cmd/stash
go build -o bin/genstream ./hack/bench/genstream
stash() { "$root/bin/stash" "$@"; }

step "write the Repository and its Secret ($demo/manifests/repository.yaml)"
mkdir -p "$demo/manifests"
cat > "$demo/manifests/repository.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: local-repo-secret
  namespace: demo
type: Opaque
stringData:
  RESTIC_PASSWORD: change-me-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata:
  name: local-repo
  namespace: demo
spec:
  backend:
    local:
      mountPath: /safe/data
      hostPath:
        path: $demo/backups
      subPath: demo-repo
    storageSecretName: local-repo-secret
YAML
cat "$demo/manifests/repository.yaml" | sed 's/RESTIC_PASSWORD: .*/RESTIC_PASSWORD: <random>/'
repo() { stash repo -f "$demo/manifests" -n demo "$@"; }

step "create sample data: an application directory and a 64 MiB database dump"
mkdir -p "$demo/app/config" "$demo/app/uploads" "$demo/app/logs"
echo "listen: 8080" > "$demo/app/config/app.yaml"
for i in $(seq 1 50); do head -c 20000 /dev/urandom > "$demo/app/uploads/file-$i.bin"; done
echo "debug line" > "$demo/app/logs/app.log"
"$root/bin/genstream" -size $((64 << 20)) > "$demo/dump-1.sql"

step "stash repo init"
repo init

step "back up the directory (logs excluded) and the dump from stdin"
repo backup --host host-0 --exclude '*.log' --tag session=demo-1 "$demo/app"
repo backup --host host-0 --tag session=demo-1 --stdin dumpfile.sql < "$demo/dump-1.sql"

step "change the data: edit a file, delete a file, add one; dump with 1 % of its blocks changed"
echo "listen: 9090" > "$demo/app/config/app.yaml"
rm "$demo/app/uploads/file-7.bin"
head -c 30000 /dev/urandom > "$demo/app/uploads/file-new.bin"
"$root/bin/genstream" -size $((64 << 20)) -change 1 > "$demo/dump-2.sql"

step "back up again: only the changes are uploaded"
repo backup --host host-0 --exclude '*.log' --tag session=demo-2 "$demo/app"
repo backup --host host-0 --tag session=demo-2 --stdin dumpfile.sql < "$demo/dump-2.sql"

step "stash repo snapshots"
repo snapshots

step "restore the latest directory snapshot and compare with the source"
repo restore --host host-0 --path "$demo/app" --target "$demo/restored-app"
diff -r --exclude app.log "$demo/app" "$demo/restored-app" && echo "restored directory is identical to the source (logs excluded as configured)"

step "restore the first dump (by its snapshot ID) and the latest one to stdout, and compare"
first=$(repo snapshots --path dumpfile.sql --tag session=demo-1 -o json | grep -m1 '"id"' | cut -d'"' -f4)
repo restore --snapshot "$first" --stdout dumpfile.sql | cmp - "$demo/dump-1.sql" && echo "snapshot ${first:0:8} == dump-1.sql"
repo restore --stdout dumpfile.sql | cmp - "$demo/dump-2.sql" && echo "latest snapshot == dump-2.sql"

step "retention: keep the last snapshot per host and path, prune the rest"
repo forget --keep-last 1 --prune

step "verify every byte of the repository"
repo check --read-data
repo stats

printf '\n\033[1mdone.\033[0m The repository is in %s/backups/demo-repo; manifests in %s/manifests.\n' "$demo" "$demo"
