#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, for the end-to-end
# tests: containerd + runc from Debian, etcd and the Kubernetes components
# built by hack/build-kube.sh, started as plain processes (no systemd, no
# Docker, no registry). /work/shared/reference/single-node-cluster.md says
# why each setting is what it is.
#
#   hack/cluster/cluster.sh up              start (or repair) the cluster and wait until the node is
#                                           Ready; prints the admin kubeconfig path (the only stdout)
#   hack/cluster/cluster.sh down [--purge]  stop it and undo its host changes; --purge also deletes
#                                           the cluster directory (certificates, etcd data, images)
#   hack/cluster/cluster.sh status          each component, and whether the node is Ready (exit 0 when healthy)
#   hack/cluster/cluster.sh kubeconfig      prints the admin kubeconfig path
#   hack/cluster/cluster.sh import FILE...  imports image tarballs into containerd (namespace k8s.io)
#
# `up` is idempotent: it starts what does not run and waits for all of it.
# `down` keeps the cluster's state (certificates, etcd, images) but no pods:
# after the next `up` the kubelet starts them again.
#
# Images: there is no registry. `up` imports every bin/images/*.tar (made by
# hack/images.sh), again when a tarball changes. The sandbox image
# localhost/pause:3.10 (bin/images/pause.tar) is built with hack/image when
# missing. Pods must use imagePullPolicy Never or IfNotPresent and a
# non-latest tag.
#
# Environment: STASH_CLUSTER_DIR (default /var/lib/stash-cluster),
# STASH_CLUSTER_TIMEOUT (seconds `up` waits, default 110),
# STASH_CLUSTER_NODE_IP (default: the source address of the default route).
#
# Everything lives in the cluster directory except what the programs insist on
# putting elsewhere: /run/containerd (socket, shim sockets),
# /var/lib/kubelet/device-plugins, /var/log/containers, /var/lib/cni (CNI
# result cache), /run/mount (libmount), the cgroup stash-cluster in every
# cgroup hierarchy (the kubelet's cgroupRoot: its pods go below it, and
# `down` kills only what runs there), the cni0 bridge, KUBE-* and CNI-*
# iptables chains, and sysctls (net.ipv4.ip_forward by the bridge plugin;
# vm.overcommit_memory, kernel.panic, kernel.panic_on_oops by the kubelet).
# `up` records their prior state in DIR/host and `down` restores it.
# Ports: 2379, 2380 (etcd), 6443, 10248-10250, 10256, 10257, 10259.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
version=v1.37.2
kbin=$root/bin/kube/$version
DIR=$(realpath -m "${STASH_CLUSTER_DIR:-/var/lib/stash-cluster}")
timeout=${STASH_CLUSTER_TIMEOUT:-110}
sock=/run/containerd/containerd.sock
service_cidr=10.96.0.0/12
service_ip=10.96.0.1
cluster_cidr=10.244.0.0/16
pod_cidr=10.244.0.0/24
pause_image=localhost/pause:3.10
packages=(containerd runc iptables conntrack containernetworking-plugins openssl busybox-static)
# Start order; `down` stops in reverse.
components=(containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)
# Sysctls the components may change, restored by `down`.
sysctls=(net.ipv4.ip_forward net.ipv4.conf.all.route_localnet net.bridge.bridge-nf-call-iptables
  net.bridge.bridge-nf-call-ip6tables net.netfilter.nf_conntrack_max
  net.netfilter.nf_conntrack_tcp_timeout_established net.netfilter.nf_conntrack_tcp_timeout_close_wait
  vm.overcommit_memory vm.panic_on_oom kernel.panic kernel.panic_on_oops
  kernel.keys.root_maxkeys kernel.keys.root_maxbytes)
# Paths outside DIR that the components create.
outside=(/run/containerd /var/lib/kubelet /var/log/containers /var/lib/cni /run/mount)

log() { echo "cluster: $*" >&2; }
die() { echo "cluster: $*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers

kc() { "$kbin/kubectl" --kubeconfig "$DIR/admin.kubeconfig" --cache-dir "$DIR/run/kubectl-cache" --request-timeout 5s "$@"; }
ctr_() { ctr --address "$sock" -n k8s.io "$@"; }

logfile() { echo "$DIR/logs/$1.log"; }
pidfile() { echo "$DIR/run/$1.pid"; }

exe_of() { # the binary a component runs
  case $1 in
  containerd) echo /usr/bin/containerd ;;
  *) echo "$kbin/$1" ;;
  esac
}

pid_of() { # prints the component's PID when it runs (our process: its binary, our directory in its arguments)
  local pid exe
  pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ && -d /proc/$pid ]] || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  exe=${exe% (deleted)}
  [[ ${exe##*/} == "$1" ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$DIR/" || return 1
  echo "$pid"
}
running() { pid_of "$1" >/dev/null; }

tail_log() {
  local f
  f=$(logfile "$1")
  [[ -f $f ]] || return 0
  echo "==> $f (last ${2:-40} lines)" >&2
  tail -n "${2:-40}" "$f" >&2
}

fail() { # fail COMPONENT MESSAGE: the message and the tail of the component's log
  log "$2"
  tail_log "$1"
  exit 1
}

start() { # start NAME ARGS...: a detached process in its own session; its PID in DIR/run
  local name=$1 pf lf i
  shift
  running "$name" && return 0
  pf=$(pidfile "$name")
  lf=$(logfile "$name")
  rm -f "$pf"
  if [[ -f $lf ]] && (($(stat -c %s "$lf") > 64 << 20)); then mv -f "$lf" "$lf.1"; fi
  echo "==== $(date -u +%FT%TZ) starting $name" >>"$lf"
  # 9>&-: the daemons must not inherit the lock on DIR/.lock.
  # shellcheck disable=SC2016 # $$ and $@ belong to the inner shell
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pf" "$(exe_of "$name")" "$@" </dev/null >>"$lf" 2>&1 9>&- &
  for ((i = 0; i < 50; i++)); do
    [[ -s $pf ]] && break
    sleep 0.1
  done
  log "started $name (pid $(cat "$pf" 2>/dev/null || echo ?))"
}

alive() { # alive PID: exists and is not a zombie
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ ${st:0:1} != Z ]]
}

stop() { # stop NAME...: TERM to each (in the order given), then KILL what is left after 10 s
  local name pid i alive t0=$SECONDS pids=() names=()
  for name in "$@"; do
    if pid=$(pid_of "$name"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      names+=("$name")
    fi
    rm -f "$(pidfile "$name")"
  done
  ((${#pids[@]})) || return 0
  for ((i = 0; i < 100; i++)); do
    alive=0
    for pid in "${pids[@]}"; do alive "$pid" && alive=1; done
    ((alive)) || break
    sleep 0.1
  done
  for ((i = 0; i < ${#pids[@]}; i++)); do
    alive "${pids[i]}" || continue
    log "${names[i]} did not stop in 10 s: killing it"
    kill -KILL "${pids[i]}" 2>/dev/null || true
  done
  log "stopped ${names[*]} ($((SECONDS - t0)) s)"
}

wait_for() { # wait_for COMPONENT WHAT SECONDS CMD...: until CMD succeeds; fails if the component dies
  local name=$1 what=$2 secs=$3 deadline
  shift 3
  deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    running "$name" || fail "$name" "$name exited while waiting for $what"
    ((SECONDS < deadline)) || fail "$name" "timed out after $secs s waiting for $what"
    sleep 0.3
  done
}

port_owner() { # prints the process listening on TCP PORT, if any
  ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\("[^"]*"\),pid=\([0-9]*\).*/\1 pid \2/p' | head -n1
}

check_ports() { # check_ports NAME PORT...: a component about to start needs its ports free
  local name=$1 p owner
  shift
  running "$name" && return 0
  for p in "$@"; do
    owner=$(port_owner "$p")
    [[ -z $owner ]] || die "cannot start $name: port $p is taken by $owner"
  done
}

remaining() { # seconds left of the overall budget, at least 5
  local r=$((deadline_all - SECONDS))
  ((r > 5)) || r=5
  echo "$r"
}

# ---------------------------------------------------------------- host

ensure_packages() {
  local p missing=()
  for p in "${packages[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
  command -v curl >/dev/null || missing+=(curl) # the health checks
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]} (Debian) ..."
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null ||
    { apt-get update >/dev/null && apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
}

node_ip() {
  local ip=${STASH_CLUSTER_NODE_IP:-}
  [[ -n $ip ]] || ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' | head -n1)
  [[ -n $ip ]] || ip=$(hostname -I 2>/dev/null | tr ' ' '\n' | grep -m1 -E '^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$' || true)
  [[ -n $ip ]] || die "cannot find this host's IPv4 address (set STASH_CLUSTER_NODE_IP)"
  echo "$ip"
}

node_name() { hostname | tr '[:upper:]' '[:lower:]'; }

ipt_kube_chains() { # "FAMILY TABLE CHAIN" for every KUBE-* and CNI-* chain
  local fam
  for fam in iptables ip6tables; do
    command -v "$fam-save" >/dev/null || continue
    "$fam-save" 2>/dev/null | awk -v f="$fam" '/^\*/ { t = substr($1, 2) } /^:(KUBE-|CNI-)/ { print f, t, substr($1, 2) }' || true
  done
}

record_host() { # once per up/down cycle: what the cluster may change on the host
  local h=$DIR/host s p
  [[ -f $h/recorded ]] && return 0
  mkdir -p "$h"
  : >"$h/sysctls"
  for s in "${sysctls[@]}"; do
    [[ -e /proc/sys/${s//.//} ]] && echo "$s=$(sysctl -n "$s")" >>"$h/sysctls"
  done
  : >"$h/existed"
  for p in "${outside[@]}" /var/lib/kubelet/device-plugins; do
    [[ -e $p ]] && echo "$p" >>"$h/existed"
  done
  ip link show cni0 >/dev/null 2>&1 && echo cni0 >>"$h/existed"
  ipt_kube_chains >"$h/iptables-chains"
  date -u +%FT%TZ >"$h/recorded"
}

existed() { grep -qxF -- "$1" "$DIR/host/existed" 2>/dev/null; }

ipt_cleanup() { # removes the KUBE-*/CNI-* chains that were not there before `up`, and the rules jumping to them
  local fam table dump drop
  for fam in iptables ip6tables; do
    command -v "$fam-save" >/dev/null || continue
    dump=$("$fam-save" 2>/dev/null) || continue
    # shellcheck disable=SC2013 # table names are words
    for table in $(awk '/^\*/ { print substr($1, 2) }' <<<"$dump"); do
      drop=$(awk -v t="$table" '/^\*/ { cur = substr($1, 2) } cur == t && /^:(KUBE-|CNI-)/ { print substr($1, 2) }' <<<"$dump" |
        while read -r c; do grep -qxF "$fam $table $c" "$DIR/host/iptables-chains" 2>/dev/null || echo "$c"; done)
      [[ -n $drop ]] || continue
      drop=$(tr '\n' ' ' <<<"$drop")
      awk -v t="$table" -v drop="$drop" '
        BEGIN { n = split(drop, d, " "); for (i = 1; i <= n; i++) gone[d[i]] = 1; print "*" t
                for (c in gone) print ":" c " - [0:0]" }
        /^\*/ { cur = substr($1, 2); next }
        cur == t && $1 == "-A" && !($2 in gone) {
          for (i = 3; i < NF; i++) if (($i == "-j" || $i == "-g") && ($(i + 1) in gone)) { sub(/^-A/, "-D"); print; break }
        }
        END { for (c in gone) print "-X " c; print "COMMIT" }' <<<"$dump" | "$fam-restore" --noflush ||
        log "could not remove $fam $table chains: $drop"
    done
  done
}

umount_under() { # unmounts everything mounted below $1, deepest first
  local d=$1 i m mnts
  for ((i = 0; i < 10; i++)); do
    mapfile -t mnts < <(awk -v d="$d" 'index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    ((${#mnts[@]})) || return 0
    for m in "${mnts[@]}"; do
      umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done
  done
  ! awk -v d="$d" 'index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo
}

# The kubelet's cgroupRoot (kubelet.yaml), in every cgroup hierarchy.
cgroup_root=stash-cluster
cgroup_dirs() { # the cluster's cgroup in each hierarchy mounted under /sys/fs/cgroup
  local d
  for d in /sys/fs/cgroup/*/; do
    [[ -L ${d%/} || ! -f $d/cgroup.procs ]] || echo "${d}$cgroup_root"
  done
  [[ ! -f /sys/fs/cgroup/cgroup.procs ]] || echo "/sys/fs/cgroup/$cgroup_root"
}

make_cgroups() { # the kubelet wants its cgroupRoot to exist; a cpuset cgroup needs CPUs and memory nodes to hold tasks
  local d parent
  for d in $(cgroup_dirs); do
    mkdir -p "$d"
    parent=${d%/*}
    if [[ -f $d/cpuset.cpus && -z $(cat "$d/cpuset.cpus") ]]; then
      cat "$parent/cpuset.cpus" >"$d/cpuset.cpus"
      cat "$parent/cpuset.mems" >"$d/cpuset.mems"
    fi
  done
}

kill_pods() { # every pod process: through containerd when it runs, then whatever is left in the cluster's cgroups
  local ids id pid
  if running containerd; then
    ids=$(ctr_ tasks ls -q 2>/dev/null || true)
    for id in $ids; do ctr_ tasks kill -a -s SIGKILL "$id" >/dev/null 2>&1 || true; done
    for id in $ids; do ctr_ tasks delete -f "$id" >/dev/null 2>&1 & done
    wait
    ids=$(ctr_ containers ls -q 2>/dev/null || true)
    # shellcheck disable=SC2086
    [[ -z $ids ]] || ctr_ containers delete $ids >/dev/null 2>&1 || true
  fi
  # shellcheck disable=SC2046
  for pid in $(find $(cgroup_dirs) -mindepth 2 -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
    kill -KILL "$pid" 2>/dev/null || true
  done
}

kill_shims() { # shims of our containerd left behind when it was gone before their pods
  local p exe
  for p in /proc/[0-9]*; do
    exe=$(readlink "$p/exe" 2>/dev/null) || continue
    [[ ${exe##*/} == containerd-shim-runc-v2* ]] || continue
    tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -qF -- "-address $sock" || continue
    kill -KILL "${p#/proc/}" 2>/dev/null || true
  done
}

remove_cgroups() { # the cluster's cgroups, leaves first
  local d
  for d in $(cgroup_dirs); do
    [[ -d $d ]] || continue
    find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}

# ---------------------------------------------------------------- certificates

# RSA keys, as kubeadm makes them: every client copes with them.
cert() { # cert NAME SUBJECT client|server|both [SANS]: a key and a certificate signed by the CA $ca (default: the cluster CA)
  local name=$1 subj=$2 usage=$3 sans=${4:-} pki=$DIR/pki eku ext ca=${ca:-ca}
  case $usage in
  client) eku=clientAuth ;;
  server) eku=serverAuth ;;
  both) eku=serverAuth,clientAuth ;;
  esac
  ext=$(mktemp)
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [[ -z $sans ]] || echo "subjectAltName=$sans"
  } >"$ext"
  openssl genrsa -out "$pki/$name.key" 2048 2>/dev/null
  openssl req -new -key "$pki/$name.key" -subj "$subj" -out "$pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$pki/$name.csr" -CA "$pki/$ca.crt" -CAkey "$pki/$ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days 3650 -sha256 -extfile "$ext" -out "$pki/$name.crt" 2>/dev/null
  rm -f "$ext" "$pki/$name.csr"
  chmod 600 "$pki/$name.key"
}

make_ca() { # make_ca NAME CN
  local pki=$DIR/pki
  openssl genrsa -out "$pki/$1.key" 2048 2>/dev/null
  openssl req -x509 -new -key "$pki/$1.key" -subj "/CN=$2" -days 3650 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" \
    -out "$pki/$1.crt" 2>/dev/null
  chmod 600 "$pki/$1.key"
}

ensure_certs() { # the CAs once; the other certificates again when the node name or address changes
  local pki=$DIR/pki node=$1 ip=$2 id
  mkdir -p "$pki"
  chmod 700 "$pki"
  if [[ ! -f $pki/ca.crt || ! -f $pki/ca.key ]]; then
    log "creating the cluster CA and certificates in $pki"
    make_ca ca stash-cluster-ca
    rm -f "$pki/identity"
  fi
  # The aggregation layer's (front proxy) CA, as kubeadm makes it: without it
  # every component logs errors about the missing requestheader-client-ca-file.
  if [[ ! -f $pki/front-proxy-ca.crt || ! -f $pki/front-proxy-ca.key ]]; then
    make_ca front-proxy-ca stash-cluster-front-proxy-ca
    rm -f "$pki/identity"
  fi
  id="$node $ip"
  [[ -f $pki/identity && $(cat "$pki/identity") == "$id" && -f $pki/sa.key ]] && return 0
  log "creating certificates for node $node ($ip)"
  certs_changed=1
  ca=front-proxy-ca cert front-proxy-client "/CN=front-proxy-client" client
  cert apiserver "/CN=kube-apiserver" server \
    "IP:127.0.0.1,IP:$ip,IP:$service_ip,DNS:localhost,DNS:$node,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" client
  cert admin "/O=system:masters/CN=kubernetes-admin" client
  cert controller-manager "/CN=system:kube-controller-manager" client
  cert scheduler "/CN=system:kube-scheduler" client
  cert kube-proxy "/CN=system:kube-proxy" client
  cert node "/O=system:nodes/CN=system:node:$node" client
  cert kubelet "/CN=$node" server "IP:127.0.0.1,IP:$ip,DNS:localhost,DNS:$node"
  if [[ ! -f $pki/sa.key ]]; then
    openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
    chmod 600 "$pki/sa.key"
  fi
  echo "$id" >"$pki/identity"
}

kubeconfig() { # kubeconfig FILE CERT-NAME USER: self-contained (certificates embedded)
  local file=$1 name=$2 user=$3 pki=$DIR/pki tmp
  tmp=$(mktemp "$file.XXXXXX")
  cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: stash-cluster
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority-data: $(base64 -w0 "$pki/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$pki/$name.crt")
    client-key-data: $(base64 -w0 "$pki/$name.key")
contexts:
- name: $user@stash-cluster
  context:
    cluster: stash-cluster
    user: $user
current-context: $user@stash-cluster
EOF
  chmod 600 "$tmp"
  mv -f "$tmp" "$file"
}

render() { # render TEMPLATE OUT
  sed -e "s|@DIR@|$DIR|g" -e "s|@NODE@|$node|g" -e "s|@POD_CIDR@|$pod_cidr|g" -e "s|@CLUSTER_CIDR@|$cluster_cidr|g" \
    "$here/$1" >"$2.tmp"
  mv -f "$2.tmp" "$2"
}

# ---------------------------------------------------------------- images

import_images() { # import FILE...: into containerd's k8s.io namespace
  local f
  for f in "$@"; do
    [[ -f $f ]] || die "no such image tarball: $f"
    log "importing $f"
    ctr_ images import --all-platforms "$f" >/dev/null || die "importing $f failed"
  done
}

ensure_pause_tar() { # bin/images/pause.tar, built with hack/image when missing (hack/images.sh builds all images)
  local out=$root/bin/images/pause.tar work=$root/bin/image-build
  [[ ! -f $out && -f $root/hack/image/main.go && -d $root/hack/image/pause ]] || return 0
  log "building $out (the sandbox image) with hack/image ..."
  mkdir -p "$root/bin/images" "$work"
  (cd "$root/hack/image" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/pause" ./pause &&
    go run . -o "$out" -tag "$pause_image" -add "$work/pause:/pause" -entrypoint /pause) ||
    log "WARNING: building $out failed"
}

import_bin_images() { # every bin/images/*.tar that is new or changed since it was last imported
  local f stampdir=$DIR/containerd/imported stamp want
  mkdir -p "$stampdir"
  ensure_pause_tar
  for f in "$root"/bin/images/*.tar; do
    [[ -f $f ]] || continue
    stamp=$stampdir/$(basename "$f").stamp
    want=$(stat -L -c '%s %Y' "$f")
    [[ -f $stamp && $(cat "$stamp") == "$want" ]] && continue
    import_images "$f"
    echo "$want" >"$stamp"
  done
  if [[ -z $(ctr_ images ls -q "name==$pause_image" 2>/dev/null) ]]; then
    log "WARNING: the sandbox image $pause_image is missing: no Pod can start until it is imported"
    log "  (build bin/images/pause.tar, then run \`$0 up\` again or \`$0 import bin/images/pause.tar\`)"
  fi
}

# ---------------------------------------------------------------- health

healthy() { # healthy COMPONENT: its health endpoint answers
  case $1 in
  containerd) ctr --address "$sock" version ;;
  etcd) curl -sf --max-time 2 http://127.0.0.1:2379/health | grep -q '"health":"true"' ;;
  kube-apiserver) curl -sf --max-time 3 --cacert "$DIR/pki/ca.crt" --cert "$DIR/pki/admin.crt" --key "$DIR/pki/admin.key" https://127.0.0.1:6443/readyz ;;
  kube-controller-manager) curl -sfk --max-time 2 https://127.0.0.1:10257/healthz ;;
  kube-scheduler) curl -sfk --max-time 2 https://127.0.0.1:10259/healthz ;;
  kubelet) curl -sf --max-time 2 http://127.0.0.1:10248/healthz ;;
  kube-proxy) curl -s --max-time 2 -o /dev/null http://127.0.0.1:10256/healthz ;;
  esac
}

node_ready() { # Ready, as posted by the running kubelet (after a restart etcd still holds the old status)
  local pid ready beat started
  pid=$(pid_of kubelet) || return 1
  read -r ready beat < <(kc get node "$node" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status} {.status.conditions[?(@.type=="Ready")].lastHeartbeatTime}{"\n"}' 2>/dev/null) || return 1
  [[ $ready == True && -n $beat ]] || return 1
  started=$(($(date +%s) - $(ps -o etimes= -p "$pid")))
  (($(date -d "$beat" +%s) >= started - 1))
}

default_sa() { kc -n default get serviceaccount default && kc -n default get configmap kube-root-ca.crt; }

# ---------------------------------------------------------------- commands

cmd_up() {
  [[ $(id -u) == 0 ]] || die "must run as root"
  ((${#DIR} <= 60)) || die "STASH_CLUSTER_DIR is too long for the kubelet's unix sockets (60 characters at most)"
  local t0=$SECONDS ip c
  mkdir -p "$DIR"
  exec 9>"$DIR/.lock"
  flock -w 600 9 || die "another cluster.sh holds $DIR/.lock"
  "$root/hack/build-kube.sh" all
  for c in "${components[@]}"; do
    [[ $c == containerd || -x $kbin/$c ]] || die "missing $kbin/$c (hack/build-kube.sh all)"
  done
  ensure_packages
  node=$(node_name)
  ip=$(node_ip)
  deadline_all=$((SECONDS + timeout))
  mkdir -p "$DIR"/{etc/cni,logs,run,manifests,volume-plugins,pod-logs,cni/networks,kubelet,kubelet-pki,etcd,containerd}
  chmod 700 "$DIR/etcd"
  record_host

  certs_changed=0
  ensure_certs "$node" "$ip"
  if ((certs_changed)); then # running components would keep the old ones
    stop kube-proxy kubelet kube-scheduler kube-controller-manager
    stop kube-apiserver
  fi
  kubeconfig "$DIR/admin.kubeconfig" admin kubernetes-admin
  kubeconfig "$DIR/etc/controller-manager.kubeconfig" controller-manager system:kube-controller-manager
  kubeconfig "$DIR/etc/scheduler.kubeconfig" scheduler system:kube-scheduler
  kubeconfig "$DIR/etc/kube-proxy.kubeconfig" kube-proxy system:kube-proxy
  kubeconfig "$DIR/etc/kubelet.kubeconfig" node "system:node:$node"
  render containerd.toml "$DIR/etc/containerd.toml"
  render cni.conflist "$DIR/etc/cni/10-stash-cluster.conflist"
  render kubelet.yaml "$DIR/etc/kubelet.yaml"
  render kube-proxy.yaml "$DIR/etc/kube-proxy.yaml"
  render kube-scheduler.yaml "$DIR/etc/kube-scheduler.yaml"

  if ! running containerd && [[ -S $sock ]] && ctr --address "$sock" version >/dev/null 2>&1; then
    die "another containerd serves $sock; stop it first"
  fi
  start containerd --config "$DIR/etc/containerd.toml"
  wait_for containerd "its socket" "$(remaining)" healthy containerd
  import_bin_images

  check_ports etcd 2379 2380
  start etcd --name stash-cluster --data-dir "$DIR/etcd" \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster stash-cluster=http://127.0.0.1:2380 --log-level warn
  wait_for etcd "etcd health" "$(remaining)" healthy etcd

  local pki=$DIR/pki
  check_ports kube-apiserver 6443
  start kube-apiserver --etcd-servers http://127.0.0.1:2379 \
    --bind-address 0.0.0.0 --secure-port 6443 --advertise-address "$ip" \
    --cert-dir "$DIR/run/apiserver-certs" --tls-cert-file "$pki/apiserver.crt" --tls-private-key-file "$pki/apiserver.key" \
    --client-ca-file "$pki/ca.crt" --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$pki/sa.pub" --service-account-signing-key-file "$pki/sa.key" \
    --service-cluster-ip-range "$service_cidr" --allow-privileged=true \
    --kubelet-client-certificate "$pki/apiserver-kubelet-client.crt" --kubelet-client-key "$pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$pki/ca.crt" --kubelet-preferred-address-types InternalIP,Hostname \
    --requestheader-client-ca-file "$pki/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$pki/front-proxy-client.crt" --proxy-client-key-file "$pki/front-proxy-client.key"
  wait_for kube-apiserver "the API server to be ready" "$(remaining)" healthy kube-apiserver

  check_ports kube-controller-manager 10257
  start kube-controller-manager --kubeconfig "$DIR/etc/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$DIR/etc/controller-manager.kubeconfig" --authorization-kubeconfig "$DIR/etc/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --cert-dir "$DIR/run/controller-manager-certs" --leader-elect=false \
    --use-service-account-credentials=true --service-account-private-key-file "$pki/sa.key" --root-ca-file "$pki/ca.crt" \
    --cluster-signing-cert-file "$pki/ca.crt" --cluster-signing-key-file "$pki/ca.key" \
    --allocate-node-cidrs=true --cluster-cidr "$cluster_cidr" --node-cidr-mask-size 24 --service-cluster-ip-range "$service_cidr" \
    --flex-volume-plugin-dir "$DIR/volume-plugins"
  check_ports kube-scheduler 10259
  start kube-scheduler --config "$DIR/etc/kube-scheduler.yaml" \
    --authentication-kubeconfig "$DIR/etc/scheduler.kubeconfig" --authorization-kubeconfig "$DIR/etc/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --cert-dir "$DIR/run/scheduler-certs"
  check_ports kubelet 10250 10248
  make_cgroups
  start kubelet --config "$DIR/etc/kubelet.yaml" --kubeconfig "$DIR/etc/kubelet.kubeconfig" \
    --root-dir "$DIR/kubelet" --cert-dir "$DIR/kubelet-pki" --hostname-override "$node" --node-ip "$ip"
  check_ports kube-proxy 10256 10249
  start kube-proxy --config "$DIR/etc/kube-proxy.yaml"

  for c in kube-controller-manager kube-scheduler kubelet kube-proxy; do
    wait_for "$c" "$c to be healthy" "$(remaining)" healthy "$c"
  done
  wait_for kubelet "node $node to be Ready" "$(remaining)" node_ready
  wait_for kube-controller-manager "the default ServiceAccount and kube-root-ca.crt" "$(remaining)" default_sa
  log "up in $((SECONDS - t0)) s; node $node ($ip) is Ready"
  status >&2 || true
  echo "$DIR/admin.kubeconfig"
}

cmd_down() {
  local purge=false
  case ${1:-} in
  --purge) purge=true ;;
  "") ;;
  *) die "usage: $0 down [--purge]" ;;
  esac
  [[ $(id -u) == 0 ]] || die "must run as root"
  if [[ ! -d $DIR ]]; then
    log "$DIR does not exist: nothing to stop"
    return 0
  fi
  exec 9>"$DIR/.lock"
  flock -w 600 9 || die "another cluster.sh holds $DIR/.lock"
  # Reverse start order; the node's and the control plane's clients together.
  stop kube-proxy kubelet kube-scheduler kube-controller-manager
  stop kube-apiserver
  stop etcd
  kill_pods
  stop containerd
  kill_shims
  kill_pods
  sleep 0.2
  remove_cgroups
  umount_under "$DIR" || log "WARNING: some mounts under $DIR remain: $(awk -v d="$DIR" 'index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | head -n3)"

  # Host state.
  if [[ -x $kbin/kube-proxy ]]; then "$kbin/kube-proxy" --cleanup >/dev/null 2>&1 || true; fi
  ipt_cleanup
  if ip link show cni0 >/dev/null 2>&1 && ! existed cni0; then ip link delete cni0 || true; fi
  if [[ -f $DIR/host/sysctls ]]; then
    while IFS='=' read -r k v; do
      [[ -n $k && $(sysctl -n "$k" 2>/dev/null) != "$v" ]] || continue
      sysctl -q -w "$k=$v" >/dev/null 2>&1 || log "could not restore $k=$v"
    done <"$DIR/host/sysctls"
  fi
  rm -f /run/containerd/containerd.sock /run/containerd/containerd.sock.ttrpc
  rm -rf /run/containerd/s /run/containerd/runc/k8s.io
  existed /run/containerd || rm -rf /run/containerd
  existed /var/lib/kubelet/device-plugins || rm -rf /var/lib/kubelet/device-plugins
  existed /var/lib/kubelet || rmdir /var/lib/kubelet 2>/dev/null || true
  if [[ -d /var/log/containers ]]; then
    find /var/log/containers -maxdepth 1 -type l -lname "$DIR/*" -delete 2>/dev/null || true
    existed /var/log/containers || rmdir /var/log/containers 2>/dev/null || true
  fi
  existed /run/mount || rmdir /run/mount 2>/dev/null || true # libmount's, when the kubelet mounts
  if [[ -d /var/lib/cni ]]; then
    rm -f /var/lib/cni/results/{stash-cluster,cni-loopback}-* 2>/dev/null || true
    existed /var/lib/cni || find /var/lib/cni -depth -type d -empty -delete 2>/dev/null || true
  fi

  # Runtime state in the cluster directory (a stopped node keeps no pods).
  if ! awk -v d="$DIR" 'index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    rm -rf --one-file-system "$DIR/containerd/state" "$DIR/containerd/runc" "$DIR/run" "$DIR/cni/networks" "$DIR/host"
    if $purge; then
      rm -rf --one-file-system "$DIR"
      log "removed $DIR"
      return 0
    fi
  elif $purge; then
    die "mounts remain under $DIR: not removing it"
  fi
  log "down (certificates, etcd data and images kept in $DIR; \`down --purge\` removes them)"
}

status() { # prints each component and the node; 0 when all run and the node is Ready
  local c pid ok=0 h
  node=$(node_name)
  for c in "${components[@]}"; do
    if pid=$(pid_of "$c"); then
      if healthy "$c" >/dev/null 2>&1; then h=healthy; else
        h=unhealthy
        ok=1
      fi
      printf '%-24s running (pid %s), %s\n' "$c" "$pid" "$h"
    else
      printf '%-24s stopped\n' "$c"
      ok=1
    fi
  done
  if running kube-apiserver && [[ -f $DIR/admin.kubeconfig ]]; then
    if node_ready; then printf '%-24s Ready\n' "node $node"; else
      printf '%-24s not Ready\n' "node $node"
      ok=1
    fi
  else
    printf '%-24s unknown (no API server)\n' "node $node"
    ok=1
  fi
  printf '%-24s %s\n' kubeconfig "$DIR/admin.kubeconfig" "logs" "$DIR/logs/"
  return $ok
}

cmd_status() {
  [[ -d $DIR ]] || {
    echo "no cluster in $DIR"
    return 1
  }
  status
}

cmd_kubeconfig() {
  [[ -f $DIR/admin.kubeconfig ]] || die "no cluster in $DIR (run: $0 up)"
  echo "$DIR/admin.kubeconfig"
}

cmd_import() {
  (($#)) || die "usage: $0 import FILE..."
  running containerd || die "containerd is not running (run: $0 up)"
  import_images "$@"
}

case ${1:-} in
up) cmd_up ;;
down)
  shift
  cmd_down "$@"
  ;;
status) cmd_status ;;
kubeconfig) cmd_kubeconfig ;;
import)
  shift
  cmd_import "$@"
  ;;
*)
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 2
  ;;
esac
