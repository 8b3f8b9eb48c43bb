#!/usr/bin/env bash
# Generates deep-copy functions (api/**/zz_generated.deepcopy.go), CRDs
# (config/crd/bases, copied into charts/stash/crds) and the addon catalog, with controller-gen pinned in
# hack/codegen, and checks the CRDs with apiextensions' own validation
# (hack/crdcheck); tools are built into bin/. With --verify, fails if the
# committed files are stale.
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
stamp=bin/.crdcheck-stamp
want=$(sha256sum hack/crdcheck/go.mod hack/crdcheck/go.sum hack/crdcheck/main.go | sha256sum | cut -c1-16)
if [[ ! -x bin/crdcheck || ! -f $stamp || $(cat "$stamp") != "$want" ]]; then
  echo "building crdcheck (apiextensions validation) into bin/ ..." >&2
  (cd hack/crdcheck && go build -o ../../bin/crdcheck .)
  echo "$want" > "$stamp"
fi
verify=false
[[ ${1:-} == --verify ]] && verify=true
if $verify; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  cp -r api config addons charts "$tmp/"
fi
go run ./hack/gen-catalog addons
bin/controller-gen object:headerFile=hack/boilerplate.go.txt paths=./api/...
rm -rf config/crd/bases
bin/controller-gen crd paths=./api/... output:crd:artifacts:config=config/crd/bases
# Every CRD must pass the validation kube-apiserver applies on create
# (structural schema, defaults, CEL rules within their cost budget), and
# the CEL rules must accept and reject the test objects as they expect.
# The Helm chart installs the same CRDs.
rm -rf charts/stash/crds && mkdir -p charts/stash/crds && cp config/crd/bases/*.yaml charts/stash/crds/
bin/crdcheck -objects config/crd/testdata/cel-objects.yaml config/crd/bases/*.yaml >/dev/null
if $verify; then
  if ! diff -r "$tmp/api" api >/dev/null || ! diff -r "$tmp/config" config >/dev/null || ! diff -r "$tmp/addons" addons >/dev/null || ! diff -r "$tmp/charts" charts >/dev/null; then
    diff -r "$tmp/api" api || true
    diff -r "$tmp/config" config || true
    diff -r "$tmp/addons" addons || true
    diff -r "$tmp/charts" charts || true
    echo "generated files are stale: run hack/generate.sh and commit the result" >&2
    exit 1
  fi
fi
