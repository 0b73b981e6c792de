#!/usr/bin/env bash
# Build kind (sigs.k8s.io/kind, KIND_VERSION in versions.env) into its own cache dir,
# ~/.cache/batchai-operator/bin/kind-<version>/. Used only to validate kind-config.yaml with kind's own
# loader and validation (tests/integration/test_kind_validation.py); creating a cluster needs Docker, which
# is not here. Rebuilt only when KIND_VERSION changes. Prints the directory on stdout as its last line.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
LOG_TAG=build-kind
dir="$BATCHAI_CACHE_DIR/bin/kind-${KIND_VERSION}"
lock "$BATCHAI_CACHE_DIR/.build-kind.lock"

build_kind() {
  mkdir -p "$dir"
  CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN="$dir" go install -ldflags "-s -w" "sigs.k8s.io/kind@v$KIND_VERSION" >&2
}

build_step "kind v$KIND_VERSION" "1 min" build_kind "$dir/kind"
echo "$dir"
