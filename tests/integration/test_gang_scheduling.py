"""Gang scheduling on the real scheduler: a multi-node job never holds part of its nodes
(docs/gang-scheduling.md).

Each test makes a pool of 4 one-GPU kwok nodes of its own (a BatchAICluster on its agent pool) and submits
two 3-node jobs together: one runs with all three pods bound, the other has no pod bound until the first
ends, then runs; both succeed. A watch of the pods from before the jobs exist checks the property (no
instant at which a job has some but not all of its pods bound: gang_watch.py) and prints what it saw.
The same for each mechanism: the Workload API (the session's operator, gang: auto, on the dev cluster
that serves it), the operator's own admission, and Kueue; and, to show the check can fail, gang: off.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from devcluster import SIM_RUN_FOR, wait_for
from gang_watch import BindingWatch, violations
from jobs import (
    create_cluster,
    create_trainingjob,
    events_for,
    get_trainingjob,
    trainingjob_pods,
    wait_state,
)
from kubernetes import client
from kueue_process import KueueProcess, gpu_cluster_queue
from kueue_process import kueue as kueue
from operator_process import OperatorProcess

pytestmark = pytest.mark.integration
RUN_FOR = "12s"
JOBS = ("first", "second")


@pytest.fixture
def pool(fake_node: Callable[..., client.V1Node], namespace: str) -> str:
    """4 nodes of one GPU in an agent pool of their own (no other test's pods land there), and a
    BatchAICluster `pool` on it."""
    name = f"g{uuid.uuid4().hex[:8]}"
    for _ in range(4):
        fake_node("gang", gpus=1, agent_pool=name, instance_type="Standard_NC6_gangtest")
    create_cluster(namespace, "pool", agentPool=name)
    return name


@pytest.fixture
def operator_with(operator: OperatorProcess, tmp_path: Path) -> Iterator[Callable[[str], OperatorProcess]]:
    """Start an operator with another `gang` setting in place of the session's (one operator at a time
    on the control plane); the session's is back afterwards."""
    started: list[OperatorProcess] = []

    def start(gang: str) -> OperatorProcess:
        operator.stop()
        alt = OperatorProcess(tmp_path / f"operator-{gang}.log", extra_env={"BATCHAI_GANG": gang})
        started.append(alt)
        alt.start()
        return alt

    yield start
    for alt in started:
        alt.stop()
    if started:
        operator.start()


def three_node_job() -> dict[str, Any]:
    return {
        "cluster": "pool",
        "nodeCount": 3,
        "customMpiSettings": {"commandLine": "python train.py", "processCount": 3},
        "stdOutErrPathPrefix": "/tmp/logs",
    }


def run_two_jobs(namespace: str, labels: dict[str, str] | None = None) -> tuple[list[str], dict[str, Any]]:
    """Submit the two jobs (first, then second a second later), wait until both succeed; the watch's
    report, and the status of the job that waited as it was while it waited."""
    watch = BindingWatch(namespace)
    watch.start()
    waiting_status: dict[str, Any] = {}
    try:
        for name in JOBS:
            create_trainingjob(
                namespace, name, three_node_job(), annotations={SIM_RUN_FOR: RUN_FOR}, labels=labels
            )
            time.sleep(1)

        def one_waits() -> dict[str, Any] | None:
            for name in JOBS:
                status = get_trainingjob(namespace, name).get("status") or {}
                if status.get("executionState") == "running":
                    other = get_trainingjob(namespace, JOBS[1 - JOBS.index(name)]).get("status") or {}
                    gang = other.get("gang") or {}
                    # (the counts may lag by a status interval behind the first job's binds)
                    if (
                        other.get("executionState") == "queued"
                        and gang.get("message")
                        and gang.get("free") == 1
                    ):
                        return {"name": JOBS[1 - JOBS.index(name)], **other}
            return None

        waiting_status = wait_for(
            one_waits, timeout=60, what="one job running, the other waiting for its gang"
        )
        for name in JOBS:
            wait_state(namespace, name, "succeeded", timeout=150)
    finally:
        time.sleep(1)
        watch.finish()
    lines = watch.report({name: 3 for name in JOBS})
    print("\n" + "\n".join(lines))
    order = sorted(JOBS, key=lambda n: min(p.bound for p in watch.pods.values() if p.job == n and p.bound))
    first_done = min(p.finished for p in watch.pods.values() if p.job == order[0] and p.finished)
    second_bound = min(p.bound for p in watch.pods.values() if p.job == order[1] and p.bound)
    print(
        f"{order[0]}'s first pod finished at {first_done:%H:%M:%S.%f}; "
        f"{order[1]}'s first pod bound at {second_bound:%H:%M:%S.%f}"
    )
    assert second_bound >= first_done, "the second job got a node while the first still ran"
    return lines, waiting_status


def assert_waited_for_its_gang(namespace: str, status: dict[str, Any], mechanism: str) -> None:
    gang = status["gang"]
    assert gang["mechanism"] == mechanism and gang["needed"] == 3, gang
    queued = next(c for c in status["conditions"] if c["type"] == "Queued")
    if mechanism != "kueue":
        assert queued["reason"] == "WaitingForNodes" and gang["free"] == 1, status
        assert "3 nodes needed, 1 free" in queued["message"], queued
    said = [
        (e.first_timestamp, e.message)
        for e in events_for(namespace, status["name"])
        if e.involved_object.kind == "TrainingJob" and e.reason == "WaitingForNodes"
    ]
    assert len(said) == 1, said


def test_workload_api_two_3_node_jobs_on_4_nodes(
    operator: OperatorProcess, namespace: str, pool: str
) -> None:
    lines, waited = run_two_jobs(namespace)
    assert not violations(lines), lines
    assert_waited_for_its_gang(namespace, waited, "workload")
    # The scheduler's words vary with the PostFilter plugin that reports (e.g. "minCount (3) cannot be
    # satisfied: ...", or DynamicResources' PodGroupPostFilter error): the PodGroup's, whatever they are.
    said = waited["gang"]["message"].partition("(PodGroup, gang): ")[2]
    assert said.strip(), waited["gang"]
    # The operator's Workload and PodGroup, owned by the TrainingJob; the pods joined the PodGroup.
    api = client.CustomObjectsApi()
    for name in JOBS:
        uid = get_trainingjob(namespace, name)["metadata"]["uid"]
        for plural in ("workloads", "podgroups"):
            obj = api.get_namespaced_custom_object("scheduling.k8s.io", "v1beta1", namespace, plural, name)
            assert obj["metadata"]["ownerReferences"][0]["uid"] == uid, obj["metadata"]
            assert obj["spec"]["schedulingPolicy" if plural == "podgroups" else "podGroupTemplates"]
        job = client.BatchV1Api().read_namespaced_job(name, namespace)
        assert job.spec.template.spec.scheduling_group.pod_group_name == name


def test_operator_admission_two_3_node_jobs_on_4_nodes(
    operator_with: Callable[[str], OperatorProcess], namespace: str, pool: str
) -> None:
    operator_with("admission")
    lines, waited = run_two_jobs(namespace)
    assert not violations(lines), lines
    assert_waited_for_its_gang(namespace, waited, "admission")
    assert not client.CustomObjectsApi().list_namespaced_custom_object(
        "scheduling.k8s.io", "v1beta1", namespace, "podgroups"
    )["items"]


def test_operator_admission_starts_a_job_its_autoscaled_pool_must_grow_for(
    operator_with: Callable[[str], OperatorProcess],
    namespace: str,
    fake_node: Callable[..., client.V1Node],
) -> None:
    """An autoscaled pool (0..4) with one node and a 3-node job: held until three nodes are free, the job
    would wait for ever, as the cluster autoscaler adds nodes only for pods that wait for them. The
    admission starts it: one pod takes the node, two wait, unschedulable in the scheduler's words (the
    autoscaler's cue); the test then adds the nodes the autoscaler would, and the job runs."""
    operator_with("admission")
    pool = f"g{uuid.uuid4().hex[:8]}"

    def pool_node() -> None:
        fake_node("gang", gpus=1, agent_pool=pool, instance_type="Standard_NC6_gangtest")

    pool_node()
    autoscale = {"autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 4}}
    create_cluster(namespace, "pool", agentPool=pool, scaleSettings=autoscale)
    create_trainingjob(namespace, "grow", three_node_job(), annotations={SIM_RUN_FOR: RUN_FOR})

    def waiting_for_nodes() -> list[client.V1Pod] | None:
        if client.BatchV1Api().read_namespaced_job("grow", namespace).spec.suspend:
            return None
        pods = trainingjob_pods(namespace, "grow")
        waiting = [p for p in pods if not p.spec.node_name]
        unschedulable = [
            p
            for p in waiting
            for c in p.status.conditions or []
            if (c.type, c.status, c.reason) == ("PodScheduled", "False", "Unschedulable")
        ]
        return waiting if len(pods) == 3 and len(waiting) == 2 and len(unschedulable) == 2 else None

    wait_for(waiting_for_nodes, timeout=60, what="the job started, 1 pod on the node, 2 unschedulable")
    assert get_trainingjob(namespace, "grow")["status"]["executionState"] == "queued"
    pool_node()
    pool_node()
    wait_state(namespace, "grow", "succeeded", timeout=120)


def test_kueue_two_3_node_jobs_on_4_nodes(
    operator: OperatorProcess, kueue: KueueProcess, namespace: str, pool: str
) -> None:
    """Jobs with a queue name: Kueue admits each whole (a ClusterQueue of 4 GPUs holds the second); the
    operator puts no gang of its own on top (no PodGroup, and it never touches the Jobs' suspend)."""
    with gpu_cluster_queue(namespace, gpus=4):
        lines, waited = run_two_jobs(namespace, labels={"kueue.x-k8s.io/queue-name": "gpu"})
    assert not violations(lines), lines
    assert_waited_for_its_gang(namespace, waited, "kueue")
    assert waited["gang"]["message"].startswith("Kueue holds the job in LocalQueue 'gpu'"), waited["gang"]
    assert not client.CustomObjectsApi().list_namespaced_custom_object(
        "scheduling.k8s.io", "v1beta1", namespace, "podgroups"
    )["items"]


def test_without_a_gang_the_check_sees_a_job_holding_part_of_its_nodes(
    operator_with: Callable[[str], OperatorProcess], namespace: str, pool: str
) -> None:
    """gang: off, today's behaviour before this feature: the watch-based check must catch it."""
    operator_with("off")
    watch = BindingWatch(namespace)
    watch.start()
    try:
        for name in JOBS:
            create_trainingjob(namespace, name, three_node_job(), annotations={SIM_RUN_FOR: RUN_FOR})
            time.sleep(1)
        for name in JOBS:
            wait_state(namespace, name, "succeeded", timeout=150)
    finally:
        watch.finish()
    lines = watch.report({name: 3 for name in JOBS})
    print("\n" + "\n".join(lines))
    assert violations(lines), lines
