"""The operator's /metrics, scraped while jobs run on the local control plane."""

from __future__ import annotations

import urllib.request

from devcluster import wait_for
from jobs import create_cluster, create_trainingjob, wait_state
from operator_process import METRICS_PORT, OperatorProcess

from samples import job_spec


def scrape() -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=5) as resp:
        return str(resp.read().decode())


def value(text: str, prefix: str) -> float:
    """The sum of the samples whose line starts with `prefix` (name and labels)."""
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def test_metrics_follow_jobs_and_clusters(operator: OperatorProcess, namespace: str) -> None:
    before = scrape()
    create_cluster(namespace)
    create_trainingjob(
        namespace,
        "m-ok",
        job_spec(customToolkitSettings={"commandLine": "true"}),
        annotations={"sim.batchai.io/run-for": "4s"},
    )
    create_trainingjob(
        namespace,
        "m-fail",
        job_spec(customToolkitSettings={"commandLine": "false"}),
        annotations={"sim.batchai.io/exit-code": "3"},
    )
    wait_state(namespace, "m-ok", "running")

    def with_a_running_job() -> str | None:
        text = scrape()
        return text if value(text, 'batchai_trainingjobs{state="running",toolkit="custom"}') >= 1 else None

    running = wait_for(with_a_running_job, timeout=20, what="a running custom job in batchai_trainingjobs")
    assert value(running, f'batchai_cluster_nodes{{cluster="nc6",namespace="{namespace}"') >= 1
    wait_state(namespace, "m-ok", "succeeded")
    wait_state(namespace, "m-fail", "failed")
    after = scrape()
    done = 'batchai_trainingjob_transitions_total{from_state="running",to_state="succeeded",toolkit="custom"}'
    assert value(after, done) >= value(before, done) + 1
    assert value(after, 'batchai_trainingjob_running_seconds_count{state="succeeded",toolkit="custom"}') >= 1
    assert value(after, 'batchai_reconcile_duration_seconds_count{kind="TrainingJob"}') > value(
        before, 'batchai_reconcile_duration_seconds_count{kind="TrainingJob"}'
    )
    assert "# TYPE batchai_reconcile_errors_total counter" in after
    assert "# TYPE batchai_api_errors_total counter" in after
    print("\n".join(line for line in after.splitlines() if line.startswith("batchai_trainingjob")))
