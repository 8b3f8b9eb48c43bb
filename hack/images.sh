#!/usr/bin/env bash
# Builds the images the end-to-end cluster runs, as docker-archive
# tarballs in bin/images/ (no Docker engine, no registry: hack/image writes
# them with go-containerregistry, and hack/cluster/cluster.sh imports them
# into containerd). They mirror the release Dockerfiles in build/, made
# from this machine's Debian packages instead of a base image:
#   localhost/pause:3.10          the sandbox image
#   localhost/stash:e2e           the operator and the stash steps
#   localhost/stash-postgres:e2e  stash + PostgreSQL client tools (addon)
#   localhost/postgres:15-e2e     a PostgreSQL 15 server for the tests
#   localhost/stash-mongodb:e2e   stash alone (the MongoDB addon needs no tools)
#   localhost/ferretdb:e2e        FerretDB (bin/ferretdb), the MongoDB stand-in
#   localhost/stash-elasticsearch:e2e  stash alone (the Elasticsearch addon needs no tools)
#   localhost/stash-mariadb-galera:e2e stash + garbd, mbstream, mariabackup and the MariaDB client
#   localhost/redis-tools:e2e     a user's own addon image: Debian's redis-cli and a shell, no stash
#   localhost/redis:7-e2e         a Redis 7 server (Debian's) for the tests
# `hack/images.sh redis` builds only the two Redis images.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=bin/images
mkdir -p "$out" bin/image-build
work=bin/image-build
tag=${STASH_E2E_TAG:-e2e}
pgbin=/usr/lib/postgresql/15/bin
[[ -x $pgbin/pg_dump && -x /bin/busybox ]] || hack/install-servers.sh
for p in $pgbin/pg_dump /bin/busybox; do
  [[ -x $p ]] || { echo "missing $p: run hack/install-servers.sh as root (it installs postgresql and busybox-static)" >&2; exit 1; }
done
image() { (cd hack/image && go run . "$@"); }

cat > $work/passwd <<'P'
root:x:0:0:root:/root:/bin/sh
postgres:x:999:999:postgres:/var/lib/postgresql:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/sh
stash:x:65535:65535:stash:/tmp:/bin/sh
P
cat > $work/group <<'G'
root:x:0:
postgres:x:999:
nogroup:x:65534:
stash:x:65535:
G
common=(-add "$root/$work/passwd:/etc/passwd" -add "$root/$work/group:/etc/group" -dir /tmp -add /bin/busybox:/bin/busybox)
bb=()
for l in sh ls cat mkdir rm sleep env id; do bb+=(-link "/bin/$l:busybox"); done

# The Redis images: a user's own addon image and a server, from Debian's
# packages; `hack/images.sh redis` builds only these (the local tests of
# user-written addons need no cluster).
redis_images() {
  [[ -x /usr/bin/redis-cli && -x /usr/bin/redis-check-rdb ]] || hack/install-servers.sh
  ub=()
  for l in cp mv chmod wc grep head stat; do ub+=(-link "/bin/$l:busybox"); done
  image -o "$root/$out/redis-tools.tar" -tag "localhost/redis-tools:$tag" -libs "${common[@]}" "${bb[@]}" "${ub[@]}" \
    -add /usr/bin/redis-cli:/usr/bin/redis-cli -entrypoint /bin/sh -user 65535
  image -o "$root/$out/redis.tar" -tag "localhost/redis:7-$tag" -libs "${common[@]}" "${bb[@]}" "${ub[@]}" \
    -add /usr/bin/redis-cli:/usr/bin/redis-cli -add /usr/bin/redis-check-rdb:/usr/bin/redis-check-rdb \
    -link /usr/bin/redis-server:redis-check-rdb -dir /data -entrypoint /usr/bin/redis-server -user 65535
}
if [[ ${1:-} == redis ]]; then
  redis_images
  exit 0
fi

CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/stash-backup/stash/internal/cli.Version=$tag" -o $work/stash ./cmd/stash
(cd hack/image && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$root/$work/pause" ./pause)

image -o "$root/$out/pause.tar" -tag localhost/pause:3.10 -add "$root/$work/pause:/pause" -entrypoint /pause
image -o "$root/$out/stash.tar" -tag "localhost/stash:$tag" "${common[@]}" "${bb[@]}" \
  -add "$root/$work/stash:/usr/local/bin/stash" -entrypoint /usr/local/bin/stash -user 65535
image -o "$root/$out/stash-postgres.tar" -tag "localhost/stash-postgres:$tag" -libs "${common[@]}" "${bb[@]}" \
  -add "$root/$work/stash:/usr/local/bin/stash" \
  -add "$pgbin/pg_dump:/usr/bin/pg_dump" -add "$pgbin/pg_dumpall:/usr/bin/pg_dumpall" -add "$pgbin/psql:/usr/bin/psql" -add "$pgbin/pg_isready:/usr/bin/pg_isready" \
  -entrypoint /usr/local/bin/stash -user 65535
image -o "$root/$out/postgres.tar" -tag "localhost/postgres:15-$tag" -libs "${common[@]}" "${bb[@]}" \
  -add /usr/lib/postgresql/15:/usr/lib/postgresql/15 -add /usr/share/postgresql/15:/usr/share/postgresql/15 \
  -add /usr/share/zoneinfo:/usr/share/zoneinfo -dir /var/run/postgresql \
  -entrypoint "/bin/sh -c" -user 999
image -o "$root/$out/stash-mongodb.tar" -tag "localhost/stash-mongodb:$tag" "${common[@]}" "${bb[@]}" \
  -add "$root/$work/stash:/usr/local/bin/stash" -entrypoint /usr/local/bin/stash -user 65535
image -o "$root/$out/stash-elasticsearch.tar" -tag "localhost/stash-elasticsearch:$tag" "${common[@]}" "${bb[@]}" \
  -add "$root/$work/stash:/usr/local/bin/stash" -entrypoint /usr/local/bin/stash -user 65535
[[ -x /usr/bin/garbd && -x /usr/bin/mariabackup ]] || hack/install-servers.sh
image -o "$root/$out/stash-mariadb-galera.tar" -tag "localhost/stash-mariadb-galera:$tag" -libs "${common[@]}" "${bb[@]}" \
  -add "$root/$work/stash:/usr/local/bin/stash" -add /usr/bin/garbd:/usr/bin/garbd \
  -add /usr/bin/mbstream:/usr/bin/mbstream -add /usr/bin/mariadb-backup:/usr/bin/mariabackup \
  -add /usr/bin/mariadb:/usr/bin/mysql -add /usr/bin/mariadb-admin:/usr/bin/mysqladmin -add /usr/bin/mariadb-dump:/usr/bin/mysqldump \
  -entrypoint /usr/local/bin/stash -user 65535
redis_images
[[ -x bin/ferretdb ]] || hack/build-tools.sh
image -o "$root/$out/ferretdb.tar" -tag "localhost/ferretdb:$tag" "${common[@]}" "${bb[@]}" \
  -add "$root/bin/ferretdb:/usr/local/bin/ferretdb" -dir /data -entrypoint /usr/local/bin/ferretdb -user 65534
ls -la "$out" >&2
