"""Pure: what the bench's watches saw of one run's pods and job objects, and the timings derived from it.

Every job of every system carries the same pod label, `batchai.io/trainingjob-uid` (the operator sets
it; the bench puts a fresh one into the raw Job's and the PyTorchJob's pod template), so pods are
grouped by it whatever made them. Terminal status, per system:
  raw                Job condition Complete/Failed=True (its lastTransitionTime)
  operator           TrainingJob status.executionState succeeded/failed (executionStateTransitionTime)
  training-operator  PyTorchJob condition Succeeded/Failed=True (its lastTransitionTime)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from stats import JobTiming, parse_time

JOB_KEY_LABEL = "batchai.io/trainingjob-uid"
GPU = "nvidia.com/gpu"
# A gang's pods are bound one API call each: the bench's watch sees them some milliseconds apart (more
# on a busy machine). A pod that waited less than this for its last peer held nothing for the count.
BIND_GRACE_S = 1.0
_TERMINAL_CONDITIONS = {
    "raw": {"Complete": True, "Failed": False},
    "training-operator": {"Succeeded": True, "Failed": False},
}


def job_key(system: str, obj: dict[str, Any]) -> str | None:
    """The pod-label value that ties a job object to its pods."""
    if system == "operator":
        return (obj.get("metadata") or {}).get("uid")
    spec = obj.get("spec") or {}
    if system == "training-operator":
        spec = (spec.get("pytorchReplicaSpecs") or {}).get("Master") or {}
    labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    return labels.get(JOB_KEY_LABEL)


def terminal(system: str, obj: dict[str, Any]) -> tuple[bool, float] | None:
    """(succeeded, when the status says it ended) once the job object is terminal, else None."""
    status = obj.get("status") or {}
    if system == "operator":
        state = status.get("executionState")
        if state not in ("succeeded", "failed"):
            return None
        return state == "succeeded", parse_time(status["executionStateTransitionTime"])
    for cond in status.get("conditions") or []:
        outcome = _TERMINAL_CONDITIONS[system].get(cond.get("type"))
        if outcome is not None and cond.get("status") == "True":
            return outcome, parse_time(cond["lastTransitionTime"])
    return None


def pod_finished_at(pod: dict[str, Any]) -> float | None:
    """When the pod's last container terminated (its own timestamps), None while any still runs."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    ends = []
    for cs in statuses:
        term = (cs.get("state") or {}).get("terminated")
        if not term:
            return None
        ends.append(parse_time(term["finishedAt"]))
    return max(ends) if ends else None


def job_nodes(system: str, obj: dict[str, Any]) -> int | None:
    """How many pods (nodes) the job object asks for."""
    spec = obj.get("spec") or {}
    if system == "operator":
        return spec.get("nodeCount")
    if system == "raw":
        return spec.get("parallelism")
    replicas = spec.get("pytorchReplicaSpecs") or {}
    return sum(int((r or {}).get("replicas") or 0) for r in replicas.values()) or None


def pod_gpus(pod: dict[str, Any]) -> int:
    """The GPUs a pod holds once bound: its containers' nvidia.com/gpu limits."""
    containers = (pod.get("spec") or {}).get("containers") or []
    return sum(int(((c.get("resources") or {}).get("limits") or {}).get(GPU, 0)) for c in containers)


@dataclass
class _Pod:
    key: str | None
    running_seen: float | None = None
    finished_seen: float | None = None
    finished_at: float | None = None
    bound_seen: float | None = None  # first seen with a node (holding its GPUs from then on)
    gpus: int = 0


@dataclass
class _Job:
    succeeded: bool
    terminal_at: float
    terminal_seen: float


@dataclass
class Observation:
    """Fed with watch events (object, local time seen); answers the run's questions."""

    system: str
    pods: dict[str, _Pod] = field(default_factory=dict)
    jobs: dict[str, _Job] = field(default_factory=dict)
    nodes: dict[str, int] = field(default_factory=dict)  # job key -> the pods it asks for

    def pod(self, obj: dict[str, Any], seen: float) -> None:
        meta = obj.get("metadata") or {}
        uid = str(meta.get("uid") or meta.get("name"))
        rec = self.pods.get(uid)
        if rec is None:
            rec = self.pods[uid] = _Pod(key=(meta.get("labels") or {}).get(JOB_KEY_LABEL))
        phase = (obj.get("status") or {}).get("phase")
        if (obj.get("spec") or {}).get("nodeName") and rec.bound_seen is None:
            rec.bound_seen = seen
            rec.gpus = pod_gpus(obj)
        if phase in ("Running", "Succeeded", "Failed") and rec.running_seen is None:
            rec.running_seen = seen
        if phase in ("Succeeded", "Failed") and rec.finished_seen is None:
            rec.finished_seen = seen
            rec.finished_at = pod_finished_at(obj)

    def job(self, obj: dict[str, Any], seen: float) -> None:
        key = job_key(self.system, obj)
        if key is None or key in self.jobs:
            return
        nodes = job_nodes(self.system, obj)
        if nodes:
            self.nodes[key] = nodes
        end = terminal(self.system, obj)
        if end is not None:
            self.jobs[key] = _Job(succeeded=end[0], terminal_at=end[1], terminal_seen=seen)

    def terminal_count(self) -> int:
        return len(self.jobs)

    def all_running_at(self, expected_pods: int) -> float | None:
        """When the last of the expected pods was first seen running (or already done)."""
        seen = [p.running_seen for p in self.pods.values() if p.running_seen is not None]
        return max(seen) if len(seen) >= expected_pods else None

    def all_terminal_at(self) -> float | None:
        return max((j.terminal_seen for j in self.jobs.values()), default=None)

    def timings(self) -> list[JobTiming]:
        """Per terminal job whose pods all finished: last pod finished -> terminal status."""
        by_key: dict[str, list[_Pod]] = {}
        for p in self.pods.values():
            if p.key:
                by_key.setdefault(p.key, []).append(p)
        out = []
        for key, job in self.jobs.items():
            pods = by_key.get(key) or []
            finished = [p for p in pods if p.finished_at is not None and p.finished_seen is not None]
            if not pods or len(finished) < len(pods):
                continue
            out.append(
                JobTiming(
                    last_pod_finished=max(p.finished_at for p in finished if p.finished_at is not None),
                    terminal_status=job.terminal_at,
                    last_pod_seen=max(p.finished_seen for p in finished if p.finished_seen is not None),
                    terminal_seen=job.terminal_seen,
                    succeeded=job.succeeded,
                )
            )
        return out

    def failed(self) -> int:
        return sum(1 for j in self.jobs.values() if not j.succeeded)

    def held_gpu_seconds(self, end: float) -> float:
        """GPU-seconds held by pods that could not run: each pod's GPUs from its binding until every pod
        of its job was bound at once (an MPI rank waits for its peers until then), or, when that never
        happened, until the pod ended (`end` for a pod still on its node); waits within BIND_GRACE_S are
        the binding of one gang. Zero with gang scheduling."""
        by_key: dict[str, list[_Pod]] = {}
        for p in self.pods.values():
            if p.key and p.bound_seen is not None:
                by_key.setdefault(p.key, []).append(p)
        held = 0.0
        for key, pods in by_key.items():
            spans = [(p.bound_seen or 0.0, p.finished_seen or end, p.gpus) for p in pods]
            together = all_bound_at(spans, self.nodes.get(key, len(pods)))
            for bound, ended, gpus in spans:
                waited = min(ended, together if together is not None else end) - bound
                if waited > BIND_GRACE_S:
                    held += gpus * waited
        return held


def all_bound_at(spans: Iterable[tuple[float, float, int]], needed: int) -> float | None:
    """The first instant at which `needed` of these (bound, ended, gpus) pods were on their nodes at once."""
    ordered = sorted(spans)
    for i, (bound, _, _) in enumerate(ordered):
        if sum(1 for b, e, _ in ordered[: i + 1] if b <= bound < e) >= needed:
            return bound
    return None


@dataclass
class StateLog:
    """Fed with TrainingJob watch events: when each job was first seen in each executionState, and its uid
    (the restart scenario's record)."""

    first_seen: dict[str, dict[str, float]] = field(default_factory=dict)
    uids: dict[str, str] = field(default_factory=dict)

    def job(self, obj: dict[str, Any], seen: float) -> None:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name"))
        self.uids[name] = str(meta.get("uid"))
        state = (obj.get("status") or {}).get("executionState")
        if state:
            self.first_seen.setdefault(name, {}).setdefault(state, seen)

    def in_state(self, names: Iterable[str], state: str) -> int:
        return sum(1 for n in names if state in self.first_seen.get(n, {}))
