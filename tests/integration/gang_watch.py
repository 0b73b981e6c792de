"""The gang property, checked from a watch: no multi-node TrainingJob ever has some but not all of its pods
bound to nodes while it waits for the rest.

A watch of the namespace's pods, opened before any job exists, records when each pod first has a node
(`spec.nodeName`) and when it first finishes. The scheduler binds a gang's pods with one API call each,
so a watch sees them arrive one after the other, a few milliseconds apart: the check allows a job's
binds to spread over at most GANG_WINDOW seconds (one pod-group cycle), and fails a job that holds part
of its nodes longer, which without a gang lasts as long as another job runs. It also fails a job one of
whose pods finished before all were bound.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes import client, watch

LABEL_TRAININGJOB = "batchai.io/trainingjob"
GANG_WINDOW = 2.0  # seconds


@dataclass
class PodTimes:
    job: str
    bound: datetime | None = None
    node: str | None = None
    finished: datetime | None = None


@dataclass
class BindingWatch:
    """Every pod of one namespace that belongs to a TrainingJob: when it got a node, when it finished."""

    namespace: str
    pods: dict[str, PodTimes] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    ready: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        if not self.ready.wait(10):
            raise RuntimeError("the pod watch did not start")

    def finish(self) -> None:
        self.stop.set()
        if self.thread:
            self.thread.join(10)

    def _run(self) -> None:
        core = client.CoreV1Api()
        rv: str | None = None
        while not self.stop.is_set():
            w = watch.Watch()
            kwargs: dict[str, Any] = {"timeout_seconds": 2, "label_selector": LABEL_TRAININGJOB}
            if rv:
                kwargs["resource_version"] = rv
            else:
                rv = core.list_namespaced_pod(self.namespace, **kwargs).metadata.resource_version
                kwargs["resource_version"] = rv
                self.ready.set()
            for ev in w.stream(core.list_namespaced_pod, self.namespace, **kwargs):
                pod: client.V1Pod = ev["object"]
                rv = pod.metadata.resource_version
                self._see(pod, datetime.now(UTC))
                if self.stop.is_set():
                    w.stop()

    def _see(self, pod: client.V1Pod, t: datetime) -> None:
        times = self.pods.setdefault(pod.metadata.name, PodTimes(job=pod.metadata.labels[LABEL_TRAININGJOB]))
        if pod.spec.node_name and times.bound is None:
            times.bound, times.node = t, pod.spec.node_name
        if pod.status and pod.status.phase in ("Succeeded", "Failed") and times.finished is None:
            times.finished = t

    def report(self, node_counts: dict[str, int]) -> list[str]:
        """One line per job: when its first and last pods were bound; and the violations, if any, as
        lines starting with 'VIOLATION'."""
        lines: list[str] = []
        for job, n in sorted(node_counts.items()):
            pods = [p for p in self.pods.values() if p.job == job]
            bound = sorted(p.bound for p in pods if p.bound is not None)
            if len(bound) < n:
                lines.append(f"VIOLATION {job}: {len(bound)} of {n} pods ever bound")
                continue
            first, last = bound[0], bound[n - 1]
            spread = (last - first).total_seconds()
            finished = [p.finished for p in pods if p.finished is not None]
            nodes = sorted({p.node or "" for p in pods if p.node})
            lines.append(
                f"{job}: {n} pods bound between {first:%H:%M:%S.%f} and {last:%H:%M:%S.%f} "
                f"({spread:.3f} s) on {', '.join(nodes)}"
            )
            if spread > GANG_WINDOW:
                lines.append(f"VIOLATION {job}: some but not all of its pods bound for {spread:.1f} s")
            if finished and min(finished) < last:
                lines.append(f"VIOLATION {job}: a pod finished before all {n} were bound")
        return lines


def violations(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("VIOLATION")]
