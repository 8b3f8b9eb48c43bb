#!/usr/bin/env bash
# Generates deep-copy functions (api/**/zz_generated.deepcopy.go) and CRDs
# (config/crd/bases) with controller-gen, pinned in hack/codegen and built
# into bin/. With --verify, fails if the committed files are stale.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p bin
stamp=bin/.codegen-stamp
want=$(sha256sum hack/codegen/go.mod hack/codegen/go.sum | sha256sum | cut -c1-16)
if [[ ! -x bin/controller-gen || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "building controller-gen into bin/ ..." >&2
  (cd hack/codegen && go build -o ../../bin/controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen)
  echo "$want" > "$stamp"
fi
verify=false
[[ ${1:-} == --verify ]] && verify=true
if $verify; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cp -r api config addons "$tmp/"
fi
go run ./hack/gen-catalog addons
bin/controller-gen object:headerFile=hack/boilerplate.go.txt paths=./api/...
rm -rf config/crd/bases
bin/controller-gen crd paths=./api/... output:crd:artifacts:config=config/crd/bases
if $verify; then
  if ! diff -r "$tmp/api" api >/dev/null || ! diff -r "$tmp/config" config >/dev/null || ! diff -r "$tmp/addons" addons >/dev/null; then
    diff -r "$tmp/api" api || true
    diff -r "$tmp/config" config || true
    diff -r "$tmp/addons" addons || true
    echo "generated files are stale: run hack/generate.sh and commit the result" >&2
    exit 1
  fi
fi
