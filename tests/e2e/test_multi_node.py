"""Two-node jobs across real-0 and real-1: an Open MPI job (customMpi: node 0's mpirun reaches node 1's
sshd by the headless Service's DNS name, with the job's SSH key and hostfile) and a PyTorch job whose
two ranks train one model with DistributedDataParallel over gloo (TCP rendezvous on node 0). Both are
submitted together on a cluster of the real pool without GPUs (the pool's two fake GPUs would let only
one of them run at a time); each rank reports its own address and its peer's, which must be the pods'.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from jobs import create_trainingjob, trainingjob_pods, wait_state
from kubernetes import client

from .realnodes import (
    JOB_ROOT,
    REAL_NODES,
    PodRecorder,
    cluster_body,
    install_scripts,
    job_spec,
    on_node,
)

pytestmark = pytest.mark.e2e

MPI = "openmpi"
DDP = "ddp"
INDEX = "batch.kubernetes.io/job-completion-index"


@pytest.fixture(scope="module")
def recorder(module_namespace: str) -> Iterator[PodRecorder]:
    rec = PodRecorder(module_namespace)
    yield rec
    rec.stop()


@pytest.fixture(scope="module")
def submitted(module_namespace: str, recorder: PodRecorder) -> str:
    ns = module_namespace
    client.CustomObjectsApi().create_namespaced_custom_object(
        "batchai.io", "v1alpha1", ns, "batchaiclusters", cluster_body(ns, "real-cpu", gpus=False)
    )
    create_trainingjob(
        ns,
        MPI,
        job_spec(
            "real-cpu",
            node_count=2,
            jobPreparation={"commandLine": install_scripts("mpi_ranks.py")},
            customMpiSettings={
                "commandLine": f"python {JOB_ROOT}/scripts/mpi_ranks.py $AZ_BATCHAI_OUTPUT_MODEL",
                "processCount": 2,
            },
        ),
    )
    args = (
        "--dist-url $AZ_BATCHAI_PYTORCH_INIT_METHOD --rank $AZ_BATCHAI_TASK_INDEX --world-size 2 "
        "--backend $AZ_BATCHAI_PYTORCH_BACKEND --out $AZ_BATCHAI_OUTPUT_MODEL"
    )
    create_trainingjob(
        ns,
        DDP,
        job_spec(
            "real-cpu",
            node_count=2,
            jobPreparation={"commandLine": install_scripts("ddp_train.py")},
            pyTorchSettings={
                "pythonScriptFilePath": f"{JOB_ROOT}/scripts/ddp_train.py",
                "commandLineArgs": args,
                "processCount": 2,
                "communicationBackend": "gloo",
            },
        ),
    )
    return ns


def pods_by_index(ns: str, name: str) -> dict[int, client.V1Pod]:
    pods = {int(p.metadata.labels[INDEX]): p for p in trainingjob_pods(ns, name)}
    assert sorted(pods) == [0, 1]
    assert {p.spec.node_name for p in pods.values()} == set(REAL_NODES), "one pod on each real node"
    return pods


def peer_lines(text: str) -> dict[int, str]:
    """{rank: the peer address it reported} from 'rank R: peer rank P on HOST at ADDRESS' lines."""
    return {int(r): a for r, a in re.findall(r"^rank (\d+): peer rank \d+ on \S+ at (\S+)$", text, re.M)}


def test_open_mpi_job_runs_one_rank_on_each_real_node(submitted: str, recorder: PodRecorder) -> None:
    tj = wait_state(submitted, MPI, "succeeded", timeout=300)
    assert tj["status"]["executionInfo"]["exitCode"] == 0
    seen = recorder.of_job(MPI)
    assert sorted(seen) == [0, 1]
    assert {p.node for p in seen.values()} == set(REAL_NODES), "one pod on each real node"
    ips = {i: p.ip for i, p in seen.items()}
    # Node 0 decided the outcome; the Job then ended node 1 (its sshd). mpirun on node 0 merged both
    # ranks' output into node 0's stdout.txt, as Batch AI did.
    (pod0,) = [p for p in trainingjob_pods(submitted, MPI) if p.metadata.name == seen[0].name]
    stdout = (on_node(pod0, tj["status"]["stdOutErrDirectory"]) / "stdout.txt").read_text()
    print(f"--- {MPI}: stdout.txt of node 0 ({seen[0].node}); node 1 ran on {seen[1].node}\n{stdout}")
    assert f"rank 0 of 2 on {MPI}-0 ({ips[0]}); allreduce sum 3" in stdout
    assert f"rank 1 of 2 on {MPI}-1 ({ips[1]}); allreduce sum 3" in stdout
    assert peer_lines(stdout) == {0: ips[1], 1: ips[0]}
    (out,) = tj["status"]["outputDirectories"]
    assert peer_lines((on_node(pod0, out["path"]) / "rank-0.log").read_text()) == {0: ips[1]}
    execution = (on_node(pod0, tj["status"]["stdOutErrDirectory"]) / f"execution-{MPI}-0.log").read_text()
    assert (
        f"waiting for sshd on {MPI}-1.{MPI}:22 (node 1)" in execution and "all 2 nodes reachable" in execution
    )


def test_pytorch_gloo_job_trains_one_model_across_both_real_nodes(submitted: str) -> None:
    tj = wait_state(submitted, DDP, "succeeded", timeout=420)
    assert tj["status"]["executionInfo"]["exitCode"] == 0
    pods = pods_by_index(submitted, DDP)
    ips = {i: p.status.pod_ip for i, p in pods.items()}
    assert all(p.spec.containers[0].image == "localhost/batchai/pytorch-cpu:dev" for p in pods.values())
    logs: dict[int, str] = {}
    for i, pod in pods.items():
        # PyTorch: one stdout-<rank>.txt per rank, each on its rank's node.
        logs[i] = (on_node(pod, tj["status"]["stdOutErrDirectory"]) / f"stdout-{i}.txt").read_text()
        print(f"--- {DDP}: stdout-{i}.txt on {pod.spec.node_name}\n{logs[i]}")
        assert f"rank {i} of 2 on {DDP}-{i} ({ips[i]}), backend gloo" in logs[i]
        assert peer_lines(logs[i]) == {i: ips[1 - i]}
        assert f"rank {i}: weights identical across ranks: True" in logs[i]
    first, last = (_loss(logs[0], step) for step in (0, 59))
    assert last < first / 100, logs[0]
    (out,) = tj["status"]["outputDirectories"]
    assert (on_node(pods[0], out["path"]) / "model.pt").stat().st_size > 0


def _loss(log: str, step: int) -> float:
    m = re.search(rf"^rank 0: step {step} loss (\S+)$", log, re.M)
    assert m, log
    return float(m.group(1))
