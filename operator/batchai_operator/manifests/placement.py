"""Where a cluster's pods run: node selector, tolerations, GPUs per node and affinities (docs/design.md)."""

from __future__ import annotations

from typing import Any

from ..api.cluster import BatchAIClusterSpec
from ..names import (
    ERR_UNKNOWN_VM_SIZE,
    LABEL_AGENT_POOL,
    LABEL_CLUSTER_UID,
    LABEL_HOSTNAME,
    LABEL_INSTANCE_TYPE,
    LABEL_ROLE,
    LABEL_SCALESET_PRIORITY,
    LABEL_SETUP_STATE,
    LABEL_TRAININGJOB_UID,
    RESOURCE_GPU,
    SETUP_ROLE,
    SETUP_SUCCEEDED,
)
from ..vmsizes import vm_size_info
from .errors import BuildError

# Taints AKS users put on GPU pools (docs/aks.md), tolerated by every pod of a cluster.
GPU_TOLERATIONS: list[dict[str, Any]] = [
    {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
    {"key": RESOURCE_GPU, "operator": "Exists", "effect": "NoSchedule"},
]
SPOT_TOLERATION = {
    "key": LABEL_SCALESET_PRIORITY,
    "operator": "Equal",
    "value": "spot",
    "effect": "NoSchedule",
}


def gpus_per_node(cluster: BatchAIClusterSpec) -> int:
    """The whole VM's GPUs (every job pod takes a whole node, as Batch AI did)."""
    if cluster.gpus_per_node is not None:
        return cluster.gpus_per_node
    _, gpus = vm_size_info(cluster.vm_size)
    if gpus is None:
        raise BuildError(
            ERR_UNKNOWN_VM_SIZE,
            f"vmSize {cluster.vm_size} is not in the operator's table of GPU counts; set spec.gpusPerNode "
            "on the BatchAICluster",
        )
    return gpus


def node_selector(cluster: BatchAIClusterSpec) -> dict[str, str]:
    """The cluster's nodes: by agent pool when given, else by instance type; plus extra labels."""
    if cluster.agent_pool:
        selector = {LABEL_AGENT_POOL: cluster.agent_pool}
    else:
        selector = {LABEL_INSTANCE_TYPE: vm_size_info(cluster.vm_size)[0]}
    selector.update(cluster.node_selector or {})
    return selector


def tolerations(cluster: BatchAIClusterSpec) -> list[dict[str, Any]]:
    out = [dict(t) for t in GPU_TOLERATIONS]
    if cluster.vm_priority == "lowpriority":
        out.append(dict(SPOT_TOLERATION))
    out.extend(t.wire() for t in cluster.tolerations or [])
    return out


def one_pod_per_node(job_uid: str) -> dict[str, Any]:
    """Pod anti-affinity term: one pod of the job per node, as Batch AI gave a job nodeCount whole nodes."""
    return {"labelSelector": {"matchLabels": {LABEL_TRAININGJOB_UID: job_uid}}, "topologyKey": LABEL_HOSTNAME}


def setup_done(cluster_uid: str) -> dict[str, Any]:
    """Pod affinity term: only nodes whose setup-task pod has finished successfully (Batch AI's rule)."""
    return {
        "labelSelector": {
            "matchLabels": {
                LABEL_CLUSTER_UID: cluster_uid,
                LABEL_ROLE: SETUP_ROLE,
                LABEL_SETUP_STATE: SETUP_SUCCEEDED,
            }
        },
        "topologyKey": LABEL_HOSTNAME,
    }
