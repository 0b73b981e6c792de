"""Builders of the pure TrainingJob decision's inputs (decide/trainingjob.py), and `compute_status`: the
decision seen as status (a wire dict), Events and whether it stops the Job. Shared by the unit tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from batchai_operator.api.trainingjob import TrainingJobSpec, TrainingJobStatus
from batchai_operator.decide.common import Event, parse_time
from batchai_operator.decide.trainingjob import (
    DeleteBatchJob,
    TrainingJobDecision,
    TrainingJobObserved,
    decide,
)
from batchai_operator.manifests.paths import TrainingJobIdentity

NOW = "2026-11-29T12:00:00Z"
LATER = "2026-11-29T12:05:00Z"
IDENT = TrainingJobIdentity(namespace="ns", name="j", uid="u1", experiment="default")


def spec(**extra: Any) -> TrainingJobSpec:
    base: dict[str, Any] = {
        "cluster": "nc6",
        "nodeCount": 1,
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "cntkSettings": {"pythonScriptFilePath": "a.py"},
        "outputDirectories": [{"id": "MODEL", "pathPrefix": "/out", "pathSuffix": "m"}],
    }
    base.update(extra)
    return TrainingJobSpec.model_validate(base)


def pod(
    index: int,
    phase: str = "Running",
    exit_code: int | None = None,
    node: str | None = "n1",
    waiting: str | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    cs: dict[str, Any] = {"name": "main"}
    if exit_code is not None:
        cs["state"] = {
            "terminated": {
                "exitCode": exit_code,
                "finishedAt": f"2026-11-29T12:0{index}:00Z",
                **({"message": message} if message else {}),
            }
        }
    elif waiting:
        cs["state"] = {"waiting": {"reason": waiting, "message": "pull access denied"}}
    else:
        cs["state"] = {"running": {}}
    return {
        "metadata": {
            "name": f"j-{index}",
            "labels": {"batch.kubernetes.io/job-completion-index": str(index)},
        },
        "spec": {"nodeName": node},
        "status": {
            "phase": phase,
            "startTime": "2026-11-29T11:59:00Z",
            "containerStatuses": [cs],
            "conditions": [{"type": "Ready", "status": "True" if phase == "Running" else "False"}],
        },
    }


def job(*conditions: tuple[str, str], suspend: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"name": "j"},
        "spec": {"suspend": suspend},
        "status": {"conditions": [{"type": t, "status": "True", "reason": r} for t, r in conditions]},
    }


def observe(
    s: TrainingJobSpec | None = None, status: dict[str, Any] | None = None, **kw: Any
) -> TrainingJobObserved:
    """What decide sees: the default spec on an existing cluster, plus what the test gives.

    `build_error` (code, message) is the outcome of an earlier start (TrainingJobObserved.start_error).
    """
    kw.setdefault("cluster_found", True)
    if "build_error" in kw:
        kw["start_error"] = kw.pop("build_error")
    return TrainingJobObserved(
        spec=s or spec(),
        ident=IDENT,
        generation=1,
        status=TrainingJobStatus.model_validate(status or {}),
        cluster="nc6",
        **kw,
    )


@dataclass
class StatusResult:
    status: dict[str, Any]  # as written to the API
    events: list[Event]
    stop_job: bool  # the decision deletes the Job (the operator decided the outcome)
    decision: TrainingJobDecision


def compute_status(obs: TrainingJobObserved, now: str) -> StatusResult:
    at = parse_time(now)
    assert at is not None
    d = decide(obs, at)
    return StatusResult(d.status.wire(), d.events, any(isinstance(a, DeleteBatchJob) for a in d.actions), d)
