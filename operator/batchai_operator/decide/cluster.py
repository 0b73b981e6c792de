"""The BatchAICluster decision: its nodes, the job pods on them and the setup-task pods -> status
(allocationState, currentNodeCount, nodeStateCounts, errors, Ready condition), Events and actions (keep
the setup-task DaemonSet as its spec says, open finished nodes to jobs, apply scaleSettings to the AKS
agent pool). Pure; reconcile/cluster.py observes and applies.

Every node of the cluster is in exactly one state, checked in this order:
  leaving    cordoned (spec.unschedulable), being deleted, or marked by the cluster autoscaler
  unusable   the setup task failed on it, or NotReady for longer than the grace period
  preparing  NotReady (within the grace period)
  running    job pods (pending or running) are bound to it
  preparing  the setup task has not finished on it yet
  idle       Ready, setup task done, no job pods
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from ..api.cluster import BatchAIClusterSpec, BatchAIClusterStatus, NodeStateCounts
from ..api.trainingjob import BatchAIError, NameValuePair
from ..config import OperatorConfig
from ..manifests.errors import BuildError
from ..manifests.setup_daemonset import build_setup_daemonset, setup_stdouterr_dir
from ..names import (
    ANNOTATION_APPLIED_SCALE,
    ANNOTATION_SETUP_REVISION,
    CONDITION_READY,
    ERR_AGENT_POOL_NOT_ALLOWED,
    ERR_INVALID_SPEC,
    ERR_SCALE_FAILED,
    ERR_SETUP_TASK_FAILED,
    ERR_SETUP_TASK_REJECTED,
    EVENT_RETIRED_VM_SIZE,
    PULL_FAILURES,
    READY_NO_NODES,
    READY_NODES_PREPARING,
    READY_NODES_UNUSABLE,
    READY_RESIZING,
    READY_SCALE_NOT_APPLIED,
    READY_STEADY,
    START_FAILURES,
    TAINT_AUTOSCALER_DELETE,
)
from ..scaling import DesiredScale, desired_scale
from ..vmsizes import retirement_warning
from .common import Event, fmt_time, parse_time, set_condition
from .policy import agent_pool_refusal, cluster_refusal

STATES = ("idle", "running", "preparing", "unusable", "leaving")
# A failed agent-pool update is retried after 30 s, doubling up to 10 minutes.
SCALE_RETRY_FIRST = 30.0
SCALE_RETRY_MAX = 600.0


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


# ---- setup state per node --------------------------------------------------------------------------


@dataclass
class SetupState:
    """The setup task on one node: done, pending (not finished or not started) or failed."""

    state: str
    exit_code: int | None = None
    reason: str | None = None
    message: str | None = None
    pod: str | None = None


def setup_pods_to_mark(pods: Sequence[Mapping[str, Any]], revision: str | None) -> list[str]:
    """Setup pods of the current revision whose task exited 0 and that are not yet marked succeeded."""
    out = []
    for p in pods:
        init = p.get("init") or {}
        done = init.get("state") == "terminated" and init.get("exitCode") == 0
        if (
            revision
            and p.get("revision") == revision
            and done
            and not p.get("marked")
            and not p.get("deleting")
        ):
            out.append(str(p["name"]))
    return out


def setup_state(pods: Sequence[Mapping[str, Any]], revision: str) -> SetupState:
    """The setup state of a node from its setup pods (only pods of the current revision count)."""
    current = [p for p in pods if p.get("revision") == revision]
    if not current:
        return SetupState("pending")
    # A live pod is the truth; a pod being deleted (e.g. a failed one the DaemonSet replaces) still tells
    # how its run ended.
    current.sort(key=lambda p: (not p.get("deleting"), p.get("creationTimestamp") or ""), reverse=True)
    pod = current[0]
    init = pod.get("init")
    name = pod.get("name")
    if init is None:
        return SetupState("pending", pod=name)
    if init.get("state") == "terminated":
        code = init.get("exitCode")
        if code == 0:
            return SetupState("done", pod=name)
        return SetupState(
            "failed", exit_code=code, reason=init.get("reason"), message=init.get("message"), pod=name
        )
    if init.get("state") == "running" and init.get("lastExitCode") in (None, 0):
        return SetupState("pending", pod=name)
    if init.get("lastExitCode") not in (None, 0):
        # restartPolicy Always: the kubelet re-runs a failed setup task (CrashLoopBackOff); it failed.
        return SetupState("failed", exit_code=init["lastExitCode"], reason=init.get("lastReason"), pod=name)
    if init.get("reason") in PULL_FAILURES + START_FAILURES:
        return SetupState("failed", reason=init.get("reason"), message=init.get("message"), pod=name)
    return SetupState("pending", pod=name)


def _details(error: BatchAIError) -> dict[str, str]:
    return {d.name: d.value for d in error.details or []}


def setup_error(node: str, st: SetupState, revision: str, stdouterr_dir: str | None) -> BatchAIError:
    """A Batch AI style error for a setup task that failed on a node."""
    if st.exit_code is not None:
        what = f"exit code {st.exit_code}"
    else:
        what = f"{st.reason}: {st.message}" if st.message else str(st.reason)
    message = f"The setup task failed on node {node} ({what})"
    if stdouterr_dir and st.exit_code is not None:
        message += f"; see stderr-{node}.txt in {stdouterr_dir}"
    details = [NameValuePair(name="nodeName", value=node)]
    if st.exit_code is not None:
        details.append(NameValuePair(name="exitCode", value=str(st.exit_code)))
    if st.reason:
        details.append(NameValuePair(name="reason", value=st.reason))
    if st.pod:
        details.append(NameValuePair(name="podName", value=st.pod))
    details.append(NameValuePair(name="setupTaskRevision", value=revision))
    return BatchAIError(code=ERR_SETUP_TASK_FAILED, message=message, details=details)


# ---- the status ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterObserved:
    """What the status of a BatchAICluster is computed from."""

    spec: BatchAIClusterSpec | None
    generation: int
    status: BatchAIClusterStatus
    nodes: Sequence[Mapping[str, Any]] = ()  # slim nodes of this cluster
    job_pods: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)  # node -> job pods
    setup_revision: str | None = None  # None: no setup task
    setup_pods: Sequence[Mapping[str, Any]] = ()  # slim setup pods
    setup_stdouterr_dir: str | None = None
    scale_error: BatchAIError | None = None  # ScaleFailed, from the last ARM attempt
    scaling: bool = False  # an agent-pool update is in flight
    invalid: tuple[str, str] | None = None  # (code, message): the spec or its setup task cannot be used
    grace_seconds: int = 300
    # Why nothing moves the node count to scaleSettings (no spec.aks, or the pool is not allowed): the
    # cluster is then steady with a ScaleNotApplied reason, not resizing forever. None: it can act.
    scale_blocked: str | None = None


@dataclass(frozen=True)
class ClusterStatusResult:
    status: BatchAIClusterStatus
    events: list[Event]
    recheck_after: float | None = None  # seconds until a NotReady node passes the grace period


def target_range(spec: BatchAIClusterSpec | None) -> tuple[int, int] | None:
    """(min, max) node count scaleSettings asks for; None without scaleSettings."""
    if spec is None or spec.scale_settings is None:
        return None
    if spec.scale_settings.manual is not None:
        n = spec.scale_settings.manual.target_node_count
        return n, n
    auto = spec.scale_settings.auto_scale
    assert auto is not None
    return auto.minimum_node_count, auto.maximum_node_count


def _classify(
    node: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    setup: SetupState | None,
    grace: int,
    now: datetime,
) -> tuple[str, float | None]:
    if node.get("deleting") or node.get("unschedulable") or TAINT_AUTOSCALER_DELETE in node.get("taints", []):
        return "leaving", None
    if setup is not None and setup.state == "failed":
        return "unusable", None
    if node.get("ready") != "True":
        since = parse_time(node.get("readySince")) or parse_time(node.get("creationTimestamp")) or now
        elapsed = (now - since).total_seconds()
        if elapsed >= grace:
            return "unusable", None
        return "preparing", grace - elapsed
    if pods:
        return "running", None
    if setup is not None and setup.state != "done":
        return "preparing", None
    return "idle", None


def compute_cluster_status(obs: ClusterObserved, now: datetime) -> ClusterStatusResult:
    """The BatchAICluster status for what was observed, at time `now`."""
    old = obs.status
    events: list[Event] = []
    counts = dict.fromkeys(STATES, 0)
    recheck: float | None = None
    errors: list[BatchAIError] = []
    not_ready_long: list[str] = []

    pods_by_node: dict[str, list[Mapping[str, Any]]] = {}
    for p in obs.setup_pods:
        if p.get("nodeName"):
            pods_by_node.setdefault(p["nodeName"], []).append(p)
    # Setup failures already reported for this revision: a failed pod that the DaemonSet controller
    # deletes and recreates must not make its node look fresh again.
    old_failures = {
        d.get("nodeName"): e
        for e in old.errors or []
        if e.code == ERR_SETUP_TASK_FAILED
        and (d := _details(e)).get("setupTaskRevision") == obs.setup_revision
    }

    for node in sorted(obs.nodes, key=lambda n: n["name"]):
        name = node["name"]
        setup: SetupState | None = None
        if obs.setup_revision is not None:
            setup = setup_state(pods_by_node.get(name, []), obs.setup_revision)
            if setup.state == "failed":
                errors.append(setup_error(name, setup, obs.setup_revision, obs.setup_stdouterr_dir))
                if name not in old_failures:
                    events.append(Event("Warning", ERR_SETUP_TASK_FAILED, errors[-1].message))
            elif setup.state == "pending" and name in old_failures:
                setup = SetupState("failed")
                errors.append(old_failures[name])
        state, after = _classify(node, obs.job_pods.get(name, []), setup, obs.grace_seconds, now)
        if state == "unusable" and (setup is None or setup.state != "failed"):
            not_ready_long.append(name)
        counts[state] += 1
        if after is not None:
            recheck = after if recheck is None else min(recheck, after)

    if obs.scale_error is not None:
        errors.insert(0, obs.scale_error)
    if obs.invalid is not None:
        errors.insert(0, BatchAIError(code=obs.invalid[0], message=obs.invalid[1]))

    current = len(obs.nodes)
    rng = target_range(obs.spec)
    out_of_range = rng is not None and not rng[0] <= current <= rng[1]
    resizing = obs.scaling or (out_of_range and obs.scale_blocked is None)
    allocation = "resizing" if resizing else "steady"
    transition = old.allocation_state_transition_time
    if allocation != old.allocation_state or not transition:
        transition = fmt_time(now)
        if old.allocation_state is not None:
            events.append(
                Event("Normal", allocation.capitalize(), _allocation_message(allocation, current, rng))
            )

    ready, reason, message = _readiness(obs, counts, errors, not_ready_long, current, rng, resizing)
    # Once per spec generation: the status written below records this generation as seen.
    if obs.spec is not None and old.observed_generation != obs.generation:
        retired = retirement_warning(obs.spec.vm_size)
        if retired:
            events.append(Event("Warning", EVENT_RETIRED_VM_SIZE, retired))
    status = BatchAIClusterStatus(
        allocation_state=allocation,
        allocation_state_transition_time=transition,
        current_node_count=current,
        node_state_counts=NodeStateCounts(
            idle_node_count=counts["idle"],
            running_node_count=counts["running"],
            preparing_node_count=counts["preparing"],
            unusable_node_count=counts["unusable"],
            leaving_node_count=counts["leaving"],
        ),
        conditions=set_condition(
            [c for c in old.conditions or [] if c.type == CONDITION_READY],
            CONDITION_READY,
            ready,
            reason,
            message,
            obs.generation,
            now,
        ),
        observed_generation=obs.generation,
        errors=errors or None,
    )
    return ClusterStatusResult(status, events, recheck)


def _allocation_message(allocation: str, current: int, rng: tuple[int, int] | None) -> str:
    if rng is None:
        return f"{current} node(s)"
    want = str(rng[0]) if rng[0] == rng[1] else f"{rng[0]}..{rng[1]}"
    verb = "Resizing" if allocation == "resizing" else "Steady"
    return f"{verb}: {current} node(s), scaleSettings ask for {want}"


def _readiness(
    obs: ClusterObserved,
    counts: Mapping[str, int],
    errors: Sequence[BatchAIError],
    not_ready_long: Sequence[str],
    current: int,
    rng: tuple[int, int] | None,
    resizing: bool,
) -> tuple[bool, str, str]:
    """The Ready condition: (status, reason, message)."""
    setup_failed = [_details(e).get("nodeName", "") for e in errors if e.code == ERR_SETUP_TASK_FAILED]
    other_errors = [e for e in errors if e.code != ERR_SETUP_TASK_FAILED]
    if other_errors:
        return False, other_errors[0].code, other_errors[0].message
    if setup_failed:
        return (
            False,
            ERR_SETUP_TASK_FAILED,
            f"The setup task failed on {len(setup_failed)} node(s): {', '.join(setup_failed)}",
        )
    if not_ready_long:
        names = ", ".join(not_ready_long)
        message = f"{len(not_ready_long)} node(s) NotReady for more than {obs.grace_seconds}s: {names}"
        return False, READY_NODES_UNUSABLE, message
    if resizing:
        return False, READY_RESIZING, _allocation_message("resizing", current, rng)
    if obs.scale_blocked and rng is not None and not rng[0] <= current <= rng[1]:
        want = _allocation_message("steady", current, rng).removeprefix("Steady: ")
        return False, READY_SCALE_NOT_APPLIED, f"{want}; nothing resizes the nodes: {obs.scale_blocked}"
    if counts["preparing"]:
        return False, READY_NODES_PREPARING, f"{counts['preparing']} of {current} node(s) preparing"
    if current == 0 and rng is None:
        return False, READY_NO_NODES, "No node matches the cluster's node selector"
    message = f"{current} node(s): {counts['idle']} idle, {counts['running']} running"
    if counts["leaving"]:
        message += f", {counts['leaving']} leaving"
    return True, READY_STEADY, message


# ---- the decision: status plus actions ------------------------------------------------------------------


@dataclass(frozen=True)
class ScaleFailure:
    """The last failed attempt to apply scaleSettings (the operator's memory, not the API's)."""

    desired_key: str
    error: BatchAIError
    attempts: int
    retry_at: datetime


@dataclass(frozen=True)
class ClusterWorld:
    """What the operator saw of one BatchAICluster's world: its indexes plus what it remembers doing."""

    body: Mapping[str, Any]  # apiVersion, kind, metadata (name, namespace, uid, generation, annotations)
    spec: BatchAIClusterSpec | None
    invalid: str | None  # why the spec cannot be parsed
    status: BatchAIClusterStatus  # the status last written
    config: OperatorConfig
    nodes: Sequence[Mapping[str, Any]] = ()
    job_pods: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    setup_pods: Sequence[Mapping[str, Any]] = ()
    daemonset: Mapping[str, Any] | None = None  # the existing setup DaemonSet (slim)
    setup_rejected: str | None = None  # the apiserver's message when it refused the DaemonSet
    scale_failure: ScaleFailure | None = None
    scaling: bool = False  # an agent-pool update is in flight
    applied_scale: str | None = None  # scaleSettings last applied by this process (the annotation may lag)


@dataclass(frozen=True)
class CreateDaemonSet:
    """The cluster's setup task has no DaemonSet yet."""

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
    """Label these setup pods succeeded: the cluster's job pods require one on their node."""

    namespace: str
    names: tuple[str, ...]


@dataclass(frozen=True)
class StartScale:
    """Apply scaleSettings to the AKS agent pool through ARM (in the background)."""

    desired: DesiredScale
    first_time: bool


ClusterAction = CreateDaemonSet | ReplaceDaemonSet | DeleteDaemonSet | MarkSetupPods | StartScale


@dataclass(frozen=True)
class ClusterDecision:
    status: BatchAIClusterStatus
    events: list[Event]
    actions: list[ClusterAction]
    requeue_after: float | None = None


def decide(world: ClusterWorld, now: datetime) -> ClusterDecision:
    """The cluster's status, Events and actions for what was observed, at time `now`."""
    meta = world.body["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    spec = world.spec
    actions: list[ClusterAction] = []
    invalid: tuple[str, str] | None = None
    if world.invalid:
        invalid = (ERR_INVALID_SPEC, f"The spec cannot be used: {world.invalid}")

    revision: str | None = None
    stdouterr: str | None = None
    scale_error: BatchAIError | None = None
    scale_blocked: str | None = None
    retry_after: float | None = None
    refusal = cluster_refusal(namespace, spec, world.config) if spec is not None else None
    if refusal is not None:
        # A power the admin did not grant this namespace: nothing is created (an existing DaemonSet goes).
        invalid = refusal
        actions += _daemonset_actions(None, world.daemonset)
    elif spec is not None:
        try:
            desired_ds = build_setup_daemonset(world.body, spec, world.config)
        except BuildError as e:
            desired_ds = None
            invalid = (e.code, e.message)
        else:
            actions += _daemonset_actions(desired_ds, world.daemonset)
            if world.setup_rejected:
                invalid = (
                    ERR_SETUP_TASK_REJECTED,
                    f"The setup task's DaemonSet was rejected: {world.setup_rejected}",
                )
        if desired_ds is not None:
            revision = desired_ds["metadata"]["annotations"][ANNOTATION_SETUP_REVISION]
            setup = spec.node_setup.setup_task if spec.node_setup else None
            assert setup is not None
            stdouterr = setup_stdouterr_dir(setup, namespace, name, uid)
        scale_action, scale_error, retry_after = _scale(world, spec, now)
        actions += scale_action
        scale_blocked = _scale_blocked(spec, scale_error)

    setup_pods = list(world.setup_pods) if revision else []
    to_mark = setup_pods_to_mark(setup_pods, revision)
    if to_mark:
        actions.append(MarkSetupPods(namespace, tuple(to_mark)))
    obs = ClusterObserved(
        spec=spec,
        generation=int(meta.get("generation") or 1),
        status=world.status,
        nodes=world.nodes,
        job_pods=world.job_pods,
        setup_revision=revision,
        setup_pods=setup_pods,
        setup_stdouterr_dir=stdouterr,
        scale_error=scale_error,
        scaling=world.scaling or any(isinstance(a, StartScale) for a in actions),
        invalid=invalid,
        grace_seconds=world.config.unusable_grace_seconds,
        scale_blocked=scale_blocked,
    )
    result = compute_cluster_status(obs, now)
    requeue = [t for t in (result.recheck_after, retry_after) if t is not None]
    return ClusterDecision(result.status, result.events, actions, min(requeue) + 0.5 if requeue else None)


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
    refused = agent_pool_refusal(world.body["metadata"]["namespace"], desired, world.config)
    if refused is not None:
        return [], BatchAIError(code=ERR_AGENT_POOL_NOT_ALLOWED, message=refused), None
    wanted = desired.key()
    applied = (world.body["metadata"].get("annotations") or {}).get(ANNOTATION_APPLIED_SCALE)
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
