"""What the operator sees of one BatchAICluster's world, from the indexes and its memory: read only.

Its nodes (by the cluster's node selector), the TrainingJobs' pods on them, its setup-task pods and the
setup DaemonSet it controls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..api.cluster import BatchAIClusterSpec, BatchAIClusterStatus
from ..config import OperatorConfig
from . import indexes as idx
from .memory import ClusterMemory, Refusal, ScaleFailure
from .views import ClusterView, parse_status

Key = tuple[str, str]  # (namespace, name) of a BatchAICluster


@dataclass(frozen=True)
class ClusterWorld:
    """What decide/cluster.py decides from: the object, its nodes and setup task, and what the operator
    remembers of its own actions."""

    view: ClusterView  # the BatchAICluster as indexed
    status: BatchAIClusterStatus  # the status last written
    config: OperatorConfig
    nodes: Sequence[Mapping[str, Any]] = ()  # slim nodes the cluster selects
    trainingjob_pods: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)  # by node
    setup_pods: Sequence[Mapping[str, Any]] = ()
    daemonset: Mapping[str, Any] | None = None  # the setup DaemonSet it controls (slim)
    setup_refused: Refusal | None = None  # the apiserver's answer to the last create or replace of it
    scale_failure: ScaleFailure | None = None
    scaling: bool = False  # an agent-pool update is in flight
    applied_scale: str | None = None  # scaleSettings last applied by this process (the annotation may lag)

    @property
    def spec(self) -> BatchAIClusterSpec | None:
        return self.view["spec"]

    @property
    def wants_children(self) -> bool:
        """Build the setup DaemonSet (the desired step) whenever the spec has a setup task, so that a
        changed task is seen; without one there is none to build (an existing one goes)."""
        spec = self.view["spec"]
        return spec is not None and spec.node_setup is not None and spec.node_setup.setup_task is not None


def observe(
    indexes: idx.Indexes,
    view: ClusterView,
    written: Mapping[str, Any] | None,
    memory: ClusterMemory | None,
    config: OperatorConfig,
) -> ClusterWorld:
    """The cluster's world now. `written`: the status last written (the index may lag behind our patch)."""
    memory = memory or ClusterMemory()
    uid = view["metadata"]["uid"]
    nodes = cluster_nodes(indexes, view["selector"])
    return ClusterWorld(
        view=view,
        status=parse_status(BatchAIClusterStatus, written or view["status"]),
        config=config,
        nodes=nodes,
        trainingjob_pods={n["name"]: indexes.all(idx.PODS_BY_NODE, n["name"]) for n in nodes},
        setup_pods=indexes.all(idx.SETUP_PODS, uid),
        daemonset=next(
            (d for d in indexes.all(idx.SETUP_DAEMONSETS, uid) if d["controllerUid"] == uid), None
        ),
        setup_refused=memory.setup_refused,
        scale_failure=memory.scale_failure,
        scaling=memory.scaling is not None,
        applied_scale=memory.applied_scale,
    )


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def cluster_nodes(indexes: idx.Indexes, selector: Mapping[str, str] | None) -> list[Mapping[str, Any]]:
    if selector is None:
        return []
    every = (n for store in indexes[idx.NODES].values() for n in store)
    return [n for n in every if selects(selector, n["labels"])]


def clusters_of_node(indexes: idx.Indexes, memory: Mapping[Any, ClusterMemory], node: str) -> list[Key]:
    """Clusters that select the node now, or counted it last time (it may have left them)."""
    keys: set[Key] = set()
    slim = indexes.first(idx.NODES, node)
    for key, store in indexes[idx.CLUSTERS].items():
        mem = memory.get(key)
        if (mem is not None and node in mem.nodes) or (
            slim is not None
            and any(c["selector"] is not None and selects(c["selector"], slim["labels"]) for c in store)
        ):
            keys.add(key)
    return sorted(keys)


def cluster_of_setup_object(
    indexes: idx.Indexes, namespace: str | None, cluster_uid: str | None
) -> Key | None:
    """The cluster a setup pod or DaemonSet belongs to (by its cluster-uid label, in its namespace)."""
    if not cluster_uid or namespace is None:
        return None
    for key, store in indexes[idx.CLUSTERS].items():
        if key[0] == namespace and any(c["metadata"]["uid"] == cluster_uid for c in store):
            return key  # type: ignore[no-any-return]
    return None
