#!/usr/bin/env bash
# The README's first command (`make demo`): the seed's Batch AI CNTK quickstart on a real node of the local
# dev cluster, end to end with kubectl batchai: the dev cluster comes up (the first time that builds the
# toolchain and the images, with their progress on the terminal), the script and a generated MNIST-like
# data set are uploaded, the seed's job.json runs unchanged and trains with CNTK 2.7 (the cntk-cpu image),
# its output is streamed, the CNTK model files are listed and one downloaded. The steps are
# hack/quickstart.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=lib.sh
source hack/lib.sh
LOG_TAG=demo
t0=$SECONDS
[ "${BATCHAI_REAL_NODES:-2}" != 0 ] || die "the demo runs on the dev cluster's real nodes: unset BATCHAI_REAL_NODES=0"
hack/install-prereqs.sh --quiet demo   # make demo has checked; hack/demo.sh alone has not
[ -x .venv/bin/python ] || make venv
hack/devcluster up
log "dev cluster ready after $(duration $(( SECONDS - t0 ))); now the quickstart"
hack/quickstart.sh "$@"
log "demo done in $(duration $(( SECONDS - t0 )))"
