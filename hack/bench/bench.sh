#!/usr/bin/env bash
# Compares `stash repo` with restic (Debian's package) on one machine, in
# one run: a fresh backup of a stream (half SQL text, half random bytes), a
# second backup with 1 % of its blocks changed, and a restore of the stream.
# Prints time, MB/s, bytes added by the second backup, peak RSS and ratios.
#
#   hack/bench/bench.sh            # 1 GiB stream
#   SIZE_MB=256 hack/bench/bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
SIZE_MB=${SIZE_MB:-1024}
work=${BENCH_DIR:-$(mktemp -d /var/tmp/stash-bench.XXXXXX)}
trap 'rm -rf "$work"' EXIT

command -v restic >/dev/null || { echo "installing restic (Debian) to compare against" >&2; apt-get install -y restic >/dev/null; }
[[ -x /usr/bin/time ]] || apt-get install -y time >/dev/null
hack/build-stash.sh
go build -o bin/genstream ./hack/bench/genstream

echo "generating ${SIZE_MB} MiB streams in $work ..." >&2
bin/genstream -size $((SIZE_MB << 20)) > "$work/stream1"
bin/genstream -size $((SIZE_MB << 20)) -change 1 > "$work/stream2"
bytes=$((SIZE_MB << 20))

cat > "$work/repo.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata: {name: bench-secret}
stringData: {RESTIC_PASSWORD: bench-password}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: bench}
spec:
  backend:
    storageSecretName: bench-secret
    local: {mountPath: $work/stash-repo}
YAML
export RESTIC_PASSWORD=bench-password RESTIC_CACHE_DIR=$work/restic-cache
stash() { "$root/bin/stash" repo -f "$work/repo.yaml" "$@"; }
# Both repositories are created before anything is timed.
restic -q -r "$work/restic-repo" init >/dev/null
stash init >/dev/null

# measure NAME CMD...: runs CMD under /usr/bin/time, records seconds and peak RSS (KiB).
declare -A secs rss
measure() {
  local name=$1; shift
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  cat "$work/stream1" "$work/stream2" > /dev/null   # inputs in page cache, repositories not
  /usr/bin/time -f "%e %M" -o "$work/time.$name" "$@"
  read -r secs[$name] rss[$name] < "$work/time.$name"
}

measure stash_backup1  bash -c "$(declare -f stash); root=$root work=$work; stash backup --stdin dump.sql -o json < $work/stream1 > $work/stash1.json"
measure restic_backup1 bash -c "restic -q -r $work/restic-repo backup --stdin --stdin-filename dump.sql < $work/stream1"
s1=$(du -sb "$work/stash-repo" | cut -f1); r1=$(du -sb "$work/restic-repo" | cut -f1)
measure stash_backup2  bash -c "$(declare -f stash); root=$root work=$work; stash backup --stdin dump.sql -o json < $work/stream2 > $work/stash2.json"
measure restic_backup2 bash -c "restic -q -r $work/restic-repo backup --stdin --stdin-filename dump.sql < $work/stream2"
s2=$(du -sb "$work/stash-repo" | cut -f1); r2=$(du -sb "$work/restic-repo" | cut -f1)
measure stash_restore  bash -c "$(declare -f stash); root=$root work=$work; stash restore --stdout dump.sql 2>/dev/null > /dev/null"
measure restic_restore bash -c "restic -q -r $work/restic-repo dump latest dump.sql > /dev/null"
# Correctness, untimed (a pipe into cmp runs at about 450 MB/s here and
# would dominate the timing): both restores must equal the second stream.
stash restore --stdout dump.sql 2>/dev/null | cmp - "$work/stream2" || { echo "stash restore differs from the stream" >&2; exit 1; }
restic -q -r "$work/restic-repo" dump latest dump.sql | cmp - "$work/stream2" || { echo "restic dump differs from the stream" >&2; exit 1; }

mbps() { awk -v b="$bytes" -v s="$1" 'BEGIN { printf "%.0f", b / 1048576 / s }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
pct() { awk -v a="$1" -v b="$bytes" 'BEGIN { printf "%.2f", 100 * a / b }'; }

echo
echo "stream: ${SIZE_MB} MiB (1 MiB blocks, half SQL text, half random); second stream: 1 % of blocks changed"
echo "machine: $(nproc) CPUs, $(go version | cut -d' ' -f3), $(restic version | cut -d' ' -f1-2)"
printf "%-22s %10s %10s %12s\n" "step" "seconds" "MiB/s" "peak RSS MiB"
for s in stash_backup1 restic_backup1 stash_backup2 restic_backup2 stash_restore restic_restore; do
  printf "%-22s %10s %10s %12s\n" "$s" "${secs[$s]}" "$(mbps "${secs[$s]}")" "$((${rss[$s]} / 1024))"
done
echo
printf "repository size after backup 1: stash %s MiB, restic %s MiB\n" $((s1 >> 20)) $((r1 >> 20))
printf "added by backup 2:              stash %s MiB (%s %% of stream), restic %s MiB (%s %%)\n" \
  $(((s2 - s1) >> 20)) "$(pct $((s2 - s1)))" $(((r2 - r1) >> 20)) "$(pct $((r2 - r1)))"
echo
echo "ratios (stash vs restic; > 1 means stash is better):"
echo "  fresh backup throughput: $(ratio "${secs[restic_backup1]}" "${secs[stash_backup1]}")x   (target >= 2)"
echo "  restore throughput:      $(ratio "${secs[restic_restore]}" "${secs[stash_restore]}")x   (target >= 3)"
echo "  second backup added:     $(pct $((s2 - s1))) % of the stream   (target <= 3 %)"
echo "  stash peak RSS:          $((${rss[stash_backup1]} / 1024)) MiB backup, $((${rss[stash_restore]} / 1024)) MiB restore   (target <= 300)"
