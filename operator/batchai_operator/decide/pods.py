"""Readers of a TrainingJob's batch Job and pods (slim views, observe/views.py): node counts, exit codes,
which pods decided the outcome, why pods wait. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from .. import toolkit_facts
from ..api.trainingjob import NodeCounts, TrainingJobSpec
from ..names import LABEL_COMPLETION_INDEX, MAIN_CONTAINER
from .common import parse_time
from .requeues import taken_away

# The batch Job's conditions once its outcome is known: finished, or being finished by the Job controller
# (which then stops its pods).
FINISHED = frozenset({"Complete", "Failed"})
FINISHING = FINISHED | {"SuccessCriteriaMet", "FailureTarget"}
# The batch Job's and the pods' watches are separate streams: the Job can say Failed before its failed
# pod's exit code reaches the pods index. The job waits this long for the code before failing without one.
EXIT_CODE_GRACE_SECONDS = 30.0


# ---- the batch Job ---------------------------------------------------------------------------------------


def true_conditions(batch_job: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The batch Job's conditions whose status is True, by type."""
    conditions = (batch_job.get("status") or {}).get("conditions") or []
    return {c["type"]: c for c in conditions if c.get("status") == "True"}


def finished(batch_job: Mapping[str, Any]) -> bool:
    return not FINISHED.isdisjoint(true_conditions(batch_job))


def finishing(batch_job: Mapping[str, Any]) -> bool:
    """Finished, or the Job controller is finishing it (its pods are being stopped by it)."""
    return not FINISHING.isdisjoint(true_conditions(batch_job))


def deleting(obj: Mapping[str, Any]) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def suspended(batch_job: Mapping[str, Any]) -> bool:
    return bool((batch_job.get("spec") or {}).get("suspend"))


def name(obj: Mapping[str, Any]) -> str:
    return str(obj["metadata"]["name"])


# ---- pods ------------------------------------------------------------------------------------------------


def pod_index(pod: Mapping[str, Any]) -> int:
    """The node index of a pod of an Indexed Job (its completion index)."""
    meta = pod.get("metadata") or {}
    raw = (meta.get("labels") or {}).get(LABEL_COMPLETION_INDEX) or (meta.get("annotations") or {}).get(
        LABEL_COMPLETION_INDEX
    )
    return int(raw or "0")


def node_counts(pods: Sequence[Mapping[str, Any]]) -> NodeCounts:
    counts = NodeCounts()
    for p in pods:
        st = p.get("status") or {}
        phase = st.get("phase")
        if phase == "Running":
            counts.running += 1
            if any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []
            ):
                counts.ready += 1
        elif phase == "Succeeded":
            counts.succeeded += 1
        elif phase == "Failed":
            counts.failed += 1
    return counts


def scheduled(pods: Sequence[Mapping[str, Any]]) -> int:
    """How many pods are bound to a node (not counting those Kubernetes is taking away)."""
    return sum(1 for p in pods if (p.get("spec") or {}).get("nodeName") and not taken_away(p))


def main_terminated(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    """The main container's terminated state (exitCode, reason, message, finishedAt), if it ended."""
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == MAIN_CONTAINER:
            term = (cs.get("state") or {}).get("terminated")
            if term:
                return dict(term)
    return None


def exit_code(pod: Mapping[str, Any]) -> int | None:
    term = main_terminated(pod)
    return int(term.get("exitCode", 0)) if term is not None else None


def success_exit_code(pods: Sequence[Mapping[str, Any]]) -> int:
    """Node 0's exit code (0 when it has none yet)."""
    return next((code for p in pods if pod_index(p) == 0 and (code := exit_code(p)) is not None), 0)


def succeeded(pods: Sequence[Mapping[str, Any]], spec: TrainingJobSpec) -> bool:
    """Node 0 succeeded where only node 0 counts (the Job's successPolicy says the same), else every node."""
    done = {pod_index(p) for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"}
    if toolkit_facts.decided_by_node_zero(spec):
        return 0 in done
    return done >= set(range(spec.node_count))


def failed(pods: Sequence[Mapping[str, Any]], spec: TrainingJobSpec) -> bool:
    """A node whose main container exited non-zero decides, when the Job retries no pod (maxRetryCount 0).
    A pod Kubernetes took away (its exit is the kill, e.g. 143 after a drain) decides nothing: the batch
    Job runs that node again (decide/requeues.py)."""
    if spec.effective_constraints.max_retry_count:
        return False
    node_zero_decides = toolkit_facts.decided_by_node_zero(spec)
    return any(
        exit_code(p) and not taken_away(p) and (pod_index(p) == 0 or not node_zero_decides) for p in pods
    )


def deciding_failure(
    pods: Sequence[Mapping[str, Any]], spec: TrainingJobSpec
) -> tuple[int, dict[str, Any]] | None:
    """(node index, main container's terminated state) of the pod that decided a failed job: node 0 where
    only node 0 counts, else the first to fail."""
    failures = []
    for p in pods:
        if taken_away(p):
            continue
        term = main_terminated(p)
        if term is not None and int(term.get("exitCode", 0)) != 0:
            failures.append((term.get("finishedAt") or "", pod_index(p), term))
    if toolkit_facts.decided_by_node_zero(spec):
        failures.sort(key=lambda f: (f[1] != 0, f[0], f[1]))
    else:
        failures.sort(key=lambda f: (f[0], f[1]))
    return (failures[0][1], failures[0][2]) if failures else None


def exit_code_on_its_way(
    pods: Sequence[Mapping[str, Any]], failed_condition: Mapping[str, Any], now: datetime
) -> bool:
    """The batch Job failed because of a pod (any reason but its deadline; `status.failed` may still be 0
    then, the pod sits in `uncountedTerminatedPods`), no pod view has a non-zero exit code yet, and the
    verdict is recent: the pod's last update is still on its way (EXIT_CODE_GRACE_SECONDS)."""
    if failed_condition.get("reason") == "DeadlineExceeded":
        return False
    if any(exit_code(p) for p in pods):
        return False
    since = parse_time(failed_condition.get("lastTransitionTime"))
    return since is not None and (now - since).total_seconds() < EXIT_CODE_GRACE_SECONDS


def first_start(pods: Sequence[Mapping[str, Any]]) -> str | None:
    starts: list[str] = [s for p in pods if (s := (p.get("status") or {}).get("startTime"))]
    return min(starts) if starts else None


def unschedulable(pods: Sequence[Mapping[str, Any]]) -> list[str]:
    """The scheduler's messages about pods it cannot place."""
    return [
        c["message"]
        for p in pods
        for c in (p.get("status") or {}).get("conditions") or []
        if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("message")
    ]
