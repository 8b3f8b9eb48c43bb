#!/usr/bin/env bash
# Benchmarks `stash repo` against its peers, each from its own CLI: kopia
# v0.22.3 (bin/kopia), restic v0.18.1 (bin/restic) and Debian's restic 0.14
# (/usr/bin/restic, tool "restic014"), on two datasets, directly on the
# machine ("host") and in a cgroup of 1 CPU and 512 MiB ("cg"), a number of
# times each. Results go to a TSV file, one row per timed step; `report`
# prints medians and ratios from it. Run as root (it drops the page cache
# and creates cgroups).
#
#   hack/bench/peers.sh                  # everything: hours on 2 CPUs
#   hack/bench/peers.sh report           # medians and ratios of what has run
#   TOOLS="stash restic" DATASETS=stream ENVS=host RUNS=1 hack/bench/peers.sh
#   MEASURES=restore TOOLS=kopia hack/bench/peers.sh
#   SIZE_MB=64 TREE_FILES=2000 RUNS=1 BENCH_DATA=/var/tmp/stash-bench-smoke hack/bench/peers.sh
#
# Datasets, generated once into $BENCH_DATA (default /var/tmp/stash-bench-data)
# and reused by later invocations (which must then pass the same sizes):
#   stream  SIZE_MB MiB (default 1024) of hack/bench/genstream, half SQL text
#           and half random, backed up from standard input as dump.sql; its
#           changed version has 1 % of its 1 MiB blocks changed.
#   tree    TREE_FILES files (default 50000) of 1-64 KiB, half log-like text
#           and half random, 100 to a directory, and 4 large files of
#           TREE_LARGE_MB MiB (default 64, scaled down with TREE_FILES, 4 at
#           least), half text and half random (hack/bench/gentree). Its changed
#           version has 1 % of the small files rewritten and 3 blocks of
#           1 MiB of one large file replaced. Every backup of a tree is of
#           the same path, $BENCH_DATA/work/tree: reset from the pristine
#           copy with rsync before the first backup, the changed files
#           copied over it (new mtimes) before the second.
#
# Measures, per environment, tool, dataset and run (a "group"), each into a
# fresh repository created (untimed) before the first, with fresh caches:
#   backup1  first backup
#   backup2  backup after 1 % has changed
#   backup3  (tree only) backup again with nothing changed
#   restore  the latest snapshot: the stream to /dev/null, the tree into an
#            empty directory on the same disk (deleted, untimed, after)
# Before each timed step the page cache is dropped and a backup's input read
# back into it: inputs are cached, repositories are not. Every group ends
# with an untimed check that a restore equals the data last backed up (cmp
# for the stream, diff -r for the tree). A mismatch, or a step that fails,
# marks all of the group's rows failed (and the group is run again later).
# All tools compress new data with zstd at its fastest level: stash's
# default, kopia's global policy set to zstd-fastest, restic's default
# ("auto") in a repository of format 2. Stash and restic restore "latest";
# kopia restores objects, so the root of its latest snapshot is looked up
# (untimed) first: `kopia show ROOT/dump.sql > /dev/null` restores the
# stream, `kopia restore ROOT DIR` the tree. Kopia's periodic maintenance is
# turned off, as the others run none during a backup.
#
# In "cg" the timed command (with /usr/bin/time) runs in the cgroup v1
# groups stashbench, one of memory (memory.limit_in_bytes CG_MEM_MB MiB,
# default 512; memsw too) and one of cpu (a quota of one CPU), created under
# this shell's own groups and removed at exit. Go 1.25 and later set
# GOMAXPROCS from the quota but to 2 at least, so on a 2-CPU machine every
# tool (restic 0.14, built with Go 1.19, from the CPUs) runs with 2, as in
# a pod with a 1-CPU limit; CG_GOMAXPROCS=1 sets it for the timed command.
# A step killed there (exit status 137: out of memory) is recorded "killed"
# and ends its group.
#
# TSV ($BENCH_OUT, default $BENCH_DATA/results.tsv), one row per timed step:
#   date env tool dataset measure run seconds bytes_input repo_bytes_added
#   peak_rss_kib status
# with status ok, killed or failed, bytes_input the dataset's size and
# repo_bytes_added the growth of the repository (du -sb; 0 for restore).
#
# Selecting and resuming: TOOLS (default "stash kopia restic restic014"),
# DATASETS ("stream tree"), MEASURES ("backup1 backup2 backup3 restore"),
# ENVS ("host cg") and RUNS (5; runs are numbered 1..RUNS) choose the part of
# the grid to run, one group at a time: run 1 of every env, dataset and tool,
# then run 2, and so on. A measure the TSV already holds with status ok for
# that env, tool, dataset and run is not timed again, and a group with
# nothing left to time is skipped, so an interrupted invocation (its group
# in progress is lost: a group's rows are written when it ends) is resumed
# by running the same command again, and RUNS=10 after RUNS=5 adds runs
# 6..10. A group with a killed step is skipped too (RETRY_KILLED=1 runs it
# again). The steps a timed measure depends on run untimed: MEASURES=restore
# backs up the stream and its changed version, then times the restore.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
BENCH_DATA=${BENCH_DATA:-/var/tmp/stash-bench-data}
BENCH_OUT=${BENCH_OUT:-$BENCH_DATA/results.tsv}
SIZE_MB=${SIZE_MB:-1024}
TREE_FILES=${TREE_FILES:-50000}
TREE_LARGE_MB=${TREE_LARGE_MB:-$((TREE_FILES >= 50000 ? 64 : TREE_FILES * 64 / 50000 > 4 ? TREE_FILES * 64 / 50000 : 4))}
RUNS=${RUNS:-5}
TOOLS=${TOOLS:-stash kopia restic restic014}
DATASETS=${DATASETS:-stream tree}
MEASURES=${MEASURES:-backup1 backup2 backup3 restore}
ENVS=${ENVS:-host cg}
CG_MEM_MB=${CG_MEM_MB:-512}
CG_GOMAXPROCS=${CG_GOMAXPROCS:-}
RETRY_KILLED=${RETRY_KILLED:-0}

die() { echo "peers.sh: $*" >&2; exit 1; }
has() { [[ " $1 " == *" $2 "* ]]; } # has LIST WORD

# report prints, per env, dataset and measure, the medians over runs (status
# ok; the last row of a run counts) of each tool and its ratio to stash.
report() {
  [[ -f $BENCH_OUT ]] || die "no results in $BENCH_OUT"
  awk -F'\t' '
    function median(s,   a, n, i, j, t) {
      n = split(s, a, " ")
      for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
      if (n == 0) return ""
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    function add(list, k, x) { return (k in list ? list[k] " " : "") (x + 0) }
    function order(v, known,   n, i, w) { n = split(known, w, " "); for (i = 1; i <= n; i++) if (w[i] == v) return i; return n + 1 }
    $1 == "date" { next }
    {
      g = $2 SUBSEP $4 SUBSEP $5; k = g SUBSEP $3; r = k SUBSEP $6
      if (!(g in groups)) { groups[g] = 1; glist[++ng] = g }
      if (!(k in seen)) { seen[k] = 1; tl[g] = tl[g] " " $3 }
      if ($11 == "ok") { secs[r] = $7; bytes[r] = $8; added[r] = $9; rss[r] = $10; ok[r] = 1 }
      else if ($11 == "killed") killed[r] = 1
      else failed[r] = 1
      allruns[r] = 1
    }
    END {
      for (r in allruns) {
        split(r, p, SUBSEP); k = p[1] SUBSEP p[2] SUBSEP p[3] SUBSEP p[4]
        if (r in ok) { S[k] = add(S, k, secs[r]); B[k] = add(B, k, bytes[r]); A[k] = add(A, k, added[r]); R[k] = add(R, k, rss[r]); nok[k]++ }
        else if (r in killed) nkill[k]++
        else nfail[k]++
      }
      # Sort the groups: env as first seen, then dataset, then measure.
      for (i = 1; i <= ng; i++) { split(glist[i], p, SUBSEP); env[p[1]] = env[p[1]] ? env[p[1]] : i
        key[i] = sprintf("%04d %d %d", env[p[1]], order(p[2], "stream tree"), order(p[3], "backup1 backup2 backup3 restore")) }
      for (i = 2; i <= ng; i++) { t = glist[i]; u = key[i]; for (j = i - 1; j >= 1 && key[j] > u; j--) { glist[j + 1] = glist[j]; key[j + 1] = key[j] } glist[j + 1] = t; key[j + 1] = u }
      for (i = 1; i <= ng; i++) {
        g = glist[i]; split(g, p, SUBSEP)
        nt = split("stash kopia restic restic014", known, " "); list = ""
        for (j = 1; j <= nt; j++) if (index(tl[g] " ", " " known[j] " ")) list = list " " known[j]
        n = split(tl[g], extra, " "); for (j = 1; j <= n; j++) if (order(extra[j], "stash kopia restic restic014") > nt) list = list " " extra[j]
        n = split(list, tool, " ")
        sk = g SUBSEP "stash"; ss = (sk in S) ? median(S[sk]) : ""
        size = ""
        for (j = 1; j <= n; j++) { k = g SUBSEP tool[j]; if (k in B) { size = median(B[k]); break } }
        printf "\n%s / %s / %s   (data %s MiB)\n", p[1], p[2], p[3], size == "" ? "?" : sprintf("%.0f", size / 1048576)
        printf "  %-10s %4s %6s %4s %9s %8s %10s %8s %9s %11s\n", "tool", "runs", "killed", "fail", "seconds", "MB/s", "MiB added", "% added", "RSS MiB", "peer/stash"
        for (j = 1; j <= n; j++) {
          k = g SUBSEP tool[j]
          if (k in S) {
            s = median(S[k]); b = median(B[k]); a = median(A[k]); m = median(R[k])
            pct = p[3] == "restore" ? "-" : sprintf("%.2f", 100 * a / b)
            ratio = ss == "" || s == 0 ? "-" : sprintf("%.2f", s / ss)
            printf "  %-10s %4d %6d %4d %9.2f %8.1f %10.1f %8s %9.1f %11s\n", tool[j], nok[k], nkill[k], nfail[k], s, (s > 0 ? b / 1e6 / s : 0), a / 1048576, pct, m / 1024, ratio
          } else
            printf "  %-10s %4d %6d %4d %9s %8s %10s %8s %9s %11s\n", tool[j], 0, nkill[k], nfail[k], "-", "-", "-", "-", "-", "-"
        }
      }
      print "\nmedians over runs with status ok; MB/s = dataset bytes / 10^6 / seconds; % added = repository growth /"
      print "dataset size; peer/stash = peer seconds / stash seconds (> 1: stash faster)"
    }' "$BENCH_OUT"
}

if [[ ${1:-} == report ]]; then report; exit 0; fi
[[ $# == 0 ]] || die "usage: $0 [report]"
for t in $TOOLS; do has "stash kopia restic restic014" "$t" || die "unknown tool $t"; done
for d in $DATASETS; do has "stream tree" "$d" || die "unknown dataset $d"; done
for m in $MEASURES; do has "backup1 backup2 backup3 restore" "$m" || die "unknown measure $m"; done
for e in $ENVS; do has "host cg" "$e" || die "unknown env $e"; done
[[ $(id -u) == 0 ]] || die "run as root (drops the page cache, creates cgroups)"

# Tools and inputs; nothing is rebuilt that exists (hack/build-*.sh do that).
[[ -x /usr/bin/time ]] || apt-get install -y time >/dev/null
command -v rsync >/dev/null || apt-get install -y rsync >/dev/null
if has "$TOOLS" restic014 && [[ ! -x /usr/bin/restic ]]; then apt-get install -y restic >/dev/null; fi
[[ -x bin/stash ]] || hack/build-stash.sh
if [[ -n $(find cmd internal api go.mod -newer bin/stash \( -name '*.go' ! -name '*_test.go' -o -name go.mod \) 2>/dev/null | head -1) ]]; then
  echo "warning: bin/stash is older than its sources (hack/build-stash.sh rebuilds it)" >&2
fi
if has "$TOOLS" kopia && [[ ! -x bin/kopia ]]; then hack/build-peers.sh kopia; fi
if has "$TOOLS" restic && [[ ! -x bin/restic ]]; then hack/build-peers.sh restic; fi
for g in genstream gentree; do
  if [[ ! -x bin/$g || -n $(find hack/bench/$g -newer bin/$g -name '*.go') ]]; then go build -o bin/$g ./hack/bench/$g; fi
done

mkdir -p "$BENCH_DATA"
stream1=$BENCH_DATA/stream/stream1 stream2=$BENCH_DATA/stream/stream2
tree_base=$BENCH_DATA/tree/base tree_delta=$BENCH_DATA/tree/delta
work_tree=$BENCH_DATA/work/tree
RUN=$BENCH_DATA/run # a group's repository, caches, logs and restore
sumsize() { find "$@" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }

# gen DATASET PARAMS CMD: runs CMD (which fills $tmp) unless the dataset was
# made with PARAMS already; a dataset made with others is an error.
gen() {
  local d=$BENCH_DATA/$1 want=$2; shift 2
  if [[ -f $d/params ]]; then
    [[ $(cat "$d/params") == "$want" ]] || die "$d was made with $(cat "$d/params"), not $want: use another BENCH_DATA or delete it"
    return
  fi
  echo "generating $(basename "$d") ($want) in $d ..." >&2
  tmp=$d.tmp
  rm -rf "$d" "$tmp"
  mkdir -p "$tmp"
  "$@"
  echo "$want" > "$tmp/params"
  mv "$tmp" "$d"
}
make_stream() {
  bin/genstream -size $((SIZE_MB << 20)) > "$tmp/stream1"
  bin/genstream -size $((SIZE_MB << 20)) -change 1 > "$tmp/stream2"
}
make_tree() {
  local flags=(-files "$TREE_FILES" -large 4 -large-size $((TREE_LARGE_MB << 20)))
  bin/gentree "${flags[@]}" -out "$tmp/base"
  bin/gentree "${flags[@]}" -change 1 -out "$tmp/delta"
}
if has "$DATASETS" stream; then gen stream "size_mb=$SIZE_MB change=1" make_stream; fi
if has "$DATASETS" tree; then gen tree "files=$TREE_FILES large=4x${TREE_LARGE_MB}MiB change=1" make_tree; fi

[[ -f $BENCH_OUT ]] || printf 'date\tenv\ttool\tdataset\tmeasure\trun\tseconds\tbytes_input\trepo_bytes_added\tpeak_rss_kib\tstatus\n' > "$BENCH_OUT"

# The cgroups of "cg", under this shell's own (cgroup v1).
memcg= cpucg=
cg_path() { awk -F: -v c="$1" '{ n = split($2, a, ","); for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' /proc/self/cgroup; }
cg_setup() {
  [[ -d /sys/fs/cgroup/memory && -d /sys/fs/cgroup/cpu ]] || die "env cg needs cgroup v1 memory and cpu hierarchies at /sys/fs/cgroup"
  memcg=/sys/fs/cgroup/memory$(cg_path memory)/stashbench
  cpucg=/sys/fs/cgroup/cpu$(cg_path cpu)/stashbench
  memcg=${memcg//\/\//\/} cpucg=${cpucg//\/\//\/}
  mkdir -p "$memcg" "$cpucg"
  echo $((CG_MEM_MB << 20)) > "$memcg/memory.limit_in_bytes"
  [[ ! -f $memcg/memory.memsw.limit_in_bytes ]] || echo $((CG_MEM_MB << 20)) > "$memcg/memory.memsw.limit_in_bytes"
  echo 100000 > "$cpucg/cpu.cfs_period_us"
  echo 100000 > "$cpucg/cpu.cfs_quota_us"
}
cleanup() {
  rm -rf "$RUN"
  [[ -z $memcg ]] || rmdir "$memcg" 2>/dev/null || true
  [[ -z $cpucg ]] || rmdir "$cpucg" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM
if has "$ENVS" cg; then cg_setup; fi

# Each tool sees its own settings only (a stash built before f618419
# crashes with kopia's KOPIA_CACHE_DIRECTORY set).
repo=$RUN/repo
stash=("$root/bin/stash" repo -f "$RUN/repo.yaml")
kopia=(env KOPIA_PASSWORD=bench-password KOPIA_CONFIG_PATH="$RUN/kopia/repository.config" KOPIA_CACHE_DIRECTORY="$RUN/cache"
  KOPIA_LOG_DIR="$RUN/logs/kopia" KOPIA_CHECK_FOR_UPDATES=false "$root/bin/kopia")
restic=(env RESTIC_PASSWORD=bench-password RESTIC_CACHE_DIR="$RUN/cache")
drop_warned=
drop_caches() {
  sync
  if ! echo 3 > /proc/sys/vm/drop_caches 2>/dev/null && [[ -z $drop_warned ]]; then
    echo "warning: cannot drop the page cache; repositories may be read from it" >&2
    drop_warned=1
  fi
}

# Per group: env tool dataset run, and the rows it has made.
env= tool= dataset= run= rbin=() rows=() group_status=ok

# step MEASURE TIMED INPUT OUTPUT CMD...: runs CMD with standard input from
# INPUT and output to OUTPUT. Timed (1), the page cache is dropped first, a
# backup's input read back, CMD run in the env under /usr/bin/time and a
# row made. Returns non-zero if CMD failed or was killed.
step() {
  local m=$1 timed=$2 in=$3 out=$4; shift 4
  local err=$RUN/logs/$m.err tf=$RUN/logs/$m.time rc=0
  if [[ $timed == 0 ]]; then
    "$@" < "$in" > "$out" 2> "$err" || { echo "  $tool $dataset $m (untimed) failed (exit $?): $(tail -3 "$err")" >&2; group_status=failed; return 1; }
    return 0
  fi
  drop_caches
  if [[ $m == backup* ]]; then
    if [[ $dataset == stream ]]; then cat "$in" > /dev/null; else find "$work_tree" -type f -exec cat {} + > /dev/null; fi
  fi
  local before bytes
  before=$(du -sb "$repo" | cut -f1)
  if [[ $dataset == tree ]]; then bytes=$(sumsize "$work_tree"); else bytes=$(stat -c %s "$stream1"); fi
  local t0=$EPOCHREALTIME
  if [[ $env == cg ]]; then
    local envp=()
    [[ -z $CG_GOMAXPROCS ]] || envp=(env GOMAXPROCS="$CG_GOMAXPROCS")
    bash -c 'echo $$ > "$1/tasks" && echo $$ > "$2/tasks" && shift 2 && exec "$@"' cgexec "$memcg" "$cpucg" \
      "${envp[@]}" /usr/bin/time -f '%e %M' -o "$tf" "$@" < "$in" > "$out" 2> "$err" || rc=$?
  else
    /usr/bin/time -f '%e %M' -o "$tf" "$@" < "$in" > "$out" 2> "$err" || rc=$?
  fi
  local t1=$EPOCHREALTIME secs= kib=0 status=ok
  if [[ -s $tf ]]; then read -r secs kib < <(tail -1 "$tf") || true; fi
  [[ $secs =~ ^[0-9.]+$ ]] || secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
  [[ $kib =~ ^[0-9]+$ ]] || kib=0
  if ((rc == 137)) || grep -q 'signal 9' "$tf" 2>/dev/null; then
    status=killed
  elif ((rc != 0)); then
    status=failed
  fi
  local added=0
  [[ $m == restore ]] || added=$(($(du -sb "$repo" | cut -f1) - before))
  rows+=("$(date -u +%Y-%m-%dT%H:%M:%SZ)	$env	$tool	$dataset	$m	$run	$secs	$bytes	$added	$kib	$status")
  printf '  %-9s %-6s %-7s %8s s %8s MB/s %8s MiB added %6s MiB RSS  %s\n' "$tool" "$dataset" "$m" "$secs" \
    "$(awk -v b="$bytes" -v s="$secs" 'BEGIN { printf "%.1f", (s > 0 ? b / 1e6 / s : 0) }')" $((added >> 20)) $((kib >> 10)) "$status" >&2
  if [[ $status != ok ]]; then
    echo "  $tool $dataset $m $status (exit $rc): $(tail -3 "$err")" >&2
    [[ $status == killed ]] && group_status=killed || group_status=failed
    return 1
  fi
}

tool_init() {
  case $tool in
  stash)
    cat > "$RUN/repo.yaml" <<YAML
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
    local: {mountPath: $repo}
YAML
    "${stash[@]}" init ;;
  kopia)
    "${kopia[@]}" repository create filesystem --path "$repo"
    "${kopia[@]}" policy set --global --compression=zstd-fastest
    # Nothing else of the peers' runs maintenance during a backup.
    "${kopia[@]}" maintenance set --enable-quick=false --enable-full=false ;;
  restic*)
    "${rbin[@]}" -q -r "$repo" init --repository-version 2 ;;
  esac
}

# backup_cmd, restore_cmd: set cmd to the tool's command line for $dataset.
backup_cmd() {
  case $tool/$dataset in
  stash/stream) cmd=("${stash[@]}" backup --stdin dump.sql) ;;
  stash/tree) cmd=("${stash[@]}" backup "$work_tree") ;;
  kopia/stream) cmd=("${kopia[@]}" snapshot create --no-progress --stdin-file dump.sql -) ;;
  kopia/tree) cmd=("${kopia[@]}" snapshot create --no-progress "$work_tree") ;;
  restic*/stream) cmd=("${rbin[@]}" -q -r "$repo" backup --stdin --stdin-filename dump.sql) ;;
  restic*/tree) cmd=("${rbin[@]}" -q -r "$repo" backup "$work_tree") ;;
  esac
}
restore_cmd() {
  local oid
  # kopia restores objects, not "latest": the root of its latest snapshot
  # is looked up first, untimed.
  if [[ $tool == kopia ]]; then
    oid=$("${kopia[@]}" snapshot list --all --json | grep -o '"obj":"[^"]*"' | tail -1 | cut -d'"' -f4)
    [[ -n $oid ]] || { echo "  kopia: no snapshot found" >&2; return 1; }
  fi
  case $tool/$dataset in
  stash/stream) cmd=("${stash[@]}" restore --stdout dump.sql) ;;
  stash/tree) cmd=("${stash[@]}" restore --target "$RUN/restore") ;;
  kopia/stream) cmd=("${kopia[@]}" show "$oid/dump.sql") ;;
  kopia/tree) cmd=("${kopia[@]}" restore --no-progress "$oid" "$RUN/restore") ;;
  restic*/stream) cmd=("${rbin[@]}" -q -r "$repo" dump latest dump.sql) ;;
  restic*/tree) cmd=("${rbin[@]}" -q -r "$repo" restore latest --target "$RUN/restore") ;;
  esac
}

# group: runs the steps of $env $tool $dataset $run that TODO needs, times
# those in TODO, checks the restore and appends the rows.
group() {
  local todo=$1 cmd=() input last=0 m i
  rows=() group_status=ok
  rm -rf "$RUN"
  mkdir -p "$RUN/logs" "$RUN/cache"
  case $tool in restic) rbin=("${restic[@]}" "$root/bin/restic") ;; restic014) rbin=("${restic[@]}" /usr/bin/restic) ;; esac
  tool_init > "$RUN/logs/init.out" 2>&1 || { echo "  $tool: creating the repository failed: $(tail -3 "$RUN/logs/init.out")" >&2; group_status=failed; return; }
  for m in $todo; do # the last step TODO needs: 1 backup1, 2 backup2, 3 the rest
    case $m in backup1) i=1 ;; backup2) i=2 ;; *) i=3 ;; esac
    last=$((i > last ? i : last))
  done
  timed() { has "$todo" "$1" && echo 1 || echo 0; }

  if [[ $dataset == tree ]]; then
    mkdir -p "$work_tree"
    rsync -a --delete "$tree_base/" "$work_tree/"
    input=/dev/null
  else
    input=$stream1
  fi
  backup_cmd
  step backup1 "$(timed backup1)" "$input" "$RUN/logs/backup1.out" "${cmd[@]}" || return 0
  if ((last >= 2)); then
    if [[ $dataset == tree ]]; then cp -R "$tree_delta/." "$work_tree/"; else input=$stream2; fi
    step backup2 "$(timed backup2)" "$input" "$RUN/logs/backup2.out" "${cmd[@]}" || return 0
  fi
  if has "$todo" backup3; then
    step backup3 1 "$input" "$RUN/logs/backup3.out" "${cmd[@]}" || return 0
  fi

  # The restore, timed or not, and the check that it is what was backed up.
  restore_cmd || { group_status=failed; return 0; }
  local expect=$input what
  if [[ $dataset == stream ]]; then
    if has "$todo" restore; then step restore 1 /dev/null /dev/null "${cmd[@]}" || return 0; fi
    what="$tool's restore of the stream differs from $expect"
    "${cmd[@]}" 2> "$RUN/logs/check.err" | cmp -s - "$expect" || { group_status=failed; echo "  $what" >&2; tail -3 "$RUN/logs/check.err" >&2; }
  else
    mkdir "$RUN/restore"
    step restore "$(timed restore)" /dev/null "$RUN/logs/restore.out" "${cmd[@]}" || return 0
    local got=$RUN/restore
    [[ $tool != restic* ]] || got=$RUN/restore$work_tree
    diff -rq --no-dereference "$work_tree" "$got" > "$RUN/logs/diff" 2>&1 ||
      { group_status=failed; echo "  $tool's restore of the tree differs from $work_tree: $(head -3 "$RUN/logs/diff")" >&2; }
    rm -rf "$RUN/restore"
  fi
}

# measures_in STATUS: the measures the TSV holds with STATUS for this group.
measures_in() {
  awk -F'\t' -v e="$env" -v t="$tool" -v d="$dataset" -v r="$run" -v s="$1" \
    '$2 == e && $3 == t && $4 == d && $6 == r && $11 == s { print $5 }' "$BENCH_OUT" | sort -u | tr '\n' ' '
}

failures=0
echo "results: $BENCH_OUT" >&2
for ((run = 1; run <= RUNS; run++)); do
  for env in $ENVS; do
    for dataset in $DATASETS; do
      for tool in $TOOLS; do
        todo=
        done_ok=$(measures_in ok)
        for m in $MEASURES; do
          [[ $m != backup3 || $dataset == tree ]] || continue
          has "$done_ok" "$m" || todo+="$m "
        done
        [[ -n $todo ]] || continue
        if [[ $RETRY_KILLED != 1 && -n $(measures_in killed) ]]; then
          echo "[run $run $env] $tool $dataset: skipped, killed before (RETRY_KILLED=1 retries)" >&2
          continue
        fi
        echo "[run $run $env] $tool $dataset: timing $todo" >&2
        group "$todo"
        if [[ $group_status == failed ]]; then
          failures=$((failures + 1))
          rows=("${rows[@]/%	ok/	failed}")
        fi
        ((${#rows[@]} == 0)) || printf '%s\n' "${rows[@]}" >> "$BENCH_OUT"
        rm -rf "$RUN"
      done
    done
  done
done
((failures == 0)) || die "$failures group(s) failed; their rows have status failed"
echo "done; hack/bench/peers.sh report prints the results" >&2
