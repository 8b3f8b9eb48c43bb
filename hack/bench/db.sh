#!/usr/bin/env bash
# Database benchmark: a pgbench database (scale ${PG_SCALE:-50}) and a MariaDB
# database of similar size, each backed up and restored
#   - by stash (backup-pg / restore-pg, backup-mysql / restore-mysql),
#   - by the dump tool alone (pg_dumpall > /dev/null, mysqldump > /dev/null),
#   - by the pipe alone (the tool's output handed to cat, which drops it,
#     and, through a 1 MiB pipe like stash's, to hack/bench/pipesink),
#   - by Stash's own pipeline (pg_dumpall | restic backup --stdin), and
#   - restored by the client alone (psql < dump.sql, mysql < dump.sql).
# Prints seconds, MiB/s of dump and peak RSS for each. Run as root (servers
# run as the postgres and mysql users) on a machine with the Debian packages
# (hack/install-servers.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
PG_SCALE=${PG_SCALE:-50}
MARIA_ROWS=${MARIA_ROWS:-$((PG_SCALE * 100000))}
work=$(mktemp -d /var/tmp/stash-dbbench.XXXXXX)
chmod 755 "$work"
cleanup() {
  [[ -n ${pgbin:-} ]] && runuser -u postgres -- "$pgbin/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1 || true
  [[ -n ${maria_pid:-} ]] && kill -9 "$maria_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
hack/install-servers.sh
command -v restic >/dev/null || apt-get install -y restic >/dev/null
hack/build-stash.sh
go build -o bin/pipesink ./hack/bench/pipesink
pgbin=$(dirname "$(ls /usr/lib/postgresql/*/bin/postgres | tail -1)")
export PATH=$pgbin:$PATH
pgport=55432 mport=53306

declare -A secs rss mb
# Backups repeat ROUNDS times, interleaved (tool alone, stash, restic, then
# again), and report the median: on a 2-vCPU virtual machine one dump's time
# varies by up to 1.5x from run to run.
ROUNDS=${ROUNDS:-5}
median() { sort -n | awk -v m=$(((ROUNDS + 1) / 2)) 'NR == m'; } # of ROUNDS lines, by the first field
# $before, if set, runs (untimed) before each measurement.
rounds() { # NAME CMD NAME CMD ...: measure each ROUNDS times, keep the medians
  local -a args=("$@")
  local r i
  for ((r = 1; r <= ROUNDS; r++)); do
    for ((i = 0; i < ${#args[@]}; i += 2)); do
      [[ -n ${before:-} ]] && bash -c "$before"
      measure "${args[i]}.$r" "${args[i+1]}"
    done
  done
  for ((i = 0; i < ${#args[@]}; i += 2)); do
    local n=${args[i]} all=""
    for ((r = 1; r <= ROUNDS; r++)); do all+="${secs[$n.$r]} ${rss[$n.$r]}"$'\n'; done
    read -r secs[$n] rss[$n] < <(printf '%s' "$all" | median)
    runs[$n]=$(printf '%s' "$all" | awk '{printf "%s%s", sep, $1; sep=" "}')
  done
}
declare -A runs
measure() { # NAME CMD...: time a shell pipeline, record seconds and peak RSS of its largest process
  local name=$1; shift
  # The database files stay in the page cache by default: with the cache
  # dropped, each dump reads 755 MiB from the virtual disk, whose speed
  # varied by 1.6x between rounds and hid what the target is about (does
  # the data mover keep pace with the dump). DROP_CACHES=1 measures cold.
  if [[ ${DROP_CACHES:-0} == 1 ]]; then sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; fi
  rm -f "$work/rusage.$name"
  STASH_RUSAGE=$work/rusage.$name /usr/bin/time -f "%e %M" -o "$work/time.$name" bash -c "$*"
  read -r secs[$name] rss[$name] < "$work/time.$name"
  # stash's own CPU (user + system), without the dump tool's, which the
  # shell's time adds: written by stash itself (STASH_RUSAGE).
  if [[ -f $work/rusage.$name ]]; then
    cpu[$name]=$(awk '{ printf "%.2f", $2 + $4 }' "$work/rusage.$name")
  fi
}
declare -A cpu

# What a second backup adds after 1 % of the rows changed, to fresh
# repositories: a first backup, then one after changing a contiguous 1 %
# of the rows (the target), then one after changing every hundredth row.
# A dump is cut into chunks of about 1 MiB (some 10 000 rows); a change
# spread over every chunk changes every chunk, for stash and restic alike.
declare -A grew
dedup() { # NAME STASH_CMD RESTIC_CMD CONTIGUOUS_SQL SCATTERED_SQL
  local name=$1 scmd=$2 rcmd=$3 before after
  rm -rf "$work/dedup-repo" "$work/dedup-restic"
  "$root/bin/stash" repo -f "$work/manifests.yaml" -n bench --repository dedup init >/dev/null
  restic -q -r "$work/dedup-restic" init
  local step sql
  for step in first contiguous scattered; do
    case $step in contiguous) sql=$4 ;; scattered) sql=$5 ;; *) sql="" ;; esac
    [[ -n $sql ]] && bash -c "$sql"
    for tool in stash restic; do
      local repo=$work/dedup-repo cmd=$scmd
      [[ $tool == restic ]] && repo=$work/dedup-restic cmd=$rcmd
      before=$(du -sb "$repo" | cut -f1)
      bash -c "$cmd" >/dev/null
      after=$(du -sb "$repo" | cut -f1)
      grew[$name.$tool.$step]=$((after - before))
    done
  done
}

echo "== PostgreSQL: pgbench scale $PG_SCALE" >&2
mkdir -p "$work/pg" && chown postgres "$work/pg"
echo pgbench-pw > "$work/pg/pw" && chown postgres "$work/pg/pw"
runuser -u postgres -- initdb -D "$work/pg/data" -U postgres --pwfile "$work/pg/pw" --auth-local=trust --auth-host=scram-sha-256 >/dev/null
runuser -u postgres -- pg_ctl -D "$work/pg/data" -l "$work/pg/log" -w -o "-p $pgport -k $work/pg -c listen_addresses=127.0.0.1 -c fsync=off -c max_wal_size=4GB" start >/dev/null
export PGPASSWORD=pgbench-pw
pgc="-h 127.0.0.1 -p $pgport -U postgres"
psql $pgc -q -c "CREATE DATABASE bench"
pgbench $pgc -q -i -s "$PG_SCALE" bench 2>/dev/null
pgsize=$(psql $pgc -tA -c "SELECT pg_database_size('bench')")

# pgbench's accounts table, with a VARCHAR filler: MariaDB strips the
# trailing spaces of a CHAR when it is read, so a CHAR(84) filler of spaces
# left the dump at 91 MiB, a fifth of pgbench's, and measured mostly the
# fixed cost of a backup (runs 1-9 in docs/benchmarks.md). PostgreSQL keeps
# them, and so does a VARCHAR: both dumps are now about 470 MiB.
echo "== MariaDB: $MARIA_ROWS rows" >&2
mkdir -p "$work/maria" && chown mysql "$work/maria"
mariadb-install-db --no-defaults --datadir="$work/maria/data" --user=mysql --auth-root-authentication-method=normal --skip-test-db >/dev/null
/usr/sbin/mariadbd --no-defaults --datadir="$work/maria/data" --port=$mport --bind-address=127.0.0.1 --socket="$work/maria/sock" \
  --skip-name-resolve --user=mysql --innodb-flush-log-at-trx-commit=0 --innodb-buffer-pool-size=1G --log-error="$work/maria/err" &
maria_pid=$!
for _ in $(seq 60); do mariadb --no-defaults --socket="$work/maria/sock" -uroot -e "SELECT 1" >/dev/null 2>&1 && break; sleep 1; done
mariadb --no-defaults --socket="$work/maria/sock" -uroot -e "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY 'maria-pw'; ALTER USER 'root'@'127.0.0.1' IDENTIFIED BY 'maria-pw'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
CREATE DATABASE bench; USE bench;
CREATE TABLE accounts (aid INT PRIMARY KEY, bid INT, abalance INT, filler VARCHAR(84)) ENGINE=InnoDB;
INSERT INTO accounts SELECT seq, seq DIV 100000, 0, RPAD('', 84, ' ') FROM seq_1_to_$MARIA_ROWS;
CREATE TABLE history (tid INT, bid INT, aid INT, delta INT, mtime DATETIME, filler CHAR(22));"
export MYSQL_PWD=maria-pw
mc="--no-defaults -h 127.0.0.1 -P $mport -u root --protocol=TCP"
msize=$(mariadb $mc -N -e "SELECT SUM(data_length + index_length) FROM information_schema.tables WHERE table_schema = 'bench'")

cat > "$work/manifests.yaml" <<YAML
apiVersion: v1
kind: Secret
metadata: {name: pg-auth, namespace: bench}
stringData: {username: postgres, password: pgbench-pw}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: pg, namespace: bench}
spec:
  clientConfig: {url: "postgresql://127.0.0.1:$pgport/postgres"}
  secret: {name: pg-auth}
---
apiVersion: v1
kind: Secret
metadata: {name: maria-auth, namespace: bench}
stringData: {username: root, password: maria-pw}
---
apiVersion: appcatalog.appscode.com/v1alpha1
kind: AppBinding
metadata: {name: maria, namespace: bench}
spec:
  clientConfig: {url: "tcp(127.0.0.1:$mport)/"}
  secret: {name: maria-auth}
---
apiVersion: v1
kind: Secret
metadata: {name: repo-secret, namespace: bench}
stringData: {RESTIC_PASSWORD: bench}
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: repo, namespace: bench}
spec:
  backend:
    local: {mountPath: $work/stash-repo}
    storageSecretName: repo-secret
---
apiVersion: stash.appscode.com/v1alpha1
kind: Repository
metadata: {name: dedup, namespace: bench}
spec:
  backend:
    local: {mountPath: $work/dedup-repo}
    storageSecretName: repo-secret
YAML
export RESTIC_PASSWORD=bench RESTIC_CACHE_DIR=$work/restic-cache
restic -q -r "$work/restic-repo" init
"$root/bin/stash" repo -f "$work/manifests.yaml" -n bench --repository repo init >/dev/null
st="$root/bin/stash"
common="-f $work/manifests.yaml --namespace bench --repository repo --scratch-dir $work"

# The fixed cost of a backup (process start, repository open, commit),
# on a database of a few KiB: stash minus the dump tool alone.
psql $pgc -q -c "CREATE DATABASE tiny" && psql $pgc -q -d tiny -c "CREATE TABLE t AS SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100) g"
mariadb $mc -e "CREATE DATABASE tiny; USE tiny; CREATE TABLE t AS SELECT seq AS id, MD5(seq) AS v FROM seq_1_to_100"
rounds pg_tiny_dump  "pg_dump $pgc -d tiny > /dev/null" \
       pg_tiny_stash "$st backup-pg $common --appbinding pg --hostname pg-tiny --backup-cmd pg_dump --pg-args '-d tiny' > /dev/null" \
       my_tiny_dump  "mysqldump $mc --single-transaction --routines --events --triggers --databases tiny > /dev/null" \
       my_tiny_stash "$st backup-mysql $common --appbinding maria --hostname maria-tiny --mysql-args '--databases tiny' > /dev/null"
psql $pgc -q -c "DROP DATABASE tiny"
mariadb $mc -e "DROP DATABASE tiny"

# PostgreSQL
measure pg_dumpall      "pg_dumpall $pgc > $work/pg.sql"
pgdump=$(stat -c %s "$work/pg.sql")
# "The pipe alone" is the tool writing through the same 1 MiB stdio buffer
# into a pipe that cat empties; "the 1 MiB pipe" the same into a pipe as
# large as stash's, emptied by pipesink, which does nothing else: what
# handing the dump to another process costs, before that process does
# anything with it. cat's 64 KiB pipe makes the tool wait for cat 16 times
# per 1 MiB write, so only the second is the floor for stash.
rounds pg_dump_null    "pg_dumpall $pgc > /dev/null" \
       pg_pipe         "stdbuf -o1M pg_dumpall $pgc | cat > /dev/null" \
       pg_pipe1m       "$root/bin/pipesink stdbuf -o1M pg_dumpall $pgc" \
       pg_stash_backup "$st backup-pg $common --appbinding pg --hostname pg > /dev/null" \
       pg_restic       "pg_dumpall $pgc | restic -q -r $work/restic-repo backup --stdin --stdin-filename dumpfile.sql --host pg"
# Each round starts from a clean slate: the previous restore's dirty pages
# written out and PostgreSQL checkpointed, so its writeback does not land on
# the next round (psql alone varied from 6.5 to 8.9 s without this).
before="psql $pgc -q -c 'DROP DATABASE bench' && psql $pgc -q -c CHECKPOINT && sync" \
rounds pg_psql_restore  "psql $pgc -q -d postgres -f $work/pg.sql > /dev/null 2>&1" \
       pg_stash_restore "$st restore-pg $common --appbinding pg --hostname pg > /dev/null"
[[ $(psql $pgc -tA -d bench -c "SELECT count(*) FROM pgbench_accounts") == $((PG_SCALE * 100000)) ]] || { echo "pgbench data did not come back" >&2; exit 1; }
dedup pg "$st backup-pg -f $work/manifests.yaml --namespace bench --repository dedup --scratch-dir $work --appbinding pg --hostname pg" \
  "pg_dumpall $pgc | restic -q -r $work/dedup-restic backup --stdin --stdin-filename dumpfile.sql --host pg" \
  "psql $pgc -q -d bench -c 'UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid <= $((PG_SCALE * 1000))'" \
  "psql $pgc -q -d bench -c 'UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 100 = 50'"

# MariaDB
dumpflags="--single-transaction --routines --events --triggers --all-databases"
measure my_dump         "mysqldump $mc $dumpflags > $work/my.sql"
mydump=$(stat -c %s "$work/my.sql")
rounds my_dump_null    "mysqldump $mc $dumpflags > /dev/null" \
       my_pipe         "stdbuf -o1M mysqldump $mc $dumpflags | cat > /dev/null" \
       my_pipe1m       "$root/bin/pipesink stdbuf -o1M mysqldump $mc $dumpflags" \
       my_stash_backup "$st backup-mysql $common --appbinding maria --hostname maria > /dev/null" \
       my_restic       "mysqldump $mc $dumpflags | restic -q -r $work/restic-repo backup --stdin --stdin-filename dumpfile.sql --host maria"
before="mariadb $mc -e 'DROP DATABASE bench' && sync" \
rounds my_mysql_restore "mariadb $mc < $work/my.sql" \
       my_stash_restore "$st restore-mysql $common --appbinding maria --hostname maria > /dev/null"
[[ $(mariadb $mc -N -e "SELECT COUNT(*) FROM bench.accounts") == "$MARIA_ROWS" ]] || { echo "MariaDB data did not come back" >&2; exit 1; }
dedup my "$st backup-mysql -f $work/manifests.yaml --namespace bench --repository dedup --scratch-dir $work --appbinding maria --hostname maria" \
  "mysqldump $mc $dumpflags | restic -q -r $work/dedup-restic backup --stdin --stdin-filename dumpfile.sql --host maria" \
  "mariadb $mc -e 'UPDATE bench.accounts SET abalance = abalance + 1 WHERE aid <= $((MARIA_ROWS / 100))'" \
  "mariadb $mc -e 'UPDATE bench.accounts SET abalance = abalance + 1 WHERE aid % 100 = 50'"

# Free page reporting (a virtio balloon with feature bit 5,
# VIRTIO_BALLOON_F_REPORTING, which hands the guest's free memory
# back to the host) makes every MiB a process touches fresh cost a few ms
# (docs/benchmarks.md): it weighs on stash, which touches about 85 MiB,
# and hardly on the dump tools.
reporting=off
if [[ -r /sys/module/page_reporting/parameters/page_reporting_order ]] &&
  grep -q '^.....1' /sys/bus/virtio/drivers/virtio_balloon/virtio*/features 2>/dev/null; then
  reporting="on (order $(cat /sys/module/page_reporting/parameters/page_reporting_order))"
fi
echo
echo "Machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%d GiB", $2 / 1048576}' /proc/meminfo), free page reporting $reporting"
row() { awk -v n="$1" -v s="${secs[$1]}" -v r="${rss[$1]}" -v b="$2" -v all="${runs[$1]:-}" 'BEGIN { printf "%-20s %8.2f %10.0f %10d   %s\n", n, s, b / 1048576 / s, r / 1024, all }'; }
echo
echo "PostgreSQL: pgbench scale $PG_SCALE, database $((pgsize >> 20)) MiB, pg_dumpall output $((pgdump >> 20)) MiB"
printf "%-20s %8s %10s %10s   %s\n" step seconds "dump MiB/s" "RSS MiB" "(each round; the median is shown)"
for s in pg_dump_null pg_pipe pg_pipe1m pg_stash_backup pg_restic pg_psql_restore pg_stash_restore; do row $s "$pgdump"; done
echo
echo "MariaDB: $MARIA_ROWS rows, database $((msize >> 20)) MiB, mysqldump output $((mydump >> 20)) MiB"
printf "%-20s %8s %10s %10s   %s\n" step seconds "dump MiB/s" "RSS MiB" "(each round; the median is shown)"
for s in my_dump_null my_pipe my_pipe1m my_stash_backup my_restic my_mysql_restore my_stash_restore; do row $s "$mydump"; done
echo
# Rounds are interleaved, so each round's ratio compares runs made within
# seconds of each other, in the same phase of a machine whose speed swings.
echo "Per-round ratios to the tool or client alone (the median, the middle half of the rounds, then each round; targets <= 1.15)"
ratio() { # NAME BASE
  local r all=""
  for ((r = 1; r <= ROUNDS; r++)); do
    all+=$(awk -v a="${secs[$1.$r]}" -v b="${secs[$2.$r]}" 'BEGIN { printf "%.2f\n", a / b }')$'\n'
  done
  printf "%-36s %6s   %-11s   %s\n" "$1 / $2" "$(printf '%s' "$all" | median)" "$(printf '%s' "$all" | quartiles)" "$(printf '%s' "$all" | tr '\n' ' ')"
}
# The middle half of the rounds (first to third quartile): how far one
# run's median can be trusted on a machine whose speed swings.
quartiles() { sort -n | awk '{ v[NR] = $1 } END { q1 = int((NR + 3) / 4); q3 = int((3 * NR + 3) / 4); printf "%s-%s", v[q1], v[q3] }'; }
for s in pg_pipe pg_pipe1m pg_stash_backup pg_restic; do ratio $s pg_dump_null; done
ratio pg_stash_restore pg_psql_restore
for s in my_pipe my_pipe1m my_stash_backup my_restic; do ratio $s my_dump_null; done
ratio my_stash_restore my_mysql_restore
echo "stash's backups against the pipes alone (what stash adds beyond handing the dump to another process)"
ratio pg_stash_backup pg_pipe
ratio pg_stash_backup pg_pipe1m
ratio my_stash_backup my_pipe
ratio my_stash_backup my_pipe1m
echo
echo "stash's own CPU per backup, user + system seconds, without the tool's (the median, the middle half of the rounds, then each round)"
for s in pg_stash_backup my_stash_backup; do
  all=""
  for ((r = 1; r <= ROUNDS; r++)); do all+="${cpu[$s.$r]:-0}"$'\n'; done
  printf "%-36s %6s   %-11s   %s\n" "$s" "$(printf '%s' "$all" | median)" "$(printf '%s' "$all" | quartiles)" "$(printf '%s' "$all" | tr '\n' ' ')"
done
echo
echo "Fixed cost of a backup: a database of 100 rows (stash minus the tool alone)"
printf "%-20s %8s   %s\n" step seconds "(each round; the median is shown)"
for s in pg_tiny_dump pg_tiny_stash my_tiny_dump my_tiny_stash; do printf "%-20s %8.2f   %s\n" $s "${secs[$s]}" "${runs[$s]}"; done
echo
echo "Second backups to fresh repositories (bytes the repository grew; target: contiguous 1 % adds <= 5 % of the first)"
printf "%-10s %12s %14s %8s %14s %8s\n" "" first "1 % contiguous" "" "1 % scattered" ""
for n in pg my; do
  for tool in stash restic; do
    f=${grew[$n.$tool.first]} c=${grew[$n.$tool.contiguous]} x=${grew[$n.$tool.scattered]}
    awk -v n="$n $tool" -v f="$f" -v c="$c" -v x="$x" 'BEGIN { printf "%-12s %8.1f MiB %10.2f MiB %6.2f %% %10.2f MiB %6.1f %%\n", n, f/1048576, c/1048576, 100*c/f, x/1048576, 100*x/f }'
  done
done
echo
echo "repositories: stash $(du -sm "$work/stash-repo" | cut -f1) MiB, restic $(du -sm "$work/restic-repo" | cut -f1) MiB (both dumps each)"
