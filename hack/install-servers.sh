#!/usr/bin/env bash
# Installs the database servers the tests start (Debian packages): PostgreSQL
# and MariaDB, strace, which one test uses, and busybox for the e2e images.
# Tests start their own throwaway instances on free ports; the packages' own
# services are stopped and disabled so they hold no ports.
set -euo pipefail
need=()
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || need+=(postgresql)
command -v mariadbd >/dev/null || [[ -x /usr/sbin/mariadbd ]] || need+=(mariadb-server mariadb-client)
# Galera: the three-node test cluster (galera-4), the arbitrator the
# Percona XtraDB addon joins it with (galera-arbitrator-4), the SST tools
# its nodes donate and restores prepare with (mariadb-backup, socat).
[[ -e /usr/lib/galera/libgalera_smm.so ]] || need+=(galera-4)
command -v garbd >/dev/null || need+=(galera-arbitrator-4)
command -v mariabackup >/dev/null || need+=(mariadb-backup)
command -v socat >/dev/null || need+=(socat)
# Debian's restic 0.14, the generation Stash shipped, writes the restic
# repositories the migration tests read (internal/repository/restic,
# test/e2e TestMigrateFromStash).
command -v restic >/dev/null || [[ -x /usr/bin/restic ]] || need+=(restic)
# strace counts a dump tool's writes (internal/addon/dump TestLargeStdout).
command -v strace >/dev/null || need+=(strace)
# busybox is the shell and tools of the end-to-end cluster's images
# (hack/images.sh), which are built before the cluster installs its own
# packages.
[[ -x /bin/busybox ]] || need+=(busybox-static)
# pymongo's BSON decoder reads the MongoDB addon's archives independently
# of our own reader (internal/addon/mongodb TestArchiveReadByPymongo).
/usr/bin/python3 -c 'import bson' 2>/dev/null || need+=(python3-bson)
# elasticdump (npm, on Debian's nodejs) dumps from and loads into the
# Elasticsearch test server, an independent client that holds it and the
# addon's files to Elasticsearch's own behaviour (internal/addon/elasticsearch).
command -v node >/dev/null && command -v npm >/dev/null || need+=(nodejs npm)
# Redis: the server and redis-cli of the worked example of a user-written
# addon (addons/redis, docs/guides/write-your-own-addon.md), which its
# e2e image carries (hack/images.sh) and the local tests start.
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
# containerd, runc and the CNI plugins run those images in the local
# runtime (internal/runtime/container); the cluster uses them too.
command -v containerd >/dev/null || need+=(containerd)
command -v runc >/dev/null || [[ -x /usr/sbin/runc ]] || need+=(runc)
[[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
command -v iptables >/dev/null || [[ -x /usr/sbin/iptables ]] || need+=(iptables)
if ((${#need[@]})); then
  if [[ $(id -u) != 0 ]]; then
    echo "missing ${need[*]}: run as root, or: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
  echo "installing ${need[*]} (Debian) for the tests ..." >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need[@]}" >/dev/null || { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${need[@]}" >/dev/null; }
fi
# The packages start system-wide servers; the tests do not use them.
for svc in postgresql mariadb redis-server; do
  if command -v systemctl >/dev/null && systemctl is-active --quiet "$svc" 2>/dev/null; then systemctl stop "$svc" || true; fi
done
pg_ctlcluster --help >/dev/null 2>&1 && for c in $(pg_lsclusters -h 2>/dev/null | awk '$4=="online"{print $1"/"$2}'); do pg_ctlcluster "${c%/*}" "${c#*/}" stop || true; done
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ ! -x $root/bin/elasticdump/node_modules/.bin/multielasticdump ]]; then
  echo "installing elasticdump 6.125.1 (npm) into bin/elasticdump for the tests ..." >&2
  mkdir -p "$root/bin/elasticdump"
  npm install --silent --no-audit --no-fund --prefix "$root/bin/elasticdump" elasticdump@6.125.1 >/dev/null
fi
exit 0
