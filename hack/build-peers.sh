#!/usr/bin/env bash
# Builds the peer tools this project is tested and benchmarked against into
# bin/: the kopia CLI v0.22.3 (hack/peers/kopia), restic v0.18.1
# (hack/peers/restic) and restic's rest-server v0.14.0
# (hack/peers/rest-server), each from the Go module proxy in its own module.
# A binary is rebuilt only when its module changes.
#
#   hack/build-peers.sh          # all
#   hack/build-peers.sh kopia    # one (kopia, restic or rest-server)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
mkdir -p bin
build() {
  local name=$1 pkg=$2
  local stamp=bin/.$name-stamp
  local want
  want=$(sha256sum hack/peers/$name/go.mod hack/peers/$name/go.sum | sha256sum | cut -c1-16)
  if [[ -x bin/$name && -f $stamp && $(cat "$stamp") == "$want" ]]; then return; fi
  echo "building $name ($pkg) into bin/ ..." >&2
  (cd hack/peers/$name && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$root/bin/$name" "$pkg")
  echo "$want" > "$stamp"
}
want=${1:-all}
[[ $want == all || $want == kopia ]] && build kopia github.com/kopia/kopia
[[ $want == all || $want == restic ]] && build restic github.com/restic/restic/cmd/restic
[[ $want == all || $want == rest-server ]] && build rest-server github.com/restic/rest-server/cmd/rest-server
exit 0
