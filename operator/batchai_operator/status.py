"""Pure status computation: what the children say -> TrainingJob.status, Events, and what to stop.

Level-based: given the spec, the current status and the observed Job and pods, it returns the whole
status again; the handler patches only when it differs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .api.trainingjob import TrainingJobSpec
from .build.job import MAIN_CONTAINER, SPEC_HASH_ANNOTATION, spec_hash
from .build.paths import JobIdentity, output_directories, stdouterr_dir
from .launcher import commands

TERMINAL = ("succeeded", "failed")
CONDITION_FOR_STATE = {
    "queued": "Queued",
    "running": "Running",
    "terminating": "Running",
    "succeeded": "Succeeded",
    "failed": "Failed",
}
CONDITION_TYPES = ("Queued", "Running", "Succeeded", "Failed", "Suspended")
SPEC_APPLIED = "SpecApplied"
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
START_FAILURES = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")


@dataclass
class Observed:
    """What the operator saw of a TrainingJob's world."""

    spec: TrainingJobSpec
    ident: JobIdentity
    generation: int
    status: dict[str, Any]
    cluster: str
    cluster_found: bool
    job: dict[str, Any] | None = None
    pods: list[dict[str, Any]] = field(default_factory=list)
    build_error: tuple[str, str] | None = None  # (code, message)
    waiting_reason: tuple[str, str] | None = None  # queued (reason, message) set by the handler
    mount_failure: tuple[int, str] | None = None  # (node index, kubelet's FailedMount message)


@dataclass
class StatusResult:
    status: dict[str, Any]
    events: list[tuple[str, str, str]]  # (type, reason, message)
    stop_job: bool = False  # the operator decided the outcome; the Job must be stopped


@dataclass
class _Decision:
    state: str
    reason: str
    message: str
    exit_code: int | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    stop_job: bool = False
    suspended: bool = False


def compute_status(obs: Observed, now: str) -> StatusResult:
    """The TrainingJob status for what was observed, at time `now` (RFC 3339)."""
    old = obs.status or {}
    old_state = old.get("executionState")
    counts = node_counts(obs.pods)
    if old_state in TERMINAL:
        # Batch AI: a completed job stays completed (terminate is a no-op); only counts move on.
        kept = dict(old)
        kept["nodes"] = counts if obs.pods else old.get("nodes", counts)
        kept["observedGeneration"] = obs.generation
        return StatusResult(kept, [])

    d = decide(obs)
    info = dict(old.get("executionInfo") or {})
    if d.state in ("running", "terminating") or (d.state in TERMINAL and obs.job is not None):
        info.setdefault("startTime", _pods_start(obs.pods) or now)
    if d.state in TERMINAL:
        info["endTime"] = now
        if d.exit_code is not None:
            info["exitCode"] = d.exit_code
        if d.errors:
            info["errors"] = d.errors

    new: dict[str, Any] = {
        "executionState": d.state,
        "executionStateTransitionTime": old.get("executionStateTransitionTime")
        if old_state == d.state
        else now,
        "executionInfo": info,
        "jobOutputDirectoryPathSegment": obs.ident.segment,
        "outputDirectories": [{"id": i, "path": p} for i, p in output_directories(obs.spec, obs.ident)],
        "stdOutErrDirectory": stdouterr_dir(obs.spec, obs.ident),
        "toolType": obs.spec.tool_type,
        "cluster": obs.cluster,
        "nodes": counts,
        "nodesSummary": f"{counts['running'] + counts['succeeded'] + counts['failed']}/{obs.spec.node_count}",
        "observedGeneration": obs.generation,
    }
    new["conditions"] = _conditions(old.get("conditions") or [], d, obs.generation, now)
    new["conditions"].append(_spec_applied(obs, old.get("conditions") or [], now))
    events = []
    if d.state != old_state:
        kind = "Warning" if d.state == "failed" else "Normal"
        events.append((kind, d.state.capitalize(), d.message))
    return StatusResult(new, events, stop_job=d.stop_job)


def decide(obs: Observed) -> _Decision:
    """The execution state and why."""
    spec = obs.spec
    if obs.build_error:
        code, message = obs.build_error
        return _failed(code, message, stop=True)
    job = obs.job
    if spec.terminate:
        if job is not None and not _job_finished(job):
            return _Decision("terminating", "Terminating", "Termination requested: stopping the job's pods")
        return _failed("JobTerminated", "The job was terminated by the user (spec.terminate)")
    if not obs.cluster_found:
        return _Decision(
            "queued",
            "ClusterNotFound",
            f"BatchAICluster {obs.cluster!r} does not exist in this namespace yet",
        )
    if obs.waiting_reason:
        return _Decision("queued", *obs.waiting_reason)
    if job is None:
        return _Decision("queued", "Creating", "Creating the job's pods")

    conds = {
        c["type"]: c for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"
    }
    if "Complete" in conds or "SuccessCriteriaMet" in conds:
        return _Decision(
            "succeeded", "Succeeded", "The job completed successfully", exit_code=_success_exit(obs)
        )
    failed = conds.get("Failed") or conds.get("FailureTarget")
    if failed:
        return _job_failure(obs, failed)

    pod_failure = _pod_start_failure(obs.pods)
    if pod_failure:
        return pod_failure
    if obs.mount_failure:
        index, message = obs.mount_failure
        # Batch AI reported volumes that would not mount as AZFMountError with exit code -1.
        return _failed("AZFMountError", f"A volume of node {index} will not mount: {message}", -1, stop=True)
    if (job.get("spec") or {}).get("suspend"):
        return _Decision("queued", "Suspended", "The job is suspended", suspended=True)
    scheduled = [p for p in obs.pods if (p.get("spec") or {}).get("nodeName")]
    if len(scheduled) >= spec.node_count:
        return _Decision("running", "Running", f"All {spec.node_count} node(s) allocated; the job is running")
    return _Decision("queued", "WaitingForNodes", _waiting_message(obs))


def node_counts(pods: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"ready": 0, "running": 0, "succeeded": 0, "failed": 0}
    for p in pods:
        st = p.get("status") or {}
        phase = st.get("phase")
        if phase == "Running":
            counts["running"] += 1
            if any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []
            ):
                counts["ready"] += 1
        elif phase == "Succeeded":
            counts["succeeded"] += 1
        elif phase == "Failed":
            counts["failed"] += 1
    return counts


def pod_index(pod: dict[str, Any]) -> int:
    meta = pod.get("metadata") or {}
    raw = (
        (meta.get("labels") or {}).get(INDEX_LABEL) or (meta.get("annotations") or {}).get(INDEX_LABEL) or "0"
    )
    return int(raw)


def main_terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == MAIN_CONTAINER:
            term = (cs.get("state") or {}).get("terminated")
            if term:
                return dict(term)
    return None


def _failed(code: str, message: str, exit_code: int | None = None, stop: bool = False) -> _Decision:
    err: dict[str, Any] = {"code": code, "message": message}
    if exit_code is not None:
        err["details"] = [{"name": "exitCode", "value": str(exit_code)}]
    return _Decision("failed", code, message, exit_code=exit_code, errors=[err], stop_job=stop)


def _job_finished(job: dict[str, Any]) -> bool:
    conds = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conds)


def _success_exit(obs: Observed) -> int:
    for p in sorted(obs.pods, key=pod_index):
        term = main_terminated(p)
        if term is not None and pod_index(p) == 0:
            return int(term.get("exitCode", 0))
    return 0


def _job_failure(obs: Observed, cond: dict[str, Any]) -> _Decision:
    reason = cond.get("reason") or ""
    if reason == "DeadlineExceeded":
        limit = obs.spec.effective_constraints.max_wall_clock_time
        return _failed("MaxWallClockTimeExceeded", f"The job ran longer than maxWallClockTime ({limit})")
    # The pod that decided the outcome: node 0 where only node 0 counts, else the first to fail.
    failed = []
    for p in obs.pods:
        term = main_terminated(p)
        if term is not None and int(term.get("exitCode", 0)) != 0:
            failed.append((term.get("finishedAt") or "", pod_index(p), p, term))
    if commands.decided_by_node_zero(obs.spec):
        failed.sort(key=lambda f: (f[1] != 0, f[0], f[1]))
    else:
        failed.sort(key=lambda f: (f[0], f[1]))
    if not failed:
        return _failed("JobFailed", f"The job failed: {cond.get('message') or reason or 'no pod exit code'}")
    _, index, _pod, term = failed[0]
    code = int(term["exitCode"])
    message = (term.get("message") or "").strip()
    if message.startswith("JobPreparationFailed"):
        return _failed(
            "JobPreparationFailed", f"Job preparation failed on node {index} with exit code {code}", code
        )
    if message.startswith("MountFailed"):
        return _failed("AZFMountError", f"Mounting a volume failed on node {index}: {message}", code)
    if message.startswith("LauncherFailed"):
        return _failed("JobFailed", f"The launcher failed on node {index}: {message}", code)
    oom = " (OOMKilled: the container ran out of memory)" if term.get("reason") == "OOMKilled" else ""
    return _failed("JobFailed", f"Job failed with non-zero exit code {code} on node {index}{oom}", code)


def _pod_start_failure(pods: list[dict[str, Any]]) -> _Decision | None:
    for p in sorted(pods, key=pod_index):
        for cs in (p.get("status") or {}).get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason in PULL_FAILURES or reason in START_FAILURES:
                detail = waiting.get("message") or reason
                return _failed(
                    "FailedStartingContainer",
                    f"Node {pod_index(p)} could not start container {cs.get('name')} ({reason}): {detail}",
                    stop=True,
                )
    return None


def _waiting_message(obs: Observed) -> str:
    unschedulable = []
    for p in obs.pods:
        for c in (p.get("status") or {}).get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("message"):
                unschedulable.append(c["message"])
    n = obs.spec.node_count
    if unschedulable:
        return (
            f"Waiting for {n} free node(s) of cluster {obs.cluster}: "
            f"{len(unschedulable)} pod(s) unschedulable: {unschedulable[0]}"
        )
    return f"Waiting for {n} node(s) of cluster {obs.cluster}"


def _pods_start(pods: list[dict[str, Any]]) -> str | None:
    starts: list[str] = [s for p in pods if (s := (p.get("status") or {}).get("startTime"))]
    return min(starts) if starts else None


_SECRET_OPTION = re.compile(r"(?i)\b(password|pass|passwd|key|accountkey|sig|sastoken|token|secret)=[^,\s&]*")


def mount_failure_message(event_message: str, volumes: dict[str, str]) -> str:
    """The kubelet's FailedMount message, made safe and readable for status and Events.

    Drops the mount command's arguments (they may carry credentials), redacts option-style secrets,
    and names the Batch AI volume instead of the pod volume's hashed name.
    """
    lines = [ln for ln in event_message.splitlines() if not ln.strip().startswith("Mounting arguments:")]
    text = " ".join(ln.strip() for ln in lines if ln.strip())
    text = _SECRET_OPTION.sub(lambda m: f"{m.group(1)}=<redacted>", text)
    for name, description in volumes.items():
        text = text.replace(f'"{name}"', description).replace(name, description)
    return text[:1000]


def _spec_applied(obs: Observed, old: list[dict[str, Any]], now: str) -> dict[str, Any]:
    """Whether the running Job was built from the current spec: edits after the start are not applied."""
    built_from = ((obs.job or {}).get("metadata") or {}).get("annotations", {}).get(SPEC_HASH_ANNOTATION)
    applied = built_from is None or built_from == spec_hash(obs.spec)
    prev = next((c for c in old if c.get("type") == SPEC_APPLIED), None)
    status = "True" if applied else "False"
    return {
        "type": SPEC_APPLIED,
        "status": status,
        "reason": "Applied" if applied else "ImmutableAfterStart",
        "message": ""
        if applied
        else "The spec changed after the job's pods were created; only suspend, terminate and "
        "ttlSecondsAfterFinished apply to a started job. Delete and re-create it to run the new spec.",
        "lastTransitionTime": now
        if prev is None or prev.get("status") != status
        else prev["lastTransitionTime"],
        "observedGeneration": obs.generation,
    }


def _conditions(old: list[dict[str, Any]], d: _Decision, generation: int, now: str) -> list[dict[str, Any]]:
    active = CONDITION_FOR_STATE[d.state]
    by_type = {c["type"]: c for c in old}
    out = []
    for ctype in CONDITION_TYPES:
        is_true = ctype == active or (ctype == "Suspended" and d.suspended)
        status = "True" if is_true else "False"
        prev = by_type.get(ctype)
        changed = prev is None or prev.get("status") != status
        out.append(
            {
                "type": ctype,
                "status": status,
                "reason": d.reason if is_true else (prev or {}).get("reason") or "NotActive",
                "message": d.message if is_true else "",
                "lastTransitionTime": now if changed else prev.get("lastTransitionTime", now),  # type: ignore[union-attr]
                "observedGeneration": generation,
            }
        )
    return out
