# shellcheck shell=bash disable=SC2034  # variables for the scripts that source this file
# Where hack/build-toolchain.sh puts each piece of the toolchain. Sourced (after versions.env) by
# build-toolchain.sh and hack/devcluster, so the two agree. Every piece has its own directory keyed by
# its own pinned versions: adding or bumping one never rebuilds another.
BATCHAI_CACHE_DIR=${BATCHAI_CACHE:-$HOME/.cache/batchai-operator}
# The control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, helm.
CONTROL_PLANE_STAMP="k8s-${KUBE_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
CONTROL_PLANE_BIN=$BATCHAI_CACHE_DIR/bin/$CONTROL_PLANE_STAMP
# Real nodes: kubelet and kube-proxy; containerd, ctr and the runc shim; CoreDNS; rclone (the blob
# stand-in's FUSE file system).
NODE_K8S_BIN=$BATCHAI_CACHE_DIR/bin/kubelet-${KUBE_VERSION}
CONTAINERD_BIN=$BATCHAI_CACHE_DIR/bin/containerd-${CONTAINERD_VERSION}
COREDNS_BIN=$BATCHAI_CACHE_DIR/bin/coredns-${COREDNS_VERSION}
RCLONE_BIN=$BATCHAI_CACHE_DIR/bin/rclone-${RCLONE_VERSION}
# Our Go tools (the module hack/go.mod: the GPU device-plugin double, the CSI node plugins), keyed by
# their source, go.mod and go.sum.
GO_TOOLS_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
GO_TOOLS_BIN=$BATCHAI_CACHE_DIR/bin/go-tools-$(cd "$GO_TOOLS_SRC" &&
  find . \( -name '*.go' -o -name go.mod -o -name go.sum \) -type f | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-12)
