"""Helpers for integration tests against the local control plane started by hack/devcluster.

The control plane is real (etcd, kube-apiserver, kube-controller-manager, kube-scheduler v1.37.2);
only the kubelets are simulated, by kwok. See tests/k8s/README.md for the pod annotations that
drive kwok (exit codes, run time, image-pull and init-container failures).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client

REPO = Path(__file__).resolve().parents[2]
DEVCLUSTER = REPO / "hack" / "devcluster"

# Pod annotations understood by our kwok stages (tests/k8s/kwok-stages.yaml).
SIM_EXIT_CODE = "sim.batchai.io/exit-code"
SIM_RUN_FOR = "sim.batchai.io/run-for"
SIM_IMAGE_PULL_FAILURE = "sim.batchai.io/image-pull-failure"  # also usable as a container image
SIM_INIT_EXIT_CODE = "sim.batchai.io/init-exit-code"

# kwok manages every node carrying this annotation.
KWOK_NODE_ANNOTATION = {"kwok.x-k8s.io/node": "fake"}

T = TypeVar("T")


@dataclass(frozen=True)
class DevCluster:
    kubeconfig: str
    bin_dir: str
    nodes_dir: str = ""  # the real nodes' state (kubelet root dirs), for reading what jobs wrote
    node_bin_path: str = ""  # the real nodes' tools (ctr)
    azure_files_root: str = ""  # the Azure Files double's shares, <account>/<share>, the real nodes mount


def up() -> DevCluster:
    """Run `hack/devcluster up` (a fast no-op when already up) and return its kubeconfig/bin dir."""
    subprocess.run([str(DEVCLUSTER), "up"], check=True, stdin=subprocess.DEVNULL)
    out = subprocess.run([str(DEVCLUSTER), "env"], check=True, capture_output=True, text=True).stdout
    env: dict[str, str] = {}
    for line in out.splitlines():
        # lines look like: export KUBECONFIG=/path  /  export PATH=/bin/dir:"$PATH"
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0]
    return DevCluster(
        kubeconfig=env["KUBECONFIG"],
        bin_dir=env["PATH"].split(":")[0],
        nodes_dir=env.get("BATCHAI_NODES_DIR", ""),
        node_bin_path=env.get("BATCHAI_NODE_BIN_PATH", ""),
        azure_files_root=env.get("BATCHAI_AZURE_FILES_ROOT", ""),
    )


def wait_for(
    fn: Callable[[], T | None],
    timeout: float = 30.0,
    interval: float = 0.2,
    what: str = "condition",
) -> T:
    """Poll fn() until it returns something truthy and return that; raise TimeoutError otherwise.

    Exceptions raised by fn (e.g. 404 while an object does not exist yet) count as "not yet".
    """
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = fn()
            if last:
                return last
        except Exception as exc:  # polled again until the deadline
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")
        time.sleep(interval)


def fake_node_body(
    name: str,
    labels: Mapping[str, str] | None = None,
    taints: Iterable[Mapping[str, str]] | None = None,
    gpus: int = 0,
    cpu: str = "8",
    memory: str = "32Gi",
    pods: str = "110",
    instance_type: str = "Standard_D8s_v3",
    agent_pool: str = "testpool",
) -> dict[str, Any]:
    """A Node manifest that kwok will manage, labelled like an AKS node.

    `labels` are added to (and override) the AKS-like defaults; `taints` are dicts with key,
    value (optional) and effect. With gpus > 0 the node gets nvidia.com/gpu capacity and the
    kubernetes.azure.com/accelerator=nvidia label.
    """
    all_labels = {
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "node.kubernetes.io/instance-type": instance_type,
        "kubernetes.azure.com/agentpool": agent_pool,
        "agentpool": agent_pool,
        "type": "kwok",
    }
    if gpus:
        all_labels["kubernetes.azure.com/accelerator"] = "nvidia"
    all_labels.update(labels or {})
    resources = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "128Gi"}
    if gpus:
        resources["nvidia.com/gpu"] = str(gpus)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": all_labels,
            "annotations": {**KWOK_NODE_ANNOTATION, "node.alpha.kubernetes.io/ttl": "0"},
        },
        "spec": {"providerID": f"kwok://{name}", "taints": [dict(t) for t in taints or []]},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "nodeInfo": {
                "architecture": "amd64",
                "operatingSystem": "linux",
                "kubeletVersion": "v1.37.2",
                "kubeProxyVersion": "v1.37.2",
                "containerRuntimeVersion": "kwok",
                "kernelVersion": "kwok",
                "osImage": "kwok",
                "machineID": "",
                "bootID": "",
                "systemUUID": "",
            },
            "phase": "Running",
        },
    }


def node_ready(core: client.CoreV1Api, name: str) -> bool:
    node = core.read_node(name)
    return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])


def create_fake_node(
    core: client.CoreV1Api, name: str, wait_ready: bool = True, **kwargs: Any
) -> client.V1Node:
    """Create a kwok-managed node (see fake_node_body for the arguments); wait until Ready."""
    node = core.create_node(fake_node_body(name, **kwargs))
    if wait_ready:
        wait_for(lambda: node_ready(core, name), timeout=30, what=f"node {name} Ready")
    return node


def delete_node(core: client.CoreV1Api, name: str) -> None:
    try:
        core.delete_node(name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


def export_env(cluster: DevCluster) -> None:
    """KUBECONFIG and PATH (toolchain bin dir first, so `kubectl` is v1.37.2) for this process
    and the subprocesses it starts."""
    os.environ["KUBECONFIG"] = cluster.kubeconfig
    if cluster.nodes_dir:
        os.environ["BATCHAI_NODES_DIR"] = cluster.nodes_dir
        os.environ["BATCHAI_NODE_BIN_PATH"] = cluster.node_bin_path
    if cluster.azure_files_root:
        os.environ["BATCHAI_AZURE_FILES_ROOT"] = cluster.azure_files_root
    path = os.environ.get("PATH", "")
    if not path.startswith(cluster.bin_dir + os.pathsep):
        os.environ["PATH"] = cluster.bin_dir + os.pathsep + path
