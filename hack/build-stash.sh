#!/usr/bin/env bash
# Builds the stash binary into ${1:-bin/stash} the way the images build it
# (build/*/Dockerfile, hack/images.sh): static, without cgo. The same binary
# as a user runs is the one the demo, the benchmarks and the tests measure.
# Without cgo every step also starts a little sooner, with no dynamic
# loader and no C runtime (measured in docs/benchmarks-history.md).
set -euo pipefail
cd "$(dirname "$0")/.."
CGO_ENABLED=0 go build -trimpath -o "${1:-bin/stash}" ./cmd/stash
