"""Single-node jobs whose scripts really run on a real node: a customToolkit job on a GPU node of the
real pool (its one nvidia.com/gpu from the device-plugin double) and a CNTK-settings job. Both are
submitted together; each test then checks one. Their files are read from the node's disk at the paths
the status gives (Batch AI's rules: <prefix>/<segment>/stdouterr, <prefix>/<segment>/outputs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jobs import create_trainingjob, trainingjob_pods, wait_state
from kubernetes import client

from .realnodes import (
    JOB_ROOT,
    LOCAL_IMAGES,
    REAL_NODES,
    cluster_body,
    files_under,
    install_scripts,
    job_spec,
    on_node,
)

pytestmark = pytest.mark.e2e

CUSTOM = "custom"
CNTK = "cntk"


@pytest.fixture(scope="module")
def submitted(module_namespace: str) -> str:
    ns = module_namespace
    custom = client.CustomObjectsApi()
    custom.create_namespaced_custom_object(
        "batchai.io", "v1alpha1", ns, "batchaiclusters", cluster_body(ns, "real-gpu")
    )
    client.CoreV1Api().create_namespaced_secret(
        ns, {"metadata": {"name": "api"}, "stringData": {"token": "not-a-real-token"}}
    )
    create_trainingjob(
        ns,
        CUSTOM,
        job_spec(
            "real-gpu",
            jobPreparation={"commandLine": install_scripts("train.py")},
            customToolkitSettings={
                "commandLine": f"python {JOB_ROOT}/scripts/train.py $AZ_BATCHAI_OUTPUT_MODEL 300"
            },
        ),
    )
    create_trainingjob(
        ns,
        CNTK,
        job_spec(
            "real-gpu",
            jobPreparation={"commandLine": install_scripts("train.py")},
            cntkSettings={
                "pythonScriptFilePath": f"{JOB_ROOT}/scripts/train.py",
                "commandLineArgs": "$AZ_BATCHAI_OUTPUT_MODEL 200",
            },
            environmentVariables=[{"name": "LEARNING_RATE", "value": "0.05"}],
            secrets=[{"name": "API_TOKEN", "secretRef": {"name": "api", "key": "token"}}],
        ),
    )
    return ns


def finished_pod(ns: str, name: str) -> client.V1Pod:
    (pod,) = trainingjob_pods(ns, name)
    assert pod.spec.node_name in REAL_NODES
    (cs,) = pod.status.container_statuses
    assert cs.state.terminated is not None, cs.state
    return pod


def stdouterr(tj: dict[str, Any], pod: client.V1Pod) -> Path:
    directory = on_node(pod, tj["status"]["stdOutErrDirectory"])
    assert directory.is_dir(), f"{directory} missing on {pod.spec.node_name}"
    return directory


def model_of(tj: dict[str, Any], pod: client.V1Pod) -> dict[str, float]:
    (out,) = tj["status"]["outputDirectories"]
    assert out["id"] == "MODEL"
    return json.loads((on_node(pod, out["path"]) / "model.json").read_text())  # type: ignore[no-any-return]


def test_custom_toolkit_job_runs_on_a_gpu_node_of_the_real_pool(submitted: str) -> None:
    tj = wait_state(submitted, CUSTOM, "succeeded", timeout=240)
    assert tj["status"]["executionInfo"]["exitCode"] == 0
    pod = finished_pod(submitted, CUSTOM)
    (container,) = pod.spec.containers
    assert container.resources.limits == {"nvidia.com/gpu": "1"}
    assert container.image == "localhost/batchai/job-base:dev"
    assert pod.status.container_statuses[0].state.terminated.reason == "Completed"

    logs = stdouterr(tj, pod)
    assert files_under(logs) == [
        "execution.log", "stderr-job_prep.txt", "stderr.txt", "stdout-job_prep.txt", "stdout.txt"
    ]  # fmt: skip
    stdout = (logs / "stdout.txt").read_text()
    # The device-plugin double's one GPU of this node, as NVIDIA's plugin would hand it out.
    assert f"gpus=1 devices={pod.spec.node_name}-gpu-0" in stdout
    assert "epoch 299: loss" in stdout and "saved model to /mnt/batch/tasks/shared/LS_root/jobs/" in stdout
    assert (logs / "stderr.txt").read_text() == "a line on stderr\n"
    assert "installed train.py" in (logs / "stdout-job_prep.txt").read_text()
    assert "node 0 done: exit code 0" in (logs / "execution.log").read_text()
    model = model_of(tj, pod)
    assert model["w"] == pytest.approx(3, abs=0.01) and model["b"] == pytest.approx(1, abs=0.01)

    # The container's own output (kubectl logs) has the same lines: the launcher tees them.
    log = client.CoreV1Api().read_namespaced_pod_log(pod.metadata.name, submitted)
    assert "epoch 299: loss" in log and "a line on stderr" in log


def test_cntk_settings_job_runs_its_python_script(submitted: str) -> None:
    tj = wait_state(submitted, CNTK, "succeeded", timeout=240)
    assert tj["status"]["executionInfo"]["exitCode"] == 0
    assert tj["status"]["toolType"] == "cntk"
    pod = finished_pod(submitted, CNTK)
    assert pod.spec.containers[0].image == LOCAL_IMAGES["cntk"] == "localhost/batchai/cntk-cpu:dev"
    logs = stdouterr(tj, pod)
    stdout = (logs / "stdout.txt").read_text()
    assert "secret API_TOKEN: set, learning rate 0.05" in stdout
    assert "epoch 199: loss" in stdout
    assert "not-a-real-token" not in stdout
    model = model_of(tj, pod)
    assert model["loss"] < 0.01
