"""kopf registrations: thin. Watches TrainingJobs, their Jobs and pods, and BatchAIClusters; every change
runs `sync_job`, which builds manifests and status with pure functions and applies them.

Run: kopf run --standalone -m batchai_operator.handlers --all-namespaces
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any, cast

import kopf
from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from . import GROUP, VERSION
from .api.cluster import BatchAIClusterSpec
from .api.common import MountVolumes
from .api.trainingjob import PLURAL as TJ_PLURAL
from .api.trainingjob import TrainingJobSpec
from .build.errors import BuildError
from .build.job import JobChildren, build_children, build_ssh_secret, identity
from .build.ssh import generate_ssh_keypair
from .build.volumes import describe_volumes
from .config import (
    DOMAIN,
    FINALIZER,
    LABEL_JOB_UID,
    LABEL_MANAGED_BY,
    MANAGED_BY,
    OperatorConfig,
)
from .kube import Kube, api_message
from .status import INDEX_LABEL, TERMINAL, Observed, compute_status, mount_failure_message
from .storage.refs import referenced_secrets

log = logging.getLogger("batchai_operator")
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
SECRET_RETRY_SECONDS = 10.0
SYNC_RETRY_MAX_SECONDS = 60.0
CREATE_RETRY_SECONDS = 10.0


class _State:
    """Process-wide state: the client, config, per-job locks and the last status written per job."""

    def __init__(self) -> None:
        self.kube: Kube | None = None
        self.config = OperatorConfig()
        self.locks: dict[str, asyncio.Lock] = {}
        self.written: dict[str, dict[str, Any]] = {}
        self.timers: dict[str, asyncio.TimerHandle] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.failures: dict[str, int] = {}
        self.mount_failures: dict[str, tuple[int, int, str]] = {}  # uid -> (node index, count, message)
        self.indexes: dict[str, Any] = {}
        self.stop = threading.Event()
        self.watch_thread: threading.Thread | None = None


STATE = _State()
MANAGED = {LABEL_MANAGED_BY: MANAGED_BY}
INDEX_NAMES = (
    "trainingjobs_by_uid",
    "jobs_by_owner",
    "pods_by_owner",
    "pod_owner_by_name",
    "clusters_by_name",
)


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=DOMAIN)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=DOMAIN, key="last-handled-configuration"
    )
    # Events are posted explicitly (one per state change); handler log lines never become Events.
    settings.posting.level = logging.CRITICAL + 1
    settings.networking.request_timeout = 30
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    # The kubernetes client is synchronous: give its calls enough threads for bursts of jobs.
    asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=32))
    STATE.config = OperatorConfig.from_env()
    STATE.kube = Kube.load()
    # The kubelets' FailedMount Events come from a narrow watch of our own, fed back into the loop.
    STATE.indexes = {k: v for k, v in kwargs.items() if k in INDEX_NAMES}
    loop = asyncio.get_running_loop()
    kube = STATE.kube
    STATE.watch_thread = threading.Thread(
        target=kube.watch_failed_mounts,
        args=(lambda ev: loop.call_soon_threadsafe(_spawn, on_failed_mount(ev)), STATE.stop),
        name="failed-mount-watch",
        daemon=True,
    )
    STATE.watch_thread.start()


@kopf.on.cleanup()
async def stop_watches(**_: Any) -> None:
    STATE.stop.set()


# ---- indexes: in-memory views of what the watches saw, so syncing reads no API --------------------


@kopf.index(GROUP, VERSION, TJ_PLURAL)
def trainingjobs_by_uid(uid: str, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]]:
    return {uid: dict(body)}


@kopf.index("batch", "v1", "jobs", labels=MANAGED)
def jobs_by_owner(labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]] | None:
    owner = labels.get(LABEL_JOB_UID)
    return (
        {owner: {"metadata": dict(body.metadata), "spec": dict(body.spec), "status": dict(body.status)}}
        if owner
        else None
    )


@kopf.index("", "v1", "pods", labels=MANAGED)
def pods_by_owner(labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict[str, dict[str, Any]] | None:
    owner = labels.get(LABEL_JOB_UID)
    if not owner:
        return None
    slim = {
        "metadata": {"name": body.metadata.name, "labels": dict(labels)},
        "spec": {"nodeName": body.spec.get("nodeName")},
        "status": dict(body.status),
    }
    return {owner: slim}


@kopf.index("", "v1", "pods", labels=MANAGED)
def pod_owner_by_name(namespace: str | None, name: str, labels: kopf.Labels, **_: Any) -> dict[Any, Any]:
    owner = labels.get(LABEL_JOB_UID)
    index = labels.get(INDEX_LABEL, "0")
    return {(namespace or "", name): (owner, int(index))} if owner else {}


@kopf.index(GROUP, VERSION, "batchaiclusters")
def clusters_by_name(
    namespace: str | None, name: str, body: kopf.Body, **_: Any
) -> dict[tuple[str, str], dict[str, Any]]:
    return {(namespace or "", name): dict(body)}


# ---- event handlers: every change of a TrainingJob or its children syncs that TrainingJob ---------


@kopf.on.event(GROUP, VERSION, TJ_PLURAL)
async def on_trainingjob(event: kopf.RawEvent, uid: str, **kwargs: Any) -> None:
    if event.get("type") == "DELETED":
        _forget(uid)
        return
    await sync_job(uid, kwargs)


@kopf.on.event("batch", "v1", "jobs", labels=MANAGED)
async def on_job(labels: kopf.Labels, **kwargs: Any) -> None:
    if labels.get(LABEL_JOB_UID):
        await sync_job(labels[LABEL_JOB_UID], kwargs)


@kopf.on.event("", "v1", "pods", labels=MANAGED)
async def on_pod(labels: kopf.Labels, **kwargs: Any) -> None:
    if labels.get(LABEL_JOB_UID):
        await sync_job(labels[LABEL_JOB_UID], kwargs)


@kopf.on.event(GROUP, VERSION, "batchaiclusters")
async def on_cluster_for_jobs(namespace: str | None, name: str, **kwargs: Any) -> None:
    """A cluster appeared or changed: jobs waiting for it may start now."""
    for uid, store in list(kwargs["trainingjobs_by_uid"].items()):
        for tj in store:
            if (
                tj["metadata"].get("namespace") != namespace
                or (tj.get("status") or {}).get("executionState") != "queued"
            ):
                continue
            if str((tj.get("spec") or {}).get("cluster", "")).rstrip("/").rsplit("/", 1)[-1] == name:
                await sync_job(uid, kwargs)


async def on_failed_mount(event: dict[str, Any]) -> None:
    """A kubelet could not mount a volume of one of our pods: record it and sync that job."""
    involved = event.get("involvedObject") or {}
    store = STATE.indexes["pod_owner_by_name"].get((involved.get("namespace") or "", involved.get("name")))
    found: tuple[str, int] | None = next(iter(store), None) if store else None
    if found is None:
        return
    uid, node_index = found
    count = int(event.get("count") or ((event.get("series") or {}).get("count")) or 1)
    STATE.mount_failures[uid] = (node_index, count, str(event.get("message") or ""))
    await sync_job(uid, STATE.indexes)


# ---- the sync ------------------------------------------------------------------------------------


def _first(index: Any, key: Any) -> dict[str, Any] | None:
    store = index.get(key)
    return next(iter(store), None) if store else None


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def sync_job(uid: str, indexes: dict[str, Any]) -> None:
    """Bring one TrainingJob's children and status in line with its spec (idempotent)."""
    lock = STATE.locks.setdefault(uid, asyncio.Lock())
    async with lock:
        body = _first(indexes["trainingjobs_by_uid"], uid)
        if body is None or body["metadata"].get("deletionTimestamp"):
            return
        try:
            await _sync_locked(uid, body, indexes)
        except Exception:
            # kopf does not retry event handlers: retry here with backoff, or the change would be lost.
            failures = STATE.failures[uid] = STATE.failures.get(uid, 0) + 1
            delay = min(SYNC_RETRY_MAX_SECONDS, 2.0**failures)
            log.exception(
                "sync of TrainingJob %s failed (attempt %d); retrying in %.0fs", uid, failures, delay
            )
            _retry_later(uid, delay, indexes)
        else:
            STATE.failures.pop(uid, None)


async def _sync_locked(uid: str, body: dict[str, Any], indexes: dict[str, Any]) -> None:
    kube = STATE.kube
    assert kube is not None
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    old_status = STATE.written.get(uid) or dict(body.get("status") or {})
    try:
        spec = TrainingJobSpec.model_validate(body.get("spec") or {})
    except ValidationError as e:
        await _report_invalid(body, old_status, str(e))
        return

    cluster_name = spec.cluster_name
    cluster_body = _first(indexes["clusters_by_name"], (namespace, cluster_name))
    job = _first(indexes["jobs_by_owner"], uid)
    pods = list(indexes["pods_by_owner"].get(uid, []))
    mount = STATE.mount_failures.get(uid)
    mount_failure = None
    if mount and mount[1] >= STATE.config.mount_failure_threshold:
        volumes = describe_volumes(spec.mount_volumes, "job")
        volumes.update(describe_volumes(_cluster_mounts(cluster_body), "cluster"))
        mount_failure = (mount[0], mount_failure_message(mount[2], volumes))
    obs = Observed(
        mount_failure=mount_failure,
        spec=spec,
        ident=identity(body, spec),
        generation=int(meta.get("generation") or 1),
        status=old_status,
        cluster=cluster_name,
        cluster_found=cluster_body is not None,
        job=job,
        pods=pods,
    )

    if old_status.get("executionState") not in TERMINAL:
        if spec.terminate:
            if job is not None:
                await kube.delete("Job", namespace, job["metadata"]["name"])
        elif cluster_body is not None and job is None:
            await _start(body, spec, cluster_name, cluster_body, obs, uid, indexes)
        elif (
            job is not None
            # Kueue owns suspend on queued Jobs; without Kueue the TrainingJob's suspend is passed through.
            and KUEUE_QUEUE_LABEL not in (meta.get("labels") or {})
            and bool((job.get("spec") or {}).get("suspend")) != bool(spec.suspend)
        ):
            await kube.patch_job(
                namespace, job["metadata"]["name"], {"spec": {"suspend": bool(spec.suspend)}}
            )
            job["spec"]["suspend"] = bool(spec.suspend)

    result = compute_status(obs, _now())
    if result.stop_job and job is not None:
        await kube.delete("Job", namespace, job["metadata"]["name"])
    if result.status != old_status:
        await kube.patch_status(TJ_PLURAL, namespace, name, result.status)
        STATE.written[uid] = result.status
    for etype, reason, message in result.events:
        kopf.event(cast(kopf.Body, body), type=etype, reason=reason, message=message)
    _schedule_ttl(uid, body, spec, result.status, indexes)


async def _start(
    body: dict[str, Any],
    spec: TrainingJobSpec,
    cluster_name: str,
    cluster_body: dict[str, Any],
    obs: Observed,
    uid: str,
    indexes: dict[str, Any],
) -> None:
    """Create the children of a job that has none yet."""
    kube = STATE.kube
    assert kube is not None
    namespace = body["metadata"]["namespace"]
    try:
        cluster = BatchAIClusterSpec.model_validate(cluster_body.get("spec") or {})
        children = build_children(
            body, spec, cluster_name, cluster, STATE.config, cluster_uid=cluster_body["metadata"].get("uid")
        )
    except BuildError as e:
        obs.build_error = (e.code, e.message)
        return
    except ValidationError as e:
        obs.waiting_reason = (
            "ClusterInvalid",
            f"BatchAICluster {cluster_name} is invalid: {e.errors()[0]['msg']}",
        )
        return
    missing = [s for s in referenced_secrets(spec, cluster) if not await kube.secret_exists(namespace, s)]
    if missing:
        obs.waiting_reason = (
            "SecretNotFound",
            f"Waiting for Secret(s) {', '.join(sorted(missing))} in namespace {namespace}",
        )
        _retry_later(uid, SECRET_RETRY_SECONDS, indexes)
        return
    try:
        await _create_children(children)
    except ApiException as e:
        if e.status not in (400, 403, 409, 422):
            raise
        # Refused by admission (a ResourceQuota, a policy, an invalid value): say so, and try again later.
        obs.waiting_reason = ("JobCreationRejected", f"The job's pods could not be created: {api_message(e)}")
        _retry_later(uid, CREATE_RETRY_SECONDS, indexes)
        return
    obs.job = children.job


async def _create_children(children: JobChildren) -> None:
    kube = STATE.kube
    assert kube is not None
    await kube.create(children.config_map)
    if children.ssh_secret_name:
        private, public = generate_ssh_keypair()
        await kube.create(build_ssh_secret(children, private, public))
    if children.service:
        await kube.create(children.service)
    # The Job last: its pods mount everything above.
    await kube.create(children.job)


async def _report_invalid(body: dict[str, Any], old_status: dict[str, Any], detail: str) -> None:
    kube = STATE.kube
    assert kube is not None
    if old_status.get("executionState") == "failed":
        return
    message = f"The spec cannot be parsed: {detail.splitlines()[0]}"
    status = {
        "executionState": "failed",
        "executionStateTransitionTime": _now(),
        "executionInfo": {"endTime": _now(), "errors": [{"code": "InvalidSpec", "message": message}]},
    }
    meta = body["metadata"]
    await kube.patch_status(TJ_PLURAL, meta["namespace"], meta["name"], status)
    kopf.event(cast(kopf.Body, body), type="Warning", reason="Failed", message=message)


def _spawn(coro: Coroutine[Any, Any, None]) -> None:
    """Run in the background, keeping a reference so the task is not garbage-collected mid-flight."""
    task = asyncio.get_running_loop().create_task(coro)
    STATE.tasks.add(task)
    task.add_done_callback(STATE.tasks.discard)


def _retry_later(uid: str, delay: float, indexes: dict[str, Any]) -> None:
    if uid in STATE.timers:
        return
    loop = asyncio.get_running_loop()

    def fire() -> None:
        STATE.timers.pop(uid, None)
        _spawn(sync_job(uid, indexes))

    STATE.timers[uid] = loop.call_later(delay, fire)


def _schedule_ttl(
    uid: str, body: dict[str, Any], spec: TrainingJobSpec, status: dict[str, Any], indexes: dict[str, Any]
) -> None:
    """ttlSecondsAfterFinished: delete the TrainingJob (and so its children) after it finished."""
    if spec.ttl_seconds_after_finished is None or status.get("executionState") not in TERMINAL:
        return
    end = (status.get("executionInfo") or {}).get("endTime")
    if not end:
        return
    due = (
        datetime.strptime(end, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
        + spec.ttl_seconds_after_finished
    )
    remaining = due - datetime.now(UTC).timestamp()
    meta = body["metadata"]
    if remaining <= 0:
        kube = STATE.kube
        assert kube is not None
        _spawn(kube.delete_custom(TJ_PLURAL, meta["namespace"], meta["name"]))
    else:
        _retry_later(uid, remaining + 0.5, indexes)


def _cluster_mounts(cluster_body: dict[str, Any] | None) -> MountVolumes | None:
    if cluster_body is None:
        return None
    try:
        node_setup = BatchAIClusterSpec.model_validate(cluster_body.get("spec") or {}).node_setup
    except ValidationError:
        return None
    return node_setup.mount_volumes if node_setup else None


def _forget(uid: str) -> None:
    STATE.locks.pop(uid, None)
    STATE.written.pop(uid, None)
    STATE.failures.pop(uid, None)
    STATE.mount_failures.pop(uid, None)
    timer = STATE.timers.pop(uid, None)
    if timer:
        timer.cancel()
