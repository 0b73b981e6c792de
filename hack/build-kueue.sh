#!/usr/bin/env bash
# Build Kueue (sigs.k8s.io/kueue, KUEUE_VERSION in versions.env) from its Go module into a cache dir of
# its own, ~/.cache/batchai-operator/bin/kueue-<version>/, with its CRDs and webhook manifests copied
# next to the binary (so nothing depends on GOMODCACHE later). Rebuilt only when KUEUE_VERSION changes;
# the k8s toolchain's cache (build-toolchain.sh) is a different directory and is never touched.
# Prints the directory on stdout as its last line.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
LOG_TAG=build-kueue
dir="$BATCHAI_CACHE_DIR/bin/kueue-${KUEUE_VERSION}"
lock "$BATCHAI_CACHE_DIR/.build-kueue.lock"

build_kueue() {
  rm -rf "$dir"
  mkdir -p "$dir"
  export CGO_ENABLED=0 GOFLAGS=-mod=mod
  tools_module "$BATCHAI_CACHE_DIR/tools/kueue-${KUEUE_VERSION}" -require="sigs.k8s.io/kueue@v$KUEUE_VERSION" \
    -tool=sigs.k8s.io/kueue/cmd/kueue
  go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=v$KUEUE_VERSION" \
    -o "$dir/kueue" sigs.k8s.io/kueue/cmd/kueue >&2
  local src
  src=$(go list -m -f '{{.Dir}}' "sigs.k8s.io/kueue")
  mkdir -p "$dir/crds" "$dir/webhook"
  cp "$src"/config/components/crd/bases/*.yaml "$dir/crds/"
  cp "$src"/config/components/webhook/manifests.yaml "$dir/webhook/"
  chmod -R u+w "$dir"
  touch "$dir/.complete"
}

build_step "kueue v$KUEUE_VERSION" "5 min" build_kueue "$dir/kueue" "$dir/.complete"
echo "$dir"
