"""Helpers for jobs on the dev cluster's real nodes: the local images, job specs whose scripts ship in
jobPreparation, and the files a job left on a node's disk.

Jobs without mounts write stdout/stderr, outputs and their scripts under $AZ_BATCHAI_JOB_MOUNT_ROOT, as
the Batch AI quickstart does, which without mounts is the container's own file system (an emptyDir would
not do: the kubelet removes a pod's volumes when it ends). The tests read those files from the
container's writable layer on its node's disk, as one would with `docker cp` on a Batch AI node, at the
paths the TrainingJob's status gives. Jobs with mounts (test_mounts.py) write to Azure Files shares (the
double's directories, `share_path`) and blob containers (Azurite) instead.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, watch

REAL_NODES = ("real-0", "real-1")
# The BatchAICluster of the real pool: Standard_NC6s_v3 has 1 GPU, which gpu-device-plugin-double
# advertises on each real node.
REAL_POOL = "real"
# Every toolkit's default image on the dev cluster (cntk: CNTK's image, pytorch: PyTorch's, the others
# job-base), the same file hack/quickstart.sh gives its operator.
LOCAL_IMAGES: dict[str, str] = json.loads(
    (Path(__file__).resolve().parents[1] / "k8s" / "toolkit-images.json").read_text()
)
JOB_ROOT = "$AZ_BATCHAI_JOB_MOUNT_ROOT"
SCRIPTS = Path(__file__).parent / "jobs"


def share_path(account: str, share: str, path: str = "") -> Path:
    """Where a file of an Azure Files share is: the double's directory the real nodes bind-mount."""
    return Path(os.environ["BATCHAI_AZURE_FILES_ROOT"]) / account / share / path.strip("/")


def nodes_dir() -> Path:
    """The real nodes' state (kubelet root dirs) of the running dev cluster (`hack/devcluster env`)."""
    return Path(os.environ["BATCHAI_NODES_DIR"])


def cluster_body(ns: str, name: str, gpus: bool = True) -> dict[str, Any]:
    """A BatchAICluster over the real pool. Without GPUs (gpusPerNode 0) its jobs request none, so
    several can share a node: the pool has only two (fake) GPUs."""
    spec: dict[str, Any] = {"vmSize": "Standard_NC6s_v3", "agentPool": REAL_POOL}
    if not gpus:
        spec["gpusPerNode"] = 0
    return {
        "apiVersion": "batchai.io/v1alpha1",
        "kind": "BatchAICluster",
        "metadata": {"name": name, "namespace": ns},
        "spec": spec,
    }


def install_scripts(*names: str) -> str:
    """A jobPreparation command line that writes tests/e2e/jobs/<name> into $AZ_BATCHAI_JOB_MOUNT_ROOT/scripts
    (how Batch AI users fetched their scripts when no share held them)."""
    steps = [f"mkdir -p {JOB_ROOT}/scripts"]
    for name in names:
        encoded = base64.b64encode((SCRIPTS / name).read_bytes()).decode()
        steps.append(f"echo {encoded} | base64 -d > {JOB_ROOT}/scripts/{name}")
    steps.append(f"echo installed {' '.join(names)}")
    return " && ".join(steps)


def job_spec(cluster: str, node_count: int = 1, **settings: Any) -> dict[str, Any]:
    """A TrainingJob spec on `cluster` with stdout/stderr and a MODEL output under the job mount root."""
    spec: dict[str, Any] = {
        "cluster": cluster,
        "nodeCount": node_count,
        "stdOutErrPathPrefix": f"{JOB_ROOT}/logs",
        "outputDirectories": [{"id": "MODEL", "pathPrefix": f"{JOB_ROOT}/outputs"}],
    }
    spec.update(settings)
    return spec


def ctr(node: str, *args: str) -> str:
    """containerd's own client against a real node's containerd (its CRI namespace)."""
    sock = nodes_dir() / node / "containerd.sock"
    ctr_bin = shutil_which("ctr")
    out = subprocess.run(
        [ctr_bin, "-a", str(sock), "-n", "k8s.io", *args], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


def shutil_which(name: str) -> str:
    for d in os.environ.get("BATCHAI_NODE_BIN_PATH", "").split(os.pathsep):
        if d and (Path(d) / name).is_file():
            return str(Path(d) / name)
    raise FileNotFoundError(f"{name} not in BATCHAI_NODE_BIN_PATH (hack/devcluster env)")


def container_layer(pod: client.V1Pod) -> Path:
    """The main container's writable layer (its overlayfs upper dir) on the pod's node: every file the
    job wrote outside its volumes, there as long as the container exists (running or exited)."""
    node = pod.spec.node_name
    assert node in REAL_NODES, f"pod {pod.metadata.name} is on {node}, not a real node"
    (status,) = pod.status.container_statuses
    container_id = status.container_id.removeprefix("containerd://")
    info = json.loads(ctr(node, "containers", "info", container_id))
    mounts = ctr(node, "snapshots", "--snapshotter", info["Snapshotter"], "mounts", "/", info["SnapshotKey"])
    m = re.search(r"upperdir=([^,\s]+)", mounts)
    assert m, mounts
    return Path(m.group(1))


def expand(pod: client.V1Pod, path: str) -> str:
    """A path as the status gives it ($AZ_BATCHAI_* unexpanded) with the pod's values."""
    env = {e.name: e.value for e in pod.spec.containers[0].env if e.value is not None}
    return re.sub(r"\$\{?(AZ_BATCHAI_\w+)\}?", lambda m: env[m.group(1)], path)


def on_node(pod: client.V1Pod, path: str) -> Path:
    """Where a file the job wrote at `path` (as the status gives it) is on the pod's node."""
    return container_layer(pod) / expand(pod, path).lstrip("/")


def files_under(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


@dataclass(frozen=True)
class SeenPod:
    name: str
    job: str
    index: int
    node: str
    ip: str


class PodRecorder:
    """Records where the pods of a namespace ran (node, IP), from a watch: a Job's other pods are
    deleted once node 0 decides the outcome, so a test cannot read them afterwards."""

    def __init__(self, ns: str) -> None:
        self.ns = ns
        self.seen: dict[str, SeenPod] = {}
        self._stopped = threading.Event()
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                for event in self._watch.stream(
                    client.CoreV1Api().list_namespaced_pod, self.ns, timeout_seconds=60
                ):
                    self._record(event["object"])
            except Exception:  # the stream broke (or was stopped): list and watch again
                self._stopped.wait(0.5)

    def _record(self, pod: client.V1Pod) -> None:
        labels = pod.metadata.labels or {}
        if pod.spec.node_name and pod.status.pod_ip and "batchai.io/trainingjob" in labels:
            self.seen[pod.metadata.name] = SeenPod(
                name=pod.metadata.name,
                job=labels["batchai.io/trainingjob"],
                index=int(labels.get("batch.kubernetes.io/job-completion-index", "0")),
                node=pod.spec.node_name,
                ip=pod.status.pod_ip,
            )

    def of_job(self, job: str) -> dict[int, SeenPod]:
        return {p.index: p for p in self.seen.values() if p.job == job}

    def stop(self) -> None:
        self._stopped.set()
        self._watch.stop()
