"""The TrainingJob decision's inputs and the decision itself, for the unit tests: `world` builds what
observe/trainingjob.py would see (TrainingJobWorld), `decision` decides it as the controller does (after
the desired step, with the real builders). The batch Job and pod views are as the indexes keep them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from batchai_operator.api.trainingjob import TrainingJobSpec, TrainingJobStatus
from batchai_operator.config import OperatorConfig
from batchai_operator.decide.common import Desired, parse_time
from batchai_operator.decide.trainingjob import TrainingJobDecision, decide
from batchai_operator.manifests.children import TrainingJobChildren
from batchai_operator.names import API_VERSION
from batchai_operator.observe.memory import MountFailure, Refusal
from batchai_operator.observe.trainingjob import TrainingJobWorld
from batchai_operator.observe.views import cluster_view, trainingjob_view
from batchai_operator.reconcile.controller import build_desired
from batchai_operator.reconcile.trainingjob import KIND

NOW = "2026-11-29T12:00:00Z"
LATER = "2026-11-29T12:05:00Z"
CLUSTER = {"vmSize": "Standard_NC6"}
# The kubelet's words when it cannot mount the job's Azure Files share (the volume names its kind).
AFS_MOUNT_FAILED = 'MountVolume.SetUp failed for volume "job-afs-0123456789" : Permission denied'


def at(when: str) -> datetime:
    parsed = parse_time(when)
    assert parsed is not None
    return parsed


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


def batch_job(*conditions: tuple[str, str], suspend: bool = False) -> dict[str, Any]:
    return {
        "metadata": {"name": "j"},
        "spec": {"suspend": suspend},
        "status": {"conditions": [{"type": t, "status": "True", "reason": r} for t, r in conditions]},
    }


def mount_failure(message: str = AFS_MOUNT_FAILED, attempts: int = 3) -> MountFailure:
    """A FailedMount Event of node 0 that counts, tried `attempts` times (the default threshold is 3)."""
    return MountFailure(0, attempts, message)


def refused(message: str, when: datetime, status: int = 403) -> Refusal:
    return Refusal("Job", status, message, when)


def world(
    s: TrainingJobSpec | None = None,
    status: TrainingJobStatus | dict[str, Any] | None = None,
    *,
    labels: dict[str, str] | None = None,
    cluster: dict[str, Any] | None = CLUSTER,
    unparsed: str | None = None,
    **kw: Any,
) -> TrainingJobWorld:
    """What decide sees: the default spec on an existing cluster, plus what the test gives. `cluster`: the
    BatchAICluster's spec (None: there is none); `unparsed`: the TrainingJob's spec does not parse, why."""
    s = None if unparsed else (s or spec())
    meta = {"name": "j", "namespace": "ns", "uid": "u1", "generation": 1, "labels": labels or {}}
    view = trainingjob_view({"apiVersion": API_VERSION, "metadata": meta, "spec": {"cluster": "nc6"}})
    view.update(spec=s, specError=unparsed)
    cluster_meta = {"name": "nc6", "namespace": "ns", "uid": "c1", "generation": 1}
    if isinstance(status, TrainingJobStatus):
        status = status.wire()
    return TrainingJobWorld(
        view=view,
        status=TrainingJobStatus.model_validate(status or {}),
        config=kw.pop("config", OperatorConfig()),
        cluster=cluster_view({"metadata": cluster_meta, "spec": cluster}) if cluster is not None else None,
        **kw,
    )


def decision(
    w: TrainingJobWorld, now: str | datetime = NOW, desired: Desired[TrainingJobChildren] | None = None
) -> TrainingJobDecision:
    """decide, as the controller calls it: after the desired step (unless the test gives its outcome)."""
    return decide(
        w,
        desired if desired is not None else build_desired(KIND, w),
        at(now) if isinstance(now, str) else now,
    )
