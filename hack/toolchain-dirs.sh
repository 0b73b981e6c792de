# Where hack/build-toolchain.sh puts each piece of the toolchain. Sourced (after versions.env) by
# build-toolchain.sh and hack/devcluster, so the two agree. Every piece has its own directory keyed by
# its own pinned versions: adding or bumping one never rebuilds another.
BATCHAI_CACHE_DIR=${BATCHAI_CACHE:-$HOME/.cache/batchai-operator}
# The control plane: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, helm.
CONTROL_PLANE_STAMP="k8s-${KUBE_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
CONTROL_PLANE_BIN=$BATCHAI_CACHE_DIR/bin/$CONTROL_PLANE_STAMP
# Real nodes: kubelet and kube-proxy; containerd, ctr and the runc shim; CoreDNS; the GPU device-plugin
# double (keyed by its source too, as it is ours).
NODE_K8S_BIN=$BATCHAI_CACHE_DIR/bin/kubelet-${KUBE_VERSION}
CONTAINERD_BIN=$BATCHAI_CACHE_DIR/bin/containerd-${CONTAINERD_VERSION}
COREDNS_BIN=$BATCHAI_CACHE_DIR/bin/coredns-${COREDNS_VERSION}
GPU_DOUBLE_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/gpu-device-plugin-double
GPU_DOUBLE_BIN=$BATCHAI_CACHE_DIR/bin/gpu-device-plugin-double-${KUBE_STAGING_VERSION}-$(
  cat "$GPU_DOUBLE_SRC"/*.go | sha256sum | cut -c1-12)
# Real mounts: rclone (the blob stand-in's FUSE file system), and our CSI node plugins (blob.csi.azure.com
# stand-in, file.csi.azure.com double; keyed by their source and pins too, as they are ours).
RCLONE_BIN=$BATCHAI_CACHE_DIR/bin/rclone-${RCLONE_VERSION}
CSI_PLUGINS_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/csi-node-plugins
CSI_PLUGINS_BIN=$BATCHAI_CACHE_DIR/bin/csi-node-plugins-${KUBE_STAGING_VERSION}-${CSI_SPEC_VERSION}-${AZBLOB_VERSION}-$(
  cat "$CSI_PLUGINS_SRC"/*.go | sha256sum | cut -c1-12)
