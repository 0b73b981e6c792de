"""observe/gang.py reads the operator's kopf indexes through Indexes, as the operator does (a lookup kept in
a shared kopf index is read with items(), never indexes[...]: that raised KeyError and stopped the
operator's own admission on main once)."""

from __future__ import annotations

import pytest

from batchai_operator.config import OperatorConfig
from batchai_operator.decide.gang import Mechanism, ServedApis
from batchai_operator.observe import indexes as idx
from batchai_operator.observe.gang import _admission_jobs, _nodes, observe_gang
from batchai_operator.observe.views import slim_node
from decisions import batch_job, pod, spec, world

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


async def test_a_gang_whose_pods_are_all_on_nodes_counts_no_node() -> None:
    """A started multi-node job with every pod on a node waits for nothing: its verdict comes without a
    look through every node (each pass of each running multi-node job did that; make bench, 200 x 4)."""
    job = world(spec(nodeCount=2))
    assert job.cluster is not None and job.cluster["spec"] is not None
    no_index = idx.Indexes({})  # any read of an index raises KeyError
    served = ServedApis(workload=False, kueue=False)
    config = OperatorConfig(gang="admission")
    args = (job.view, job.cluster["spec"], config, served, batch_job())
    facts = await observe_gang(no_index, *args, [pod(0), pod(1)], reader=None)  # type: ignore[arg-type]
    assert facts is not None and facts.mechanism is Mechanism.ADMISSION
    assert (facts.verdict.start, facts.verdict.needed) == (True, 2)
    # One pod not on a node yet: the nodes are counted (here: the missing index is read).
    with pytest.raises(KeyError):
        await observe_gang(no_index, *args, [pod(0), pod(1, node=None)], reader=None)  # type: ignore[arg-type]
