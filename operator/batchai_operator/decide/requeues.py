"""Nodes of a job that Kubernetes took away and runs again (issue 28). Pure.

A pod Kubernetes takes away carries a DisruptionTarget condition: evicted from a node that stopped
reporting (the taint-eviction controller, once the pod's not-ready/unreachable tolerationSeconds, chart
jobs.nodeLostSeconds, are over), drained through the Eviction API, preempted by the scheduler, failed by
pod GC once its node was deleted or declared out of service, or stopped by its kubelet for node pressure
or shutdown. The batch Job ignores such a failure (its podFailurePolicy) and replaces the pod once it is
gone, so the job's own failure budget (maxRetryCount) is untouched; the operator counts these requeues in
status (one per pod, remembered by name) and fails the job beyond jobs.maxRequeues. A multi-node job
restarts its whole attempt instead (decide/trainingjob.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from ..api.trainingjob import Requeue
from ..names import LABEL_COMPLETION_INDEX
from .common import fmt_time

DISRUPTION_TARGET = "DisruptionTarget"
# The DisruptionTarget reasons Kubernetes sets, in the words status uses.
REASONS = {
    "DeletionByTaintManager": "NodeLost",
    "DeletionByPodGC": "NodeLost",
    "EvictionByEvictionAPI": "Evicted",
    "PreemptionByScheduler": "Preempted",
    "TerminationByKubelet": "NodeShutdown",
}
WHAT_HAPPENED = {
    "NodeLost": "its node stopped reporting and it was evicted",
    "Evicted": "it was evicted (a drain or an eviction request)",
    "Preempted": "it was preempted by a pod of higher priority",
    "NodeShutdown": "its node's kubelet stopped it (node shutdown or pressure)",
}


def disruption(pod: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The pod's DisruptionTarget condition, when Kubernetes is taking or took it away."""
    conditions: Sequence[Mapping[str, Any]] = (pod.get("status") or {}).get("conditions") or []
    return next(
        (c for c in conditions if c.get("type") == DISRUPTION_TARGET and c.get("status") == "True"), None
    )


def taken_away(pod: Mapping[str, Any]) -> bool:
    return disruption(pod) is not None


def new_requeues(pods: Sequence[Mapping[str, Any]], seen: Sequence[Requeue], now: datetime) -> list[Requeue]:
    """The pods taken away that status does not list yet, oldest name first (one requeue per pod)."""
    known = {r.pod for r in seen}
    out = []
    for pod in pods:
        cond = disruption(pod)
        meta = pod.get("metadata") or {}
        name = str(meta.get("name") or "")
        if cond is None or name in known:
            continue
        index = (meta.get("labels") or {}).get(LABEL_COMPLETION_INDEX) or "0"
        out.append(
            Requeue(
                pod=name,
                node_index=int(index),
                node_name=(pod.get("spec") or {}).get("nodeName"),
                reason=REASONS.get(str(cond.get("reason")), "Evicted"),
                message=str(cond.get("message") or cond.get("reason") or DISRUPTION_TARGET)[:500],
                time=fmt_time(now),
            )
        )
    return sorted(out, key=lambda r: r.pod)


def describe(requeue: Requeue, count: int, limit: int, restart: int = 0) -> str:
    """One requeue in a sentence, for the Requeued condition and Event. `restart`: the job's node count
    when the whole attempt restarts (a multi-node job), else 0."""
    where = f" on {requeue.node_name}" if requeue.node_name else ""
    what = WHAT_HAPPENED.get(requeue.reason, "it was taken away")
    again = (
        f"The whole attempt is stopped and its {restart} nodes start again together once every pod of it "
        "is gone"
        if restart
        else "It runs again once that pod is gone"
    )
    return (
        f"Node {requeue.node_index}'s pod {requeue.pod}{where} was taken away by Kubernetes: {what} "
        f"({requeue.message}). {again} (requeue {count} of at most {limit}; not counted against "
        "maxRetryCount)"
    )


def too_many_message(requeues: Sequence[Requeue], limit: int) -> str:
    last = requeues[-1]
    where = f" on {last.node_name}" if last.node_name else ""
    return (
        f"The job's nodes were taken away by Kubernetes {len(requeues)} times, more than the "
        f"{limit} requeues this installation allows (chart value jobs.maxRequeues); the last: node "
        f"{last.node_index}'s pod {last.pod}{where}, {last.reason}: {last.message}"
    )
