#!/usr/bin/env bash
# The README's first command: bring up the local control plane, install the CRDs, start the operator,
# and run the seed's Batch AI CNTK quickstart job (examples/cntk-mnist) to completion.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NS=${DEMO_NAMESPACE:-quickstart}

hack/devcluster up
eval "$(hack/devcluster env)"
run_dir=$(dirname "$KUBECONFIG")
log="$run_dir/demo-operator.log"

echo "== installing CRDs"
kubectl apply --server-side --force-conflicts -f crds/ >/dev/null
kubectl wait --for=condition=Established crd/trainingjobs.batchai.io crd/batchaiclusters.batchai.io >/dev/null

echo "== starting the operator (log: $log)"
"$PY" -m kopf run --standalone --all-namespaces -m batchai_operator.main >"$log" 2>&1 &
op_pid=$!
trap 'kill $op_pid 2>/dev/null || true' EXIT

kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl -n "$NS" delete trainingjob cntk-python-1 --ignore-not-found --wait=true >/dev/null

echo "== BatchAICluster nc6 (az batchai cluster create -n nc6 -s STANDARD_NC6 -t 1)"
kubectl -n "$NS" apply -f examples/cntk-mnist/cluster.yaml

echo "== converting the quickstart's job.json (az batchai job create -n cntk_python_1 -c nc6 -f job.json)"
# The demo's storage account is fictitious: the CSI volumes are never mounted, since kwok runs the pods.
# The key comes from the environment (never the command line); the YAML holds it, so it stays in the run dir.
AZURE_BATCHAI_STORAGE_KEY="ZGVtby1rZXktbm90LXJlYWw=" .venv/bin/kubectl-batchai job convert -f examples/cntk-mnist/job.json \
  --name cntk-python-1 --cluster nc6 --experiment quickstart --placeholder YOUR_STORAGE_ACCOUNT=batchaidemo \
  --storage-account-name batchaidemo > "$run_dir/demo-job.yaml"
sed -n '/kind: TrainingJob/,$p' "$run_dir/demo-job.yaml" | sed 's/^/    /'
kubectl -n "$NS" apply -f "$run_dir/demo-job.yaml"

echo "== waiting for the job (kubectl get tj)"
for _ in $(seq 1 120); do
  state=$(kubectl -n "$NS" get tj cntk-python-1 -o jsonpath='{.status.executionState}' 2>/dev/null || true)
  kubectl -n "$NS" get tj cntk-python-1 --no-headers 2>/dev/null | sed 's/^/    /'
  case "$state" in succeeded|failed) break ;; esac
  sleep 1
done
echo "== result"
kubectl -n "$NS" get tj cntk-python-1
kubectl -n "$NS" get tj cntk-python-1 -o jsonpath='{"executionState: "}{.status.executionState}{"\nexitCode: "}{.status.executionInfo.exitCode}{"\njobOutputDirectoryPathSegment: "}{.status.jobOutputDirectoryPathSegment}{"\nstdOutErrDirectory: "}{.status.stdOutErrDirectory}{"\noutputDirectories: "}{.status.outputDirectories}{"\n"}'
echo "== events"
kubectl -n "$NS" get events --field-selector involvedObject.name=cntk-python-1 --sort-by=.lastTimestamp | tail -5
[ "$state" = succeeded ]
