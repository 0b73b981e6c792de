"""The TrainingJob sync: observe (from the indexes) -> decide (pure) -> one status patch -> apply.

The status is written before the actions are applied, so a finished job's status is saved before its Job
is deleted: a crash in between cannot run it again. What an action's outcome tells (a refused create, a
spec that cannot become manifests) is kept in the job's memory and read back by the next observe; when
that happens, the sync runs a second pass at once so the status says it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from ..api.cluster import BatchAIClusterSpec
from ..api.trainingjob import TrainingJobSpec, TrainingJobStatus
from ..decide.failed_mount import failed_mount
from ..decide.policy import cluster_problem
from ..decide.trainingjob import (
    CreateChildren,
    DeleteBatchJob,
    DeleteTrainingJob,
    SetBatchJobSuspend,
    TrainingJobAction,
    TrainingJobObserved,
    decide,
    mount_failure_message,
    mount_kind,
)
from ..kube import Kube
from ..kube_errors import api_message
from ..manifests.children import TrainingJobChildren, build_children
from ..manifests.errors import BuildError
from ..manifests.naming import child_name
from ..manifests.paths import TrainingJobIdentity
from ..manifests.secrets import referenced_secrets
from ..manifests.ssh import generate_ssh_keypair
from ..manifests.volumes import describe_volumes
from ..metrics import observe_transition
from ..names import (
    CONDITION_FOR_STATE,
    ERR_INVALID_SPEC,
    QUEUED,
    TERMINAL_STATES,
    TRAININGJOB_KIND,
    TRAININGJOB_PLURAL,
    WAIT_CLUSTER_INVALID,
    WAIT_CLUSTER_NOT_FOUND,
)
from . import indexes as idx
from .runtime import Runtime

log = logging.getLogger("batchai_operator")
# After creating a job's children, how long to trust that its Job will show up in the index before
# creating again (a create of existing children is adopted, so this only saves requests).
EXPECT_BATCH_JOB_SECONDS = 30.0
MAX_PASSES = 2


@dataclass
class TrainingJobMemory:
    """What the sync remembers about one TrainingJob between syncs: its own actions' outcomes."""

    start_error: tuple[str, str] | None = None  # (code, message) from building the children
    create_refused: tuple[str, datetime] | None = None  # the apiserver's message and when
    created_at: float | None = None  # monotonic time the children were created; None once the Job is seen
    mount_failure: tuple[int, int, str] | None = None  # (node index, attempts, kubelet's message)
    pods_refused: str | None = None  # the Job controller's message when it could not create a pod


@dataclass(frozen=True)
class _World:
    view: Mapping[str, Any]  # the TrainingJob, from the index
    observed: TrainingJobObserved
    cluster_spec: BatchAIClusterSpec | None = None
    cluster_uid: str | None = None
    memory: TrainingJobMemory = field(default_factory=TrainingJobMemory)


# ---- entry points (called by handlers/) ---------------------------------------------------------------


async def request_sync(rt: Runtime, uid: str) -> None:
    await rt.run(uid, lambda: sync(rt, uid), TRAININGJOB_KIND)


async def on_cluster_event(rt: Runtime, namespace: str | None, name: str) -> None:
    """A BatchAICluster appeared or changed: the jobs that wait for it (and only those) sync now."""
    for uid in rt.all(idx.TRAININGJOBS_BY_CLUSTER, (namespace, name)):
        view = rt.first(idx.TRAININGJOBS, uid)
        if view is not None and _waits_for_cluster(rt.written.get(uid) or view["status"]):
            await request_sync(rt, uid)


def on_failed_mount(rt: Runtime, event: Mapping[str, Any]) -> None:
    """A FailedMount Event from a kubelet about one of our pods: remember it and sync that job."""
    involved = event.get("involvedObject") or {}
    namespace = involved.get("namespace")
    uid, pod = rt.first(idx.POD_OWNER_BY_NAME, (namespace, involved.get("name"))) or (None, None)
    found = failed_mount(event, pod, our_batch_job(rt, namespace, uid) if uid else None)
    if uid is None or found is None:
        return
    memory = rt.memory.setdefault(uid, TrainingJobMemory())
    memory.mount_failure = (found.node_index, found.attempts, found.message)
    rt.spawn(request_sync(rt, uid))


def on_failed_create(rt: Runtime, event: Mapping[str, Any]) -> None:
    """The Job controller could not create a pod of one of our Jobs (a quota, pod security admission, a
    missing ServiceAccount): remember why, so the job says so while it waits."""
    involved = event.get("involvedObject") or {}
    if (event.get("source") or {}).get("component", "job-controller") != "job-controller":
        return
    for (namespace, uid), store in rt.indexes[idx.BATCH_JOBS_BY_OWNER].items():
        if namespace == involved.get("namespace") and any(
            j["metadata"]["uid"] == involved.get("uid") for j in store
        ):
            rt.memory.setdefault(uid, TrainingJobMemory()).pods_refused = str(event.get("message") or "")
            rt.spawn(request_sync(rt, uid))
            return


# ---- the sync -----------------------------------------------------------------------------------------


async def sync(rt: Runtime, uid: str) -> None:
    """Bring one TrainingJob's children and status in line with its spec (idempotent). A new job's first
    sync waits for one of the runtime's start slots."""
    view = rt.first(idx.TRAININGJOBS, uid)
    if view is not None and not (rt.written.get(uid) or view["status"]):
        async with rt.start_slots:
            await _sync(rt, uid)
    else:
        await _sync(rt, uid)


async def _sync(rt: Runtime, uid: str) -> None:
    for _ in range(MAX_PASSES):
        world = await observe(rt, uid)
        if world is None:
            return
        decision = decide(world.observed, datetime.now(UTC))
        view = world.view
        meta = view["metadata"]
        await rt.write_status(
            uid,
            TRAININGJOB_PLURAL,
            meta["namespace"],
            meta["name"],
            view["status"],
            decision.status,
            "executionState",
            lambda: request_sync(rt, uid),
        )
        observe_transition(
            world.observed.status.execution_state,
            decision.status.execution_state,
            decision.status.tool_type or "unknown",
            decision.status.wire(),
            meta.get("creationTimestamp"),
        )
        rt.post(_reference(view), decision.events)
        rt.after(uid, "requeue", decision.requeue_after, lambda: request_sync(rt, uid))
        if not await apply(rt, world, decision.actions):
            return


async def observe(rt: Runtime, uid: str) -> _World | None:
    """What the decision needs, from the indexes and the job's memory (Secrets: metadata-only reads)."""
    view = rt.first(idx.TRAININGJOBS, uid)
    if view is None or view["metadata"].get("deletionTimestamp"):
        return None
    meta = view["metadata"]
    namespace = meta["namespace"]
    spec: TrainingJobSpec | None = view["spec"]
    status = _parse_status(rt.written.get(uid) or view["status"])
    memory: TrainingJobMemory = rt.memory.setdefault(uid, TrainingJobMemory())

    cluster_name = spec.cluster_name if spec else view["cluster"]
    cluster = rt.first(idx.CLUSTERS, (namespace, cluster_name))
    cluster_spec: BatchAIClusterSpec | None = cluster["spec"] if cluster else None
    job = our_batch_job(rt, namespace, uid)
    pods = []
    if job is not None:
        memory.created_at = memory.create_refused = None
        job_uid = job["metadata"]["uid"]
        # Pods are found by label but count only when our Job controls them.
        pods = [
            p
            for p in rt.all(idx.PODS_BY_OWNER, (namespace, uid))
            if p["metadata"]["controllerUid"] == job_uid
        ]
        if spec is not None and len(pods) >= spec.node_count:
            memory.pods_refused = None
    creating = (
        memory.created_at is not None and time.monotonic() - memory.created_at < EXPECT_BATCH_JOB_SECONDS
    )

    missing: list[str] = []
    starting = job is None and not creating and status.execution_state not in TERMINAL_STATES
    if starting and spec is not None and cluster_spec is not None and not spec.terminate:
        missing = [
            s
            for s in sorted(referenced_secrets(spec, cluster_spec))
            if not await rt.kube.secret_exists(namespace, s)
        ]

    observed = TrainingJobObserved(
        ident=TrainingJobIdentity(namespace, meta["name"], uid, spec.experiment if spec else "default"),
        generation=int(meta.get("generation") or 1),
        spec=spec,
        spec_error=view["specError"],
        status=status,
        cluster=cluster_name,
        cluster_found=cluster is not None,
        cluster_error=cluster_problem(namespace, cluster, rt.config) if cluster else None,
        labels=meta.get("labels") or {},
        job=job,
        pods=pods,
        missing_secrets=missing,
        start_error=memory.start_error,
        create_refused=memory.create_refused,
        creating=creating,
        mount_failure=_mount_failure(rt, memory, spec, cluster_spec),
        mount_failure_kind=mount_kind(memory.mount_failure[2]) if memory.mount_failure else "afs",
        pods_refused=memory.pods_refused if job is not None else None,
        cluster_mounts=cluster_spec.node_setup.mount_volumes
        if cluster_spec and cluster_spec.node_setup
        else None,
    )
    return _World(
        view, observed, cluster_spec, cluster["body"]["metadata"]["uid"] if cluster else None, memory
    )


async def apply(rt: Runtime, world: _World, actions: list[TrainingJobAction]) -> bool:
    """Carry out the decision's actions; True when an outcome changed what the next observe sees."""
    meta = world.view["metadata"]
    namespace = meta["namespace"]
    changed = False
    for action in actions:
        if isinstance(action, CreateChildren):
            changed |= await _start(rt, world)
        elif isinstance(action, DeleteBatchJob):
            await rt.kube.delete("Job", namespace, action.name)
        elif isinstance(action, SetBatchJobSuspend):
            await rt.kube.patch_batch_job(namespace, action.name, {"spec": {"suspend": action.suspend}})
        elif isinstance(action, DeleteTrainingJob):
            await rt.kube.delete_custom(TRAININGJOB_PLURAL, namespace, meta["name"])
    return changed


async def _start(rt: Runtime, world: _World) -> bool:
    """Build the children off the event loop (big jobs take a while) and create them."""
    spec, memory = world.observed.spec, world.memory
    assert spec is not None and world.cluster_spec is not None
    try:
        children = await asyncio.to_thread(
            build_children,
            world.view,
            spec,
            world.observed.cluster,
            world.cluster_spec,
            rt.config,
            world.cluster_uid,
        )
    except BuildError as e:
        memory.start_error = (e.code, e.message)
        return True
    try:
        await create_children(rt.kube, children, world.observed.ident.uid, rt.shared_objects)
    except ChildRefused as e:
        if e.status in (400, 422):
            # The child itself is invalid: the spec made it so, and trying again would not help.
            memory.start_error = (ERR_INVALID_SPEC, f"The apiserver refused the job's {e.kind}: {e.message}")
        else:
            # Refused by admission (a ResourceQuota, a policy) or a name still taken: try again later.
            memory.create_refused = (e.message, datetime.now(UTC))
        return True
    memory.created_at = time.monotonic()
    memory.create_refused = None
    return False


class ChildRefused(Exception):
    """The apiserver refused to create a child (or one of its name exists and is not ours)."""

    def __init__(self, kind: str, status: int, message: str) -> None:
        super().__init__(message)
        self.kind, self.status, self.message = kind, status, message


async def create_children(
    kube: Kube, children: TrainingJobChildren, owner_uid: str, shared: set[tuple[str, str]] | None = None
) -> None:
    """Create the children in order, the Job last (its pods mount the others). A child that already
    exists is adopted only when this TrainingJob controls it: one left by a deleted job of the same name
    (not yet garbage-collected) must not be run with. `shared`: (namespace, name) of the shared launcher
    ConfigMaps known to exist, so each is created once per namespace, not once per job."""
    launcher = children.launcher_config_map
    if launcher is not None:
        where = (launcher["metadata"]["namespace"], launcher["metadata"]["name"])
        if shared is None or where not in shared:
            await _create(kube, launcher)  # 409: it exists (its name is its content's hash)
            if shared is not None:
                shared.add(where)
    manifests = [children.config_map] if children.config_map is not None else []
    if children.shared_temp_claim is not None:
        manifests.append(children.shared_temp_claim)
    if children.ssh_secret_metadata is not None:
        manifests.append(children.ssh_secret(*generate_ssh_keypair()))
    if children.service is not None:
        manifests.append(children.service)
    manifests.append(children.job)
    for manifest in manifests:
        kind, meta = manifest["kind"], manifest["metadata"]
        created = await _create(kube, manifest)
        if created or kind == "Secret":
            continue  # the SSH Secret's name holds the TrainingJob's uid: an earlier attempt made it
        if await kube.controller_uid(kind, meta["namespace"], meta["name"]) != owner_uid:
            message = (
                f"{kind} {meta['name']} exists and belongs to another object (a deleted job of the same "
                "name may still be being cleaned up)"
            )
            raise ChildRefused(kind, 409, message)


async def _create(kube: Kube, manifest: dict[str, Any]) -> bool:
    try:
        return await kube.create(manifest)
    except ApiException as e:
        if e.status not in (400, 403, 422):
            raise
        raise ChildRefused(manifest["kind"], e.status, api_message(e)) from None


# ---- helpers -------------------------------------------------------------------------------------------


def our_batch_job(rt: Runtime, namespace: str | None, uid: str) -> Mapping[str, Any] | None:
    """The TrainingJob's Job: in its namespace, controlled by it (the index's key) and named as the
    operator names it; a Job anyone else made to point at the TrainingJob does not count."""
    view = rt.first(idx.TRAININGJOBS, uid)
    if view is None or view["metadata"]["namespace"] != namespace:
        return None
    name = child_name(view["metadata"]["name"])
    jobs = rt.all(idx.BATCH_JOBS_BY_OWNER, (namespace, uid))
    return next((j for j in jobs if j["metadata"]["name"] == name), None)


def _reference(view: Mapping[str, Any]) -> dict[str, Any]:
    meta = view["metadata"]
    return {
        "apiVersion": view.get("apiVersion"),
        "kind": TRAININGJOB_KIND,
        "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]},
    }


def _parse_status(raw: Mapping[str, Any]) -> TrainingJobStatus:
    try:
        return TrainingJobStatus.model_validate(raw)
    except ValidationError:
        log.warning("ignoring a status that does not parse: %s", list(raw))
        return TrainingJobStatus()


def _waits_for_cluster(status: Mapping[str, Any]) -> bool:
    state = status.get("executionState")
    if state is None:
        return True
    if state != QUEUED:
        return False
    queued: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == CONDITION_FOR_STATE[QUEUED]), {}
    )
    return queued.get("reason") in (WAIT_CLUSTER_NOT_FOUND, WAIT_CLUSTER_INVALID)


def _mount_failure(
    rt: Runtime, memory: TrainingJobMemory, spec: TrainingJobSpec | None, cluster: BatchAIClusterSpec | None
) -> tuple[int, str] | None:
    """A volume the kubelet failed to mount often enough, named as the user wrote it."""
    if memory.mount_failure is None or spec is None:
        return None
    node_index, count, message = memory.mount_failure
    if count < rt.config.mount_failure_threshold:
        return None
    volumes = describe_volumes(spec.mount_volumes, "job")
    node_setup = cluster.node_setup if cluster else None
    volumes.update(describe_volumes(node_setup.mount_volumes if node_setup else None, "cluster"))
    return node_index, mount_failure_message(message, volumes)
