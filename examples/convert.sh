#!/usr/bin/env bash
# Regenerate each example's trainingjob.yaml from its job.json with `kubectl-batchai job convert`, as a
# user would (tests/integration/test_examples.py runs this script and diffs the output with the files).
#
#   examples/convert.sh [OUTDIR]      default OUTDIR: examples/ itself
#   STORAGE_ACCOUNT=myacct examples/convert.sh /tmp/mine   convert for your own storage account
#
# The storage key never enters a file: every mount references the Secret `batchai-storage`
# (azurestorageaccountname / azurestorageaccountkey), which you create once per namespace (docs/aks.md, step 7).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here}
account=${STORAGE_ACCOUNT:-mystorageaccount}
convert_cmd=${KUBECTL_BATCHAI:-kubectl-batchai}

convert() {  # convert EXAMPLE CLUSTER
  mkdir -p "$out/$1"
  "$convert_cmd" job convert -f "$here/$1/job.json" -n "$1" -c "$2" \
    --storage-account-name "$account" --storage-secret batchai-storage >"$out/$1/trainingjob.yaml"
}

convert tensorflow-ps t4
convert horovod t4x4
convert pytorch t4
convert custom-mpi t4
convert custom-toolkit t4
