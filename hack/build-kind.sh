#!/usr/bin/env bash
# Build kind (sigs.k8s.io/kind, KIND_VERSION in versions.env) into its own cache dir,
# ~/.cache/batchai-operator/bin/kind-<version>/. Used only to validate kind-config.yaml with kind's own
# loader and validation (tests/unit/test_kind_config.py); creating a cluster needs Docker, which is not
# here. Rebuilt only when KIND_VERSION changes. Prints the directory on stdout as its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
source "$here/versions.env"
cache=${BATCHAI_CACHE:-$HOME/.cache/batchai-operator}
dir="$cache/bin/kind-${KIND_VERSION}"
mkdir -p "$cache"
exec 7>"$cache/.build-kind.lock"
flock 7
if [ ! -x "$dir/kind" ]; then
  echo "[build-kind] building kind v$KIND_VERSION" >&2
  mkdir -p "$dir"
  CGO_ENABLED=0 GOFLAGS=-mod=mod GOBIN="$dir" go install -ldflags "-s -w" "sigs.k8s.io/kind@v$KIND_VERSION" >&2
fi
echo "$dir"
