#!/usr/bin/env bash
# Runs every test with the real servers they need. Used by `make test` and
# by CI (.ci/run). Tests that need a server fail (not skip) when it is
# missing, so a green run means everything ran.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/build-tools.sh
hack/build-peers.sh        # kopia, restic 0.18.1, rest-server: peers the tests run
hack/build-kube.sh
hack/install-servers.sh
echo "== generated code and CRDs are up to date" >&2
hack/generate.sh --verify
echo "== gofmt / go vet" >&2
unformatted=$(gofmt -l $(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null | while read -r f; do [[ -f $f ]] && echo "$f"; done))
if [[ -n $unformatted ]]; then
  echo "gofmt needed on:" >&2; echo "$unformatted" >&2; exit 1
fi
go vet ./...
# Steps and the operator run on Linux, but the repository CLI is for every
# workstation: the binary must build for macOS and for arm64.
echo "== cross-builds: darwin/arm64, linux/arm64" >&2
GOOS=darwin GOARCH=arm64 go build -o /dev/null ./cmd/stash
GOOS=linux GOARCH=arm64 go build -o /dev/null ./cmd/stash
# The Redis addon's image, which the local runtime's container tests run
# (internal/runtime/container, test/e2e) without the cluster; seconds.
hack/images.sh redis
echo "== go test" >&2
export STASH_INTEGRATION=1
go test -count=1 -timeout 20m "$@" ./...
