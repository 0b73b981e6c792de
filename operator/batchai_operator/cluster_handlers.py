"""kopf registrations for BatchAICluster: thin.

Indexes keep slim, in-memory views of nodes, job pods (by node), setup-task pods and DaemonSets (by
cluster uid) and the clusters themselves, so a sync reads no API. Every change of a node, a job pod, a
setup pod, a setup DaemonSet or a cluster runs `sync_cluster` for the clusters it concerns, which
  1. keeps the setup-task DaemonSet as `build.cluster.build_setup_daemonset` says (create/replace/delete),
  2. with spec.aks, starts applying scaleSettings to the AKS agent pool when they differ from what was
     last applied (recorded in the annotation batchai.io/applied-scale-settings), in the background,
  3. computes the status with `cluster_status.compute_cluster_status` and merge-patches /status only
     when it changed.
Timers are one-shot: when a NotReady node passes the grace period, and to retry a failed ARM update.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from . import GROUP, VERSION
from .api.cluster import PLURAL, BatchAIClusterSpec
from .build.cluster import ANNOTATION_SETUP_REVISION, build_setup_daemonset, setup_stdouterr_dir
from .build.errors import BuildError
from .build.job import node_selector
from .build.names import LABEL_CLUSTER_UID, LABEL_SETUP_STATE, SETUP_ROLE, SETUP_SUCCEEDED
from .cluster_status import (
    SCALE_FAILED,
    ClusterObserved,
    compute_cluster_status,
    selects,
    setup_pods_to_mark,
    slim_job_pod,
    slim_node,
    slim_setup_pod,
    status_patch,
)
from .config import LABEL_JOB_UID, LABEL_MANAGED_BY, LABEL_ROLE, MANAGED_BY, OperatorConfig
from .kube import Kube, api_message
from .scaling import AgentPoolScaler, DesiredScale, ScaleError, desired_scale

log = logging.getLogger("batchai_operator.clusters")

ANNOTATION_APPLIED_SCALE = "batchai.io/applied-scale-settings"
JOB_PODS: dict[str, Any] = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_JOB_UID: kopf.PRESENT}
SETUP_OBJECTS: dict[str, Any] = {LABEL_MANAGED_BY: MANAGED_BY, LABEL_ROLE: SETUP_ROLE}
SCALE_RETRY_FIRST = 30.0
SCALE_RETRY_MAX = 600.0

Key = tuple[str, str]  # (namespace, name) of a BatchAICluster


@dataclass
class _ScaleFailure:
    desired_key: str
    error: dict[str, Any]
    attempts: int
    retry_at: float  # loop time


class _ClusterState:
    """Process-wide state of the cluster side: clients, locks, what was written, timers, ARM work."""

    def __init__(self) -> None:
        self.kube: Kube | None = None
        self.config = OperatorConfig()
        self.scaler: AgentPoolScaler | None = None
        self.indexes: dict[str, Any] = {}
        self.locks: dict[Key, asyncio.Lock] = {}
        self.written: dict[Key, dict[str, Any]] = {}
        self.nodes: dict[Key, set[str]] = {}
        self.recheck: dict[Key, asyncio.TimerHandle] = {}
        self.retry: dict[Key, asyncio.TimerHandle] = {}
        self.scaling: dict[Key, asyncio.Task[None]] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.applied: dict[Key, str] = {}
        self.scale_failures: dict[Key, _ScaleFailure] = {}


CSTATE = _ClusterState()


@kopf.on.startup()
async def cluster_startup(**_: Any) -> None:
    CSTATE.config = OperatorConfig.from_env()
    CSTATE.kube = Kube.load()
    CSTATE.scaler = AgentPoolScaler()


@kopf.on.cleanup()
async def cluster_cleanup(**_: Any) -> None:
    for task in list(CSTATE.scaling.values()):
        task.cancel()
    if CSTATE.scaler is not None:
        await CSTATE.scaler.close()


# ---- indexes ------------------------------------------------------------------------------------


@kopf.index("", "v1", "nodes")
def bac_nodes(name: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    return {name: slim_node(body)}


@kopf.index("", "v1", "pods", labels=JOB_PODS)
def bac_job_pods(body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    # {} (not None) drops the pod from the index once it stops occupying its node: kopf keeps an object's
    # previous values when an indexer returns None.
    slim = slim_job_pod(body)
    return {slim["nodeName"]: slim} if slim else {}


@kopf.index("", "v1", "pods", labels=SETUP_OBJECTS)
def bac_setup_pods(labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    uid = labels.get(LABEL_CLUSTER_UID)
    return {uid: slim_setup_pod(body)} if uid else {}


@kopf.index("apps", "v1", "daemonsets", labels=SETUP_OBJECTS)
def bac_setup_daemonsets(labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    uid = labels.get(LABEL_CLUSTER_UID)
    if not uid:
        return {}
    meta = body.metadata
    return {
        uid: {
            "name": meta.name,
            "namespace": meta.namespace,
            "resourceVersion": meta.get("resourceVersion"),
            "revision": (meta.annotations or {}).get(ANNOTATION_SETUP_REVISION),
        }
    }


@kopf.index(GROUP, VERSION, PLURAL)
def bac_clusters(namespace: str | None, name: str, body: kopf.Body, **_: Any) -> dict[Key, dict[str, Any]]:
    if namespace is None:
        return {}
    meta = body.metadata
    spec: BatchAIClusterSpec | None = None
    invalid: str | None = None
    try:
        spec = BatchAIClusterSpec.model_validate(dict(body.spec))
    except ValidationError as e:
        invalid = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors())
    return {
        (namespace, name): {
            "body": {
                "apiVersion": body.get("apiVersion", f"{GROUP}/{VERSION}"),
                "kind": body.get("kind", "BatchAICluster"),
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "uid": meta.uid,
                    "generation": meta.get("generation"),
                    "annotations": dict(meta.annotations or {}),
                    "deletionTimestamp": meta.get("deletionTimestamp"),
                },
            },
            "status": dict(body.status or {}),
            "spec": spec,
            "invalid": invalid,
            "selector": node_selector(spec) if spec is not None else None,
        }
    }


# ---- events -------------------------------------------------------------------------------------


@kopf.on.event(GROUP, VERSION, PLURAL)
async def on_cluster(type: str, namespace: str | None, name: str, **kwargs: Any) -> None:
    if namespace is None:
        return
    if type == "DELETED":
        _forget((namespace, name))
        return
    await sync_cluster((namespace, name), kwargs)


@kopf.on.event("", "v1", "nodes")
async def on_node(name: str, **kwargs: Any) -> None:
    for key in clusters_of_node(name, kwargs):
        await sync_cluster(key, kwargs)


@kopf.on.event("", "v1", "pods", labels=JOB_PODS)
async def on_job_pod(body: kopf.Body, **kwargs: Any) -> None:
    node = body.spec.get("nodeName")
    if node:
        for key in clusters_of_node(node, kwargs):
            await sync_cluster(key, kwargs)


@kopf.on.event("", "v1", "pods", labels=SETUP_OBJECTS)
async def on_setup_pod(labels: kopf.Labels, namespace: str | None, **kwargs: Any) -> None:
    key = _cluster_by_uid(namespace, labels.get(LABEL_CLUSTER_UID), kwargs)
    if key:
        await sync_cluster(key, kwargs)


@kopf.on.event("apps", "v1", "daemonsets", labels=SETUP_OBJECTS)
async def on_setup_daemonset(labels: kopf.Labels, namespace: str | None, **kwargs: Any) -> None:
    key = _cluster_by_uid(namespace, labels.get(LABEL_CLUSTER_UID), kwargs)
    if key:
        await sync_cluster(key, kwargs)


def _body(raw: dict[str, Any]) -> kopf.Body:
    return kopf.Body(cast(kopf.RawBody, raw))


def _first(index: Any, key: Any) -> Any:
    store = index.get(key)
    return next(iter(store), None) if store else None


def _cluster_by_uid(namespace: str | None, uid: str | None, indexes: dict[str, Any]) -> Key | None:
    if not uid or namespace is None:
        return None
    for key, store in indexes["bac_clusters"].items():
        for c in store:
            if key[0] == namespace and c["body"]["metadata"]["uid"] == uid:
                return key  # type: ignore[no-any-return]
    return None


def clusters_of_node(node: str, indexes: dict[str, Any]) -> list[Key]:
    """Clusters that select the node now, or counted it last time (it may have left them)."""
    slim = _first(indexes["bac_nodes"], node)
    keys = {key for key, names in CSTATE.nodes.items() if node in names}
    if slim is not None:
        for key, store in indexes["bac_clusters"].items():
            for c in store:
                if c["selector"] is not None and selects(c["selector"], slim["labels"]):
                    keys.add(key)
    return sorted(keys)


# ---- the sync -----------------------------------------------------------------------------------


async def sync_cluster(key: Key, indexes: dict[str, Any]) -> None:
    """Bring one cluster's DaemonSet, agent pool and status in line with its spec (idempotent)."""
    CSTATE.indexes = indexes
    lock = CSTATE.locks.setdefault(key, asyncio.Lock())
    async with lock:
        cluster = _first(indexes["bac_clusters"], key)
        if cluster is None or cluster["body"]["metadata"].get("deletionTimestamp"):
            return
        await _sync_locked(key, cluster, indexes)


async def _sync_locked(key: Key, cluster: dict[str, Any], indexes: dict[str, Any]) -> None:
    kube = CSTATE.kube
    assert kube is not None
    body = cluster["body"]
    meta = body["metadata"]
    uid = meta["uid"]
    spec: BatchAIClusterSpec | None = cluster["spec"]
    invalid: tuple[str, str] | None = None
    if cluster["invalid"]:
        invalid = ("InvalidSpec", f"The spec cannot be used: {cluster['invalid']}")

    nodes: list[dict[str, Any]] = []
    if cluster["selector"] is not None:
        selector = cluster["selector"]
        every = (n for store in indexes["bac_nodes"].values() for n in store)
        nodes = [n for n in every if selects(selector, n["labels"])]
    CSTATE.nodes[key] = {n["name"] for n in nodes}
    job_pods = {n["name"]: list(indexes["bac_job_pods"].get(n["name"], [])) for n in nodes}

    revision: str | None = None
    stdouterr: str | None = None
    if spec is not None:
        try:
            desired_ds = build_setup_daemonset(body, spec, CSTATE.config)
        except BuildError as e:
            desired_ds = None
            invalid = (e.code, e.message)
        else:
            try:
                await _ensure_daemonset(desired_ds, _first(indexes["bac_setup_daemonsets"], uid), kube)
            except ApiException as e:
                if e.status not in (400, 403, 422):
                    raise
                # The apiserver refused the DaemonSet (invalid, or not allowed): say so in the status.
                reason = api_message(e)
                invalid = ("SetupTaskRejected", f"The setup task's DaemonSet was rejected: {reason}")
        if desired_ds is not None:
            revision = desired_ds["metadata"]["annotations"][ANNOTATION_SETUP_REVISION]
            setup = spec.node_setup.setup_task if spec.node_setup else None
            assert setup is not None
            stdouterr = setup_stdouterr_dir(setup, key[0], key[1], uid)
        _maybe_scale(key, body, spec)

    failure = CSTATE.scale_failures.get(key)
    obs = ClusterObserved(
        spec=spec,
        generation=int(meta.get("generation") or 1),
        status=CSTATE.written.get(key) or cluster["status"],
        nodes=nodes,
        job_pods=job_pods,
        setup_revision=revision,
        setup_pods=list(indexes["bac_setup_pods"].get(uid, [])) if revision else [],
        setup_stdouterr_dir=stdouterr,
        scale_error=failure.error if failure else None,
        scaling=key in CSTATE.scaling,
        invalid=invalid,
        grace_seconds=CSTATE.config.unusable_grace_seconds,
    )
    # Open the nodes whose setup task finished to the cluster's jobs (they require a marked setup pod).
    for pod_name in setup_pods_to_mark(obs.setup_pods, revision):
        await kube.label_pod(key[0], pod_name, {LABEL_SETUP_STATE: SETUP_SUCCEEDED})
    result = compute_cluster_status(obs, datetime.now(UTC))
    patch = status_patch(obs.status, result.status)
    if patch is not None:
        await kube.patch_status(PLURAL, key[0], key[1], patch)
    CSTATE.written[key] = result.status
    for etype, reason, message in result.events:
        kopf.event(_body(body), type=etype, reason=reason, message=message)
    _schedule(CSTATE.recheck, key, result.recheck_after + 0.5 if result.recheck_after is not None else None)


async def _ensure_daemonset(
    desired: dict[str, Any] | None, existing: dict[str, Any] | None, kube: Kube
) -> None:
    if desired is None:
        if existing is not None:
            await kube.delete("DaemonSet", existing["namespace"], existing["name"])
        return
    if existing is None:
        await kube.create(desired)
    elif existing["revision"] != desired["metadata"]["annotations"][ANNOTATION_SETUP_REVISION]:
        # Whole subtrees replaced (a merge patch would keep removed keys), guarded by the resourceVersion.
        meta = desired["metadata"]
        ops = [
            {"op": "test", "path": "/metadata/resourceVersion", "value": existing["resourceVersion"]},
            {"op": "replace", "path": "/metadata/labels", "value": meta["labels"]},
            {"op": "replace", "path": "/metadata/annotations", "value": meta["annotations"]},
            {"op": "replace", "path": "/spec", "value": desired["spec"]},
        ]
        await kube.patch_json("DaemonSet", existing["namespace"], existing["name"], ops)


def _schedule(timers: dict[Key, asyncio.TimerHandle], key: Key, delay: float | None) -> None:
    """One pending one-shot sync per cluster and purpose; replaces the previous one."""
    old = timers.pop(key, None)
    if old is not None:
        old.cancel()
    if delay is None:
        return
    loop = asyncio.get_running_loop()

    def fire() -> None:
        timers.pop(key, None)
        _spawn(sync_cluster(key, CSTATE.indexes))

    timers[key] = loop.call_later(max(delay, 0.0), fire)


# ---- scaling ------------------------------------------------------------------------------------


def _maybe_scale(key: Key, body: dict[str, Any], spec: BatchAIClusterSpec) -> None:
    """Start applying scaleSettings to the agent pool when they differ from what was last applied."""
    desired = desired_scale(spec)
    if desired is None:
        CSTATE.scale_failures.pop(key, None)
        _schedule(CSTATE.retry, key, None)
        return
    wanted = desired.key()
    applied = body["metadata"]["annotations"].get(ANNOTATION_APPLIED_SCALE)
    if wanted in (applied, CSTATE.applied.get(key)) or key in CSTATE.scaling:
        return
    failure = CSTATE.scale_failures.get(key)
    loop = asyncio.get_running_loop()
    if failure is not None and failure.desired_key == wanted and loop.time() < failure.retry_at:
        return  # the retry timer will come back
    first_time = applied is None
    CSTATE.scaling[key] = _spawn(_scale(key, body, desired, first_time))


def _pool_name(desired: DesiredScale) -> str:
    return (
        f"agent pool {desired.agent_pool_name} of AKS cluster {desired.cluster_name} "
        f"(resource group {desired.resource_group})"
    )


def _wanted_text(desired: DesiredScale) -> str:
    if desired.mode == "manual":
        return f"{desired.count} node(s), autoscaler off"
    return f"autoscaler {desired.min_count}..{desired.max_count} node(s)"


async def _scale(key: Key, body: dict[str, Any], desired: DesiredScale, first_time: bool) -> None:
    scaler, kube = CSTATE.scaler, CSTATE.kube
    assert scaler is not None and kube is not None
    wanted = desired.key()
    try:
        result = await scaler.apply(desired, first_time)
    except ScaleError as e:
        previous = CSTATE.scale_failures.get(key)
        attempts = previous.attempts + 1 if previous and previous.desired_key == wanted else 1
        delay = min(SCALE_RETRY_FIRST * 2 ** (attempts - 1), SCALE_RETRY_MAX)
        details = [{"name": "agentPool", "value": desired.pool_path}]
        if e.status_code is not None:
            details.append({"name": "statusCode", "value": str(e.status_code)})
        message = f"Could not set {_pool_name(desired)} to {_wanted_text(desired)}: {e.message}"
        error = {"code": SCALE_FAILED, "message": message, "details": details}
        retry_at = asyncio.get_running_loop().time() + delay
        CSTATE.scale_failures[key] = _ScaleFailure(wanted, error, attempts, retry_at)
        kopf.event(_body(body), type="Warning", reason=SCALE_FAILED, message=message)
        log.warning("%s/%s: %s (retry in %.0fs)", key[0], key[1], message, delay)
        _schedule(CSTATE.retry, key, delay)
    except asyncio.CancelledError:
        raise
    else:
        CSTATE.scale_failures.pop(key, None)
        CSTATE.applied[key] = wanted
        annotations = {ANNOTATION_APPLIED_SCALE: wanted}
        await kube.patch_custom(PLURAL, key[0], key[1], {"metadata": {"annotations": annotations}})
        if result.changed:
            message = f"Set {_pool_name(desired)} to {_wanted_text(desired)}"
            kopf.event(_body(body), type="Normal", reason="Scaled", message=message)
    finally:
        CSTATE.scaling.pop(key, None)
    await sync_cluster(key, CSTATE.indexes)


def _spawn(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    """A background task the state keeps a reference to until it is done."""
    task = asyncio.get_running_loop().create_task(coro)
    CSTATE.tasks.add(task)
    task.add_done_callback(CSTATE.tasks.discard)
    return task


def _forget(key: Key) -> None:
    CSTATE.locks.pop(key, None)
    CSTATE.written.pop(key, None)
    CSTATE.nodes.pop(key, None)
    CSTATE.applied.pop(key, None)
    CSTATE.scale_failures.pop(key, None)
    for timers in (CSTATE.recheck, CSTATE.retry):
        timer = timers.pop(key, None)
        if timer is not None:
            timer.cancel()
