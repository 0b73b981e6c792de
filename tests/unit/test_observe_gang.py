"""observe/gang.py reads the operator's kopf indexes through Indexes, as the operator does (a lookup kept in
a shared kopf index is read with items(), never indexes[...]: that raised KeyError and stopped the
operator's own admission on main once)."""

from __future__ import annotations

from batchai_operator.config import OperatorConfig
from batchai_operator.observe import indexes as idx
from batchai_operator.observe.gang import _admission_jobs, _nodes
from batchai_operator.observe.views import slim_node

NODE = {
    "metadata": {"name": "n1", "labels": {}},
    "spec": {},
    "status": {"conditions": [{"type": "Ready", "status": "True"}], "allocatable": {"nvidia.com/gpu": "2"}},
}


def kopf_indexes() -> idx.Indexes:
    return idx.Indexes(
        {
            idx.NODES: {"n1": [slim_node(NODE)]},
            idx.TRAININGJOB_PODS: {(idx.PODS_BY_NODE, "n1"): [{"gpus": 1}]},
            idx.TRAININGJOB_INDEX: {},
        }
    )


def test_nodes_count_the_gpus_job_pods_use() -> None:
    [room] = list(_nodes(kopf_indexes()))
    assert (room.name, room.gpus_allocatable, room.gpus_used, room.schedulable) == ("n1", 2, 1, True)


def test_admission_jobs_read_the_shared_trainingjob_index() -> None:
    assert list(_admission_jobs(kopf_indexes(), OperatorConfig(), served=None)) == []  # type: ignore[arg-type]
