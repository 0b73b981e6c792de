"""A node of a cluster or a job's pod on one changing wakes the multi-node jobs the operator's own gang
admission holds on that cluster (reconcile/trainingjob.py: wake_held_gangs), so that a gang starts when
its nodes are free rather than at its next 3 s recheck; no other job, and nothing where no job can be
under the admission."""

from __future__ import annotations

from typing import Any

import pytest

from batchai_operator.config import OperatorConfig
from batchai_operator.decide.gang import ServedApis, admission_possible
from batchai_operator.observe import indexes as idx
from batchai_operator.reconcile import own_watches, trainingjob
from batchai_operator.reconcile.runtime import Runtime
from recording_kube import RecordingKube

NO_WORKLOAD_API = ServedApis(workload=False, kueue=False)
WORKLOAD_API = ServedApis(workload=True, kueue=False)


def body(uid: str, nodes: int, state: str | None, cluster: str = "nc6", **labels: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": uid,
            "namespace": "ns",
            "uid": uid,
            "generation": 1,
            "labels": labels,
            "creationTimestamp": "2026-12-08T00:00:00Z",
        },
        "spec": {
            "cluster": cluster,
            "nodeCount": nodes,
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
            "cntkSettings": {"pythonScriptFilePath": "a.py"},
        },
        "status": {"executionState": state} if state else {},
    }


JOBS = [
    body("held", 3, "queued"),
    body("new", 2, None),  # not synced yet: no status
    body("running", 3, "running"),
    body("single", 1, "queued"),  # the scheduler's
    body("kueue", 3, "queued", **{"kueue.x-k8s.io/queue-name": "gpu"}),  # Kueue's
    body("elsewhere", 3, "queued", cluster="other"),
]


def runtime(gang: str, served: ServedApis) -> Runtime:
    own = own_watches.make_indexes()
    for job in JOBS:
        own[idx.TRAININGJOB_INDEX].put(("ns", job["metadata"]["uid"]), idx.trainingjob_index(job))
    rt = Runtime(RecordingKube(), OperatorConfig(gang=gang), own)  # type: ignore[arg-type]
    rt.served = served
    return rt


async def woken(monkeypatch: pytest.MonkeyPatch, rt: Runtime) -> list[str]:
    synced: list[str] = []

    async def request_sync(_: Runtime, uid: str) -> None:
        synced.append(uid)

    monkeypatch.setattr(trainingjob, "request_sync", request_sync)
    await trainingjob.wake_held_gangs(rt, ("ns", "nc6"))
    return synced


async def test_the_admissions_queued_gangs_of_the_cluster_wake_and_no_other_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert await woken(monkeypatch, runtime("auto", NO_WORKLOAD_API)) == ["held"]
    assert await woken(monkeypatch, runtime("admission", WORKLOAD_API)) == ["held"]


async def test_the_status_last_written_counts_before_the_index_shows_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rt = runtime("auto", NO_WORKLOAD_API)
    rt.written["held"] = {"executionState": "running"}  # started by the last sync
    rt.written["new"] = {"executionState": "queued"}
    assert await woken(monkeypatch, rt) == ["new"]


async def test_nothing_wakes_where_no_job_is_under_the_admission(monkeypatch: pytest.MonkeyPatch) -> None:
    assert await woken(monkeypatch, runtime("auto", WORKLOAD_API)) == []  # the scheduler's gangs
    assert await woken(monkeypatch, runtime("off", NO_WORKLOAD_API)) == []


def test_admission_is_possible_only_where_a_job_may_be_under_it() -> None:
    assert admission_possible("admission", WORKLOAD_API)
    assert admission_possible("auto", NO_WORKLOAD_API)
    assert not admission_possible("auto", WORKLOAD_API)
    for setting in ("workload", "kueue", "off"):
        assert not admission_possible(setting, NO_WORKLOAD_API)
