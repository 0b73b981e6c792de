"""Pure: the operator's own gang admission, Batch AI's rule, for clusters with neither Kueue nor the
Workload API. A multi-node job's batch Job stays suspended until the cluster has `nodeCount` schedulable
nodes of the job's placement with the job's GPUs free on each; then it starts.

Jobs are served in order: higher priority first, then first come first served (creation time, then
name). A job that does not fit blocks every job behind it from its nodes (no backfill), so a large job
is not starved by a stream of small ones. Jobs already started but whose pods are not all bound yet
keep the nodes they still need, so two passes cannot start two jobs on the same free nodes.

On an autoscaled pool with fewer nodes of the job's placement than it needs, the job starts at its turn
even so: the cluster autoscaler adds nodes only for pods that wait for them, so held it would wait for
ever. Its pods take the free nodes and wait there for the new ones.

The decision looks only at nodes and GPUs (node selector, taints, readiness, `nvidia.com/gpu`), as
Batch AI did; the scheduler's own checks (setup-task affinity, other resources) still apply to the pods.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Placement:
    """Where a job's pods may go: the pod template's nodeSelector and tolerations, and GPUs per pod."""

    node_selector: Mapping[str, str]
    tolerations: Sequence[Mapping[str, Any]]
    gpus: int


@dataclass(frozen=True)
class NodeRoom:
    """One node as the admission sees it."""

    name: str
    labels: Mapping[str, str]
    taints: Sequence[Mapping[str, Any]]
    gpus_allocatable: int
    gpus_used: int  # requested by the node's pods that have not finished
    schedulable: bool  # Ready and not cordoned


@dataclass(frozen=True)
class GangJob:
    """A multi-node job under the operator's admission."""

    key: str  # namespace/name, unique
    node_count: int
    placement: Placement
    priority: int
    created: str  # RFC 3339 creation timestamp: orders jobs of one priority
    started: bool = False  # its batch Job is unsuspended
    bound: int = 0  # its pods that have a node (started jobs)
    pool_max: int | None = None  # the most nodes its pool can have (autoscaler), None: the nodes there
    grows_on_demand: bool = False  # an autoscaled pool: the cluster autoscaler adds nodes for waiting pods


@dataclass(frozen=True)
class Verdict:
    """The admission's answer for one job that has not started."""

    start: bool
    needed: int
    free: int  # nodes of its placement with its GPUs free and not kept for a job ahead of it
    never: str | None = None  # why it can never run here (then start is False)


@dataclass
class _Room:
    free: dict[str, int] = field(default_factory=dict)  # node -> free GPUs
    kept: set[str] = field(default_factory=set)  # nodes kept for jobs ahead


def tolerates(tolerations: Sequence[Mapping[str, Any]], taint: Mapping[str, Any]) -> bool:
    """Whether a pod with `tolerations` may be scheduled on a node with `taint` (the core API's rule)."""
    if taint.get("effect") == "PreferNoSchedule":
        return True
    for t in tolerations:
        if t.get("effect") and t.get("effect") != taint.get("effect"):
            continue
        if t.get("operator") == "Exists":
            if not t.get("key") or t.get("key") == taint.get("key"):
                return True
        elif t.get("key") == taint.get("key") and (t.get("value") or "") == (taint.get("value") or ""):
            return True
    return False


def fits_placement(node: NodeRoom, placement: Placement) -> bool:
    """The node is one the job's pods may use at all (whether busy or not)."""
    if any(node.labels.get(k) != v for k, v in placement.node_selector.items()):
        return False
    if node.gpus_allocatable < placement.gpus:
        return False
    return all(tolerates(placement.tolerations, t) for t in node.taints)


def _order(job: GangJob) -> tuple[int, str, str]:
    return (-job.priority, job.created, job.key)


def _take(room: _Room, nodes: Iterable[str], gpus: int, count: int) -> None:
    for name in sorted(nodes)[:count]:
        room.free[name] -= gpus


def admit(jobs: Sequence[GangJob], nodes: Sequence[NodeRoom]) -> dict[str, Verdict]:
    """A verdict for every job of `jobs` that has not started; started ones only keep their nodes."""
    room = _Room(free={n.name: n.gpus_allocatable - n.gpus_used for n in nodes if n.schedulable})
    verdicts: dict[str, Verdict] = {}
    # Started jobs first: the nodes their unbound pods are about to take are not free for anyone.
    for job in sorted((j for j in jobs if j.started), key=_order):
        missing = job.node_count - job.bound
        if missing > 0:
            usable = _usable(room, nodes, job.placement, kept_ok=True)
            _take(room, usable, job.placement.gpus, missing)
    for job in sorted((j for j in jobs if not j.started), key=_order):
        verdicts[job.key] = _verdict(room, nodes, job)
    return verdicts


def _usable(room: _Room, nodes: Sequence[NodeRoom], placement: Placement, kept_ok: bool) -> list[str]:
    return [
        n.name
        for n in nodes
        if n.name in room.free
        and room.free[n.name] >= placement.gpus
        and (kept_ok or n.name not in room.kept)
        and fits_placement(n, placement)
    ]


def _verdict(room: _Room, nodes: Sequence[NodeRoom], job: GangJob) -> Verdict:
    eligible = [n.name for n in nodes if fits_placement(n, job.placement)]
    most = max(len(eligible), job.pool_max or 0)
    if most < job.node_count:
        where = f"{len(eligible)} nodes of its placement" if job.pool_max is None else f"at most {most} nodes"
        never = (
            f"the job needs {job.node_count} nodes with {job.placement.gpus} GPU(s) free each, and its "
            f"cluster has {where}: it can never run there"
        )
        return Verdict(start=False, needed=job.node_count, free=0, never=never)
    usable = _usable(room, nodes, job.placement, kept_ok=False)
    if len(usable) >= job.node_count:
        _take(room, usable, job.placement.gpus, job.node_count)
        return Verdict(start=True, needed=job.node_count, free=len(usable))
    if job.grows_on_demand and len(eligible) < job.node_count:
        # Only nodes its pool does not have yet can run it, and the cluster autoscaler adds nodes only for
        # pods that wait for them: held, it would wait for ever. It starts; its pods take the free nodes
        # of its placement and wait there for the new ones (Batch AI too grew an autoscaled cluster for
        # the jobs queued on it).
        _take(room, usable, job.placement.gpus, len(usable))
        room.kept.update(eligible)
        return Verdict(start=True, needed=job.node_count, free=len(usable))
    room.kept.update(eligible)  # first come first served: no job behind it starts on its nodes
    return Verdict(start=False, needed=job.node_count, free=len(usable))
