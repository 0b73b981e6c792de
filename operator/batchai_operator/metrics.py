"""Prometheus metrics (prometheus-client), served on the port the chart declares (BATCHAI_METRICS_PORT).

Named the Prometheus way: a `batchai_` prefix, base units (seconds), `_total` for counters. Counts of jobs
by state and of cluster nodes by state are read from what the operator last wrote when Prometheus
scrapes, so they cannot drift from the objects' status; the rest is counted as it happens.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .decide.common import parse_time

# Training jobs wait minutes to days and run hours to days: buckets from a second to a week.
_DURATION_BUCKETS = (1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 86400, 3 * 86400, 7 * 86400)

TRANSITIONS = Counter(
    "batchai_trainingjob_transitions_total",
    "TrainingJob executionState changes.",
    ["from_state", "to_state", "toolkit"],
)
QUEUED_SECONDS = Histogram(
    "batchai_trainingjob_queued_seconds",
    "Time from a TrainingJob's creation to its start (running), or to its end if it never ran.",
    ["toolkit"],
    buckets=_DURATION_BUCKETS,
)
RUNNING_SECONDS = Histogram(
    "batchai_trainingjob_running_seconds",
    "Time from a TrainingJob's start to its end (succeeded or failed).",
    ["toolkit", "state"],
    buckets=_DURATION_BUCKETS,
)
RECONCILE_SECONDS = Histogram(
    "batchai_reconcile_duration_seconds",
    "Time one sync of an object took (observe, decide, write status, apply).",
    ["kind"],
)
RECONCILE_ERRORS = Counter(
    "batchai_reconcile_errors_total", "Syncs that failed (retried with backoff).", ["kind"]
)
API_ERRORS = Counter(
    "batchai_api_errors_total",
    "Kubernetes API calls of the operator's own that failed, by HTTP status (kopf's watches not included).",
    ["code"],
)
ARM_SCALE_CALLS = Counter(
    "batchai_arm_scale_calls_total", "Agent-pool updates through Azure Resource Manager.", ["result"]
)


def observe_transition(
    old_state: str | None, new_state: str | None, toolkit: str, status: Mapping[str, Any], created: str | None
) -> None:
    """Count a TrainingJob's change of state, and the time it spent queued or running."""
    if new_state is None or old_state == new_state:
        return
    TRANSITIONS.labels(old_state or "none", new_state, toolkit).inc()
    info = status.get("executionInfo") or {}
    start, end = parse_time(info.get("startTime")), parse_time(info.get("endTime"))
    born = parse_time(created)
    if new_state in ("running", "terminating") and old_state in (None, "queued") and born and start:
        QUEUED_SECONDS.labels(toolkit).observe(max(0.0, (start - born).total_seconds()))
    if new_state in ("succeeded", "failed"):
        if start and end:
            RUNNING_SECONDS.labels(toolkit, new_state).observe(max(0.0, (end - start).total_seconds()))
        elif born and end and old_state in (None, "queued"):
            QUEUED_SECONDS.labels(toolkit).observe(max(0.0, (end - born).total_seconds()))


class StatusCollector(Collector):
    """Jobs by state and toolkit, and cluster nodes by state, from the statuses the operator last wrote."""

    def __init__(
        self, jobs: Callable[[], Iterable[tuple[str, str]]], nodes: Callable[[], Iterable[Any]]
    ) -> None:
        self._jobs = jobs  # (executionState, toolType) per TrainingJob
        self._nodes = nodes  # (namespace, cluster, {state: count}) per BatchAICluster

    def collect(self) -> Iterable[GaugeMetricFamily]:
        jobs = GaugeMetricFamily(
            "batchai_trainingjobs",
            "TrainingJobs not yet settled (the ones the operator watches) by executionState and toolkit.",
            labels=["state", "toolkit"],
        )
        for (state, toolkit), n in sorted(Tally(self._jobs()).items()):
            jobs.add_metric([state, toolkit], n)
        yield jobs
        nodes = GaugeMetricFamily(
            "batchai_cluster_nodes",
            "Nodes of each BatchAICluster by state (as az batchai cluster list counted them).",
            labels=["namespace", "cluster", "state"],
        )
        for namespace, cluster, counts in self._nodes():
            for state, n in sorted(counts.items()):
                nodes.add_metric([namespace, cluster, state], n)
        yield nodes


def serve(port: int, collector: StatusCollector, registry: CollectorRegistry = REGISTRY) -> None:
    """Serve /metrics on all interfaces (0: not at all), then register the status collector. In that order:
    kopf retries a failed startup, and a port still taken must not leave a registered collector behind
    (the retry's would then be refused as a duplicate, every minute, for good)."""
    if port:
        start_http_server(port, registry=registry)
    registry.register(collector)
