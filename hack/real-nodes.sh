# shellcheck shell=bash
# Real nodes of the dev cluster (docs: tests/k8s/README.md, "Real nodes"). Sourced by hack/devcluster,
# whose helpers (start, alive, healthy, wait_healthy, stop_component, log, die) it uses.
#
# Each node real-N is a kubelet v1.37.2 with its own containerd v2.4.2 (Debian's runc, bridge CNI),
# labelled like an AKS GPU pool (agentpool=real, Standard_NC6s_v3, tainted sku=gpu:NoSchedule as AKS GPU
# pools usually are) and advertising one nvidia.com/gpu through gpu-device-plugin-double. Shared by all
# nodes: the bridge $BRIDGE ($POD_NET.0.0/16, gateway $GW; nothing forwarded from or to it and no
# masquerading, so pods reach only this machine; their default route is the bridge, for Service
# addresses), CoreDNS on $GW:53, one kube-proxy (nftables; the nodes share this machine's network
# stack) and a forwarder from $GW:<apiserver port> to the loopback-bound apiserver, which is the
# `kubernetes` Service's endpoint. The apiserver reaches the kubelets on $GW only, with a client
# certificate; the kubelets authorise it through the apiserver (webhook).
#
# Their volumes mount for real: each node's kubelet has two CSI node plugins (hack/csi-node-plugins, host
# processes): blob.csi.azure.com, a stand-in for the upstream Blob CSI driver that mounts containers of
# Azurite (started here too) with rclone's FUSE file system, and file.csi.azure.com, a double of the Azure
# Files driver that bind-mounts $FILES_ROOT/<account>/<share> (no SMB client here), the tree the Azure Files
# REST double serves.
#
# Host-level names are configurable (defaults as tests/k8s/README.md, "Real nodes"); only one dev cluster at a time can
# run real nodes on a machine (kube-proxy's rules are the machine's).

REAL_NODES=${BATCHAI_REAL_NODES:-2}            # number of real nodes (0: none)
BRIDGE=${BATCHAI_BRIDGE:-rn0}                  # the pods' bridge
POD_NET=${BATCHAI_POD_NET:-10.88}              # pods in $POD_NET.0.0/16; node N's in $POD_NET.N.10-250
GW=$POD_NET.0.1                                # the bridge's address: node IP, DNS, apiserver forwarder
REAL_PORT_BASE=${BATCHAI_REAL_NODE_PORT_BASE:-20300}  # kubelet N: base+10N (+1 healthz); see below
KUBE_PROXY_HEALTH_PORT=$((REAL_PORT_BASE + 90))
KUBE_PROXY_METRICS_PORT=$((REAL_PORT_BASE + 91))
COREDNS_HEALTH_PORT=$((REAL_PORT_BASE + 92))
COREDNS_READY_PORT=$((REAL_PORT_BASE + 93))
REAL_POOL_LABELS="kubernetes.azure.com/agentpool=real,agentpool=real,node.kubernetes.io/instance-type=Standard_NC6s_v3,beta.kubernetes.io/instance-type=Standard_NC6s_v3,kubernetes.azure.com/accelerator=nvidia,kubernetes.azure.com/mode=user,type=real"
REAL_TAINTS="sku=gpu:NoSchedule"
NODES_DIR=$RUN/nodes
FILES_ROOT=$RUN/azure-files                     # the Azure Files double's shares: <account>/<share>/...
OWNER_DIR=/run/batchai-operator                 # which dev cluster runs real nodes on this machine

# put FILE: write stdin to FILE only when it differs (kube-proxy exits when its config file is touched).
put() {
  local new; new=$(cat)
  if [ ! -f "$1" ] || [ "$(cat "$1")" != "$new" ]; then printf '%s\n' "$new" >"$1"; fi
}

real_names() { local i; for (( i=0; i<REAL_NODES; i++ )); do echo "real-$i"; done; }
kubelet_port() { echo $(( REAL_PORT_BASE + 10 * ${1#real-} )); }
node_dir() { echo "$NODES_DIR/$1"; }
cgroup_root() { echo "/$1"; }
# v1 hierarchies (the kubelet needs its cgroupRoot in each); the kubelet and runc also use the cgroup2
# mount of this hybrid setup, which `down` cleans too.
cgroup_hierarchies() { awk '$3 == "cgroup" {print $2}' /proc/self/mounts; }
all_cgroup_mounts() { awk '$3 == "cgroup" || $3 == "cgroup2" {print $2}' /proc/self/mounts; }

# The real nodes' components, in start order (`down` stops them in its own order, see real_nodes_down).
real_components() {
  [ "$REAL_NODES" -gt 0 ] || return 0
  echo apiserver-forward coredns
  local n
  for n in $(real_names); do echo "containerd-$n gpu-double-$n csi-blob-$n csi-file-$n kubelet-$n"; done
  echo kube-proxy
}

# tcp_open HOST PORT: whether HOST accepts connections on PORT.
tcp_open() {
  # shellcheck disable=SC2016  # expanded by the inner bash
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null
}

real_healthy() {
  case $1 in
    apiserver-forward) tcp_open "$GW" "$APISERVER_PORT" ;;
    coredns) curl -fsS -m 2 "http://127.0.0.1:$COREDNS_READY_PORT/ready" >/dev/null 2>&1 ;;
    containerd-*) "$CONTAINERD_BIN/ctr" -a "$(node_dir "${1#containerd-}")/containerd.sock" version >/dev/null 2>&1 ;;
    gpu-double-*) true ;;
    csi-blob-*) [ -S "$(node_dir "${1#csi-blob-}")/kubelet/plugins/blob.csi.azure.com/csi.sock" ] ;;
    csi-file-*) [ -S "$(node_dir "${1#csi-file-}")/kubelet/plugins/file.csi.azure.com/csi.sock" ] ;;
    kubelet-*) curl -fsS -m 2 "http://127.0.0.1:$(( $(kubelet_port "${1#kubelet-}") + 1 ))/healthz" >/dev/null 2>&1 ;;
    kube-proxy) curl -fsS -m 2 "http://127.0.0.1:$KUBE_PROXY_HEALTH_PORT/healthz" >/dev/null 2>&1 ;;
    *) return 1 ;;
  esac
}

# Only one dev cluster per machine may run real nodes: record ours, refuse while another one's kubelets
# or containerds run (a dev cluster that was killed without `down` does not count).
claim_host() {
  mkdir -p "$OWNER_DIR"
  local owner="$OWNER_DIR/real-nodes.owner" other f pid
  other=$(cat "$owner" 2>/dev/null || true)
  if [ -n "$other" ] && [ "$other" != "$RUN" ]; then
    for f in "$other"/kubelet-real-*.pid "$other"/containerd-real-*.pid; do
      [[ -f $f && -f ${f%.pid}.exe ]] || continue
      pid=$(cat "$f")
      if [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(cat "${f%.pid}.exe")" ]; then
        die "real nodes already run for the dev cluster in $other (BATCHAI_RUN); run its 'hack/devcluster down' first, or set BATCHAI_REAL_NODES=0"
      fi
    done
  fi
  echo "$RUN" >"$owner"
}

# The bridge and its address (the pods' gateway) are ours, not the CNI plugin's: with isGateway the
# bridge plugin would switch on IP forwarding for the whole machine. And whatever else switched it on,
# nothing is forwarded from or to the bridge (nftables table $NFT_TABLE): pods reach this machine
# (their node IP, DNS, the apiserver forwarder, via kube-proxy's DNAT too) and each other, nothing else.
NFT_TABLE=batchai_real_nodes
forward_guard() {
  cat <<EOF
table inet $NFT_TABLE
delete table inet $NFT_TABLE
table inet $NFT_TABLE {
  chain forward {
    type filter hook forward priority filter; policy accept;
    # (bridged pod-to-pod packets pass this hook too when br_netfilter is loaded: in and out on $BRIDGE)
    iifname "$BRIDGE" oifname != "$BRIDGE" drop
    oifname "$BRIDGE" iifname != "$BRIDGE" drop
  }
}
EOF
}

setup_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE ($GW/16)"
    ip link add "$BRIDGE" type bridge
  fi
  local addrs; addrs=$(ip -4 -o addr show dev "$BRIDGE")
  [[ $addrs == *" $GW/16 "* ]] || ip addr add "$GW/16" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  forward_guard >"$NODES_DIR/forward-guard.nft"
  nft -f "$NODES_DIR/forward-guard.nft"
}

bridge_current() {
  local addrs
  addrs=$(ip -4 -o addr show dev "$BRIDGE" 2>/dev/null) && [[ $addrs == *" $GW/16 "* ]] &&
    nft list table inet "$NFT_TABLE" >/dev/null 2>&1 &&
    [ "$(forward_guard)" = "$(cat "$NODES_DIR/forward-guard.nft" 2>/dev/null)" ]
}

# The `kubernetes` Service's endpoint (the apiserver runs with --endpoint-reconciler-type=none): the
# forwarder on the bridge, which pods reach through kube-proxy.
apply_kubernetes_endpoints() {
  "$BIN/kubectl" --kubeconfig="$KUBECONFIG_FILE" apply --server-side --field-manager=devcluster -f - >/dev/null <<EOF
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: kubernetes-devcluster
  namespace: default
  labels: {kubernetes.io/service-name: kubernetes, endpointslice.kubernetes.io/managed-by: devcluster}
addressType: IPv4
endpoints: [{addresses: ["$GW"], conditions: {ready: true}}]
ports: [{name: https, port: $APISERVER_PORT, protocol: TCP}]
EOF
}

write_coredns_config() {
  mkdir -p "$NODES_DIR"
  put "$NODES_DIR/Corefile" <<EOF
# Cluster DNS for the real nodes' pods (kubelet clusterDNS $GW). No forward: pods resolve only the
# cluster's own names (headless Services of multi-node jobs).
.:53 {
    bind $GW
    errors
    health 127.0.0.1:$COREDNS_HEALTH_PORT
    ready 127.0.0.1:$COREDNS_READY_PORT
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $KUBECONFIG_FILE
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    cache 5
}
EOF
  printf 'nameserver %s\n' "$GW" | put "$NODES_DIR/resolv.conf"
}

write_kube_proxy_config() {
  put "$NODES_DIR/kube-proxy.yaml" <<EOF
# One kube-proxy for all real nodes: they share this machine's network stack.
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $KUBECONFIG_FILE}
hostnameOverride: real-0
mode: nftables
clusterCIDR: $POD_NET.0.0/16
healthzBindAddress: 127.0.0.1:$KUBE_PROXY_HEALTH_PORT
metricsBindAddress: 127.0.0.1:$KUBE_PROXY_METRICS_PORT
nodePortAddresses: ["$GW/32"]
oomScoreAdj: 0
# Leave the machine's conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s, udpTimeout: 0s, udpStreamTimeout: 0s}
EOF
}

write_node_config() {
  local n=$1 d i port
  d=$(node_dir "$n")
  i=${n#real-}
  port=$(kubelet_port "$n")
  mkdir -p "$d/cni/net.d" "$d/kubelet" "$d/pod-logs"
  # containerd: everything of its own under $d; CRI with Debian's runc (cgroupfs, as the kubelet),
  # sandbox image pinned to our pause image, CNI from Debian's plugins.
  put "$d/containerd.toml" <<EOF
version = 4
root = '$d/containerd/root'
state = '$d/containerd/state'
[plugins.'io.containerd.server.v1.grpc']
  address = '$d/containerd.sock'
[plugins.'io.containerd.server.v1.ttrpc']
  address = '$d/containerd.sock.ttrpc'
[plugins.'io.containerd.internal.v1.opt']
  path = '$d/containerd/opt'
[plugins.'io.containerd.nri.v1.nri']
  disable = true
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = '127.0.0.1'
  stream_server_port = '0'
[plugins.'io.containerd.cri.v1.images']
  snapshotter = 'overlayfs'
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = 'localhost/batchai/pause:dev'
[plugins.'io.containerd.cri.v1.runtime']
  # This machine lacks CAP_SYS_RESOURCE: a negative oom_score_adj would make every sandbox fail.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = 'runc'
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = 'io.containerd.runc.v2'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = '$(command -v runc)'
        Root = '$d/containerd/runc'
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ['/usr/lib/cni']
    conf_dir = '$d/cni/net.d'
EOF
  put "$d/cni/net.d/10-batchai.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "batchai-real",
  "plugins": [
    {
      "type": "bridge", "bridge": "$BRIDGE", "isGateway": false, "ipMasq": false, "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$d/cni/ipam",
        "routes": [{"dst": "0.0.0.0/0"}],
        "ranges": [[{"subnet": "$POD_NET.0.0/16", "rangeStart": "$POD_NET.$i.10", "rangeEnd": "$POD_NET.$i.250", "gateway": "$GW"}]]
      }
    }
  ]
}
EOF
  put "$d/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1 (and no pure v2 remount): still honoured when asked for explicitly.
failCgroupV1: false
cgroupDriver: cgroupfs
# Its own cgroup root, so that two kubelets on one machine do not reap each other's pod cgroups.
cgroupRoot: $(cgroup_root "$n")
containerRuntimeEndpoint: unix://$d/containerd.sock
address: $GW
port: $port
healthzBindAddress: 127.0.0.1
healthzPort: $((port + 1))
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
clusterDNS: ["$GW"]
resolvConf: $NODES_DIR/resolv.conf
podLogsDir: $d/pod-logs
failSwapOn: false
makeIPTablesUtilChains: false
oomScoreAdj: 0
# Images are imported, never pulled: never collect them; evict only when this machine is nearly full.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: 200Mi, nodefs.available: "2%", imagefs.available: "2%", nodefs.inodesFree: "2%", imagefs.inodesFree: "2%"}
serializeImagePulls: false
maxPods: 40
syncFrequency: 10s
EOF
}

# Create node N's cgroup root in every v1 hierarchy (cpuset needs its cpus/mems filled in).
make_cgroups() {
  local n=$1 h
  for h in $(cgroup_hierarchies); do
    mkdir -p "$h$(cgroup_root "$n")"
    if [ -f "$h/cpuset.cpus" ]; then
      cat "$h/cpuset.cpus" >"$h$(cgroup_root "$n")/cpuset.cpus"
      cat "$h/cpuset.mems" >"$h$(cgroup_root "$n")/cpuset.mems"
    fi
  done
  # containerd and its shims, tracked in a pids cgroup of their own so that `down` finds them all.
  mkdir -p "/sys/fs/cgroup/pids/$n-runtime"
}

# The configuration file(s) of a component, whose hash is part of its recorded command line: a
# component whose configuration changed is restarted by `up` (containerd reloads CNI files itself).
config_files() {
  case $1 in
    containerd-*) echo "$(node_dir "${1#containerd-}")/containerd.toml" ;;
    kubelet-*) echo "$(node_dir "${1#kubelet-}")/kubelet.yaml" ;;
    coredns) echo "$NODES_DIR/Corefile" ;;
    kube-proxy) echo "$NODES_DIR/kube-proxy.yaml" ;;
  esac
}
fingerprint() {
  local files; files=$(config_files "$1")
  if [ -n "$files" ]; then sha256sum <"$files" | cut -c1-16; fi
}

write_configs() {
  local n
  write_coredns_config
  write_kube_proxy_config
  for n in $(real_names); do write_node_config "$n"; done
}

# True when the bridge, its forwarding guard and every real-node component are there, the latter with
# their current configuration.
real_configs_current() {
  local c
  bridge_current || return 1
  write_configs
  for c in "${REAL_COMPONENTS[@]}"; do
    [ "$(head -n1 "$RUN/$c.args" 2>/dev/null)" = "fingerprint=$(fingerprint "$c")" ] || return 1
  done
}

start_containerd() {
  local n=$1
  make_cgroups "$n"
  START_CGROUP="/sys/fs/cgroup/pids/$n-runtime" START_PATH="$CONTAINERD_BIN:$PATH" \
    START_FINGERPRINT=$(fingerprint "containerd-$n") \
    start_at "containerd-$n" "$CONTAINERD_BIN/containerd" --config "$(node_dir "$n")/containerd.toml"
}

# The storage account Azurite and the Azure Files double serve (hack/azurite env: the well-known one).
storage_account() {
  local env; env=$("$HERE/azurite" env)
  ACCOUNT_NAME=$(sed -n "s/^export AZURITE_ACCOUNT='\(.*\)'$/\1/p" <<<"$env")
  ACCOUNT_KEY=$(sed -n "s/^export AZURITE_ACCOUNT_KEY='\(.*\)'$/\1/p" <<<"$env")
}

# Node N's CSI node plugins, registered with its kubelet (plugins_registry). rclone's mounts run in the
# pids cgroup /$n-csi with the blob plugin, so that `down` finds them all.
start_csi_plugins() {
  local n=$1 d common
  d=$(node_dir "$n")
  common=(--node-id "$n" --kubelet-dir "$d/kubelet" --kubeconfig "$KUBECONFIG_FILE")
  mkdir -p "/sys/fs/cgroup/pids/$n-csi" "$FILES_ROOT"
  START_CGROUP="/sys/fs/cgroup/pids/$n-csi" START_PATH="$RCLONE_BIN:$PATH" \
    start_at "csi-blob-$n" "$GO_TOOLS_BIN/batchai-csi-node" --driver blob.csi.azure.com "${common[@]}" \
    --state-dir "$d/blob-csi" --rclone "$RCLONE_BIN/rclone"
  start_at "csi-file-$n" "$GO_TOOLS_BIN/batchai-csi-node" --driver file.csi.azure.com "${common[@]}" \
    --shares-root "$FILES_ROOT" --account "$ACCOUNT_NAME:$ACCOUNT_KEY"
}

start_kubelet() {
  local n=$1 d
  d=$(node_dir "$n")
  start_at "gpu-double-$n" "$GO_TOOLS_BIN/gpu-device-plugin-double" \
    --registry-dir "$d/kubelet/plugins_registry" --socket "$d/gpu-device-plugin-double.sock" --id-prefix "$n-gpu"
  start_csi_plugins "$n"
  START_FINGERPRINT=$(fingerprint "kubelet-$n") start_at "kubelet-$n" "$NODE_K8S_BIN/kubelet" \
    --config="$d/kubelet.yaml" --kubeconfig="$KUBECONFIG_FILE" --hostname-override="$n" --node-ip="$GW" \
    --root-dir="$d/kubelet" --node-labels="$REAL_POOL_LABELS" --register-with-taints="$REAL_TAINTS"
}

# Import the images into every node's containerd, the nodes side by side (the first time: minutes).
load_images() {
  local n pids=()
  for n in $(real_names); do
    "$HERE/images" load "$(node_dir "$n")/containerd.sock" >&2 &
    pids+=($!)
  done
  for n in "${pids[@]}"; do wait "$n" || die "importing the images into the real nodes failed"; done
}

real_nodes_up() {
  [ "$REAL_NODES" -gt 0 ] || return 0
  claim_host
  mkdir -p "$NODES_DIR"
  # Images first (the first build takes minutes; afterwards a hash check).
  "$HERE/images" build >/dev/null
  # Local images are never pulled (there is no registry): ErrImageNeverPull when a node lacks one.
  "$BIN/kubectl" --kubeconfig="$KUBECONFIG_FILE" apply --server-side --field-manager=devcluster \
    -f "$REPO/tests/k8s/local-images.yaml" -f "$REPO/tests/k8s/csi-drivers.yaml" >/dev/null
  # The blob stand-in's storage (the Files double's account is Azurite's too).
  "$HERE/azurite" up
  storage_account
  setup_bridge
  start_at apiserver-forward "$(command -v socat)" \
    "TCP-LISTEN:$APISERVER_PORT,bind=$GW,reuseaddr,fork" "TCP:127.0.0.1:$APISERVER_PORT"
  apply_kubernetes_endpoints
  write_configs
  START_FINGERPRINT=$(fingerprint coredns) \
    start_at coredns "$COREDNS_BIN/coredns" -conf "$NODES_DIR/Corefile"
  local n
  for n in $(real_names); do start_containerd "$n"; done
  for n in $(real_names); do wait_healthy "containerd-$n" 60; done
  load_images
  for n in $(real_names); do start_kubelet "$n"; done
  wait_healthy apiserver-forward 30
  wait_healthy coredns 60
  for n in $(real_names); do wait_healthy "csi-blob-$n" 30; wait_healthy "csi-file-$n" 30; done
  for n in $(real_names); do wait_healthy "kubelet-$n" 120; done
  local k=("$BIN/kubectl" --kubeconfig="$KUBECONFIG_FILE")
  # Registered and Ready first: kube-proxy reads its node (real-0) when it starts.
  local deadline=$(( SECONDS + 120 ))
  for n in $(real_names); do
    until "${k[@]}" get node "$n" >/dev/null 2>&1; do
      [ $SECONDS -lt "$deadline" ] || die "node $n not registered after 120s (log: $LOGS/kubelet-$n.log)"
      sleep 0.5
    done
  done
  # shellcheck disable=SC2046
  "${k[@]}" wait --for=condition=Ready $(real_names | sed 's/^/node\//') --timeout=120s >/dev/null
  START_FINGERPRINT=$(fingerprint kube-proxy) \
    start_at kube-proxy "$NODE_K8S_BIN/kube-proxy" --config="$NODES_DIR/kube-proxy.yaml"
  wait_healthy kube-proxy 90
  deadline=$(( SECONDS + 60 ))
  for n in $(real_names); do
    until [ "$("${k[@]}" get node "$n" -o jsonpath='{.status.allocatable.nvidia\.com/gpu}')" = 1 ]; do
      [ $SECONDS -lt "$deadline" ] || die "node $n advertises no nvidia.com/gpu (log: $LOGS/gpu-double-$n.log)"
      sleep 0.5
    done
  done
}

# Everything node N's kubelet and containerd started: pod processes (in its cgroup root) and
# containerd with its shims (in its runtime cgroup). Killed by pid, then the cgroups removed.
kill_cgroup_tree() {
  local dir=$1 pids i
  [ -d "$dir" ] || return 0
  for (( i=0; i<50; i++ )); do
    pids=$(find "$dir" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
    [ -n "$pids" ] || return 0
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    sleep 0.2
  done
  log "WARNING: processes left in $dir: $pids"
}

remove_cgroups() {
  local root=$1 h
  for h in $(all_cgroup_mounts); do
    if [ -d "$h$root" ]; then find "$h$root" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
  done
}

# Unmount everything under DIR, deepest first (kubelet volumes, its root bind mount, netns, rootfs).
unmount_under() {
  local dir=$1 m mounts
  mapfile -t mounts < <(awk -v d="$dir/" 'index($2, d) == 1 {print $2}' /proc/self/mounts | sort -r)
  for m in "${mounts[@]}"; do
    umount -l "$m" 2>/dev/null || true
  done
}

real_nodes_down() {
  local n
  for n in $(real_names); do stop_component "kubelet-$n"; done
  stop_component kube-proxy
  local h
  for n in $(real_names); do
    for h in $(all_cgroup_mounts); do kill_cgroup_tree "$h$(cgroup_root "$n")"; done
    stop_component "containerd-$n"
    kill_cgroup_tree "/sys/fs/cgroup/pids/$n-runtime"
    stop_component "gpu-double-$n"
    stop_component "csi-file-$n"
    stop_component "csi-blob-$n"
    kill_cgroup_tree "/sys/fs/cgroup/pids/$n-csi"   # rclone mounts
  done
  stop_component coredns
  stop_component apiserver-forward
  if [ -d "$NODES_DIR" ]; then unmount_under "$NODES_DIR"; fi
  # The kubelets' links to their containers' logs (a fixed, shared directory).
  find /var/log/containers -maxdepth 1 -type l -lname "$NODES_DIR/*" -delete 2>/dev/null || true
  for n in $(real_names); do
    remove_cgroups "$(cgroup_root "$n")"
    rmdir "/sys/fs/cgroup/pids/$n-runtime" "/sys/fs/cgroup/pids/$n-csi" 2>/dev/null || true
  done
  if command -v nft >/dev/null; then
    nft delete table ip kube-proxy 2>/dev/null || true
    nft delete table ip6 kube-proxy 2>/dev/null || true
    nft delete table inet "$NFT_TABLE" 2>/dev/null || true
  fi
  if [ "$(cat "$OWNER_DIR/real-nodes.owner" 2>/dev/null)" = "$RUN" ]; then
    ip link del "$BRIDGE" 2>/dev/null || true
    rm -f "$OWNER_DIR/real-nodes.owner"
  fi
}
