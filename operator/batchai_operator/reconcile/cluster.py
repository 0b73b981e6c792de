"""The BatchAICluster sync: observe (from the indexes) -> decide (pure) -> one status patch -> apply.

Every change of a node, a job pod, a setup pod, a setup DaemonSet or a cluster syncs the clusters it
concerns. Applying scaleSettings to an AKS agent pool through ARM runs in the background; its outcome
is kept in the cluster's memory (and the annotation batchai.io/applied-scale-settings) and synced again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from kubernetes.client.exceptions import ApiException

from ..api.cluster import BatchAIClusterStatus
from ..api.trainingjob import NameValuePair
from ..decide.cluster import (
    ClusterAction,
    ClusterWorld,
    CreateDaemonSet,
    DeleteDaemonSet,
    MarkSetupPods,
    ReplaceDaemonSet,
    ScaleFailure,
    StartScale,
    decide,
    failed_scale,
    selects,
)
from ..decide.common import Event
from ..kube_errors import api_message
from ..metrics import ARM_SCALE_CALLS
from ..names import (
    ANNOTATION_APPLIED_SCALE,
    CLUSTER_KIND,
    CLUSTER_PLURAL,
    ERR_SCALE_FAILED,
    LABEL_SETUP_STATE,
    SETUP_SUCCEEDED,
)
from ..scaling import DesiredScale, ScaleError
from . import indexes as idx
from .runtime import Runtime

log = logging.getLogger("batchai_operator.clusters")
MAX_PASSES = 2

Key = tuple[str, str]  # (namespace, name) of a BatchAICluster


@dataclass
class ClusterMemory:
    """What the sync remembers about one BatchAICluster between syncs."""

    nodes: set[str] = field(default_factory=set)  # the nodes counted last time (one may have left since)
    setup_rejected: str | None = None  # the apiserver's message when it refused the setup DaemonSet
    scale_failure: ScaleFailure | None = None
    scaling: asyncio.Task[None] | None = None  # the agent-pool update in flight
    applied_scale: str | None = None  # scaleSettings this process applied (the annotation may lag)


# ---- entry points (called by handlers/) ---------------------------------------------------------------


async def request_sync(rt: Runtime, key: Key) -> None:
    await rt.run(key, lambda: sync(rt, key), CLUSTER_KIND)


async def on_node_event(rt: Runtime, node: str) -> None:
    """A node, or a job pod on it, changed: its clusters sync (a burst of such changes makes one sync)."""
    for key in clusters_of_node(rt, node):
        if rt.coalesce_seconds > 0:
            rt.soon(key, "nodes", rt.coalesce_seconds, partial(request_sync, rt, key))
        else:
            await request_sync(rt, key)


async def on_setup_object_event(rt: Runtime, namespace: str | None, cluster_uid: str | None) -> None:
    """A setup pod or DaemonSet changed: sync the cluster it belongs to (matched by uid and namespace)."""
    if not cluster_uid or namespace is None:
        return
    for key, store in rt.indexes[idx.CLUSTERS].items():
        if key[0] == namespace and any(c["body"]["metadata"]["uid"] == cluster_uid for c in store):
            await request_sync(rt, key)


def clusters_of_node(rt: Runtime, node: str) -> list[Key]:
    """Clusters that select the node now, or counted it last time (it may have left them)."""
    keys: set[Key] = set()
    slim = rt.first(idx.NODES, node)
    # The clusters, not rt.memory: TrainingJobs' memory sits in the same map, thousands of entries, and
    # this runs on every job pod's event. A deleted cluster's memory is forgotten with it.
    for key, store in rt.indexes[idx.CLUSTERS].items():
        mem = rt.memory.get(key)
        if (isinstance(mem, ClusterMemory) and node in mem.nodes) or (
            slim is not None
            and any(c["selector"] is not None and selects(c["selector"], slim["labels"]) for c in store)
        ):
            keys.add(key)
    return sorted(keys)


# ---- the sync -----------------------------------------------------------------------------------------


async def sync(rt: Runtime, key: Key) -> None:
    """Bring one cluster's DaemonSet, agent pool and status in line with its spec (idempotent)."""
    for _ in range(MAX_PASSES):
        world = observe(rt, key)
        if world is None:
            return
        decision = decide(world, datetime.now(UTC))
        view = rt.first(idx.CLUSTERS, key)
        await rt.write_status(
            key,
            CLUSTER_PLURAL,
            key[0],
            key[1],
            view["status"],
            decision.status,
            "allocationState",
            lambda: request_sync(rt, key),
        )
        rt.post(world.body, decision.events)
        rt.after(key, "requeue", decision.requeue_after, lambda: request_sync(rt, key))
        if not await apply(rt, key, world, decision.actions):
            return


def observe(rt: Runtime, key: Key) -> ClusterWorld | None:
    cluster = rt.first(idx.CLUSTERS, key)
    if cluster is None or cluster["body"]["metadata"].get("deletionTimestamp"):
        return None
    memory: ClusterMemory = rt.memory.setdefault(key, ClusterMemory())
    nodes: list[dict[str, Any]] = []
    if cluster["selector"] is not None:
        every = (n for store in rt.indexes[idx.NODES].values() for n in store)
        nodes = [n for n in every if selects(cluster["selector"], n["labels"])]
    memory.nodes = {n["name"] for n in nodes}
    uid = cluster["body"]["metadata"]["uid"]
    body = dict(cluster["body"])
    body.setdefault("kind", CLUSTER_KIND)
    return ClusterWorld(
        body=body,
        spec=cluster["spec"],
        invalid=cluster["invalid"],
        status=_parse_status(rt.written.get(key) or cluster["status"]),
        config=rt.config,
        nodes=nodes,
        job_pods={n["name"]: rt.all(idx.PODS_BY_NODE, n["name"]) for n in nodes},
        setup_pods=rt.all(idx.SETUP_PODS, uid),
        daemonset=rt.first(idx.SETUP_DAEMONSETS, uid),
        setup_rejected=memory.setup_rejected,
        scale_failure=memory.scale_failure,
        scaling=memory.scaling is not None,
        applied_scale=memory.applied_scale,
    )


async def apply(rt: Runtime, key: Key, world: ClusterWorld, actions: list[ClusterAction]) -> bool:
    """Carry out the decision's actions; True when an outcome changed what the next observe sees."""
    memory: ClusterMemory = rt.memory.setdefault(key, ClusterMemory())
    changed = False
    for action in actions:
        if isinstance(action, CreateDaemonSet | ReplaceDaemonSet):
            rejected = await _put_daemonset(rt, action)
            changed |= rejected != memory.setup_rejected
            memory.setup_rejected = rejected
        elif isinstance(action, DeleteDaemonSet):
            await rt.kube.delete("DaemonSet", action.namespace, action.name)
        elif isinstance(action, MarkSetupPods):
            for name in action.names:
                await rt.kube.label_pod(action.namespace, name, {LABEL_SETUP_STATE: SETUP_SUCCEEDED})
        elif isinstance(action, StartScale):
            memory.scaling = rt.spawn(_scale(rt, key, world.body, action.desired, action.first_time))
    return changed


async def _put_daemonset(rt: Runtime, action: CreateDaemonSet | ReplaceDaemonSet) -> str | None:
    """Create or replace the setup DaemonSet; the apiserver's message when it refuses it."""
    try:
        if isinstance(action, CreateDaemonSet):
            await rt.kube.create(action.manifest)
        else:
            meta = action.manifest["metadata"]
            ops = [
                {"op": "test", "path": "/metadata/resourceVersion", "value": action.resource_version},
                {"op": "replace", "path": "/metadata/labels", "value": meta["labels"]},
                {"op": "replace", "path": "/metadata/annotations", "value": meta["annotations"]},
                {"op": "replace", "path": "/spec", "value": action.manifest["spec"]},
            ]
            await rt.kube.patch_json("DaemonSet", action.namespace, action.name, ops)
    except ApiException as e:
        if e.status not in (400, 403, 422):
            raise
        return api_message(e)
    return None


async def _scale(
    rt: Runtime, key: Key, body: Mapping[str, Any], desired: DesiredScale, first_time: bool
) -> None:
    """Apply scaleSettings to the agent pool; remember the outcome, post an Event, sync again."""
    assert rt.scaler is not None
    memory: ClusterMemory = rt.memory.setdefault(key, ClusterMemory())
    wanted = desired.key()
    try:
        result = await rt.scaler.apply(desired, first_time)
    except ScaleError as e:
        ARM_SCALE_CALLS.labels("failed").inc()
        details = [NameValuePair(name="agentPool", value=desired.pool_path)]
        if e.status_code is not None:
            details.append(NameValuePair(name="statusCode", value=str(e.status_code)))
        message = f"Could not set {_pool_name(desired)} to {_wanted_text(desired)}: {e.message}"
        memory.scale_failure = failed_scale(
            memory.scale_failure, desired, message, details, datetime.now(UTC)
        )
        rt.post(body, [Event("Warning", ERR_SCALE_FAILED, message)])
        log.warning("%s/%s: %s (retry at %s)", key[0], key[1], message, memory.scale_failure.retry_at)
    else:
        ARM_SCALE_CALLS.labels("succeeded").inc()
        memory.scale_failure = None
        memory.applied_scale = wanted
        annotations = {ANNOTATION_APPLIED_SCALE: wanted}
        await rt.kube.patch_custom(CLUSTER_PLURAL, key[0], key[1], {"metadata": {"annotations": annotations}})
        if result.changed:
            rt.post(
                body, [Event("Normal", "Scaled", f"Set {_pool_name(desired)} to {_wanted_text(desired)}")]
            )
    finally:
        memory.scaling = None
    await request_sync(rt, key)


def _pool_name(desired: DesiredScale) -> str:
    return (
        f"agent pool {desired.agent_pool_name} of AKS cluster {desired.cluster_name} "
        f"(resource group {desired.resource_group})"
    )


def _wanted_text(desired: DesiredScale) -> str:
    if desired.mode == "manual":
        return f"{desired.count} node(s), autoscaler off"
    return f"autoscaler {desired.min_count}..{desired.max_count} node(s)"


def _parse_status(raw: Mapping[str, Any]) -> BatchAIClusterStatus:
    return BatchAIClusterStatus.model_validate(raw)
