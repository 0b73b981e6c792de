#!/usr/bin/env bash
# Build Kueue (sigs.k8s.io/kueue, KUEUE_VERSION in versions.env) from its Go module into a cache dir of
# its own, ~/.cache/batchai-operator/bin/kueue-<version>/, with its CRDs and webhook manifests copied
# next to the binary (so nothing depends on GOMODCACHE later). Rebuilt only when KUEUE_VERSION changes;
# the k8s toolchain's cache (build-toolchain.sh) is a different directory and is never touched.
# Prints the directory on stdout as its last line. Cold build: about 4 min on 2 cores.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${BATCHAI_CACHE:-$HOME/.cache/batchai-operator}
dir="$cache/bin/kueue-${KUEUE_VERSION}"
tools="$cache/tools/kueue-${KUEUE_VERSION}"
mkdir -p "$cache"
exec 8>"$cache/.build-kueue.lock"
flock 8
log() { echo "[build-kueue] $*" >&2; }

if [ -x "$dir/kueue" ] && [ -f "$dir/.complete" ]; then
  echo "$dir"
  exit 0
fi
start=$(date +%s)
log "building kueue v$KUEUE_VERSION (cold: ~4 min on 2 cores)"
rm -rf "$dir"
mkdir -p "$dir" "$tools"
export CGO_ENABLED=0 GOFLAGS=-mod=mod
cd "$tools"
[ -f go.mod ] || go mod init batchai-operator.invalid/tools/kueue >&2
go mod edit -require="sigs.k8s.io/kueue@v$KUEUE_VERSION" -tool=sigs.k8s.io/kueue/cmd/kueue
go mod tidy >&2
go build -trimpath -ldflags "-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=v$KUEUE_VERSION" \
  -o "$dir/kueue" sigs.k8s.io/kueue/cmd/kueue >&2
src=$(go list -m -f '{{.Dir}}' "sigs.k8s.io/kueue")
mkdir -p "$dir/crds" "$dir/webhook"
cp "$src"/config/components/crd/bases/*.yaml "$dir/crds/"
cp "$src"/config/components/webhook/manifests.yaml "$dir/webhook/"
chmod -R u+w "$dir"
touch "$dir/.complete"
log "kueue ready in $(( $(date +%s) - start ))s: $dir"
echo "$dir"
