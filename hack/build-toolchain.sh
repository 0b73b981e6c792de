#!/usr/bin/env bash
# Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok and helm from
# pinned Go modules into a cache outside the repo; then the real nodes' pieces (kubelet, kube-proxy,
# containerd, CoreDNS, the GPU device-plugin double) and their mounts' (rclone, our CSI node plugins), each
# into a directory of its own (hack/toolchain-dirs.sh). Each is rebuilt only when its pinned version changes.
# Prints the control plane's bin directory on stdout as its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
# shellcheck source=toolchain-dirs.sh
source "$here/toolchain-dirs.sh"
cache=$BATCHAI_CACHE_DIR
stamp=$CONTROL_PLANE_STAMP
bin=$CONTROL_PLANE_BIN
tools="$cache/tools/$stamp"
mkdir -p "$bin" "$tools"
# One build at a time per cache (parallel checkouts share it).
exec 9>"$cache/.build.lock"
flock 9
export CGO_ENABLED=0 GOFLAGS=-mod=mod
log() { echo "[build-toolchain] $*" >&2; }

# k8s_module DIR CMD...: a tools module in DIR that requires k8s.io/kubernetes and pins each staging
# module it replaces (./staging/...) to the matching published version, with CMD... as tools.
k8s_module() {
  local d=$1; shift
  mkdir -p "$d"; cd "$d"
  [ -f go.mod ] || go mod init "batchai-operator.invalid/tools/$(basename "$d")" >&2
  local kmod
  kmod=$(cd /tmp && go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  go mod edit -go="$(sed -n 's/^go //p' "$kmod")" -require="k8s.io/kubernetes@v$KUBE_VERSION"
  for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$kmod"); do
    go mod edit -replace="$m=$m@v$KUBE_STAGING_VERSION"
  done
  local c
  for c in "$@"; do go mod edit -tool="k8s.io/kubernetes/cmd/$c"; done
  go mod tidy >&2
}

# Version stamping as upstream's hack/lib/version.sh (kubectl version, node status, helm kubeVersion).
k8s_ldflags() {
  local minor=${KUBE_VERSION#*.}; minor=${minor%%.*}
  local ldf="-s -w" p
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $p.gitVersion=v$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  echo "$ldf"
}

build_kube() {
  local need=0
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do [ -x "$bin/$c" ] || need=1; done
  [ $need = 1 ] || return 0
  log "building kubernetes v$KUBE_VERSION (cold: 20-35 min on 2 cores)"
  k8s_module "$tools/k8s" kube-apiserver kube-controller-manager kube-scheduler kubectl
  go build -trimpath -p 2 -ldflags "$(k8s_ldflags)" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl >&2
}

build_etcd() {
  [ -x "$bin/etcd" ] && return 0
  log "building etcd v$ETCD_VERSION"
  local d="$tools/etcd"; mkdir -p "$d"; cd "$d"
  [ -f go.mod ] || go mod init batchai-operator.invalid/tools/etcd >&2
  go mod edit -require="go.etcd.io/etcd/server/v3@v$ETCD_VERSION" -tool=go.etcd.io/etcd/server/v3
  go mod tidy >&2
  go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3 >&2
}

build_kwok() {
  [ -x "$bin/kwok" ] && [ -d "$bin/kwok-stages" ] && return 0
  log "building kwok v$KWOK_VERSION"
  GOBIN="$bin" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" >&2
  # Keep upstream's stage files next to the binary so devcluster does not depend on GOMODCACHE.
  local src
  src=$(go env GOMODCACHE)/sigs.k8s.io/kwok@v$KWOK_VERSION/kustomize/stage
  mkdir -p "$bin/kwok-stages"
  cp -r "$src"/. "$bin/kwok-stages/"
  chmod -R u+w "$bin/kwok-stages"
}

build_helm() {
  [ -x "$bin/helm" ] && return 0
  log "building helm v$HELM_VERSION"
  GOBIN="$bin" go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" >&2
}

# ---- real nodes ------------------------------------------------------------------------------------

# kubelet and kube-proxy: the same module setup as the control plane, in a module of their own.
build_node_kube() {
  [ -x "$NODE_K8S_BIN/kubelet" ] && [ -x "$NODE_K8S_BIN/kube-proxy" ] && return 0
  log "building kubelet and kube-proxy v$KUBE_VERSION"
  mkdir -p "$NODE_K8S_BIN"
  k8s_module "$cache/tools/kubelet-$KUBE_VERSION/k8s" kubelet kube-proxy
  go build -trimpath -p 2 -ldflags "$(k8s_ldflags)" -o "$NODE_K8S_BIN/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy >&2
}

# containerd, ctr and the runc v2 shim (containerd starts it for every pod); runc itself is Debian's.
build_containerd() {
  local c need=0
  for c in containerd ctr containerd-shim-runc-v2; do [ -x "$CONTAINERD_BIN/$c" ] || need=1; done
  [ $need = 1 ] || return 0
  log "building containerd v$CONTAINERD_VERSION"
  local m=github.com/containerd/containerd/v2 d="$cache/tools/containerd-$CONTAINERD_VERSION"
  mkdir -p "$d" "$CONTAINERD_BIN"; cd "$d"
  [ -f go.mod ] || go mod init batchai-operator.invalid/tools/containerd >&2
  go mod edit -require="$m@v$CONTAINERD_VERSION"
  for c in containerd ctr containerd-shim-runc-v2; do go mod edit -tool="$m/cmd/$c"; done
  go mod tidy >&2
  # Tags and version variables as containerd's Makefile (no btrfs/devmapper/zfs snapshotters: no cgo).
  go build -trimpath -p 2 -tags "no_btrfs no_devmapper no_zfs" \
    -ldflags "-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Package=$m" \
    -o "$CONTAINERD_BIN/" "$m/cmd/containerd" "$m/cmd/ctr" "$m/cmd/containerd-shim-runc-v2" >&2
}

build_coredns() {
  [ -x "$COREDNS_BIN/coredns" ] && return 0
  log "building CoreDNS v$COREDNS_VERSION"
  local m=github.com/coredns/coredns d="$cache/tools/coredns-$COREDNS_VERSION"
  mkdir -p "$d" "$COREDNS_BIN"; cd "$d"
  [ -f go.mod ] || go mod init batchai-operator.invalid/tools/coredns >&2
  go mod edit -require="$m@v$COREDNS_VERSION" -tool="$m"
  go mod tidy >&2
  go build -trimpath -p 2 -ldflags "-s -w" -o "$COREDNS_BIN/coredns" "$m" >&2
}

# Ours (hack/gpu-device-plugin-double): built against the kubelet API of KUBE_STAGING_VERSION.
build_gpu_double() {
  [ -x "$GPU_DOUBLE_BIN/gpu-device-plugin-double" ] && return 0
  log "building the GPU device-plugin double"
  local d
  d="$cache/tools/$(basename "$GPU_DOUBLE_BIN")"
  mkdir -p "$d" "$GPU_DOUBLE_BIN"; cd "$d"
  [ -f go.mod ] || go mod init batchai-operator.invalid/tools/gpu-device-plugin-double >&2
  cp "$GPU_DOUBLE_SRC"/*.go .
  go mod edit -require="k8s.io/kubelet@v$KUBE_STAGING_VERSION"
  go mod tidy >&2
  go build -trimpath -ldflags "-s -w" -o "$GPU_DOUBLE_BIN/gpu-device-plugin-double" . >&2
}

# rclone (its azureblob backend and FUSE mount stand in for blobfuse2 on the real nodes; Debian's 1.60
# cannot reach Azurite). No cgo: `rclone mount` needs only Debian's fusermount3.
build_rclone() {
  [ -x "$RCLONE_BIN/rclone" ] && return 0
  log "building rclone v$RCLONE_VERSION (cold: ~3 min on 2 cores)"
  mkdir -p "$RCLONE_BIN"
  GOBIN="$RCLONE_BIN" go install -trimpath -ldflags "-s -w" "github.com/rclone/rclone@v$RCLONE_VERSION" >&2
}

# Ours (hack/csi-node-plugins): the blob.csi.azure.com stand-in and the file.csi.azure.com double. Their
# unit tests run before the binary is built.
build_csi_plugins() {
  [ -x "$CSI_PLUGINS_BIN/batchai-csi-node" ] && return 0
  log "building the CSI node plugins (blob.csi.azure.com stand-in, file.csi.azure.com double)"
  local d
  d="$cache/tools/$(basename "$CSI_PLUGINS_BIN")"
  mkdir -p "$d" "$CSI_PLUGINS_BIN"; cd "$d"
  [ -f go.mod ] || go mod init batchai-operator.invalid/tools/csi-node-plugins >&2
  rm -f ./*.go
  cp "$CSI_PLUGINS_SRC"/*.go .
  go mod edit -require="github.com/container-storage-interface/spec@v$CSI_SPEC_VERSION" \
    -require="k8s.io/kubelet@v$KUBE_STAGING_VERSION" -require="k8s.io/client-go@v$KUBE_STAGING_VERSION" \
    -require="k8s.io/api@v$KUBE_STAGING_VERSION" -require="k8s.io/apimachinery@v$KUBE_STAGING_VERSION" \
    -require="github.com/Azure/azure-sdk-for-go/sdk/storage/azblob@v$AZBLOB_VERSION"
  go mod tidy >&2
  go vet . >&2
  go test -count=1 . >&2
  go build -trimpath -ldflags "-s -w" -o "$CSI_PLUGINS_BIN/batchai-csi-node" . >&2
}

start=$(date +%s)
build_etcd
build_kwok
build_helm
build_kube
build_node_kube
build_containerd
build_coredns
build_gpu_double
build_rclone
build_csi_plugins
log "toolchain ready in $(( $(date +%s) - start ))s: $bin"
echo "$bin"
