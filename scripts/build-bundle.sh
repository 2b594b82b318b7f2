#!/usr/bin/env bash
# Builds the offline artifact bundle (Kubernetes, etcd, etcdctl, etcdutl, CoreDNS, crictl, flanneld and
# the add-ons' local-path-provisioner and metrics-server binaries) for one
# Kubernetes version from the Go module proxy, into ~/.cache/kubeprov/bundle/<version>/bin.
# Idempotent: a binary already present (and reporting the right version) is not rebuilt.
# Usage: scripts/build-bundle.sh [vX.Y.Z]   (default: the version in provisioner/constants.ts)
set -euo pipefail
here="$(cd "$(dirname "$0")/.." && pwd)"
source "$here/scripts/k8s-module.sh"
default_version=$(sed -n 's/^export const DEFAULT_KUBERNETES_VERSION = "\(v[0-9.]*\)".*/\1/p' "$here/provisioner/constants.ts")
K8S_VERSION="${1:-$default_version}"
ETCD_VERSION="${ETCD_VERSION:-$(sed -n 's/^export const ETCD_VERSION = "\(v[0-9.]*\)".*/\1/p' "$here/provisioner/constants.ts")}"
COREDNS_VERSION="${COREDNS_VERSION:-$(sed -n 's/^export const COREDNS_VERSION = "\(v[0-9.]*\)".*/\1/p' "$here/provisioner/constants.ts")}"
FLANNEL_VERSION="${FLANNEL_VERSION:-$(sed -n 's/^export const FLANNEL_VERSION = "\(v[0-9.]*\)".*/\1/p' "$here/provisioner/constants.ts")}"
CRICTL_VERSION="${CRICTL_VERSION:-$(sed -n 's/^export const CRICTL_VERSION = "\(v[0-9.]*\)".*/\1/p' "$here/provisioner/constants.ts")}"
LOCAL_PATH_PROVISIONER_VERSION="${LOCAL_PATH_PROVISIONER_VERSION:-$(sed -n 's/^export const LOCAL_PATH_PROVISIONER_VERSION = "\(v[0-9.]*\)".*/\1/p' "$here/provisioner/constants.ts")}"
METRICS_SERVER_VERSION="${METRICS_SERVER_VERSION:-$(sed -n 's/^export const METRICS_SERVER_VERSION = "\(v[0-9.]*\)".*/\1/p' "$here/provisioner/constants.ts")}"
CACHE="${KUBEPROV_CACHE:-$HOME/.cache/kubeprov}"
OUT="$CACHE/bundle/$K8S_VERSION"
BIN="$OUT/bin"
WORK="$CACHE/gobuild"
export GOCACHE="$CACHE/go-build-cache" GOMODCACHE="${GOMODCACHE:-$CACHE/go-mod}" GOFLAGS=-mod=mod CGO_ENABLED=0 GOTOOLCHAIN=local
mkdir -p "$BIN" "$WORK"
log() { printf '[bundle %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }


# --- Kubernetes -------------------------------------------------------------------------
k8s_bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl kubeadm)
need_k8s=()
for b in "${k8s_bins[@]}"; do
  if [ ! -x "$BIN/$b" ]; then need_k8s+=("$b"); fi
done
if [ ${#need_k8s[@]} -gt 0 ]; then
  mod="$WORK/k8s-$K8S_VERSION"
  mkdir -p "$mod"
  cd "$mod"
  if [ ! -f go.sum ]; then
    log "resolving k8s.io/kubernetes $K8S_VERSION"
    k8s_wrapper_module kubeprov.local/k8s-bundle "$K8S_VERSION" $(printf 'k8s.io/kubernetes/cmd/%s ' kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl kubeadm)
  fi
  ldflags=$(k8s_ldflags "$K8S_VERSION")
  for b in "${need_k8s[@]}"; do
    log "building $b $K8S_VERSION"
    go build -trimpath -ldflags "$ldflags" -o "$BIN/$b.tmp" "k8s.io/kubernetes/cmd/$b"
    mv "$BIN/$b.tmp" "$BIN/$b"
  done
fi

# --- etcd -------------------------------------------------------------------------------
# etcd and CoreDNS versions are independent of the Kubernetes version: a stamp records what was built.
stamp() { cat "$OUT/versions/$1" 2>/dev/null || true; }
mkdir -p "$OUT/versions"
if [ ! -x "$BIN/etcd" ] || [ ! -x "$BIN/etcdctl" ] || [ "$(stamp etcd)" != "$ETCD_VERSION" ]; then
  mod="$WORK/etcd-$ETCD_VERSION"
  mkdir -p "$mod"; cd "$mod"
  if [ ! -f go.sum ]; then
    log "resolving etcd $ETCD_VERSION"
    rm -f go.mod
    go mod init kubeprov.local/etcd-bundle >/dev/null 2>&1
    printf 'require (\n\tgo.etcd.io/etcd/server/v3 %s\n\tgo.etcd.io/etcd/etcdctl/v3 %s\n)\n' "$ETCD_VERSION" "$ETCD_VERSION" >> go.mod
    printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "go.etcd.io/etcd/server/v3"\n\t_ "go.etcd.io/etcd/etcdctl/v3"\n)\n' > tools.go
    go mod tidy >/dev/null 2>&1 || go mod tidy
  fi
  log "building etcd, etcdctl $ETCD_VERSION"
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3 && mv "$BIN/etcd.tmp" "$BIN/etcd"
  go build -trimpath -ldflags "-s -w" -o "$BIN/etcdctl.tmp" go.etcd.io/etcd/etcdctl/v3 && mv "$BIN/etcdctl.tmp" "$BIN/etcdctl"
  echo "$ETCD_VERSION" > "$OUT/versions/etcd"
fi

# One Go command from one module through the Go module proxy, into $BIN/BINARY; rebuilt only when
# the version stamp differs. Extra arguments are lines added to the wrapper module's go.mod.
# Usage: go_command STAMP BINARY MODULE VERSION PACKAGE LDFLAGS [GO.MOD LINE...]
go_command() {
  local name=$1 binary=$2 module=$3 version=$4 package=$5 ldflags=$6
  shift 6
  if [ -x "$BIN/$binary" ] && [ "$(stamp "$name")" = "$version" ]; then return 0; fi
  local mod="$WORK/$name-$version"
  mkdir -p "$mod"
  (
    cd "$mod"
    if [ ! -f go.sum ]; then
      log "resolving $name $version"
      rm -f go.mod
      go mod init "kubeprov.local/$name-bundle" >/dev/null 2>&1
      printf 'require %s %s\n' "$module" "$version" >> go.mod
      for line in "$@"; do printf '%s\n' "$line" >> go.mod; done
      printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$package" > tools.go
      go mod tidy >/dev/null 2>&1 || go mod tidy
    fi
    log "building $binary $version"
    go build -trimpath -ldflags "-s -w $ldflags" -o "$BIN/$binary.tmp" "$package"
    mv "$BIN/$binary.tmp" "$BIN/$binary"
  )
  echo "$version" > "$OUT/versions/$name"
}

# --- etcdutl ---------------------------------------------------------------------------
# etcd's offline tool (snapshot status, snapshot restore): its own module at the etcd version, with
# its own stamp, so a bundle that already has etcd and etcdctl gets it without rebuilding them.
go_command etcdutl etcdutl go.etcd.io/etcd/etcdutl/v3 "$ETCD_VERSION" go.etcd.io/etcd/etcdutl/v3 ""

# --- CoreDNS ----------------------------------------------------------------------------
go_command coredns coredns github.com/coredns/coredns "$COREDNS_VERSION" github.com/coredns/coredns ""

# --- crictl -----------------------------------------------------------------------------
# The CRI command-line tool operators use on nodes (crictl ps, logs, images), from sigs.k8s.io/cri-tools.
go_command crictl crictl sigs.k8s.io/cri-tools "$CRICTL_VERSION" sigs.k8s.io/cri-tools/cmd/crictl "-X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"

# --- flanneld ---------------------------------------------------------------------------
# The default network add-on. Its main package links a Tencent Cloud backend whose SDK module the
# Go module proxy does not serve: that one module is replaced by a stand-in whose calls all fail
# (scripts/flannel-standin/, never used: kubeprov runs host-gw or vxlan). The udp backend needs cgo.
CGO_ENABLED=1 go_command flannel flanneld github.com/flannel-io/flannel "$FLANNEL_VERSION" github.com/flannel-io/flannel \
  "-X github.com/flannel-io/flannel/pkg/version.Version=$FLANNEL_VERSION" \
  "replace github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/vpc => $here/scripts/flannel-standin/tencentcloud-vpc"

# --- add-ons: storage and metrics-server ---------------------------------------------------
# The storage add-on's dynamic provisioner (its main package is the module's root) and the
# resource-metrics API server behind `kubectl top`. Both are static Go programs.
go_command local-path-provisioner local-path-provisioner github.com/rancher/local-path-provisioner "$LOCAL_PATH_PROVISIONER_VERSION" \
  github.com/rancher/local-path-provisioner "-X main.VERSION=$LOCAL_PATH_PROVISIONER_VERSION"
go_command metrics-server metrics-server sigs.k8s.io/metrics-server "$METRICS_SERVER_VERSION" sigs.k8s.io/metrics-server/cmd/metrics-server \
  "-X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"

# --- manifest ---------------------------------------------------------------------------
cd "$BIN"
{
  printf '{\n  "kubernetesVersion": "%s",\n  "etcdVersion": "%s",\n  "corednsVersion": "%s",\n  "crictlVersion": "%s",\n  "flannelVersion": "%s",\n  "localPathProvisionerVersion": "%s",\n  "metricsServerVersion": "%s",\n  "sha256": {\n' \
    "$K8S_VERSION" "$ETCD_VERSION" "$COREDNS_VERSION" "$CRICTL_VERSION" "$FLANNEL_VERSION" "$LOCAL_PATH_PROVISIONER_VERSION" "$METRICS_SERVER_VERSION"
  first=1
  for f in $(ls | grep -v '\.tmp$' | sort); do
    [ $first -eq 1 ] || printf ',\n'
    first=0
    printf '    "%s": "%s"' "$f" "$(sha256sum "$f" | cut -d' ' -f1)"
  done
  printf '\n  }\n}\n'
} > "$OUT/manifest.json.tmp"
mv "$OUT/manifest.json.tmp" "$OUT/manifest.json"
log "bundle ready: $OUT"
