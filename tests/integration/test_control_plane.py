"""Proves each part of the local control plane is real: the apiserver (version), the
controller-manager (Job controller, garbage collector), the scheduler (GPU resources, Unschedulable)
and kwok with our stages (exit codes, run time, image-pull and init-container failures)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from devcluster import (
    SIM_EXIT_CODE,
    SIM_IMAGE_PULL_FAILURE,
    SIM_INIT_EXIT_CODE,
    SIM_RUN_FOR,
    DevCluster,
    wait_for,
)
from kubernetes import client

pytestmark = pytest.mark.integration

GPU = "nvidia.com/gpu"


# --- small builders and waits -------------------------------------------------------------------
def container(name: str = "main", image: str = "busybox", gpus: int = 0) -> dict[str, Any]:
    c: dict[str, Any] = {"name": name, "image": image, "command": ["true"]}
    if gpus:
        c["resources"] = {"limits": {GPU: str(gpus)}}
    return c


def pod_body(
    name: str,
    annotations: dict[str, str] | None = None,
    containers: list[dict[str, Any]] | None = None,
    init_containers: list[dict[str, Any]] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "restartPolicy": "Never",
            "containers": containers or [container()],
            "initContainers": init_containers or [],
            **spec,
        },
    }


def job_body(
    name: str,
    annotations: dict[str, str] | None = None,
    job_spec: dict[str, Any] | None = None,
    **pod_spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            **(job_spec or {}),
            "template": {
                "metadata": {"annotations": annotations or {}},
                "spec": {"restartPolicy": "Never", "containers": [container()], **pod_spec},
            },
        },
    }


def wait_pod(
    core: client.CoreV1Api,
    ns: str,
    name: str,
    pred: Callable[[client.V1Pod], bool],
    what: str,
    timeout: float = 30,
) -> client.V1Pod:
    def check() -> client.V1Pod | None:
        pod = core.read_namespaced_pod(name, ns)
        return pod if pred(pod) else None

    return wait_for(check, timeout=timeout, what=f"pod {ns}/{name}: {what}")


def phase_is(*phases: str) -> Callable[[client.V1Pod], bool]:
    return lambda pod: pod.status.phase in phases


def condition(pod: client.V1Pod, type_: str) -> client.V1PodCondition | None:
    return next((c for c in pod.status.conditions or [] if c.type == type_), None)


def stays(fn: Callable[[], bool], seconds: float, interval: float = 0.2) -> None:
    """Assert that fn() keeps returning True for `seconds` (polled)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert fn(), "condition stopped holding"
        time.sleep(interval)


def batch_job_pods(core: client.CoreV1Api, ns: str, job: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(ns, label_selector=f"batch.kubernetes.io/job-name={job}").items


# --- apiserver / toolchain ------------------------------------------------------------------------
def test_kubectl_version_reports_server_v1_37_2(devcluster: DevCluster) -> None:
    kubectl = shutil.which("kubectl")
    assert kubectl == f"{devcluster.bin_dir}/kubectl", "PATH must put the toolchain's kubectl first"
    out = subprocess.run([kubectl, "version", "-o", "json"], check=True, capture_output=True, text=True)
    versions = json.loads(out.stdout)
    assert versions["serverVersion"]["gitVersion"] == "v1.37.2"
    assert versions["clientVersion"]["gitVersion"] == "v1.37.2"


def test_default_fake_nodes_are_ready_and_labelled_like_aks(core_v1: client.CoreV1Api) -> None:
    nodes = core_v1.list_node(
        label_selector="type=kwok,kubernetes.azure.com/agentpool in (nc6pool,nc24pool,cpupool)"
    ).items
    by_type: dict[str, list[client.V1Node]] = {}
    for n in nodes:
        by_type.setdefault(n.metadata.labels["node.kubernetes.io/instance-type"], []).append(n)
        assert n.metadata.annotations["kwok.x-k8s.io/node"] == "fake"
        assert n.metadata.labels["kubernetes.io/os"] == "linux"
        assert any(c.type == "Ready" and c.status == "True" for c in n.status.conditions)
    assert {k: len(v) for k, v in by_type.items()} == {
        "Standard_NC6": 4,
        "Standard_NC24": 2,
        "Standard_D4s_v3": 1,
    }
    for n in by_type["Standard_NC6"]:
        assert n.status.allocatable[GPU] == "1"
        assert n.metadata.labels["kubernetes.azure.com/accelerator"] == "nvidia"
    for n in by_type["Standard_NC24"]:
        assert n.status.allocatable[GPU] == "4"
        assert n.metadata.labels["kubernetes.azure.com/agentpool"] == "nc24pool"
    cpu = by_type["Standard_D4s_v3"][0]
    assert GPU not in cpu.status.allocatable
    assert "kubernetes.azure.com/accelerator" not in cpu.metadata.labels


# --- kube-controller-manager ----------------------------------------------------------------------
def test_job_gets_pods_from_controller_manager_and_completes(
    core_v1: client.CoreV1Api, batch_v1: client.BatchV1Api, namespace: str
) -> None:
    batch_v1.create_namespaced_job(
        namespace, job_body("hello", job_spec={"parallelism": 2, "completions": 2})
    )
    pods = wait_for(
        lambda: (
            len(batch_job_pods(core_v1, namespace, "hello")) >= 2
            and batch_job_pods(core_v1, namespace, "hello")
        ),
        what="Job controller to create 2 pods",
    )
    assert all(p.metadata.owner_references[0].kind == "Job" for p in pods)

    def complete() -> bool:
        job = batch_v1.read_namespaced_job_status("hello", namespace)
        return job.status.succeeded == 2 and any(
            c.type == "Complete" and c.status == "True" for c in job.status.conditions or []
        )

    wait_for(complete, what="Job Complete with 2 succeeded pods")
    for pod in batch_job_pods(core_v1, namespace, "hello"):
        assert pod.status.phase == "Succeeded"
        assert pod.status.container_statuses[0].state.terminated.exit_code == 0


def test_deleting_job_garbage_collects_its_pods(
    core_v1: client.CoreV1Api, batch_v1: client.BatchV1Api, namespace: str
) -> None:
    batch_v1.create_namespaced_job(namespace, job_body("long", {SIM_RUN_FOR: "1h"}, {"parallelism": 2}))
    wait_for(
        lambda: [p for p in batch_job_pods(core_v1, namespace, "long") if p.status.phase == "Running"],
        what="a running pod of Job long",
    )
    batch_v1.delete_namespaced_job("long", namespace, propagation_policy="Background")
    wait_for(
        lambda: not batch_job_pods(core_v1, namespace, "long"),
        timeout=60,
        what="garbage collector to delete the Job's pods",
    )
    with pytest.raises(client.ApiException) as exc:
        batch_v1.read_namespaced_job("long", namespace)
    assert exc.value.status == 404


# --- kube-scheduler -------------------------------------------------------------------------------
def test_scheduler_binds_gpu_pod_only_to_gpu_node(
    core_v1: client.CoreV1Api, namespace: str, fake_node: Callable[..., client.V1Node]
) -> None:
    # Two private nodes, identical but for the GPU, tainted so that nothing else lands there.
    pool = uuid.uuid4().hex[:8]
    taint = {"key": "batchai.io/test-pool", "value": pool, "effect": "NoSchedule"}
    labels = {"batchai.io/test-pool": pool}
    gpu_node = fake_node("gpu", gpus=1, labels=labels, taints=[taint]).metadata.name
    fake_node("cpu", gpus=0, labels=labels, taints=[taint])
    placement = {
        "nodeSelector": labels,
        "tolerations": [
            {"key": "batchai.io/test-pool", "operator": "Equal", "value": pool, "effect": "NoSchedule"}
        ],
    }
    core_v1.create_namespaced_pod(namespace, pod_body("gpu", containers=[container(gpus=1)], **placement))
    pod = wait_pod(core_v1, namespace, "gpu", lambda p: bool(p.spec.node_name), "scheduled")
    assert pod.spec.node_name == gpu_node
    wait_pod(core_v1, namespace, "gpu", phase_is("Running", "Succeeded"), "running on the fake node")

    # The only GPU in the pool is taken: a second GPU pod must not go to the CPU node.
    core_v1.create_namespaced_pod(namespace, pod_body("gpu2", containers=[container(gpus=1)], **placement))
    pod = wait_pod(
        core_v1,
        namespace,
        "gpu2",
        lambda p: (c := condition(p, "PodScheduled")) is not None and c.status == "False",
        "PodScheduled=False",
    )
    assert pod.spec.node_name is None
    assert f"Insufficient {GPU}" in condition(pod, "PodScheduled").message

    # Among the default pools (GPU and CPU-only; other tests may add nodes of their own), a GPU
    # pod lands on an nvidia-labelled node.
    default_pools = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.azure.com/agentpool",
                                "operator": "In",
                                "values": ["nc6pool", "nc24pool", "cpupool"],
                            }
                        ]
                    }
                ]
            }
        }
    }
    core_v1.create_namespaced_pod(
        namespace, pod_body("gpu3", containers=[container(gpus=1)], affinity=default_pools)
    )
    pod = wait_pod(core_v1, namespace, "gpu3", lambda p: bool(p.spec.node_name), "scheduled")
    node = core_v1.read_node(pod.spec.node_name)
    assert node.metadata.labels.get("kubernetes.azure.com/accelerator") == "nvidia"
    assert int(node.status.allocatable[GPU]) >= 1


def test_pod_wanting_more_gpus_than_any_node_is_unschedulable(
    core_v1: client.CoreV1Api, namespace: str
) -> None:
    core_v1.create_namespaced_pod(namespace, pod_body("greedy", containers=[container(gpus=1000)]))
    pod = wait_pod(
        core_v1,
        namespace,
        "greedy",
        lambda p: (c := condition(p, "PodScheduled")) is not None and c.status == "False",
        "PodScheduled=False",
    )
    cond = condition(pod, "PodScheduled")
    assert cond.reason == "Unschedulable"
    assert f"Insufficient {GPU}" in cond.message
    assert pod.status.phase == "Pending" and pod.spec.node_name is None


# --- kwok and our stages --------------------------------------------------------------------------
def test_kwok_exit_codes(core_v1: client.CoreV1Api, namespace: str) -> None:
    core_v1.create_namespaced_pod(namespace, pod_body("ok", {SIM_EXIT_CODE: "0"}))
    core_v1.create_namespaced_pod(
        namespace, pod_body("three", {SIM_EXIT_CODE: "3"}, containers=[container("a"), container("b")])
    )

    ok = wait_pod(core_v1, namespace, "ok", phase_is("Succeeded", "Failed"), "terminal")
    assert ok.status.phase == "Succeeded"
    term = ok.status.container_statuses[0].state.terminated
    assert (term.exit_code, term.reason) == (0, "Completed")
    assert ok.status.container_statuses[0].state.running is None

    three = wait_pod(core_v1, namespace, "three", phase_is("Succeeded", "Failed"), "terminal")
    assert three.status.phase == "Failed"
    assert {s.name: s.state.terminated.exit_code for s in three.status.container_statuses} == {"a": 3, "b": 3}
    assert all(s.state.terminated.reason == "Error" for s in three.status.container_statuses)


def test_kwok_run_for_delays_completion(core_v1: client.CoreV1Api, namespace: str) -> None:
    core_v1.create_namespaced_pod(namespace, pod_body("slow", {SIM_EXIT_CODE: "0", SIM_RUN_FOR: "3s"}))
    running = wait_pod(core_v1, namespace, "slow", phase_is("Running", "Succeeded"), "running")
    assert running.status.phase == "Running"
    done = wait_pod(core_v1, namespace, "slow", phase_is("Succeeded"), "Succeeded")
    finished = done.status.container_statuses[0].state.terminated.finished_at
    # API timestamps have 1 s resolution; floor(b) - floor(a) >= 3 when b - a >= 3.
    assert (finished - done.status.start_time).total_seconds() >= 3


def test_image_pull_failure_stays_pending_with_err_image_pull(
    core_v1: client.CoreV1Api, namespace: str
) -> None:
    core_v1.create_namespaced_pod(
        namespace, pod_body("by-image", containers=[container(image=SIM_IMAGE_PULL_FAILURE)])
    )
    core_v1.create_namespaced_pod(
        namespace,
        pod_body(
            "by-annotation",
            {SIM_IMAGE_PULL_FAILURE: "true"},
            init_containers=[container("setup")],
            containers=[container("a"), container("b")],
        ),
    )

    def err_image_pull(pod: client.V1Pod) -> bool:
        statuses = (pod.status.container_statuses or []) + (pod.status.init_container_statuses or [])
        return bool(statuses) and all(
            s.state.waiting is not None and s.state.waiting.reason == "ErrImagePull" for s in statuses
        )

    for name in ("by-image", "by-annotation"):
        pod = wait_pod(core_v1, namespace, name, err_image_pull, "ErrImagePull")
        assert pod.status.phase == "Pending"
        assert pod.spec.node_name  # scheduled; only the (simulated) pull fails
    pod = core_v1.read_namespaced_pod("by-annotation", namespace)
    assert [s.name for s in pod.status.container_statuses] == ["a", "b"]
    assert [s.name for s in pod.status.init_container_statuses] == ["setup"]
    # ... and it stays that way (kwok must not move it to Running).
    stays(
        lambda: (
            err_image_pull(core_v1.read_namespaced_pod("by-image", namespace))
            and core_v1.read_namespaced_pod("by-image", namespace).status.phase == "Pending"
        ),
        3,
    )


def test_init_exit_code_fails_pod_in_init(core_v1: client.CoreV1Api, namespace: str) -> None:
    core_v1.create_namespaced_pod(
        namespace,
        pod_body(
            "init-fails",
            {SIM_INIT_EXIT_CODE: "7"},
            init_containers=[container("prep"), container("setup")],
            containers=[container("main")],
        ),
    )
    pod = wait_pod(core_v1, namespace, "init-fails", phase_is("Failed", "Succeeded", "Running"), "terminal")
    assert pod.status.phase == "Failed"
    prep, setup = pod.status.init_container_statuses
    assert (prep.name, prep.state.terminated.exit_code, prep.state.terminated.reason) == ("prep", 7, "Error")
    assert setup.state.waiting.reason == "PodInitializing"
    assert pod.status.container_statuses[0].state.waiting.reason == "PodInitializing"
    assert condition(pod, "Initialized").status == "False"


def test_init_containers_complete_before_pod_runs(core_v1: client.CoreV1Api, namespace: str) -> None:
    core_v1.create_namespaced_pod(
        namespace,
        pod_body(
            "init-ok",
            {SIM_EXIT_CODE: "0", SIM_RUN_FOR: "2s"},
            init_containers=[container("prep")],
            containers=[container("main")],
        ),
    )
    pod = wait_pod(core_v1, namespace, "init-ok", phase_is("Running", "Succeeded", "Failed"), "started")
    assert pod.status.phase == "Running"
    assert pod.status.init_container_statuses[0].state.terminated.exit_code == 0
    pod = wait_pod(core_v1, namespace, "init-ok", phase_is("Succeeded", "Failed"), "terminal")
    assert pod.status.phase == "Succeeded"
    assert pod.status.init_container_statuses[0].state.terminated.exit_code == 0


def test_job_with_failing_init_container_fails(
    core_v1: client.CoreV1Api, batch_v1: client.BatchV1Api, namespace: str
) -> None:
    batch_v1.create_namespaced_job(
        namespace, job_body("prep-fails", {SIM_INIT_EXIT_CODE: "2"}, initContainers=[container("prep")])
    )

    def failed() -> bool:
        job = batch_v1.read_namespaced_job_status("prep-fails", namespace)
        return any(c.type == "Failed" and c.status == "True" for c in job.status.conditions or [])

    wait_for(failed, what="Job Failed")
    (pod,) = batch_job_pods(core_v1, namespace, "prep-fails")
    assert pod.status.phase == "Failed"
    assert pod.status.init_container_statuses[0].state.terminated.exit_code == 2
