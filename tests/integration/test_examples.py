"""examples/: every toolkit family's job.json converts (kubectl-batchai job convert, via examples/convert.sh)
to exactly the committed trainingjob.yaml, which the apiserver accepts, and runs through the operator on
kwok to `succeeded` on its cluster (cluster.yaml), with the storage Secret docs/aks.md tells users to create.

(This module sorts after test_chart.py, which must run before any module requesting `operator`.)
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from devcluster import SIM_RUN_FOR
from jobs import GROUP, SECRET_KEY_VALUE, VERSION, custom, wait_state
from kubernetes import client
from operator_process import OperatorProcess

from batchai_operator.vmsizes import vm_size_info

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
TOOLKITS = {
    "tensorflow-ps": "tensorflow",
    "horovod": "horovod",
    "pytorch": "pytorch",
    "custom-mpi": "mpi",
    "custom-toolkit": "custom",
}


def test_every_toolkit_family_has_an_example() -> None:
    with_job = sorted(p.parent.name for p in EXAMPLES.glob("*/job.json"))
    assert with_job == sorted([*TOOLKITS, "cntk-mnist"])


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("converted")
    env = {**os.environ, "KUBECTL_BATCHAI": str(Path(sys.executable).parent / "kubectl-batchai")}
    env.pop("STORAGE_ACCOUNT", None)
    subprocess.run(
        [str(EXAMPLES / "convert.sh"), str(out)], check=True, env=env, capture_output=True, timeout=120
    )
    return out


def load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("example", list(TOOLKITS))
def test_converted_job_json_equals_the_committed_yaml(converted: Path, example: str) -> None:
    committed = EXAMPLES / example / "trainingjob.yaml"
    assert (converted / example / "trainingjob.yaml").read_text() == committed.read_text(), (
        f"{committed} is stale: run examples/convert.sh"
    )
    (job,) = load(committed)  # no Secret: mounts reference the pre-created Secret batchai-storage
    assert job["kind"] == "TrainingJob" and job["metadata"]["name"] == example


@pytest.mark.parametrize("example", list(TOOLKITS))
def test_example_accepted_by_the_apiserver_and_runs_to_succeeded(
    operator: OperatorProcess,
    namespace: str,
    core_v1: client.CoreV1Api,
    fake_node: Callable[..., client.V1Node],
    example: str,
) -> None:
    for doc in load(EXAMPLES / example / "cluster.yaml"):
        # The cluster's nodes: kwok nodes of its VM size (today's sizes; the dev cluster's own are NC6 and
        # NC24), as many as its scaleSettings ask for.
        instance_type, gpus = vm_size_info(doc["spec"]["vmSize"])
        for _ in range(doc["spec"]["scaleSettings"]["manual"]["targetNodeCount"]):
            fake_node(f"aks-{doc['metadata']['name']}", gpus=gpus, instance_type=instance_type)
        custom().create_namespaced_custom_object(GROUP, VERSION, namespace, "batchaiclusters", doc)
    core_v1.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "batchai-storage"},
            "stringData": {
                "azurestorageaccountname": "mystorageaccount",
                "azurestorageaccountkey": SECRET_KEY_VALUE,
            },
        },
    )
    path = EXAMPLES / example / "trainingjob.yaml"
    dry = subprocess.run(
        ["kubectl", "apply", "--dry-run=server", "-n", namespace, "-f", str(path)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert dry.returncode == 0 and "(server dry run)" in dry.stdout, dry.stderr
    (job,) = load(path)
    job["metadata"]["annotations"] = {SIM_RUN_FOR: "2s"}  # kwok runs the pods for 2 s, exit 0
    custom().create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", job)
    done = wait_state(namespace, example, "succeeded", timeout=120)
    st = done["status"]
    assert st["toolType"] == TOOLKITS[example]
    assert st["executionInfo"]["exitCode"] == 0
    assert st["nodesSummary"] == f"{job['spec']['nodeCount']}/{job['spec']['nodeCount']}"
