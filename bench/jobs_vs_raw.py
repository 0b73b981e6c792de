"""Benchmark: N TrainingJobs through the operator vs the same N raw Indexed Jobs, on the local control plane.

Both runs create exactly the pods the operator builds (same pod spec, GPU request, node selector); kwok
runs every pod for the same simulated time. The baseline is measured in the same run, first. Prints the
wall time from the first create to the last completion for each, the ratio, and the operator's peak RSS.

    make bench                 # N=200 jobs on 100 extra fake Standard_NC6 nodes
    .venv/bin/python bench/jobs_vs_raw.py --jobs 50 --nodes 25
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from devcluster import create_fake_node, delete_node, export_env, up, wait_for  # noqa: E402
from kubernetes import client, config  # noqa: E402
from operator_process import OperatorProcess  # noqa: E402

from batchai_operator.api.cluster import BatchAIClusterSpec  # noqa: E402
from batchai_operator.api.trainingjob import TrainingJobSpec  # noqa: E402
from batchai_operator.config import OperatorConfig  # noqa: E402
from batchai_operator.manifests.children import build_children  # noqa: E402

POOL = "benchpool"
SPEC: dict[str, Any] = {
    "cluster": "bench",
    "nodeCount": 1,
    "stdOutErrPathPrefix": "/tmp/logs",
    "customToolkitSettings": {"commandLine": "python train.py"},
}
CLUSTER: dict[str, Any] = {"vmSize": "Standard_NC6", "agentPool": POOL}
RUN_FOR = "2s"


def raw_job(ns: str, name: str) -> dict[str, Any]:
    """The Job the operator would build for SPEC, without an owner (so it lives on its own)."""
    obj = {"metadata": {"name": name, "namespace": ns, "uid": str(uuid.uuid4()), "annotations": {}}}
    children = build_children(
        obj,
        TrainingJobSpec.model_validate(SPEC),
        "bench",
        BatchAIClusterSpec.model_validate(CLUSTER),
        OperatorConfig(),
    )
    job = copy.deepcopy(children.job)
    del job["metadata"]["ownerReferences"]
    job["metadata"]["labels"] = {"bench": "raw"}
    job["spec"]["template"]["metadata"]["labels"] = {
        "bench": "raw",
        "batchai.io/trainingjob-uid": obj["metadata"]["uid"],
    }
    job["spec"]["template"]["metadata"]["annotations"] = {"sim.batchai.io/run-for": RUN_FOR}
    # No ConfigMap exists for raw Jobs; kwok never mounts volumes, so the reference is harmless.
    return job


def run_raw(ns: str, n: int) -> float:
    batch = client.BatchV1Api()
    start = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: batch.create_namespaced_job(ns, raw_job(ns, f"raw-{i}")), range(n)))

    def all_done() -> bool:
        jobs = batch.list_namespaced_job(ns, label_selector="bench=raw").items
        return sum(1 for j in jobs if (j.status.succeeded or 0) >= 1) == n

    wait_for(all_done, timeout=1800, interval=0.5, what=f"{n} raw Jobs complete")
    return time.monotonic() - start


def run_operator(ns: str, n: int) -> float:
    custom = client.CustomObjectsApi()
    custom.create_namespaced_custom_object(
        "batchai.io",
        "v1alpha1",
        ns,
        "batchaiclusters",
        {
            "apiVersion": "batchai.io/v1alpha1",
            "kind": "BatchAICluster",
            "metadata": {"name": "bench"},
            "spec": CLUSTER,
        },
    )

    def create(i: int) -> None:
        custom.create_namespaced_custom_object(
            "batchai.io",
            "v1alpha1",
            ns,
            "trainingjobs",
            {
                "apiVersion": "batchai.io/v1alpha1",
                "kind": "TrainingJob",
                "metadata": {"name": f"tj-{i}", "annotations": {"sim.batchai.io/run-for": RUN_FOR}},
                "spec": SPEC,
            },
        )

    start = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, range(n)))

    def all_done() -> bool:
        items = custom.list_namespaced_custom_object("batchai.io", "v1alpha1", ns, "trainingjobs")["items"]
        return sum(1 for t in items if (t.get("status") or {}).get("executionState") == "succeeded") == n

    wait_for(all_done, timeout=1800, interval=0.5, what=f"{n} TrainingJobs succeeded")
    return time.monotonic() - start


def rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    peak = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(peak.split()[1]) / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--jobs", type=int, default=200)
    ap.add_argument("--nodes", type=int, default=100)
    args = ap.parse_args()

    cluster = up()
    export_env(cluster)
    config.load_kube_config(config_file=cluster.kubeconfig)
    core = client.CoreV1Api()
    subprocess.run(
        ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds")],
        check=True,
        capture_output=True,
    )
    tag = uuid.uuid4().hex[:6]
    nodes = [f"bench-{tag}-{i}" for i in range(args.nodes)]
    namespaces = [f"bench-raw-{tag}", f"bench-op-{tag}"]
    op: OperatorProcess | None = None
    try:
        with ThreadPoolExecutor(16) as pool:
            list(
                pool.map(
                    lambda name: create_fake_node(
                        core,
                        name,
                        wait_ready=False,
                        gpus=1,
                        cpu="6",
                        memory="56Gi",
                        instance_type="Standard_NC6",
                        agent_pool=POOL,
                    ),
                    nodes,
                )
            )
        for ns in namespaces:
            core.create_namespace({"metadata": {"name": ns}})
            wait_for(lambda ns=ns: core.read_namespaced_service_account("default", ns), timeout=30)

        raw = run_raw(namespaces[0], args.jobs)

        # The same operator process the integration tests run, started once it is live.
        op = OperatorProcess(Path(tempfile.mkdtemp()) / "operator.log")
        op.start()
        operated = run_operator(namespaces[1], args.jobs)
        assert op.proc is not None
        peak = rss_mb(op.proc.pid)
        result = {
            "jobs": args.jobs,
            "nodes": args.nodes,
            "raw_jobs_seconds": round(raw, 2),
            "trainingjobs_seconds": round(operated, 2),
            "ratio": round(operated / raw, 3),
            "operator_peak_rss_mb": round(peak, 1),
        }
        print(json.dumps(result))
        print(
            f"TrainingJobs/raw Jobs = {result['ratio']}x  (target <= 1.25x); operator peak RSS {peak:.0f} MB"
        )
    finally:
        if op is not None:
            op.stop()
        for ns in namespaces:
            with contextlib.suppress(client.ApiException):
                core.delete_namespace(ns)
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda name: delete_node(core, name), nodes))


if __name__ == "__main__":
    main()
