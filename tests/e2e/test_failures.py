"""Failures as a real kubelet and a real kernel report them, each ending in the status Batch AI showed.

All jobs are submitted together (single node, no GPU: they share the two real nodes) and each test
checks one. Nothing here posts an Event or writes a pod status: the kubelets, containerd and the
kernel do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from devcluster import wait_for
from jobs import create_trainingjob, get_trainingjob, patch_trainingjob, trainingjob_pods, wait_state
from kubernetes import client

from .conftest import delete_namespace, new_namespace
from .realnodes import REAL_NODES, cluster_body, job_spec, on_node

pytestmark = pytest.mark.e2e

CLUSTER = "real-cpu"
SLEEPER = "echo started; sleep 600"


def custom(command: str, **extra: Any) -> dict[str, Any]:
    return job_spec(CLUSTER, customToolkitSettings={"commandLine": command}, **extra)


def add_cluster(ns: str) -> None:
    client.CustomObjectsApi().create_namespaced_custom_object(
        "batchai.io", "v1alpha1", ns, "batchaiclusters", cluster_body(ns, CLUSTER, gpus=False)
    )


@pytest.fixture(scope="module")
def submitted(module_namespace: str) -> str:
    ns = module_namespace
    core = client.CoreV1Api()
    add_cluster(ns)
    core.create_namespaced_secret(ns, {"metadata": {"name": "api"}, "stringData": {"token": "t"}})
    core.create_namespaced_secret(
        ns,
        {
            "metadata": {"name": "storage"},
            "stringData": {"azurestorageaccountname": "acct", "azurestorageaccountkey": "a2V5"},
        },
    )
    create_trainingjob(ns, "exit3", custom("echo failing on purpose; exit 3"))
    create_trainingjob(ns, "wallclock", custom(SLEEPER, constraints={"maxWallClockTime": "PT10S"}))
    create_trainingjob(ns, "terminate", custom(SLEEPER))
    create_trainingjob(
        ns,
        "noimage",
        custom("true", containerSettings={"imageSourceRegistry": {"image": "localhost/batchai/absent:dev"}}),
    )
    create_trainingjob(
        ns,
        "nokey",
        custom("true", secrets=[{"name": "TOKEN", "secretRef": {"name": "api", "key": "absent"}}]),
    )
    share = {
        "accountName": "acct",
        "azureFileUrl": "https://acct.file.core.windows.net/data",
        "credentials": {"secretRef": {"name": "storage"}},
        "relativeMountPath": "data",
    }
    create_trainingjob(
        ns, "nocsi", custom("ls $AZ_BATCHAI_JOB_MOUNT_ROOT/data", mountVolumes={"azureFileShares": [share]})
    )
    return ns


@pytest.fixture(scope="module")
def oom_namespace(submitted: str, core_v1: client.CoreV1Api) -> Iterator[str]:
    """A namespace whose LimitRange gives containers a 64 MiB memory limit (job pods set none), with a
    job that allocates 1 GiB."""
    ns = new_namespace(core_v1)
    core_v1.create_namespaced_limit_range(
        ns,
        {
            "metadata": {"name": "small"},
            "spec": {"limits": [{"type": "Container", "default": {"memory": "64Mi"}}]},
        },
    )
    add_cluster(ns)
    create_trainingjob(ns, "oom", custom("echo allocating; python -c 'b = bytearray(1 << 30)'"))
    yield ns
    delete_namespace(core_v1, ns)


def error(tj: dict[str, Any]) -> dict[str, Any]:
    info = tj["status"]["executionInfo"]
    (err,) = info["errors"]
    print(f"--- {tj['metadata']['name']}: exit code {info.get('exitCode')}, {err['code']}: {err['message']}")
    return err  # type: ignore[no-any-return]


def failed_condition(tj: dict[str, Any]) -> dict[str, Any]:
    """The Failed condition names the node and the cause (errors[] keep Batch AI's own texts)."""
    return next(c for c in tj["status"]["conditions"] if c["type"] == "Failed")


def no_pods_running(ns: str, name: str) -> bool:
    return not [p for p in trainingjob_pods(ns, name) if p.status.phase in ("Pending", "Running")]


def test_exit_code_3_fails_the_job_with_that_exit_code(submitted: str) -> None:
    tj = wait_state(submitted, "exit3", "failed", timeout=180)
    assert tj["status"]["executionInfo"]["exitCode"] == 3
    assert error(tj)["code"] == "JobFailed"
    assert error(tj)["message"] == "Job failed with non-zero exit code"  # Batch AI's text
    assert failed_condition(tj)["message"] == "Job failed with non-zero exit code 3 on node 0"
    (pod,) = trainingjob_pods(submitted, "exit3")
    assert pod.spec.node_name in REAL_NODES
    term = pod.status.container_statuses[0].state.terminated
    assert term.exit_code == 3 and term.message.strip() == "JobFailed: exit code 3"
    stdout = on_node(pod, tj["status"]["stdOutErrDirectory"]) / "stdout.txt"
    assert stdout.read_text() == "failing on purpose\n"


def test_max_wall_clock_time_stops_a_running_job(submitted: str) -> None:
    tj = wait_state(submitted, "wallclock", "failed", timeout=180)
    assert error(tj)["code"] == "MaxWallClockTimeExceeded"
    wait_for(lambda: no_pods_running(submitted, "wallclock"), timeout=60, what="wallclock pods stopped")


def test_terminate_stops_a_running_job(submitted: str) -> None:
    wait_state(submitted, "terminate", "running", timeout=180)
    (pod,) = trainingjob_pods(submitted, "terminate")
    stdout = (
        on_node(pod, get_trainingjob(submitted, "terminate")["status"]["stdOutErrDirectory"]) / "stdout.txt"
    )
    wait_for(lambda: stdout.is_file() and stdout.read_text() == "started\n", timeout=120, what="job started")
    patch_trainingjob(submitted, "terminate", {"spec": {"terminate": True}})
    tj = wait_state(submitted, "terminate", "failed", timeout=120)
    assert error(tj)["code"] == "JobTerminated"
    wait_for(
        lambda: not trainingjob_pods(submitted, "terminate"), timeout=90, what="terminated job's pod deleted"
    )
    assert (
        client.BatchV1Api()
        .list_namespaced_job(submitted, label_selector="batchai.io/trainingjob=terminate")
        .items
        == []
    )


def test_missing_image_fails_to_start_the_container(submitted: str) -> None:
    tj = wait_state(submitted, "noimage", "failed", timeout=180)
    assert error(tj)["code"] == "FailedStartingContainer"
    message = error(tj)["message"]
    assert "ErrImageNeverPull" in message and "localhost/batchai/absent:dev" in message, message


def test_missing_secret_key_fails_to_start_the_container(submitted: str) -> None:
    tj = wait_state(submitted, "nokey", "failed", timeout=180)
    assert error(tj)["code"] == "FailedStartingContainer"
    message = error(tj)["message"]
    assert "CreateContainerConfigError" in message and "couldn't find key absent in Secret" in message, (
        message
    )


def test_unknown_storage_account_is_a_mount_error(submitted: str, core_v1: client.CoreV1Api) -> None:
    tj = wait_state(submitted, "nocsi", "failed", timeout=240)
    err = error(tj)
    assert err["code"] == "AZFMountError"
    assert tj["status"]["executionInfo"]["exitCode"] == -1
    assert err["message"] == "Unable to mount Azure File"  # Batch AI's text; what the kubelet said in Info
    info = err["details"][0]["value"]
    assert "Azure Files share data of acct" in info
    # The file.csi.azure.com double, as Azure: the account's host does not resolve.
    assert "could not resolve address for acct.file.core.windows.net" in info, err
    # The FailedMount Events came from a real node's kubelet (no test posts any).
    events = [
        e
        for e in core_v1.list_namespaced_event(submitted, field_selector="reason=FailedMount").items
        if e.involved_object.name.startswith("nocsi-")
    ]
    assert events and {(e.source.component, e.source.host in REAL_NODES) for e in events} == {
        ("kubelet", True)
    }


def test_oom_kill_fails_the_job_with_exit_code_137(oom_namespace: str) -> None:
    tj = wait_state(oom_namespace, "oom", "failed", timeout=180)
    assert tj["status"]["executionInfo"]["exitCode"] == 137
    assert error(tj)["code"] == "JobFailed"
    assert error(tj)["message"] == "Job failed with non-zero exit code"  # Batch AI's text
    assert failed_condition(tj)["message"] == (
        "Job failed with non-zero exit code 137 on node 0 (OOMKilled: the container ran out of memory)"
    )
    (pod,) = trainingjob_pods(oom_namespace, "oom")
    assert pod.spec.containers[0].resources.limits == {"memory": "64Mi"}
    term = pod.status.container_statuses[0].state.terminated
    assert term.exit_code == 137 and term.reason == "OOMKilled", term
