"""kueue.kueue_hold: when Kueue holds a TrainingJob's Job, and the queued reason the status shows."""

from __future__ import annotations

from typing import Any

import pytest

from batchai_operator.decide.kueue import DEACTIVATED, EVICTED, HELD, kueue_hold, queue_name

LABELS = {"kueue.x-k8s.io/queue-name": "gpu-queue", "team": "a"}


def job(suspend: bool | None, *conditions: tuple[str, str]) -> dict[str, Any]:
    spec = {} if suspend is None else {"suspend": suspend}
    return {
        "metadata": {"name": "tj", "namespace": "team-a"},
        "spec": spec,
        "status": {"conditions": [{"type": t, "status": s} for t, s in conditions]},
    }


def workload(*conditions: dict[str, Any], active: bool | None = None) -> dict[str, Any]:
    spec = {"queueName": "gpu-queue"} | ({} if active is None else {"active": active})
    return {"spec": spec, "status": {"conditions": list(conditions)}}


PENDING = {
    "type": "QuotaReserved",
    "status": "False",
    "reason": "Pending",
    "message": "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu "
    "in flavor gpu, 2 more needed",
}


def test_queue_name_from_labels() -> None:
    assert queue_name(LABELS) == "gpu-queue"
    assert queue_name({"kueue.x-k8s.io/queue-name": ""}) is None
    assert queue_name(None) is None


@pytest.mark.parametrize(
    ("labels", "the_job"),
    [
        ({"team": "a"}, job(True)),  # no queue label: a user-suspended job, not Kueue's
        (LABELS, None),  # no Job yet
        (LABELS, job(False)),  # admitted and running
        (LABELS, job(None)),
        (LABELS, job(True, ("Complete", "True"))),  # finished: the outcome decides
        (LABELS, job(True, ("Failed", "True"))),
    ],
    ids=["no-queue-label", "no-job", "unsuspended", "suspend-unset", "complete", "failed"],
)
def test_not_held(labels: dict[str, str], the_job: dict[str, Any] | None) -> None:
    assert kueue_hold(labels, the_job) is None
    assert kueue_hold(labels, the_job, workload(PENDING)) is None


def test_held_without_the_workload_names_kueue_the_queue_and_where_to_look() -> None:
    assert kueue_hold(LABELS, job(True, ("Complete", "False"))) == (
        HELD,
        "Kueue holds the job in LocalQueue 'gpu-queue' until its ClusterQueue has quota for it "
        "(kubectl get workloads -n team-a shows why)",
    )


def test_held_with_the_workload_quotes_kueue() -> None:
    reason, message = kueue_hold(LABELS, job(True), workload(PENDING)) or ("", "")
    assert reason == HELD
    assert message == (
        "Kueue holds the job in LocalQueue 'gpu-queue' until its ClusterQueue has quota for it: "
        "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor "
        "gpu, 2 more needed"
    )


def test_workload_not_yet_evaluated() -> None:
    assert kueue_hold(LABELS, job(True), workload()) == (
        HELD,
        "Kueue holds the job in LocalQueue 'gpu-queue' until its ClusterQueue has quota for it",
    )


def test_admitted_but_not_yet_unsuspended() -> None:
    admitted = workload(
        {"type": "QuotaReserved", "status": "True"},
        {"type": "Admitted", "status": "True", "reason": "Admitted"},
    )
    assert kueue_hold(LABELS, job(True), admitted) == (
        HELD,
        "Kueue admitted the job in LocalQueue 'gpu-queue'; waiting for Kueue to start it",
    )


def test_evicted_or_preempted() -> None:
    evicted = workload(
        PENDING,
        {"type": "Evicted", "status": "True", "reason": "Preempted", "message": "Preempted to accommodate a "
         "workload (UID: 1) due to prioritization in the ClusterQueue"},
    )  # fmt: skip
    reason, message = kueue_hold(LABELS, job(True), evicted) or ("", "")
    assert reason == EVICTED
    assert message.startswith(
        "Kueue evicted the job and holds it in LocalQueue 'gpu-queue' again: Preempted to"
    )


def test_deactivated_workload() -> None:
    reason, message = kueue_hold(LABELS, job(True), workload(PENDING, active=False)) or ("", "")
    assert reason == DEACTIVATED
    assert "deactivated" in message and "'gpu-queue'" in message
