#!/usr/bin/env bash
# The seed's Batch AI CNTK quickstart (docs: "Run a CNTK training job using the Azure CLI"), step by step
# with `kubectl batchai` only, on the local control plane, with real blob storage (Azurite) and the Azure
# Files double (tests/doubles/azure_files.py: Azurite has no Azure Files). The README's walk-through is
# this script's output.
#
# kwok plays the GPU node, so nothing trains: while the job "runs", this script writes what
# ConvNet_MNIST.py would write (stderr.txt lines, then the model files) onto the logs share, where the
# job's mount would have put them. Everything else is the real thing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NS=${QUICKSTART_NAMESPACE:-quickstart}
FILES_PORT=${BATCHAI_FILES_DOUBLE_PORT:-20111}

hack/devcluster up >/dev/null 2>&1
hack/azurite up
eval "$(hack/devcluster env)"
eval "$(hack/azurite env)"
export PATH="$PWD/.venv/bin:$PATH"   # kubectl finds the kubectl-batchai plugin here
run_dir=$(dirname "$KUBECONFIG")
shares="$run_dir/quickstart-shares"
rm -rf "$shares"; mkdir -p "$shares"

kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for=condition=Established crd/trainingjobs.batchai.io crd/batchaiclusters.batchai.io >/dev/null
"$PY" -m kopf run --standalone --all-namespaces -m batchai_operator.main >"$run_dir/quickstart-operator.log" 2>&1 &
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
kubectl create namespace "$NS" >/dev/null
# The workspace (namespace) as the context's default, in a copy of the kubeconfig.
cp "$KUBECONFIG" "$run_dir/quickstart.kubeconfig"
export KUBECONFIG="$run_dir/quickstart.kubeconfig"
kubectl config set-context --current --namespace="$NS" >/dev/null

step() { printf '\n$ %s\n' "$*"; "$@"; }

echo "## Create GPU cluster"
step kubectl batchai cluster create -f examples/cntk-mnist/cluster.json -n nc6 -o table

echo; echo "## Deploy data (storage account: Azurite's $AZURITE_ACCOUNT; shares logs and scripts, container data)"
mkdir -p "$shares/$AZURITE_ACCOUNT/logs" "$shares/$AZURITE_ACCOUNT/scripts/cntk"
printf '# ConvNet_MNIST.py (stand-in: nothing trains on kwok)\n' >"$shares/$AZURITE_ACCOUNT/scripts/cntk/ConvNet_MNIST.py"
"$PY" - <<'EOF'
import os
from azure.storage.blob import BlobServiceClient
account, key = os.environ["AZURITE_ACCOUNT"], os.environ["AZURITE_ACCOUNT_KEY"]
url = os.environ["BATCHAI_STORAGE_BLOB_ENDPOINT"].replace("{account}", account)
container = BlobServiceClient(url, credential={"account_name": account, "account_key": key}).get_container_client("data")
if not container.exists():
    container.create_container()
for name in ("Train-28x28_cntk_text.txt", "Test-28x28_cntk_text.txt"):
    container.upload_blob(f"mnist_cntk/{name}", b"|labels 0 0 0 0 0 1 0 0 0 0 |features 0 0 ...\n", overwrite=True)
print("uploaded data/mnist_cntk/{Train,Test}-28x28_cntk_text.txt")
EOF

echo; echo "## Submit training job (the key comes from AZURE_BATCHAI_STORAGE_KEY, never the command line)"
export AZURE_BATCHAI_STORAGE_KEY=$AZURITE_ACCOUNT_KEY
step kubectl batchai job create -f examples/cntk-mnist/job.json -n cntk-python-1 -c nc6 -e quickstart \
  --placeholder "YOUR_STORAGE_ACCOUNT=$AZURITE_ACCOUNT" --annotation sim.batchai.io/run-for=30s -o table
unset AZURE_BATCHAI_STORAGE_KEY   # from here on the CLI reads the key from the job's Secret
step kubectl batchai experiment list

# What the training script writes while it runs (kwok runs no process), onto the logs share.
seg=$(kubectl batchai job show -n cntk-python-1 --query jobOutputDirectoryPathSegment | tr -d '"')
logs="$shares/$AZURITE_ACCOUNT/logs/$seg"
(
  kubectl wait --for=jsonpath='{.status.executionState}'=running tj/cntk-python-1 --timeout=300s >/dev/null
  mkdir -p "$logs/stdouterr" "$logs/outputs"
  : >"$logs/stdouterr/stdout.txt"
  echo "Selected GPU[0] Tesla K80 as the process wide default device." >>"$logs/stdouterr/stderr.txt"
  echo "Training 98778 parameters in 10 parameter tensors." >>"$logs/stdouterr/stderr.txt"
  i=0
  for epoch in "1 0.405960 13.01" "2 0.106030 3.09" "3 0.078542 2.32" "4 0.066301 1.98" "5 0.057879 1.71"; do
    set -- $epoch
    sleep 1
    echo "Finished Epoch[$1 of 40]: [Training] loss = $2 * 60000, metric = $3% * 60000" >>"$logs/stdouterr/stderr.txt"
    head -c $((409456 + i)) /dev/urandom >"$logs/outputs/ConvNet_MNIST_$i.dnn"
    i=$((i + 1))
  done
  echo "Final Results: Minibatch[1-11]: errs = 0.62% * 10000" >>"$logs/stdouterr/stderr.txt"
) 2>"$run_dir/quickstart-writer.log" &
writer=$!

echo; echo "## Monitor job execution"
step kubectl batchai job file stream -j cntk-python-1 -f stderr.txt
wait $writer
step kubectl batchai job wait -n cntk-python-1
step kubectl batchai job list
step kubectl batchai job node list -j cntk-python-1

echo; echo "## Inspect generated model files"
step kubectl batchai job file list -j cntk-python-1 -d MODEL -o table
kubectl batchai job file list -j cntk-python-1 -d MODEL >"$run_dir/quickstart-models.json"
printf '\n$ kubectl batchai job file list -j cntk-python-1 -d MODEL   # first entry\n'
"$PY" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))[0], indent=2))' "$run_dir/quickstart-models.json"
url=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["downloadUrl"])' "$run_dir/quickstart-models.json")
printf '\n$ curl -s -o ConvNet_MNIST_0.dnn "<downloadUrl>" && ls -l ConvNet_MNIST_0.dnn\n'
curl -fsS -o "$run_dir/ConvNet_MNIST_0.dnn" "$url"
ls -l "$run_dir/ConvNet_MNIST_0.dnn" | awk '{print $1, $5, "ConvNet_MNIST_0.dnn"}'
step kubectl batchai job show -n cntk-python-1 --query jobOutputDirectoryPathSegment

echo; echo "## Clean up resources"
step kubectl batchai job delete -n cntk-python-1 -y
step kubectl delete namespace "$NS"
