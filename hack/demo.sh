#!/usr/bin/env bash
# The main job, on one machine without Kubernetes: installs PostgreSQL from
# Debian if needed, starts a throwaway PostgreSQL with sample data, writes
# Stash manifests (AppBinding, Secrets, Repository, BackupConfiguration,
# RestoreSession) under examples/local/, backs the database up with the
# local runtime, changes the data, restores, and shows the data came back.
# Also backs up and restores a directory and a stream with `stash repo`.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
demo=${DEMO_DIR:-$(mktemp -d /tmp/stash-demo.XXXXXX)}
mkdir -p "$demo"
chmod 755 "$demo"
step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
pgport=${DEMO_PG_PORT:-54329}

step "build bin/stash"
hack/build-stash.sh
stash() { "$root/bin/stash" "$@"; }

pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/postgres 2>/dev/null | tail -1)" 2>/dev/null || true)
if [[ -z $pgbin || ! -x $pgbin/postgres ]]; then
  step "install PostgreSQL from Debian"
  [[ $(id -u) == 0 ]] || { echo "PostgreSQL is missing: run as root, or sudo apt-get install -y postgresql" >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql >/dev/null
  pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/postgres | tail -1)")
fi
export PATH=$pgbin:$PATH
as_pg=()
[[ $(id -u) == 0 ]] && as_pg=(runuser -u postgres --)

step "start a throwaway PostgreSQL on 127.0.0.1:$pgport with sample data"
mkdir -p "$demo/pg"
[[ $(id -u) == 0 ]] && chown postgres "$demo/pg"
echo demo-db-password > "$demo/pg/pw"; [[ $(id -u) == 0 ]] && chown postgres "$demo/pg/pw"
"${as_pg[@]}" initdb -D "$demo/pg/data" -U postgres --pwfile "$demo/pg/pw" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
"${as_pg[@]}" pg_ctl -D "$demo/pg/data" -l "$demo/pg/log" -w -o "-p $pgport -k $demo/pg -c listen_addresses=127.0.0.1" start >/dev/null
trap '"${as_pg[@]}" pg_ctl -D "$demo/pg/data" -m fast stop >/dev/null 2>&1 || true' EXIT
export PGPASSWORD=demo-db-password
psql() { command psql -X -q -h 127.0.0.1 -p "$pgport" -U postgres "$@"; }
psql -c "CREATE DATABASE shop"
psql -d shop -c "CREATE TABLE orders (id serial PRIMARY KEY, customer text, amount numeric(10,2), placed timestamptz DEFAULT now());
INSERT INTO orders (customer, amount) SELECT 'customer-' || g, g * 1.25 FROM generate_series(1, 10000) g;"
psql -d shop -tA -c "SELECT count(*) || ' orders, total ' || sum(amount) FROM orders"

step "write the manifests: examples/local/demo/ (the same objects a cluster takes)"
out=examples/local/demo   # git-ignored: paths and ports of this run
mkdir -p "$out"
cat > "$out/postgres.yaml" <<YAML
# Written by hack/demo.sh: a PostgreSQL server, its credentials, an
# encrypted repository on this machine, a schedule and a restore.
apiVersion: v1
kind: Secret
metadata: {name: shop-db-auth, namespace: demo}
stringData: {username: postgres, password: demo-db-password}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: shop-db, namespace: demo}
spec:
  type: kubedb.com/postgres
  version: "15.1"
  clientConfig:
    url: postgresql://127.0.0.1:$pgport/postgres?sslmode=disable
  secret: {name: shop-db-auth}
---
apiVersion: v1
kind: Secret
metadata: {name: local-repo-secret, namespace: demo}
stringData: {RESTIC_PASSWORD: change-me}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: local-repo, namespace: demo}
spec:
  backend:
    local:
      mountPath: /safe/data
      hostPath: {path: $demo/backups}
      subPath: shop-db
    storageSecretName: local-repo-secret
---
apiVersion: stash.appscode.com/v1beta1
kind: BackupConfiguration
metadata: {name: shop-db-backup, namespace: demo}
spec:
  schedule: "*/30 * * * *"
  task: {name: postgres-backup-15.1}
  repository: {name: local-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: shop-db}
  retentionPolicy: {name: keep-last-5, keepLast: 5, prune: true}
  backupHistoryLimit: 5
---
apiVersion: stash.appscode.com/v1beta1
kind: RestoreSession
metadata: {name: shop-db-restore, namespace: demo}
spec:
  task: {name: postgres-restore-15.1}
  repository: {name: local-repo}
  target:
    ref: {apiVersion: appcatalog.appscode.com/v1alpha1, kind: AppBinding, name: shop-db}
    rules: [{snapshots: [latest]}]
YAML
stash validate -f "$out"
local() { stash local --state-dir "$demo/state" -f "$root/$out" -n demo "$@"; }

step "back up now: stash local trigger shop-db-backup"
local trigger shop-db-backup

step "change the data: delete half of the orders and drop a column"
psql -d shop -c "DELETE FROM orders WHERE id % 2 = 0; ALTER TABLE orders DROP COLUMN placed;"
psql -d shop -tA -c "SELECT count(*) || ' orders, total ' || sum(amount) FROM orders"

step "restore: drop the database, then stash local restore shop-db-restore"
psql -c "DROP DATABASE shop"
local restore shop-db-restore
psql -d shop -tA -c "SELECT count(*) || ' orders, total ' || sum(amount) FROM orders"
[[ $(psql -d shop -tA -c "SELECT count(*) FROM orders") == 10000 ]] && echo "all 10000 orders came back"

step "session history: stash local sessions"
local sessions

step "and the data mover directly: a directory and a stream with stash repo"
repo() { stash repo -f "$root/$out" -n demo --repository local-repo "$@"; }
mkdir -p "$demo/app/config"; echo "listen: 8080" > "$demo/app/config/app.yaml"; head -c 200000 /dev/urandom > "$demo/app/blob.bin"
repo backup --host host-0 "$demo/app"
repo restore --host host-0 --path "$demo/app" --target "$demo/restored-app"
diff -r "$demo/app" "$demo/restored-app" && echo "restored directory is identical"
head -c 5000000 /dev/urandom > "$demo/stream.bin"
repo backup --host host-0 --stdin stream.bin < "$demo/stream.bin"
repo restore --host host-0 --stdout stream.bin | cmp - "$demo/stream.bin" && echo "restored stream is identical"
repo snapshots
repo check --read-data

printf '\n\033[1mdone.\033[0m Run it on a schedule with:  bin/stash local run -f %s --state-dir %s/state\n' "$out" "$demo"
