#!/usr/bin/env bash
# Build the peer that `make bench` measures against: Kubeflow training-operator (pinned in versions.env
# as TRAINING_OPERATOR_VERSION), from its Go module, with its CRDs kept next to the binary. Cached
# under ~/.cache/batchai-operator/bin/training-operator-<version>/ with its own stamp: it never touches
# (or rebuilds) the control-plane toolchain of build-toolchain.sh. Prints the peer's dir as its last line:
#   <dir>/training-operator   <dir>/crds/kubeflow.org_*.yaml
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${BATCHAI_CACHE:-$HOME/.cache/batchai-operator}
v=$TRAINING_OPERATOR_VERSION
dir="$cache/bin/training-operator-$v"
log() { echo "[build-peer] $*" >&2; }

if [ -x "$dir/training-operator" ] && [ -f "$dir/crds/kubeflow.org_pytorchjobs.yaml" ]; then
  echo "$dir"; exit 0
fi
mkdir -p "$cache"
# One Go build at a time per cache (shared with build-toolchain.sh: two cores).
exec 9>"$cache/.build.lock"
flock 9
if [ -x "$dir/training-operator" ] && [ -f "$dir/crds/kubeflow.org_pytorchjobs.yaml" ]; then
  echo "$dir"; exit 0
fi
start=$(date +%s)
log "building kubeflow training-operator v$v (about 2 min on 2 cores)"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
# A throwaway tools module: the operator's own go.mod resolves on its own (no replace directives).
tools="$cache/tools/training-operator-$v"
mkdir -p "$tools" "$dir.tmp"
cd "$tools"
[ -f go.mod ] || go mod init batchai-operator.invalid/tools/training-operator >&2
go mod edit -require="github.com/kubeflow/training-operator@v$v" \
  -tool=github.com/kubeflow/training-operator/cmd/training-operator.v1
go mod tidy >&2
go build -trimpath -ldflags "-s -w" -o "$dir.tmp/training-operator" \
  github.com/kubeflow/training-operator/cmd/training-operator.v1 >&2
src=$(go list -m -f '{{.Dir}}' "github.com/kubeflow/training-operator")
mkdir -p "$dir.tmp/crds"
cp "$src"/manifests/base/crds/kubeflow.org_*.yaml "$dir.tmp/crds/"
chmod -R u+w "$dir.tmp"
rm -rf "$dir" && mv "$dir.tmp" "$dir"
log "training-operator v$v ready in $(( $(date +%s) - start ))s: $dir"
echo "$dir"
