#!/usr/bin/env bash
# Runs every test with the real servers they need. Used by `make test` and
# by CI (.ci/run). Tests that need a server fail (not skip) when it is
# missing, so a green run means everything ran.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/build-tools.sh
hack/build-peers.sh kopia
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
echo "== go test" >&2
export STASH_REQUIRE_SERVERS=1
go test -count=1 -timeout 20m "$@" ./...
