"""Size limits: a job too large for a ConfigMap fails before anything is rendered, in linear time."""

from __future__ import annotations

import time

import pytest

from batchai_operator.api.cluster import BatchAIClusterSpec
from batchai_operator.config import OperatorConfig
from batchai_operator.launcher.commands import render_config
from batchai_operator.manifests.children import build_children
from batchai_operator.manifests.context import hosts
from batchai_operator.manifests.errors import BuildError
from batchai_operator.manifests.limits import CONFIG_MAP_MAX_BYTES, estimated_config_bytes
from samples import launcher_spec

OBJ = {"metadata": {"name": "big", "namespace": "ns", "uid": "u"}}
ND96 = BatchAIClusterSpec.model_validate({"vmSize": "Standard_ND96asr_v4"})


def tf(nodes: int, workers: int, ps: int = 1) -> object:
    settings = {"pythonScriptFilePath": "mnist.py", "workerCount": workers, "parameterServerCount": ps}
    return launcher_spec(nodes, tensorFlowSettings=settings)


@pytest.mark.parametrize(("nodes", "workers"), [(1, 1), (2, 3), (8, 64), (32, 200)])
def test_the_estimate_bounds_the_rendered_size(nodes: int, workers: int) -> None:
    spec = tf(nodes, workers)
    children = build_children(OBJ, spec, "c", ND96, OperatorConfig())  # type: ignore[arg-type]
    data = children.config_map["data"] if children.config_map else render_config(spec, hosts("big", nodes), 8)  # type: ignore[arg-type]
    rendered = sum(len(k) + len(v.encode()) for k, v in data.items())
    assert rendered <= estimated_config_bytes(spec, hosts("big", nodes)) <= 2 * rendered + 50_000  # type: ignore[arg-type]


def test_a_job_too_large_fails_at_once_with_a_clear_error() -> None:
    """8000 TensorFlow tasks would render gigabytes of TF_CONFIG (quadratic): refused before rendering."""
    started = time.monotonic()
    with pytest.raises(BuildError) as err:
        build_children(OBJ, tf(1000, 8000, ps=8), "c", ND96, OperatorConfig())  # type: ignore[arg-type]
    assert time.monotonic() - started < 2  # linear: no rendering happened
    assert err.value.code == "JobTooLarge"
    assert (
        "8008 task(s) on 1000 node(s)" in err.value.message
        and f"{CONFIG_MAP_MAX_BYTES // 1024} KiB" in err.value.message
    )


def test_many_pytorch_ranks_with_long_arguments_are_refused() -> None:
    spec = launcher_spec(
        2,
        pyTorchSettings={
            "pythonScriptFilePath": "t.py",
            "processCount": 4000,
            "commandLineArgs": "x" * 30000,
        },
    )
    with pytest.raises(BuildError, match="at most"):
        build_children(OBJ, spec, "c", ND96, OperatorConfig())


def test_worker_count_over_the_clusters_gpus_fails_at_start() -> None:
    """Batch AI: workerCount <= nodeCount x GPUs per VM, checked once the cluster is known."""
    nc24 = BatchAIClusterSpec.model_validate({"vmSize": "Standard_NC24"})
    with pytest.raises(BuildError) as err:
        build_children(OBJ, tf(2, 9), "c", nc24, OperatorConfig())  # type: ignore[arg-type]
    assert err.value.code == "InvalidWorkerCount" and "(2 x 4 = 8)" in err.value.message
    build_children(OBJ, tf(2, 8), "c", nc24, OperatorConfig())  # type: ignore[arg-type]
