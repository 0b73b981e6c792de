"""The operator's Prometheus metrics: transitions and durations counted once, jobs and nodes by state read
from the statuses, and the exposition named the Prometheus way."""

from __future__ import annotations

import socket

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from batchai_operator import metrics


def sample(name: str, **labels: str) -> float:
    from prometheus_client import REGISTRY

    value = REGISTRY.get_sample_value(name, labels)
    return value or 0.0


def test_a_job_through_its_states_is_counted_once_per_change() -> None:
    before = sample(
        "batchai_trainingjob_transitions_total", from_state="queued", to_state="running", toolkit="tftest"
    )
    queued_before = sample("batchai_trainingjob_queued_seconds_count", toolkit="tftest")
    created = "2026-11-29T12:00:00Z"
    running = {"executionInfo": {"startTime": "2026-11-29T12:00:30Z"}}
    metrics.observe_transition(None, "queued", "tftest", {}, created)
    metrics.observe_transition("queued", "running", "tftest", running, created)
    metrics.observe_transition("running", "running", "tftest", running, created)  # no change: nothing
    done = {"executionInfo": {"startTime": "2026-11-29T12:00:30Z", "endTime": "2026-11-29T12:10:30Z"}}
    metrics.observe_transition("running", "succeeded", "tftest", done, created)
    assert (
        sample(
            "batchai_trainingjob_transitions_total", from_state="queued", to_state="running", toolkit="tftest"
        )
        == before + 1
    )
    assert sample("batchai_trainingjob_queued_seconds_count", toolkit="tftest") == queued_before + 1
    assert sample("batchai_trainingjob_queued_seconds_sum", toolkit="tftest") >= 30
    assert sample("batchai_trainingjob_running_seconds_sum", toolkit="tftest", state="succeeded") >= 600


def test_jobs_and_nodes_by_state_come_from_the_statuses() -> None:
    registry = CollectorRegistry()
    collector = metrics.StatusCollector(
        lambda: [("running", "cntk"), ("running", "cntk"), ("queued", "pytorch")],
        lambda: [("team-a", "nc6", {"idle": 2, "running": 1})],
    )
    metrics.serve(0, collector, registry)
    text = generate_latest(registry).decode()
    assert 'batchai_trainingjobs{state="running",toolkit="cntk"} 2.0' in text
    assert 'batchai_trainingjobs{state="queued",toolkit="pytorch"} 1.0' in text
    assert 'batchai_cluster_nodes{cluster="nc6",namespace="team-a",state="idle"} 2.0' in text


def test_a_taken_port_leaves_nothing_registered_so_that_the_startup_retry_succeeds() -> None:
    """kopf retries a failed startup hook: after a bind failure the same serve() must work again."""
    registry = CollectorRegistry(auto_describe=True)  # as prometheus_client's REGISTRY, which serve() uses

    def collector() -> metrics.StatusCollector:  # each attempt makes its own, as the startup hook does
        return metrics.StatusCollector(lambda: [("running", "cntk")], lambda: [])

    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            metrics.serve(port, collector(), registry)
    metrics.serve(0, collector(), registry)  # the retry (its port free now; 0 binds nothing here)
    assert 'batchai_trainingjobs{state="running",toolkit="cntk"} 1.0' in generate_latest(registry).decode()


def test_names_follow_prometheus_conventions() -> None:
    from prometheus_client import REGISTRY

    names = {m.name for m in REGISTRY.collect() if m.name.startswith("batchai_")}
    assert {
        "batchai_trainingjob_transitions",
        "batchai_reconcile_duration_seconds",
        "batchai_reconcile_errors",
        "batchai_api_errors",
        "batchai_arm_scale_calls",
    } <= names  # counters are exposed as <name>_total
    assert all(n.startswith("batchai_") and n == n.lower() for n in names)
