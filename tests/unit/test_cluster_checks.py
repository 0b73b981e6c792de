"""Checks that need the cluster's GPUs per node (Batch AI's REST spec), made when a job starts."""

from __future__ import annotations

from typing import Any

import pytest

from batchai_operator.api.cluster_checks import CODE_INVALID_WORKER_COUNT, check_against_cluster
from batchai_operator.api.trainingjob import TrainingJobSpec


def spec(node_count: int, **toolkit: Any) -> TrainingJobSpec:
    return TrainingJobSpec.model_validate(
        {"cluster": "nc24", "nodeCount": node_count, "stdOutErrPathPrefix": "/logs", **toolkit}
    )


def tf(workers: int | None) -> dict[str, Any]:
    settings: dict[str, Any] = {"pythonScriptFilePath": "tf.py"}
    if workers is not None:
        settings["workerCount"] = workers
    return {"tensorFlowSettings": settings}


@pytest.mark.parametrize(
    ("node_count", "workers", "gpus", "fits"),
    [
        (2, 8, 4, True),  # nodeCount x GPUs per VM exactly
        (2, 9, 4, False),
        (1, 2, 1, False),  # two workers on one single-GPU node
        (2, None, 1, True),  # the default, nodeCount workers
        (3, 3, 0, True),  # a CPU VM counts as one GPU: nodeCount workers still fit
        (3, 4, 0, False),
    ],
)
def test_worker_count_against_gpus_per_node(
    node_count: int, workers: int | None, gpus: int, fits: bool
) -> None:
    result = check_against_cluster(spec(node_count, **tf(workers)), gpus)
    if fits:
        assert result is None
    else:
        assert result is not None
        code, message = result
        assert code == CODE_INVALID_WORKER_COUNT
        per_node = max(gpus, 1)
        assert message == (
            f"tensorFlowSettings.workerCount {workers} exceeds nodeCount x GPUs per VM "
            f"({node_count} x {per_node} = {node_count * per_node})"
        )


def test_other_toolkits_fit_any_cluster() -> None:
    job = spec(2, horovodSettings={"pythonScriptFilePath": "h.py", "processCount": 64})
    assert check_against_cluster(job, 1) is None
