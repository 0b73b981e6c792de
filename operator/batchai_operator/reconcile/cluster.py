"""BatchAIClusters, the kind (reconcile/controller.py runs the sync): observe -> desired (the setup
DaemonSet, manifests/setup_daemonset.py) -> decide (decide/cluster.py) -> apply; and what syncs them:
every change of a node, a TrainingJob's pod on a node, a setup pod, a setup DaemonSet or a cluster.

Applying scaleSettings to an AKS agent pool through ARM runs in the background; its outcome is kept in the
cluster's memory (and the annotation batchai.io/applied-scale-settings) and synced again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from functools import partial
from typing import Any

from ..api.cluster import BatchAIClusterStatus
from ..api.trainingjob import NameValuePair
from ..decide.cluster import (
    ClusterAction,
    CreateDaemonSet,
    DeleteDaemonSet,
    MarkSetupPods,
    ReplaceDaemonSet,
    StartScale,
    decide,
    failed_scale,
)
from ..decide.common import Decision, Desired, Event
from ..manifests.setup_daemonset import build_setup_daemonset
from ..metrics import ARM_SCALE_CALLS
from ..names import (
    ANNOTATION_APPLIED_SCALE,
    CLUSTER_KIND,
    CLUSTER_PLURAL,
    ERR_SCALE_FAILED,
    LABEL_SETUP_STATE,
    SETUP_SUCCEEDED,
)
from ..observe import cluster as observe_cluster
from ..observe import indexes as idx
from ..observe.cluster import ClusterWorld, Key, cluster_of_setup_object, clusters_of_node
from ..observe.memory import ClusterMemory, Refusal
from ..observe.views import ClusterView
from ..scaling import DesiredScale, ScaleError
from . import controller
from .children import ensure, refused_or
from .runtime import Runtime
from .trainingjob import wake_held_gangs

log = logging.getLogger("batchai_operator.clusters")
ClusterDecision = Decision[BatchAIClusterStatus, ClusterAction]


class Clusters(controller.Kind[Key, ClusterView, ClusterWorld, dict[str, Any], ClusterAction]):
    name = CLUSTER_KIND
    plural = CLUSTER_PLURAL
    index = idx.CLUSTERS
    state_field = "allocationState"
    build_in_thread = False

    async def observe(self, rt: Runtime, view: ClusterView) -> ClusterWorld:
        key = (view["metadata"]["namespace"], view["metadata"]["name"])
        memory = rt.memory(ClusterMemory).get(key)
        return observe_cluster.observe(rt.indexes, view, rt.written.get(key), memory, rt.config)

    def desired(self, world: ClusterWorld) -> dict[str, Any] | None:
        assert world.spec is not None  # world.wants_children
        return build_setup_daemonset(world.view, world.spec, world.config)

    def decide(self, world: ClusterWorld, desired: Desired[dict[str, Any]], now: datetime) -> ClusterDecision:
        return decide(world, desired, now)

    async def apply(self, rt: Runtime, key: Key, world: ClusterWorld, decision: ClusterDecision) -> bool:
        memory = rt.memory(ClusterMemory).setdefault(key, ClusterMemory())
        memory.nodes = {n["name"] for n in world.nodes}  # a node that leaves the cluster still syncs it
        changed = False
        for action in decision.actions:
            if isinstance(action, CreateDaemonSet | ReplaceDaemonSet):
                refused = await _put_daemonset(rt, action, world.view["metadata"]["uid"])
                changed |= _said(refused) != _said(memory.setup_refused)
                memory.setup_refused = refused
            elif isinstance(action, DeleteDaemonSet):
                await rt.kube.delete("DaemonSet", action.namespace, action.name)
            elif isinstance(action, MarkSetupPods):
                for name in action.names:
                    await rt.kube.label_pod(action.namespace, name, {LABEL_SETUP_STATE: SETUP_SUCCEEDED})
            elif isinstance(action, StartScale):
                memory.scaling = rt.spawn(_scale(rt, key, world.view, action.desired, action.first_time))
        return changed


KIND = Clusters()


# ---- entry points (called by handlers/) ---------------------------------------------------------------


async def request_sync(rt: Runtime, key: Key) -> None:
    await controller.request_sync(rt, KIND, key)


async def on_node_event(rt: Runtime, node: str) -> None:
    """A node, or a TrainingJob's pod on it, changed: its clusters sync, and the gangs the operator's
    admission holds there look again (a burst of such changes makes one of each)."""
    for key in clusters_of_node(rt.indexes, rt.memory(ClusterMemory), node):
        if rt.coalesce_seconds > 0:
            rt.soon(key, "nodes", rt.coalesce_seconds, partial(request_sync, rt, key))
            rt.soon(key, "held-gangs", rt.coalesce_seconds, partial(wake_held_gangs, rt, key))
        else:
            await request_sync(rt, key)
            await wake_held_gangs(rt, key)


async def on_setup_object_event(rt: Runtime, namespace: str | None, cluster_uid: str | None) -> None:
    """A setup pod or DaemonSet changed: sync the cluster it belongs to (matched by uid and namespace)."""
    key = cluster_of_setup_object(rt.indexes, namespace, cluster_uid)
    if key is not None:
        await request_sync(rt, key)


# ---- applying --------------------------------------------------------------------------------------------


async def _put_daemonset(
    rt: Runtime, action: CreateDaemonSet | ReplaceDaemonSet, owner_uid: str
) -> Refusal | None:
    """Create (or adopt) or replace the setup DaemonSet; the apiserver's refusal, if it refused it."""
    if isinstance(action, CreateDaemonSet):
        return await ensure(rt.kube, action.manifest, owner_uid)
    meta = action.manifest["metadata"]
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": action.resource_version},
        {"op": "replace", "path": "/metadata/labels", "value": meta["labels"]},
        {"op": "replace", "path": "/metadata/annotations", "value": meta["annotations"]},
        {"op": "replace", "path": "/spec", "value": action.manifest["spec"]},
    ]
    replaced = await refused_or(
        "DaemonSet", rt.kube.patch_json("DaemonSet", action.namespace, action.name, ops)
    )
    return replaced if isinstance(replaced, Refusal) else None


async def _scale(rt: Runtime, key: Key, view: ClusterView, desired: DesiredScale, first_time: bool) -> None:
    """Apply scaleSettings to the agent pool; remember the outcome, post an Event, sync again."""
    assert rt.scaler is not None
    memory = rt.memory(ClusterMemory).setdefault(key, ClusterMemory())
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
        rt.post(view, [Event("Warning", ERR_SCALE_FAILED, message)])
        log.warning("%s/%s: %s (retry at %s)", key[0], key[1], message, memory.scale_failure.retry_at)
    else:
        ARM_SCALE_CALLS.labels("succeeded").inc()
        memory.scale_failure = None
        memory.applied_scale = wanted
        annotations = {ANNOTATION_APPLIED_SCALE: wanted}
        await rt.kube.patch_custom(CLUSTER_PLURAL, key[0], key[1], {"metadata": {"annotations": annotations}})
        if result.changed:
            rt.post(
                view, [Event("Normal", "Scaled", f"Set {_pool_name(desired)} to {_wanted_text(desired)}")]
            )
    finally:
        memory.scaling = None
    await request_sync(rt, key)


def _said(refusal: Refusal | None) -> str | None:
    return refusal.message if refusal is not None else None


def _pool_name(desired: DesiredScale) -> str:
    return (
        f"agent pool {desired.agent_pool_name} of AKS cluster {desired.cluster_name} "
        f"(resource group {desired.resource_group})"
    )


def _wanted_text(desired: DesiredScale) -> str:
    if desired.mode == "manual":
        return f"{desired.count} node(s), autoscaler off"
    return f"autoscaler {desired.min_count}..{desired.max_count} node(s)"
