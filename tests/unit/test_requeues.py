"""Nodes Kubernetes took away (issue 28): which pods count as requeues, once each, and what status says."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from batchai_operator.api.trainingjob import Requeue
from batchai_operator.decide.requeues import describe, new_requeues, taken_away, too_many_message

NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def pod(name: str, index: int = 0, reason: str | None = None, node: str = "real-1") -> dict[str, Any]:
    conditions = [{"type": "Ready", "status": "False"}]
    if reason:
        conditions.append(
            {"type": "DisruptionTarget", "status": "True", "reason": reason, "message": f"{reason}: k8s says"}
        )
    return {
        "metadata": {"name": name, "labels": {"batch.kubernetes.io/job-completion-index": str(index)}},
        "spec": {"nodeName": node},
        "status": {"phase": "Running", "conditions": conditions},
    }


def test_each_disruption_reason_is_a_requeue_in_status_words() -> None:
    pods = [
        pod("a", 0, "DeletionByTaintManager"),
        pod("b", 1, "EvictionByEvictionAPI"),
        pod("c", 2, "PreemptionByScheduler"),
        pod("d", 3, "DeletionByPodGC"),
        pod("e", 4, "TerminationByKubelet"),
        pod("f", 5),  # running normally
    ]
    got = new_requeues(pods, [], NOW)
    assert [(r.pod, r.node_index, r.reason) for r in got] == [
        ("a", 0, "NodeLost"),
        ("b", 1, "Evicted"),
        ("c", 2, "Preempted"),
        ("d", 3, "NodeLost"),
        ("e", 4, "NodeShutdown"),
    ]
    assert got[0].node_name == "real-1" and got[0].time == "2026-12-07T08:00:00Z"
    assert [taken_away(p) for p in pods] == [True] * 5 + [False]


def test_a_pod_is_counted_once_however_often_it_is_seen() -> None:
    first = new_requeues([pod("a", 0, "DeletionByTaintManager")], [], NOW)
    again = new_requeues([pod("a", 0, "DeletionByTaintManager"), pod("b", 0, "DeletionByPodGC")], first, NOW)
    assert [r.pod for r in again] == ["b"]


def test_a_false_disruption_condition_is_not_a_requeue() -> None:
    p = pod("a")
    p["status"]["conditions"].append({"type": "DisruptionTarget", "status": "False"})
    assert new_requeues([p], [], NOW) == [] and not taken_away(p)


def test_messages_name_the_pod_node_and_bound() -> None:
    r = Requeue(pod="j-0-x", node_index=0, node_name="real-1", reason="NodeLost", message="m", time="t")
    text = describe(r, 1, 3)
    assert "Node 0's pod j-0-x on real-1" in text and "requeue 1 of at most 3" in text
    assert "not counted against maxRetryCount" in text
    too_many = too_many_message([r, r, r, r], 3)
    assert "4 times" in too_many and "jobs.maxRequeues" in too_many and "NodeLost" in too_many
