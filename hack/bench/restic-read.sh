#!/usr/bin/env bash
# Reads restic repositories the way a Stash user moving over does, and
# compares with restic itself on the same repositories: `stash repo restore`
# of the stream (a dump, to /dev/null) and of the tree (into an empty
# directory) against restic 0.18.1 and Debian's restic 0.14 (`restic dump`,
# `restic restore`), and `stash repo import` into a new repository of this
# project. Run as root (it drops the page cache).
#
#   hack/bench/restic-read.sh              # RUNS=3
#   RUNS=1 hack/bench/restic-read.sh
#
# Data: the stream and tree of hack/bench/peers.sh from $BENCH_DATA (made
# by peers.sh, or here with the same generators and defaults when absent):
# a 1 GiB stream (half SQL text, half random) and a tree of 50 000 files of
# 1-64 KiB plus four of 64 MiB. Repositories (made once, untimed, into
# $BENCH_DATA/restic-read): "v2" written by restic 0.18.1 (format 2, zstd
# auto), "v1" by restic 0.14 (format 1, uncompressed: what Stash wrote
# before restic 0.14). Each holds the stream (--stdin --stdin-filename
# dump.sql --host host-0) and the tree (--host host-0).
#
# Each timed step runs after the page cache is dropped (repositories not
# cached), under /usr/bin/time; the report gives the median of RUNS and
# restic ÷ stash (> 1: stash faster). Every restore is checked untimed
# (cmp, diff -r) against the data.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
RUNS=${RUNS:-3}
BENCH_DATA=${BENCH_DATA:-/var/tmp/stash-bench-data}
W=$BENCH_DATA/restic-read
die() { echo "restic-read.sh: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "run as root (it drops the page cache)"
[[ -x /usr/bin/restic ]] || apt-get install -y restic >/dev/null
[[ -x /usr/bin/time ]] || apt-get install -y time >/dev/null
hack/build-peers.sh restic
hack/build-stash.sh
stream=$BENCH_DATA/stream/stream1 tree=$BENCH_DATA/tree/base
if [[ ! -f $stream || ! -d $tree ]]; then
  DATASETS="stream tree" TOOLS=stash ENVS=host RUNS=0 hack/bench/peers.sh >&2 || true
  [[ -f $stream && -d $tree ]] || die "no datasets in $BENCH_DATA: run hack/bench/peers.sh once (RUNS=1 TOOLS=stash) to make them"
fi
stream_bytes=$(stat -c %s "$stream")
tree_bytes=$(find "$tree" -type f -printf '%s\n' | awk '{ s += $1 } END { print s }')
export RESTIC_PASSWORD=bench-password RESTIC_PROGRESS_FPS=0.0001
r18=$root/bin/restic r14=/usr/bin/restic

mkdir -p "$W"
make_repo() { # make_repo NAME RESTIC FORMAT
  local d=$W/$1
  [[ -f $d/done ]] && return
  rm -rf "$d"; mkdir -p "$d"
  echo "writing restic repository $1 with $($2 version | cut -d' ' -f1-2) ..." >&2
  RESTIC_CACHE_DIR=$d/cache $2 -q -r "$d/repo" init --repository-version "$3" >/dev/null
  RESTIC_CACHE_DIR=$d/cache $2 -q -r "$d/repo" backup --stdin --stdin-filename dump.sql --host host-0 < "$stream"
  RESTIC_CACHE_DIR=$d/cache $2 -q -r "$d/repo" backup --host host-0 "$tree"
  rm -rf "$d/cache"
  cat > "$d/repo.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata: {name: bench-secret}
stringData: {RESTIC_PASSWORD: bench-password}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: restic}
spec:
  backend:
    storageSecretName: bench-secret
    local: {mountPath: $d/repo}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: imported}
spec:
  backend:
    storageSecretName: bench-secret
    local: {mountPath: $W/imported}
YAML
  touch "$d/done"
}
make_repo v2 "$r18" 2
make_repo v1 "$r14" 1

out=$W/results.tsv
printf 'repo\tmeasure\ttool\trun\tseconds\tpeak_rss_kib\n' > "$out"
measure() { # measure REPO MEASURE TOOL RUN CMD...
  local repo=$1 m=$2 tool=$3 run=$4; shift 4
  sync; echo 3 > /proc/sys/vm/drop_caches
  /usr/bin/time -f "%e %M" -o "$W/time" "$@"
  read -r s k < "$W/time"
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$repo" "$m" "$tool" "$run" "$s" "$k" >> "$out"
}
dst=$W/restore
for run in $(seq 1 "$RUNS"); do
  for repo in v2 v1; do
    d=$W/$repo
    stash() { "$root/bin/stash" repo -f "$d/repo.yaml" "$@"; }
    for tool in stash restic restic014; do
      case $tool in
        stash) measure $repo stream $tool $run bash -c "'$root/bin/stash' repo -f '$d/repo.yaml' --repository restic restore --stdout dump.sql 2>/dev/null > /dev/null" ;;
        restic) measure $repo stream $tool $run bash -c "RESTIC_CACHE_DIR='$W/c' '$r18' -q --no-lock -r '$d/repo' dump --path /dump.sql latest dump.sql > /dev/null" ;;
        restic014) measure $repo stream $tool $run bash -c "RESTIC_CACHE_DIR='$W/c' '$r14' -q --no-lock -r '$d/repo' dump --path /dump.sql latest dump.sql > /dev/null" ;;
      esac
      rm -rf "$W/c" "$dst"
      case $tool in
        stash) measure $repo tree $tool $run "$root/bin/stash" repo -f "$d/repo.yaml" --repository restic -o json restore --path "$tree" --target "$dst" > /dev/null
               diff -r "$tree" "$dst" > /dev/null || die "stash tree restore of $repo differs" ;;
        restic) measure $repo tree $tool $run env RESTIC_CACHE_DIR="$W/c" "$r18" -q --no-lock -r "$d/repo" restore latest --path "$tree" --target "$dst"
                diff -r "$tree" "$dst$tree" > /dev/null || die "restic tree restore of $repo differs" ;;
        restic014) measure $repo tree $tool $run env RESTIC_CACHE_DIR="$W/c" "$r14" -q --no-lock -r "$d/repo" restore latest --path "$tree" --target "$dst"
                   diff -r "$tree" "$dst$tree" > /dev/null || die "restic 0.14 tree restore of $repo differs" ;;
      esac
      rm -rf "$W/c" "$dst"
    done
    rm -rf "$W/imported"
    measure $repo import stash $run "$root/bin/stash" repo -f "$d/repo.yaml" import --from restic --to imported -o json > /dev/null
  done
  # Correctness of the stream, once per run, untimed.
  "$root/bin/stash" repo -f "$W/v2/repo.yaml" --repository restic restore --stdout dump.sql 2>/dev/null | cmp - "$stream" || die "stash stream restore differs"
  "$root/bin/stash" repo -f "$W/v2/repo.yaml" --repository imported restore --stdout dump.sql 2>/dev/null | cmp - "$stream" || die "stream restored from the import differs"
done

echo
echo "restic repositories: v2 (restic 0.18.1, format 2) and v1 (restic 0.14, format 1); $RUNS runs; median seconds, restic ÷ stash"
echo "stream $((stream_bytes >> 20)) MiB, tree $((tree_bytes >> 20)) MiB; import copies both ($(((stream_bytes + tree_bytes) >> 20)) MiB)"
awk -F'\t' -v sb="$stream_bytes" -v tb="$tree_bytes" 'NR > 1 {
  k = $1 SUBSEP $2 SUBSEP $3; n[k]++; v[k, n[k]] = $5; r[k, n[k]] = $6; keys[k] = 1
} 
function median(k,   i, j, t, a, m) { m = n[k]; for (i = 1; i <= m; i++) a[i] = v[k, i]
  for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
  return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2 }
function maxrss(k,   i, x) { x = 0; for (i = 1; i <= n[k]; i++) if (r[k, i] > x) x = r[k, i]; return x }
END {
  printf "%-4s %-7s %10s %10s %16s %16s %12s\n", "repo", "measure", "stash s", "MiB/s", "restic 0.18.1", "restic 0.14", "stash RSS"
  split("v2 v1", repos, " "); split("stream tree import", ms, " ")
  for (i = 1; i <= 2; i++) for (j = 1; j <= 3; j++) {
    s = repos[i] SUBSEP ms[j] SUBSEP "stash"; if (!(s in keys)) continue
    st = median(s); bytes = ms[j] == "stream" ? sb : ms[j] == "tree" ? tb : sb + tb
    line = sprintf("%-4s %-7s %10.2f %10.0f", repos[i], ms[j], st, bytes / 1048576 / st)
    for (t = 1; t <= 2; t++) { tool = t == 1 ? "restic" : "restic014"; k = repos[i] SUBSEP ms[j] SUBSEP tool
      line = line sprintf(" %16s", (k in keys) ? sprintf("%.2f s %.2fx", median(k), median(k) / st) : "-") }
    printf "%s %9d MiB\n", line, maxrss(s) / 1024
  }
}' "$out"
