#!/usr/bin/env bash
# Builds Kubernetes and etcd binaries from the module proxy (module
# hack/kube) into bin/kube/<version>/. Without arguments it builds what the
# controller tests (envtest) need: etcd and kube-apiserver. `all` adds what
# the single-node end-to-end cluster runs. A binary is rebuilt only when
# hack/kube/go.sum changes; `go build` is incremental besides.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
version=v1.37.2
out=bin/kube/$version
mkdir -p "$out"
want=$(sha256sum hack/kube/go.mod hack/kube/go.sum | sha256sum | cut -c1-16)

components=(etcd kube-apiserver)
if [[ ${1:-} == all ]]; then
  components+=(kubectl kube-controller-manager kube-scheduler kube-proxy kubelet)
elif [[ $# -gt 0 ]]; then
  components=("$@")
fi

minor=${version#v1.}; minor=${minor%%.*}
ldflags="-s -w \
 -X k8s.io/component-base/version.gitVersion=$version \
 -X k8s.io/component-base/version.gitMajor=1 \
 -X k8s.io/component-base/version.gitMinor=$minor \
 -X k8s.io/component-base/version.gitTreeState=clean \
 -X k8s.io/component-base/version.buildDate=2026-01-01T00:00:00Z \
 -X k8s.io/client-go/pkg/version.gitVersion=$version \
 -X k8s.io/client-go/pkg/version.gitMajor=1 \
 -X k8s.io/client-go/pkg/version.gitMinor=$minor"

for c in "${components[@]}"; do
  stamp=$out/.$c-stamp
  if [[ -x $out/$c && -f $stamp && $(cat "$stamp") == "$want" ]]; then
    continue
  fi
  pkg=k8s.io/kubernetes/cmd/$c
  [[ $c == etcd ]] && pkg=./etcd
  echo "building $c $version into $out/ (first time takes minutes) ..." >&2
  start=$SECONDS
  (cd hack/kube && CGO_ENABLED=0 go build -trimpath -ldflags "$ldflags" -o "$root/$out/$c" "$pkg")
  echo "$want" > "$stamp"
  echo "built $c in $((SECONDS - start)) s" >&2
done
