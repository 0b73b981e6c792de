#!/usr/bin/env bash
# The seed's Batch AI CNTK quickstart (docs: "Run a CNTK training job using the Azure CLI"), step by step
# with `kubectl batchai` only, on a real node of the local dev cluster (`make demo`, `make quickstart`).
# docs/dev-cluster.md ("make demo") says what it runs.
#
# Real: the control plane, the kubelet and containerd of node real-0/1, the job's container (the CNTK image
# built here: CNTK 2.7 from PyPI), the blob container (Azurite, mounted in the pod with FUSE by rclone
# through the kubelet's CSI calls to the blob.csi.azure.com stand-in), the training: CNTK's, on the CPU
# (examples/cntk-mnist/ConvNet_MNIST.py, the project's CNTK script for the seed's command line). Small:
# the data set, generated MNIST-like digits in the seed's CNTK text format (make_mnist_like.py), so it
# trains in seconds. Doubles: Azure Files (this kernel has no SMB client: file.csi.azure.com bind-mounts
# the Files double's directories, which its REST double serves to `job file list/stream`), the GPU (a
# device-plugin double). Shims in the CNTK image: docs/frameworks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PY_ABS=$(realpath "$PY")
NS=${QUICKSTART_NAMESPACE:-quickstart}
FILES_PORT=${BATCHAI_FILES_DOUBLE_PORT:-20111}
t0=$SECONDS

hack/devcluster up   # its progress on stderr (the first time: the toolchain and the images are built)
eval "$(hack/devcluster env)"
eval "$(hack/azurite env)"
export PATH="$PWD/.venv/bin:$PATH"   # kubectl finds the kubectl-batchai plugin here
run_dir=$(dirname "$KUBECONFIG")
shares=$BATCHAI_AZURE_FILES_ROOT
mkdir -p "$shares"

kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for=condition=Established crd/trainingjobs.batchai.io crd/batchaiclusters.batchai.io >/dev/null
# The operator, for this namespace only, with the dev cluster's toolkit images (cntk: CNTK's, cntk-cpu;
# tests/k8s/toolkit-images.json) and Azurite as the blob volumes' endpoint (from hack/azurite env).
BATCHAI_IMAGES=$(cat tests/k8s/toolkit-images.json) "$PY" -m kopf run --standalone --namespace="$NS" \
  -m batchai_operator.main >"$run_dir/quickstart-operator.log" 2>&1 &
op_pid=$!
PYTHONPATH=tests "$PY" tests/doubles/azure_files.py --root "$shares" --port "$FILES_PORT" \
  --account "$AZURITE_ACCOUNT:$AZURITE_ACCOUNT_KEY" >"$run_dir/quickstart-files.log" 2>&1 &
files_pid=$!
trap 'kill $op_pid $files_pid 2>/dev/null || true' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$FILES_PORT/"; do
  kill -0 $files_pid 2>/dev/null || { cat "$run_dir/quickstart-files.log" >&2; exit 1; }
  sleep 0.2
done
export BATCHAI_STORAGE_FILE_ENDPOINT="http://127.0.0.1:$FILES_PORT/{account}"
kubectl delete namespace "$NS" --ignore-not-found --wait=true >/dev/null
# The seed's Standard_NC6 is retired; the dev cluster's GPU nodes are agent pool `real` (Standard_NC6s_v3).
# This maps the size to the pool, as an AKS user maps it to theirs; the seed's command lines stay as they are.
export BATCHAI_VM_SIZE_POOLS=Standard_NC6=real

step() { printf '\n$ %s\n' "$*"; "$@"; }

echo "## Create Batch AI workspace (a namespace)"
step kubectl batchai workspace create -g batchai.quickstart -n quickstart

echo; echo "## Create GPU cluster"
step kubectl batchai cluster create -n nc6 -g batchai.quickstart -w quickstart -s Standard_NC6 -i UbuntuDSVM -t 1 --generate-ssh-keys

echo; echo "## Deploy data (storage account: Azurite's $AZURITE_ACCOUNT; shares logs and scripts, container data)"
# az storage share create -n logs / -n scripts; az storage file upload -s scripts --path cntk (the Files
# double's shares are directories); az storage blob upload-batch -d data/mnist_cntk (Azurite).
mkdir -p "$shares/$AZURITE_ACCOUNT/logs" "$shares/$AZURITE_ACCOUNT/scripts/cntk"
cp examples/cntk-mnist/ConvNet_MNIST.py "$shares/$AZURITE_ACCOUNT/scripts/cntk/"
echo "uploaded scripts/cntk/ConvNet_MNIST.py"
"$PY" examples/cntk-mnist/make_mnist_like.py "$run_dir/mnist_cntk"
"$PY" - "$run_dir/mnist_cntk" <<'EOF'
import os
import sys
from azure.storage.blob import BlobServiceClient
account, key = os.environ["AZURITE_ACCOUNT"], os.environ["AZURITE_ACCOUNT_KEY"]
url = os.environ["BATCHAI_STORAGE_BLOB_ENDPOINT"].replace("{account}", account)
container = BlobServiceClient(url, credential={"account_name": account, "account_key": key}).get_container_client("data")
if not container.exists():
    container.create_container()
for name in ("Train-28x28_cntk_text.txt", "Test-28x28_cntk_text.txt"):
    with open(os.path.join(sys.argv[1], name), "rb") as f:
        container.upload_blob(f"mnist_cntk/{name}", f, overwrite=True)
print("uploaded data/mnist_cntk/{Train,Test}-28x28_cntk_text.txt")
EOF

echo; echo "## Create a Batch AI experiment"
step kubectl batchai experiment create -g batchai.quickstart -w quickstart -n quickstart

echo; echo "## Submit training job (the seed's job.json with the storage account's name filled in, as it says)"
sed "s/<YOUR_STORAGE_ACCOUNT>/$AZURITE_ACCOUNT/g" examples/cntk-mnist/job.json >"$run_dir/job.json"
cd "$run_dir"
export AZURE_BATCHAI_STORAGE_KEY=$AZURITE_ACCOUNT_KEY   # az read the key the same way when not logged in
step kubectl batchai job create -n cntk_python_1 -c nc6 -g batchai.quickstart -w quickstart -e quickstart  -f job.json --storage-account-name "$AZURITE_ACCOUNT"
unset AZURE_BATCHAI_STORAGE_KEY   # from here on the CLI reads the key from the job's Secret

echo; echo "## Monitor job execution (the stream ends when the job does)"
# The script reports to stderr.txt, as the seed's did (CNTK's own messages are there too).
step kubectl batchai job file stream -j cntk_python_1 -g batchai.quickstart -w quickstart -e quickstart -f stderr.txt
step kubectl batchai job list -g batchai.quickstart -w quickstart -e quickstart -o table

echo; echo "## Inspect generated model files"
step kubectl batchai job file list -j cntk_python_1 -w quickstart -e quickstart -g batchai.quickstart -d MODEL
kubectl batchai job file list -j cntk_python_1 -w quickstart -e quickstart -g batchai.quickstart -d MODEL >"$run_dir/quickstart-models.json"
url=$("$PY_ABS" -c 'import json,sys; print(json.load(open(sys.argv[1]))[-1]["downloadUrl"])' "$run_dir/quickstart-models.json")
printf '\n$ curl -s -o ConvNet_MNIST_9.dnn "<downloadUrl>" && ls -l ConvNet_MNIST_9.dnn\n'
curl -fsS -o "$run_dir/ConvNet_MNIST_9.dnn" "$url"
# shellcheck disable=SC2012  # one file of ours; ls -l prints what a user would see
ls -l "$run_dir/ConvNet_MNIST_9.dnn" | awk '{print $1, $5, "ConvNet_MNIST_9.dnn"}'
step kubectl batchai job show -n cntk_python_1 -g batchai.quickstart -w quickstart -e quickstart --query jobOutputDirectoryPathSegment

echo; echo "## Clean up resources (the seed deletes its resource group; here the workspace)"
step kubectl batchai workspace delete -g batchai.quickstart -n quickstart -y
echo; echo "quickstart done in $(( SECONDS - t0 ))s"
