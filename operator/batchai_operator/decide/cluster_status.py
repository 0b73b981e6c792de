"""A BatchAICluster's status: its nodes, the TrainingJobs' pods on them and the setup-task pods ->
allocationState, currentNodeCount, nodeStateCounts, errors, the Ready condition, and Events. Pure;
decide/cluster.py says what goes in (ClusterStatusInput).

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
from datetime import datetime
from typing import Any

from ..api.cluster import BatchAIClusterSpec, BatchAIClusterStatus, NodeStateCounts
from ..api.trainingjob import BatchAIError, NameValuePair
from ..names import (
    CONDITION_READY,
    ERR_SETUP_TASK_FAILED,
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
from ..vmsizes import retirement_warning
from .common import Event, fmt_time, parse_time, set_condition

STATES = ("idle", "running", "preparing", "unusable", "leaving")


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
class ClusterStatusInput:
    """What the status of a BatchAICluster is computed from (decide/cluster.py gathers it)."""

    spec: BatchAIClusterSpec | None
    generation: int
    status: BatchAIClusterStatus
    nodes: Sequence[Mapping[str, Any]] = ()  # slim nodes of this cluster
    trainingjob_pods: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)  # by node
    setup_revision: str | None = None  # None: no setup task
    setup_pods: Sequence[Mapping[str, Any]] = ()  # slim setup pods
    setup_stdouterr_dir: str | None = None
    scale_error: BatchAIError | None = None  # ScaleFailed, from the last ARM attempt
    scaling: bool = False  # an agent-pool update is in flight
    problem: tuple[str, str] | None = None  # (code, message): the spec or its setup task cannot be used
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


def compute_cluster_status(obs: ClusterStatusInput, now: datetime) -> ClusterStatusResult:
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
        state, after = _classify(node, obs.trainingjob_pods.get(name, []), setup, obs.grace_seconds, now)
        if state == "unusable" and (setup is None or setup.state != "failed"):
            not_ready_long.append(name)
        counts[state] += 1
        if after is not None:
            recheck = after if recheck is None else min(recheck, after)

    if obs.scale_error is not None:
        errors.insert(0, obs.scale_error)
    if obs.problem is not None:
        errors.insert(0, BatchAIError(code=obs.problem[0], message=obs.problem[1]))

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
    obs: ClusterStatusInput,
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
