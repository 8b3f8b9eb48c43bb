#!/usr/bin/env bash
# Builds the stash binary into ${1:-bin/stash} the way the images build it
# (build/*/Dockerfile, hack/images.sh): static, without cgo. The same binary
# as a user runs is the one the demo, the benchmarks and the tests measure.
# Without cgo the process also starts about 25 ms sooner: no dynamic loader
# and no C runtime (docs/benchmarks.md), on every backup and restore step.
set -euo pipefail
cd "$(dirname "$0")/.."
CGO_ENABLED=0 go build -trimpath -o "${1:-bin/stash}" ./cmd/stash
