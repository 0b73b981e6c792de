#!/usr/bin/env bash
# Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok and helm from
# pinned Go modules into a cache outside the repo. Rebuilt only when a pinned version changes.
# Prints the bin directory on stdout as its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${BATCHAI_CACHE:-$HOME/.cache/batchai-operator}
stamp="k8s-${KUBE_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
bin="$cache/bin/$stamp"
tools="$cache/tools/$stamp"
mkdir -p "$bin" "$tools"
# One build at a time per cache (parallel checkouts share it).
exec 9>"$cache/.build.lock"
flock 9
export CGO_ENABLED=0 GOFLAGS=-mod=mod
log() { echo "[build-toolchain] $*" >&2; }

build_kube() {
  local need=0
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do [ -x "$bin/$c" ] || need=1; done
  [ $need = 1 ] || return 0
  log "building kubernetes v$KUBE_VERSION (cold: 20-35 min on 2 cores)"
  local d="$tools/k8s"; mkdir -p "$d"; cd "$d"
  [ -f go.mod ] || go mod init batchai-operator.invalid/tools/k8s >&2
  local kmod
  kmod=$(cd /tmp && go mod download -json "k8s.io/kubernetes@v$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  go mod edit -go="$(sed -n 's/^go //p' "$kmod")" -require="k8s.io/kubernetes@v$KUBE_VERSION"
  for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[^ ]*\) => \./staging/.*#\1#p' "$kmod"); do
    go mod edit -replace="$m=$m@v$KUBE_STAGING_VERSION"
  done
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    go mod edit -tool="k8s.io/kubernetes/cmd/$c"
  done
  go mod tidy >&2
  local minor=${KUBE_VERSION#*.}; minor=${minor%%.*}
  local ldf="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldf="$ldf -X $p.gitVersion=v$KUBE_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
  done
  go build -trimpath -p 2 -ldflags "$ldf" -o "$bin/" \
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

start=$(date +%s)
build_etcd
build_kwok
build_helm
build_kube
log "toolchain ready in $(( $(date +%s) - start ))s: $bin"
echo "$bin"
