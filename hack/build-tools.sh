#!/usr/bin/env bash
# Builds the test-only binaries (MinIO from hack/tools, helm from
# hack/helm) into bin/. A binary is rebuilt only when its module changes, so CI
# and repeated runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mkdir -p bin
stamp=bin/.tools-stamp
want=$(sha256sum hack/tools/go.mod hack/tools/go.sum | sha256sum | cut -c1-16)
if [[ ! -x bin/minio || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "building MinIO (test-only S3 server) into bin/ ..." >&2
  (cd hack/tools && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$root/bin/minio" github.com/minio/minio)
  echo "$want" > "$stamp"
fi

# helm renders charts/stash for the end-to-end cluster (helm template).
stamp=bin/.helm-stamp
want=$(sha256sum hack/helm/go.mod hack/helm/go.sum | sha256sum | cut -c1-16)
if [[ ! -x bin/helm || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "building helm into bin/ ..." >&2
  (cd hack/helm && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$root/bin/helm" helm.sh/helm/v3/cmd/helm)
  echo "$want" > "$stamp"
fi

# FerretDB (the MongoDB wire protocol over SQLite) is the MongoDB addon's
# test server: no MongoDB server can be built or installed here. Its
# module zip lacks build/version/version.txt, which its build embeds, so
# it builds from a writable copy with that file added.
ferretdb=v1.24.2
stamp=bin/.ferretdb-stamp
if [[ ! -x bin/ferretdb || ! -f $stamp || $(cat "$stamp") != "$ferretdb" ]]; then
  echo "building FerretDB $ferretdb (test-only MongoDB-compatible server) into bin/ ..." >&2
  dir=$(cd hack/tools && go mod download -json "github.com/FerretDB/FerretDB@$ferretdb" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  src=$(mktemp -d)
  cp -r "$dir/." "$src" && chmod -R u+w "$src"
  mkdir -p "$src/build/version" && echo "$ferretdb" > "$src/build/version/version.txt"
  (cd "$src" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$root/bin/ferretdb" ./cmd/ferretdb)
  rm -rf "$src"
  echo "$ferretdb" > "$stamp"
fi

# ZincSearch, a search server of its own with part of Elasticsearch's API,
# judges the Elasticsearch addon's restores beside the project's own
# imitation of Elasticsearch. v0.4.10 builds only with Go 1.20 (a
# profiling dependency links runtime internals of that version), which
# the module proxy serves as a toolchain, and embeds web/dist, which its
# module zip lacks: it builds from a writable copy with a placeholder page.
zinc=v0.4.10
stamp=bin/.zincsearch-stamp
if [[ ! -x bin/zincsearch || ! -f $stamp || $(cat "$stamp") != "$zinc" ]]; then
  echo "building ZincSearch $zinc (test-only, with Go 1.20.14) into bin/ ..." >&2
  dir=$(cd hack/tools && go mod download -json "github.com/zincsearch/zincsearch@$zinc" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  src=$(mktemp -d)
  cp -r "$dir/." "$src" && chmod -R u+w "$src"
  mkdir -p "$src/web/dist" && echo '<!doctype html><title>zincsearch</title>' > "$src/web/dist/index.html"
  (cd "$src" && GOTOOLCHAIN=go1.20.14 CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$root/bin/zincsearch" ./cmd/zincsearch)
  rm -rf "$src"
  echo "$zinc" > "$stamp"
fi
