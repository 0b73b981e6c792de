"""What the operator sees of a multi-node job's gang: its mechanism, the nodes of its placement that are
free, and, under the operator's own admission, whether it may start now (decide/admission.py over every
job that admission serves). Read from the indexes; one request, for the PodGroup's words, only while the
job's pods wait under the Workload API.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

from ..api.cluster import BatchAIClusterSpec
from ..api.trainingjob import TrainingJobSpec
from ..config import OperatorConfig
from ..decide import pods as pod_readers
from ..decide.admission import GangJob, NodeRoom, Placement, Verdict, admit
from ..decide.gang import GangFacts, Mechanism, ServedApis, choose, pod_group_words
from ..decide.kueue import queue_name
from ..manifests.errors import BuildError
from ..manifests.naming import child_name
from ..manifests.placement import gpus_per_node, node_selector, tolerations
from ..names import TERMINAL_STATES
from . import indexes as idx
from .trainingjob import batch_job_pods, our_batch_job
from .views import BatchJobView, PodView, TrainingJobView

PRIORITY = {"low": 0, "normal": 1, "high": 2}  # schedulingPriority, in the admission's order


class PodGroupReader(Protocol):
    async def read_pod_group(self, namespace: str, name: str) -> dict[str, Any] | None: ...


def mechanism_of(view: TrainingJobView, config: OperatorConfig, served: ServedApis) -> Mechanism | None:
    spec = view["spec"]
    if spec is None:
        return None
    return choose(config.gang, served, spec.node_count, queue_name(view["metadata"]["labels"]))


async def observe_gang(
    indexes: idx.Indexes,
    view: TrainingJobView,
    cluster_spec: BatchAIClusterSpec | None,
    config: OperatorConfig,
    served: ServedApis,
    batch_job: BatchJobView | None,
    pods: list[PodView],
    reader: PodGroupReader,
    unsuspended: bool = False,
) -> GangFacts | None:
    """The job's gang; None for a job with none (single-node, `gang: off`) or no usable cluster."""
    mechanism = mechanism_of(view, config, served)
    spec = view["spec"]
    if mechanism is None or spec is None or cluster_spec is None:
        return None
    me = _gang_job(view["metadata"]["uid"], view, spec, cluster_spec, batch_job, pods, unsuspended)
    if me is None:
        return None  # the cluster's placement cannot be worked out: building the children says why
    if me.started and me.bound >= me.node_count:
        # Every pod of the gang is on a node: nothing to wait for, so no node to count (each pass of each
        # running multi-node job looked through every node: most of the operator's CPU at 200 jobs x 4
        # nodes in make bench).
        return GangFacts(mechanism, Verdict(start=True, needed=me.node_count, free=me.node_count))
    nodes = list(_nodes(indexes))
    waiting = me.started is False
    if mechanism is Mechanism.ADMISSION and waiting:
        jobs = [j for j in _admission_jobs(indexes, config, served) if j.key != me.key]
        verdict = admit([*jobs, me], nodes)[me.key]
    else:
        # The counts (and whether it can ever fit) of the job alone; Kueue and the scheduler decide.
        alone = GangJob(me.key, me.node_count, me.placement, me.priority, me.created, pool_max=me.pool_max)
        verdict = admit([alone], nodes)[me.key]
    words = None
    if mechanism is Mechanism.WORKLOAD and pod_readers.unschedulable(pods):
        meta = view["metadata"]
        words = pod_group_words(await reader.read_pod_group(meta["namespace"], child_name(meta["name"])))
    return GangFacts(mechanism, verdict, words)


def _placement(cluster: BatchAIClusterSpec) -> Placement | None:
    try:
        return Placement(node_selector(cluster), tolerations(cluster), gpus_per_node(cluster))
    except BuildError:
        return None


def _pool_max(cluster: BatchAIClusterSpec) -> int | None:
    scale = cluster.scale_settings
    if scale is None:
        return None
    if scale.auto_scale is not None:
        return scale.auto_scale.maximum_node_count
    return scale.manual.target_node_count if scale.manual is not None else None


def _gang_job(
    key: str,
    view: TrainingJobView,
    spec: TrainingJobSpec,
    cluster: BatchAIClusterSpec,
    batch_job: BatchJobView | None,
    pods: list[PodView],
    unsuspended: bool = False,
) -> GangJob | None:
    placement = _placement(cluster)
    if placement is None:
        return None
    started = batch_job is not None and not pod_readers.suspended(batch_job)
    bound = sum(
        1 for p in pods if p["spec"]["nodeName"] and p["status"]["phase"] not in ("Succeeded", "Failed")
    )
    return GangJob(
        key=key,
        node_count=spec.node_count,
        placement=placement,
        priority=PRIORITY.get(spec.scheduling_priority, 1),
        created=view["metadata"]["creationTimestamp"] or "",
        started=started,
        bound=bound,
        pool_max=_pool_max(cluster),
        grows_on_demand=cluster.scale_settings is not None and cluster.scale_settings.auto_scale is not None,
    )


def _nodes(indexes: idx.Indexes) -> Iterator[NodeRoom]:
    for name, store in indexes.items(idx.NODES):
        for node in store:
            used = sum(p.get("gpus", 0) for p in indexes.all(idx.PODS_BY_NODE, name))
            yield NodeRoom(
                name=str(name),
                labels=node["labels"],
                taints=node.get("hardTaints", []),
                gpus_allocatable=node.get("gpus", 0),
                gpus_used=used,
                schedulable=node["ready"] == "True" and not node["unschedulable"] and not node["deleting"],
            )


def _admission_jobs(indexes: idx.Indexes, config: OperatorConfig, served: ServedApis) -> Iterator[GangJob]:
    """Every unfinished multi-node job the operator's admission serves, as the admission sees it."""
    for uid, store in indexes.items(idx.TRAININGJOBS):
        for view in store:
            spec = view["spec"]
            if (
                spec is None
                or spec.terminate
                or (view["status"] or {}).get("executionState") in TERMINAL_STATES
            ):
                continue
            if mechanism_of(view, config, served) is not Mechanism.ADMISSION:
                continue
            namespace = view["metadata"]["namespace"]
            cluster = indexes.first(idx.CLUSTERS, (namespace, spec.cluster_name))
            if cluster is None or cluster["spec"] is None:
                continue
            batch_job = our_batch_job(indexes, namespace, str(uid))
            pods = batch_job_pods(indexes, namespace, str(uid), batch_job)
            job = _gang_job(str(uid), view, spec, cluster["spec"], batch_job, pods)
            if job is not None:
                yield job
