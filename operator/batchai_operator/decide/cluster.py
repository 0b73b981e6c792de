"""The BatchAICluster decision: what the operator saw of a cluster's world (observe/cluster.py) and the
setup DaemonSet its spec asks for (reconcile's desired step) -> status (decide/cluster_status.py), Events
and actions: keep the setup-task DaemonSet as the spec says, open finished nodes to jobs, apply
scaleSettings to the AKS agent pool. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..api.cluster import BatchAIClusterSpec, BatchAIClusterStatus
from ..api.trainingjob import BatchAIError, NameValuePair
from ..manifests.paths import setup_stdouterr_dir
from ..names import (
    ANNOTATION_APPLIED_SCALE,
    ANNOTATION_SETUP_REVISION,
    ERR_AGENT_POOL_NOT_ALLOWED,
    ERR_INVALID_SPEC,
    ERR_SCALE_FAILED,
    ERR_SETUP_TASK_REJECTED,
)
from ..observe.cluster import ClusterWorld
from ..observe.memory import ScaleFailure
from ..scaling import DesiredScale, desired_scale
from .cluster_status import ClusterStatusInput, compute_cluster_status, setup_pods_to_mark
from .common import Decision, Desired
from .policy import agent_pool_refusal, cluster_refusal

# A failed agent-pool update is retried after 30 s, doubling up to 10 minutes.
SCALE_RETRY_FIRST = 30.0
SCALE_RETRY_MAX = 600.0


# ---- what decide returns ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateDaemonSet:
    """The cluster's setup task has no DaemonSet yet: create it, or adopt one of its name that the
    cluster controls (reconcile/children.py)."""

    manifest: dict[str, Any]


@dataclass(frozen=True)
class ReplaceDaemonSet:
    """Replace labels, annotations and spec whole (a merge patch would keep removed keys), guarded by the
    resourceVersion it was computed against."""

    namespace: str
    name: str
    resource_version: str
    manifest: dict[str, Any]


@dataclass(frozen=True)
class DeleteDaemonSet:
    """The cluster has no setup task (any more)."""

    namespace: str
    name: str


@dataclass(frozen=True)
class MarkSetupPods:
    """Label these setup pods succeeded: the cluster's TrainingJob pods require one on their node."""

    namespace: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class StartScale:
    """Apply scaleSettings to the AKS agent pool through ARM (in the background)."""

    desired: DesiredScale
    first_time: bool


ClusterAction = CreateDaemonSet | ReplaceDaemonSet | DeleteDaemonSet | MarkSetupPods | StartScale


ClusterDecision = Decision[BatchAIClusterStatus, ClusterAction]


# ---- the decision ----------------------------------------------------------------------------------------


def decide(world: ClusterWorld, desired: Desired[dict[str, Any]], now: datetime) -> ClusterDecision:
    """The cluster's status, Events and actions for what was observed, at time `now`. `desired`: the
    setup DaemonSet its spec asks for (None without a setup task), or why there can be none."""
    meta = world.view["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    spec = world.spec
    actions: list[ClusterAction] = []
    problem: tuple[str, str] | None = None
    if spec is None:
        problem = (ERR_INVALID_SPEC, f"The spec cannot be used: {world.view['specError']}")

    revision: str | None = None
    stdouterr: str | None = None
    scale_error: BatchAIError | None = None
    scale_blocked: str | None = None
    retry_after: float | None = None
    refusal = cluster_refusal(namespace, spec, world.config) if spec is not None else None
    if refusal is not None:
        # A power the admin did not grant this namespace: nothing is created (an existing DaemonSet goes).
        problem = refusal
        actions += _daemonset_actions(None, world.daemonset)
    elif spec is not None:
        daemonset = desired.children
        if desired.error is not None:
            problem = desired.error
        else:
            actions += _daemonset_actions(daemonset, world.daemonset)
            if world.setup_refused is not None:
                message = f"The setup task's DaemonSet was rejected: {world.setup_refused.message}"
                problem = (ERR_SETUP_TASK_REJECTED, message)
        if daemonset is not None and spec.node_setup and spec.node_setup.setup_task:
            revision = daemonset["metadata"]["annotations"][ANNOTATION_SETUP_REVISION]
            stdouterr = setup_stdouterr_dir(spec.node_setup.setup_task, namespace, name, uid)
        scale_action, scale_error, retry_after = _scale(world, spec, now)
        actions += scale_action
        scale_blocked = _scale_blocked(spec, scale_error)

    setup_pods = list(world.setup_pods) if revision else []
    to_mark = setup_pods_to_mark(setup_pods, revision)
    if to_mark:
        actions.append(MarkSetupPods(namespace, tuple(to_mark)))
    status_input = ClusterStatusInput(
        spec=spec,
        generation=meta["generation"],
        status=world.status,
        nodes=world.nodes,
        trainingjob_pods=world.trainingjob_pods,
        setup_revision=revision,
        setup_pods=setup_pods,
        setup_stdouterr_dir=stdouterr,
        scale_error=scale_error,
        scaling=world.scaling or any(isinstance(a, StartScale) for a in actions),
        problem=problem,
        grace_seconds=world.config.unusable_grace_seconds,
        scale_blocked=scale_blocked,
    )
    result = compute_cluster_status(status_input, now)
    requeue = [t for t in (result.recheck_after, retry_after) if t is not None]
    return Decision(result.status, result.events, actions, min(requeue) + 0.5 if requeue else None)


def _scale_blocked(spec: BatchAIClusterSpec, scale_error: BatchAIError | None) -> str | None:
    """Why scaleSettings cannot be applied to any node pool, or None."""
    if spec.scale_settings is None:
        return None
    if spec.aks is None:
        return (
            "the cluster has no AKS agent pool binding (spec.aks; kubectl batchai cluster resize "
            "--aks-pool), so its node count is only observed"
        )
    if scale_error is not None and scale_error.code == ERR_AGENT_POOL_NOT_ALLOWED:
        return scale_error.message
    return None


def _daemonset_actions(
    desired: dict[str, Any] | None, existing: Mapping[str, Any] | None
) -> list[ClusterAction]:
    if desired is None:
        return [DeleteDaemonSet(existing["namespace"], existing["name"])] if existing is not None else []
    if existing is None:
        return [CreateDaemonSet(desired)]
    if existing["revision"] != desired["metadata"]["annotations"][ANNOTATION_SETUP_REVISION]:
        return [
            ReplaceDaemonSet(existing["namespace"], existing["name"], existing["resourceVersion"], desired)
        ]
    return []


def _scale(
    world: ClusterWorld, spec: BatchAIClusterSpec, now: datetime
) -> tuple[list[ClusterAction], BatchAIError | None, float | None]:
    """Whether to apply scaleSettings now: ([StartScale] or [], the error to show, seconds to the retry)."""
    desired = desired_scale(spec)
    if desired is None:
        return [], None, None
    refused = agent_pool_refusal(world.view["metadata"]["namespace"], desired, world.config)
    if refused is not None:
        return [], BatchAIError(code=ERR_AGENT_POOL_NOT_ALLOWED, message=refused), None
    wanted = desired.key()
    applied = world.view["metadata"]["annotations"].get(ANNOTATION_APPLIED_SCALE)
    # The last failure shows until an attempt succeeds (a new target is tried at once, the same one later).
    error = world.scale_failure.error if world.scale_failure else None
    failure = (
        world.scale_failure if world.scale_failure and world.scale_failure.desired_key == wanted else None
    )
    if wanted in (applied, world.applied_scale) or world.scaling:
        return [], error, None
    if failure is not None and now < failure.retry_at:
        return [], error, (failure.retry_at - now).total_seconds()
    return [StartScale(desired, first_time=applied is None)], error, None


def failed_scale(
    previous: ScaleFailure | None,
    desired: DesiredScale,
    message: str,
    details: list[NameValuePair],
    now: datetime,
) -> ScaleFailure:
    """The memory of a failed ARM attempt, retried with backoff (30 s, doubling, at most 10 minutes)."""
    wanted = desired.key()
    attempts = previous.attempts + 1 if previous and previous.desired_key == wanted else 1
    delay = min(SCALE_RETRY_FIRST * 2 ** (attempts - 1), SCALE_RETRY_MAX)
    error = BatchAIError(code=ERR_SCALE_FAILED, message=message, details=details)
    return ScaleFailure(wanted, error, attempts, now + timedelta(seconds=delay))
