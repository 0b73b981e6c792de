#!/usr/bin/env bash
# The README's first command (`make demo`): the seed's Batch AI CNTK quickstart on a real node of the local
# dev cluster, end to end with kubectl batchai: the dev cluster comes up (the first time that builds the
# toolchain and the images), the script and a generated MNIST-like data set are uploaded, the seed's
# job.json runs unchanged and trains with CNTK 2.7 (the cntk-cpu image), its output is streamed, the CNTK
# model files are listed and one downloaded.
# The steps are hack/quickstart.sh's.
set -euo pipefail
exec "$(dirname "$0")/quickstart.sh" "$@"
