"""Pure status computation for BatchAICluster: its nodes, the job pods on them and the setup-task pods
-> status (allocationState, currentNodeCount, nodeStateCounts, errors, Ready condition).

Level-based: given what was observed and the previous status, it returns the whole status again; the
handler patches only when it differs. The `slim_*` functions reduce API objects to what is needed
here (the operator keeps only those in its in-memory indexes).

Every node of the cluster is in exactly one state, checked in this order:
  leaving    cordoned (spec.unschedulable), being deleted, or marked by the cluster autoscaler
  unusable   the setup task failed on it, or NotReady for longer than the grace period
  preparing  NotReady (within the grace period)
  running    job pods (pending or running) are bound to it
  preparing  the setup task has not finished on it yet
  idle       Ready, setup task done, no job pods
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .api.cluster import BatchAIClusterSpec
from .build.cluster import LABEL_SETUP_REVISION, SETUP_CONTAINER
from .build.names import LABEL_SETUP_STATE, SETUP_SUCCEEDED

STATES = ("idle", "running", "preparing", "unusable", "leaving")
COUNT_KEYS = {
    "idle": "idleNodeCount",
    "running": "runningNodeCount",
    "preparing": "preparingNodeCount",
    "unusable": "unusableNodeCount",
    "leaving": "leavingNodeCount",
}
# Status keys this module owns; a key it drops is removed with an explicit null in the merge patch.
STATUS_KEYS = (
    "allocationState",
    "allocationStateTransitionTime",
    "currentNodeCount",
    "nodeStateCounts",
    "errors",
    "conditions",
    "observedGeneration",
)
SETUP_TASK_FAILED = "SetupTaskFailed"
SCALE_FAILED = "ScaleFailed"
# The cluster autoscaler taints a node it is about to remove.
AUTOSCALER_DELETE_TAINT = "ToBeDeletedByClusterAutoscaler"
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
START_FAILURES = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def fmt_time(t: datetime) -> str:
    return t.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


# ---- slim views of API objects ------------------------------------------------------------------


def slim_node(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the counts need of a Node."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    return {
        "name": meta.get("name"),
        "labels": dict(meta.get("labels") or {}),
        "creationTimestamp": meta.get("creationTimestamp"),
        "deleting": bool(meta.get("deletionTimestamp")),
        "unschedulable": bool(spec.get("unschedulable")),
        "taints": sorted({t.get("key", "") for t in spec.get("taints") or []}),
        "ready": ready.get("status") if ready else None,
        "readySince": ready.get("lastTransitionTime") if ready else None,
    }


def slim_job_pod(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """A job pod occupying a node (bound, pending or running), or None when it occupies none."""
    meta = body.get("metadata") or {}
    node = (body.get("spec") or {}).get("nodeName")
    phase = (body.get("status") or {}).get("phase")
    if not node or phase not in ("Pending", "Running", None):
        return None
    return {"namespace": meta.get("namespace"), "name": meta.get("name"), "nodeName": node, "phase": phase}


def _container_state(statuses: Iterable[Mapping[str, Any]], name: str) -> dict[str, Any] | None:
    cs = next((s for s in statuses if s.get("name") == name), None)
    if cs is None:
        return None
    state = cs.get("state") or {}
    last = (cs.get("lastState") or {}).get("terminated") or {}
    out: dict[str, Any] = {"restartCount": cs.get("restartCount", 0)}
    if "terminated" in state:
        term = state["terminated"] or {}
        out.update(
            state="terminated",
            exitCode=term.get("exitCode"),
            reason=term.get("reason"),
            message=term.get("message"),
        )
    elif "running" in state:
        out["state"] = "running"
    else:
        waiting = state.get("waiting") or {}
        out.update(state="waiting", reason=waiting.get("reason"), message=waiting.get("message"))
    if last:
        out["lastExitCode"] = last.get("exitCode")
        out["lastReason"] = last.get("reason")
    return out


def slim_setup_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the counts need of a setup-task pod."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    return {
        "name": meta.get("name"),
        "nodeName": (body.get("spec") or {}).get("nodeName"),
        "revision": (meta.get("labels") or {}).get(LABEL_SETUP_REVISION),
        "marked": (meta.get("labels") or {}).get(LABEL_SETUP_STATE) == SETUP_SUCCEEDED,
        "deleting": bool(meta.get("deletionTimestamp")),
        "creationTimestamp": meta.get("creationTimestamp"),
        "phase": status.get("phase"),
        "init": _container_state(status.get("initContainerStatuses") or [], SETUP_CONTAINER),
    }


# ---- node selection ------------------------------------------------------------------------------


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


def setup_pods_to_mark(pods: list[dict[str, Any]], revision: str | None) -> list[str]:
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


def setup_state(pods: list[dict[str, Any]], revision: str) -> SetupState:
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


def _details(error: Mapping[str, Any]) -> dict[str, str]:
    return {d.get("name", ""): d.get("value", "") for d in error.get("details") or []}


def setup_error(node: str, st: SetupState, revision: str, stdouterr_dir: str | None) -> dict[str, Any]:
    """A Batch AI style error for a setup task that failed on a node."""
    if st.exit_code is not None:
        what = f"exit code {st.exit_code}"
    else:
        what = f"{st.reason}: {st.message}" if st.message else str(st.reason)
    message = f"The setup task failed on node {node} ({what})"
    if stdouterr_dir and st.exit_code is not None:
        message += f"; see stderr-{node}.txt in {stdouterr_dir}"
    details = [{"name": "nodeName", "value": node}]
    if st.exit_code is not None:
        details.append({"name": "exitCode", "value": str(st.exit_code)})
    if st.reason:
        details.append({"name": "reason", "value": st.reason})
    if st.pod:
        details.append({"name": "podName", "value": st.pod})
    details.append({"name": "setupTaskRevision", "value": revision})
    return {"code": SETUP_TASK_FAILED, "message": message, "details": details}


# ---- the status ----------------------------------------------------------------------------------


@dataclass
class ClusterObserved:
    """What the operator saw of a BatchAICluster's world."""

    spec: BatchAIClusterSpec | None
    generation: int
    status: dict[str, Any]
    nodes: list[dict[str, Any]] = field(default_factory=list)  # slim nodes of this cluster
    job_pods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # node name -> slim job pods
    setup_revision: str | None = None  # None: no setup task
    setup_pods: list[dict[str, Any]] = field(default_factory=list)  # slim setup pods
    setup_stdouterr_dir: str | None = None
    scale_error: dict[str, Any] | None = None  # {code: ScaleFailed, ...} from the last ARM attempt
    scaling: bool = False  # an agent-pool update is in flight
    invalid: tuple[str, str] | None = None  # (code, message): the spec or its setup task cannot be used
    grace_seconds: int = 300


@dataclass
class ClusterStatusResult:
    status: dict[str, Any]
    events: list[tuple[str, str, str]]  # (type, reason, message)
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
    node: dict[str, Any],
    pods: list[dict[str, Any]],
    setup: SetupState | None,
    grace: int,
    now: datetime,
) -> tuple[str, float | None]:
    if node.get("deleting") or node.get("unschedulable") or AUTOSCALER_DELETE_TAINT in node.get("taints", []):
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
    old = obs.status or {}
    events: list[tuple[str, str, str]] = []
    counts = dict.fromkeys(STATES, 0)
    recheck: float | None = None
    errors: list[dict[str, Any]] = []
    not_ready_long: list[str] = []

    pods_by_node: dict[str, list[dict[str, Any]]] = {}
    for p in obs.setup_pods:
        if p.get("nodeName"):
            pods_by_node.setdefault(p["nodeName"], []).append(p)
    # Setup failures already reported for this revision: a failed pod that the DaemonSet controller
    # deletes and recreates must not make its node look fresh again.
    old_failures = {
        d.get("nodeName"): e
        for e in old.get("errors") or []
        if e.get("code") == SETUP_TASK_FAILED
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
                    events.append(("Warning", SETUP_TASK_FAILED, errors[-1]["message"]))
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
        errors.insert(0, {"code": obs.invalid[0], "message": obs.invalid[1]})

    current = len(obs.nodes)
    rng = target_range(obs.spec)
    resizing = obs.scaling or (rng is not None and not rng[0] <= current <= rng[1])
    allocation = "resizing" if resizing else "steady"
    old_allocation = old.get("allocationState")
    transition = old.get("allocationStateTransitionTime")
    if allocation != old_allocation or not transition:
        transition = fmt_time(now)
        if old_allocation is not None:
            events.append(("Normal", allocation.capitalize(), _allocation_message(allocation, current, rng)))

    status: dict[str, Any] = {
        "allocationState": allocation,
        "allocationStateTransitionTime": transition,
        "currentNodeCount": current,
        "nodeStateCounts": {COUNT_KEYS[s]: counts[s] for s in STATES},
        "conditions": [
            _ready_condition(obs, old, counts, errors, not_ready_long, current, rng, resizing, now)
        ],
        "observedGeneration": obs.generation,
    }
    if errors:
        status["errors"] = errors
    return ClusterStatusResult(status, events, recheck)


def _allocation_message(allocation: str, current: int, rng: tuple[int, int] | None) -> str:
    if rng is None:
        return f"{current} node(s)"
    want = str(rng[0]) if rng[0] == rng[1] else f"{rng[0]}..{rng[1]}"
    verb = "Resizing" if allocation == "resizing" else "Steady"
    return f"{verb}: {current} node(s), scaleSettings ask for {want}"


def _ready_condition(
    obs: ClusterObserved,
    old: dict[str, Any],
    counts: dict[str, int],
    errors: list[dict[str, Any]],
    not_ready_long: list[str],
    current: int,
    rng: tuple[int, int] | None,
    resizing: bool,
    now: datetime,
) -> dict[str, Any]:
    setup_failed = [_details(e).get("nodeName", "") for e in errors if e.get("code") == SETUP_TASK_FAILED]
    other_errors = [e for e in errors if e.get("code") != SETUP_TASK_FAILED]
    if other_errors:
        status, reason, message = "False", other_errors[0]["code"], other_errors[0]["message"]
    elif setup_failed:
        status, reason = "False", SETUP_TASK_FAILED
        message = f"The setup task failed on {len(setup_failed)} node(s): {', '.join(setup_failed)}"
    elif not_ready_long:
        status, reason = "False", "NodesUnusable"
        message = (
            f"{len(not_ready_long)} node(s) NotReady for more than {obs.grace_seconds}s: "
            f"{', '.join(not_ready_long)}"
        )
    elif resizing:
        status, reason = "False", "Resizing"
        message = _allocation_message("resizing", current, rng)
    elif counts["preparing"]:
        status, reason = "False", "NodesPreparing"
        message = f"{counts['preparing']} of {current} node(s) preparing"
    elif current == 0 and rng is None:
        status, reason = "False", "NoNodes"
        message = "No node matches the cluster's node selector"
    else:
        status, reason = "True", "Steady"
        message = f"{current} node(s): {counts['idle']} idle, {counts['running']} running"
        if counts["leaving"]:
            message += f", {counts['leaving']} leaving"
    old_ready = next((c for c in old.get("conditions") or [] if c.get("type") == "Ready"), None)
    since = old_ready.get("lastTransitionTime") if old_ready and old_ready.get("status") == status else None
    return {
        "type": "Ready",
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": since or fmt_time(now),
        "observedGeneration": obs.generation,
    }


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    """The merge patch turning old status into new (None when nothing changed); dropped keys -> null."""
    patch: dict[str, Any] = {k: v for k, v in new.items() if old.get(k) != v}
    for k in STATUS_KEYS:
        if k in old and k not in new and old[k] is not None:
            patch[k] = None
    return patch or None
