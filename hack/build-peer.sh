#!/usr/bin/env bash
# Build the peer that `make bench` measures against: Kubeflow training-operator (pinned in versions.env
# as TRAINING_OPERATOR_VERSION), from its Go module, with its CRDs kept next to the binary. Cached
# under ~/.cache/batchai-operator/bin/training-operator-<version>/ with its own stamp: it never touches
# (or rebuilds) the control-plane toolchain of build-toolchain.sh. Prints the peer's dir as its last line:
#   <dir>/training-operator   <dir>/crds/kubeflow.org_*.yaml
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
LOG_TAG=build-peer
v=$TRAINING_OPERATOR_VERSION
dir="$BATCHAI_CACHE_DIR/bin/training-operator-$v"
# One Go build at a time per cache (shared with build-toolchain.sh: two cores).
lock "$BATCHAI_CACHE_DIR/.build.lock"

# A throwaway tools module: the operator's own go.mod resolves on its own (no replace directives).
build_peer() {
  export CGO_ENABLED=0 GOFLAGS=-mod=mod
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp/crds"
  tools_module "$BATCHAI_CACHE_DIR/tools/training-operator-$v" -require="github.com/kubeflow/training-operator@v$v" \
    -tool=github.com/kubeflow/training-operator/cmd/training-operator.v1
  go build -trimpath -ldflags "-s -w" -o "$dir.tmp/training-operator" \
    github.com/kubeflow/training-operator/cmd/training-operator.v1 >&2
  local src
  src=$(go list -m -f '{{.Dir}}' "github.com/kubeflow/training-operator")
  cp "$src"/manifests/base/crds/kubeflow.org_*.yaml "$dir.tmp/crds/"
  chmod -R u+w "$dir.tmp"
  rm -rf "$dir" && mv "$dir.tmp" "$dir"
}

build_step "kubeflow training-operator v$v" "2 min" build_peer \
  "$dir/training-operator" "$dir/crds/kubeflow.org_pytorchjobs.yaml"
echo "$dir"
