#!/usr/bin/env bash
# Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok and helm from
# pinned Go modules into a cache outside the repo; then the real nodes' pieces (kubelet, kube-proxy,
# containerd, CoreDNS, rclone) and our own Go tools (hack/go.mod: the GPU device-plugin double and the CSI
# node plugins), each into a directory of its own (hack/toolchain-dirs.sh). Each is rebuilt only when its
# pinned version (ours: its source) changes. Prints the control plane's bin directory on stdout as its
# last line. The cold times below were measured on 2 busy cores with the Go module cache filled (all of
# them together: about 35-55 min).
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
LOG_TAG=build-toolchain
cache=$BATCHAI_CACHE_DIR
bin=$CONTROL_PLANE_BIN
tools="$cache/tools/$CONTROL_PLANE_STAMP"
mkdir -p "$bin" "$tools"
lock "$cache/.build.lock"
export CGO_ENABLED=0 GOFLAGS=-mod=mod

# k8s_module DIR CMD...: a tools module in DIR that requires k8s.io/kubernetes and pins each staging
# module it replaces (./staging/...) to the matching published version, with CMD... as tools.
k8s_module() {
  local d=$1 kmod m c staging edits=(); shift
  kmod=$(cd /tmp && go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  edits+=(-go="$(sed -n 's/^go //p' "$kmod")" -require="k8s.io/kubernetes@v$KUBE_VERSION")
  mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$kmod")
  for m in "${staging[@]}"; do edits+=(-replace="$m=$m@v$KUBE_STAGING_VERSION"); done
  for c in "$@"; do edits+=(-tool="k8s.io/kubernetes/cmd/$c"); done
  tools_module "$d" "${edits[@]}"
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

build_etcd() {
  tools_module "$tools/etcd" -require="go.etcd.io/etcd/server/v3@v$ETCD_VERSION" -tool=go.etcd.io/etcd/server/v3
  go build -trimpath -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3 >&2
}

build_kwok() {
  GOBIN="$bin" go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION" >&2
  # Keep upstream's stage files next to the binary so devcluster does not depend on GOMODCACHE.
  local src
  src=$(go env GOMODCACHE)/sigs.k8s.io/kwok@v$KWOK_VERSION/kustomize/stage
  mkdir -p "$bin/kwok-stages"
  cp -r "$src"/. "$bin/kwok-stages/"
  chmod -R u+w "$bin/kwok-stages"
}

build_helm() {
  GOBIN="$bin" go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" >&2
}

build_kube() {
  k8s_module "$tools/k8s" kube-apiserver kube-controller-manager kube-scheduler kubectl
  go build -trimpath -p 2 -ldflags "$(k8s_ldflags)" -o "$bin/" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl >&2
}

# ---- real nodes ------------------------------------------------------------------------------------

# kubelet and kube-proxy: the same module setup as the control plane, in a module of their own.
build_node_kube() {
  mkdir -p "$NODE_K8S_BIN"
  k8s_module "$cache/tools/kubelet-$KUBE_VERSION/k8s" kubelet kube-proxy
  go build -trimpath -p 2 -ldflags "$(k8s_ldflags)" -o "$NODE_K8S_BIN/" \
    k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy >&2
}

# containerd, ctr and the runc v2 shim (containerd starts it for every pod); runc itself is Debian's.
build_containerd() {
  local m=github.com/containerd/containerd/v2
  mkdir -p "$CONTAINERD_BIN"
  tools_module "$cache/tools/containerd-$CONTAINERD_VERSION" -require="$m@v$CONTAINERD_VERSION" \
    -tool="$m/cmd/containerd" -tool="$m/cmd/ctr" -tool="$m/cmd/containerd-shim-runc-v2"
  # Tags and version variables as containerd's Makefile (no btrfs/devmapper/zfs snapshotters: no cgo).
  go build -trimpath -p 2 -tags "no_btrfs no_devmapper no_zfs" \
    -ldflags "-s -w -X $m/version.Version=$CONTAINERD_VERSION -X $m/version.Package=$m" \
    -o "$CONTAINERD_BIN/" "$m/cmd/containerd" "$m/cmd/ctr" "$m/cmd/containerd-shim-runc-v2" >&2
}

build_coredns() {
  local m=github.com/coredns/coredns
  mkdir -p "$COREDNS_BIN"
  tools_module "$cache/tools/coredns-$COREDNS_VERSION" -require="$m@v$COREDNS_VERSION" -tool="$m"
  go build -trimpath -p 2 -ldflags "-s -w" -o "$COREDNS_BIN/coredns" "$m" >&2
}

# rclone (its azureblob backend and FUSE mount stand in for blobfuse2 on the real nodes; Debian's 1.60
# cannot reach Azurite). No cgo: `rclone mount` needs only Debian's fusermount3.
build_rclone() {
  mkdir -p "$RCLONE_BIN"
  GOBIN="$RCLONE_BIN" go install -trimpath -ldflags "-s -w" "github.com/rclone/rclone@v$RCLONE_VERSION" >&2
}

# Ours, from the module in the tree (hack/go.mod, go.sum: -mod=readonly, so a missing sum fails here
# rather than being fetched): the GPU device-plugin double and the CSI node plugins (blob.csi.azure.com
# stand-in, file.csi.azure.com double). Their tests run first; `make lint` vets them.
build_go_tools() {
  cd "$GO_TOOLS_SRC"
  go test -mod=readonly -count=1 ./... >&2
  mkdir -p "$GO_TOOLS_BIN"
  go build -mod=readonly -trimpath -ldflags "-s -w" -o "$GO_TOOLS_BIN/gpu-device-plugin-double" ./gpu-device-plugin-double >&2
  go build -mod=readonly -trimpath -ldflags "-s -w" -o "$GO_TOOLS_BIN/batchai-csi-node" ./csi-node-plugins >&2
}

start=$SECONDS
if [ ! -x "$bin/kube-apiserver" ]; then
  log "first build of the dev cluster's toolchain from Go modules, into $cache: about 35-55 min on 2 cores"
fi
build_step "etcd v$ETCD_VERSION" "3 min" build_etcd "$bin/etcd"
build_step "kwok v$KWOK_VERSION" "5 min" build_kwok "$bin/kwok" "$bin/kwok-stages"
build_step "helm v$HELM_VERSION" "4 min" build_helm "$bin/helm"
build_step "kube-apiserver, kube-controller-manager, kube-scheduler, kubectl v$KUBE_VERSION" "20 min" build_kube \
  "$bin/kube-apiserver" "$bin/kube-controller-manager" "$bin/kube-scheduler" "$bin/kubectl"
build_step "kubelet, kube-proxy v$KUBE_VERSION" "2 min" build_node_kube "$NODE_K8S_BIN/kubelet" "$NODE_K8S_BIN/kube-proxy"
build_step "containerd v$CONTAINERD_VERSION" "3 min" build_containerd \
  "$CONTAINERD_BIN/containerd" "$CONTAINERD_BIN/ctr" "$CONTAINERD_BIN/containerd-shim-runc-v2"
build_step "CoreDNS v$COREDNS_VERSION" "5 min" build_coredns "$COREDNS_BIN/coredns"
build_step "rclone v$RCLONE_VERSION" "6 min" build_rclone "$RCLONE_BIN/rclone"
build_step "our Go tools (GPU device-plugin double, CSI node plugins)" "6 min" build_go_tools \
  "$GO_TOOLS_BIN/gpu-device-plugin-double" "$GO_TOOLS_BIN/batchai-csi-node"
if [ $(( SECONDS - start )) -gt 1 ]; then log "toolchain ready in $(duration $(( SECONDS - start ))): $bin"; fi
echo "$bin"
