"""The benchmark's pure parts (bench/stats.py, bench/observe.py, bench/manifests.py). The bench itself is
not a test: `make bench` runs it."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from manifests import HISTORY_LABEL, PEER_CONTAINER, history_status, pytorch_job, raw_job, training_job
from observe import JOB_KEY_LABEL, Observation, StateLog, all_bound_at, job_key, job_nodes, terminal
from stats import (
    JobTiming,
    RestartRow,
    Row,
    Size,
    by_client_verb,
    caught_up_at,
    classify_client,
    count_requests,
    format_restart,
    format_table,
    interleave,
    lag_stats,
    parse_count,
    parse_scenarios,
    parse_sizes,
    parse_systems,
    percentile,
    slow_jobs,
    with_ratios,
    writes,
    writes_by_verb,
    writes_to,
)

# ---- sizes and systems --------------------------------------------------------------------------------


def test_sizes_default_spelling_and_multi_node() -> None:
    assert parse_sizes("100,500, 2000,200x4") == [Size(100), Size(500), Size(2000), Size(200, 4)]
    assert str(Size(200, 4)) == "200x4" and str(Size(500)) == "500"


@pytest.mark.parametrize("bad", ["", "abc", "0", "10x0", "5x", "-3"])
def test_sizes_refuse_bad_input(bad: str) -> None:
    with pytest.raises(ValueError, match="BENCH_SIZES"):
        parse_sizes(bad)


def test_systems_canonical_order_and_unknown_names() -> None:
    assert parse_systems("training-operator,raw") == ["raw", "training-operator"]
    with pytest.raises(ValueError, match="kubeflow"):
        parse_systems("raw,kubeflow")


# ---- statistics -----------------------------------------------------------------------------------------


def test_percentile_interpolates_like_numpy() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0], 99) == 3.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    values = [float(i) for i in range(1, 101)]
    assert percentile(values, 99) == pytest.approx(99.01)
    assert percentile(list(reversed(values)), 0) == 1.0


def test_lag_stats_from_object_timestamps_and_from_the_watch() -> None:
    timings = [JobTiming(10.0, 11.0 + i % 2, 10.2, 10.9 + i % 2, True) for i in range(10)]
    lags = lag_stats(timings)
    assert lags["lag_p50_s"] == 1.5 and lags["lag_max_s"] == 2.0
    assert lags["lag_watch_p99_s"] == pytest.approx(1.7)
    assert lag_stats([])["lag_p99_s"] is None


def test_slow_jobs_say_when_in_the_run_they_finished() -> None:
    fast = JobTiming(100.0, 100.0, 100.5, 100.6, True)
    slow = JobTiming(130.0, 139.0, 130.2, 139.7, True)
    assert slow_jobs([fast, slow], t0=100.0) == (
        "1 jobs' status came more than 2 s late (pod finished at: lag) t+30s:9.5s"
    )
    assert slow_jobs([fast], t0=100.0) == "no job's status came more than 2 s late"


# ---- who made a request ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "client"),
    [
        ("kopf/1.45.2", "operator/kopf"),
        ("OpenAPI-Generator/37.0.2/python", "operator/client"),
        ("batchai-bench", "bench"),
        (
            "kube-controller-manager/v1.37.2 (linux/amd64) kubernetes/$Format/job-controller",
            "kcm/job-controller",
        ),
        ("kube-controller-manager/v1.37.2 (linux/amd64) kubernetes/$Format", "kcm"),
        ("kube-scheduler/v1.37.2 (linux/amd64) kubernetes/abc/scheduler", "scheduler"),
        ("kwok/v0.8.0 (linux/amd64) kubernetes/$Format", "kwok"),
        ("training-operator/v0.0.0 (linux/amd64) kubernetes/$Format", "training-operator"),
        ("curl/8", "other"),
        ("", "other"),
    ],
)
def test_classify_client(agent: str, client: str) -> None:
    assert classify_client(agent) == client


def _event(
    agent: str, verb: str, resource: str, ns: str | None = "ns", stage: str = "ResponseComplete"
) -> dict[str, Any]:
    res, _, sub = resource.partition("/")
    ref: dict[str, Any] = {"resource": res}
    if sub:
        ref["subresource"] = sub
    if ns:
        ref["namespace"] = ns
    return {"userAgent": agent, "verb": verb, "objectRef": ref, "stage": stage}


def test_count_requests_one_per_request_by_client_verb_resource() -> None:
    events = [
        _event("kopf/1", "watch", "pods", ns=None, stage="ResponseStarted"),
        _event("kopf/1", "watch", "pods", ns=None, stage="ResponseComplete"),  # the same watch, ending
        _event("OpenAPI-Generator/37/python", "create", "jobs"),
        _event("OpenAPI-Generator/37/python", "patch", "trainingjobs/status"),
        _event("OpenAPI-Generator/37/python", "patch", "trainingjobs/status"),
        _event("kube-controller-manager/v1 (l/a) k/abc/job-controller", "create", "pods"),
        _event("kwok/v0.8.0 (l) k/x", "patch", "pods/status"),
        _event("kwok/v0.8.0 (l) k/x", "patch", "pods/status", ns="elsewhere"),
        _event("batchai-bench", "create", "trainingjobs"),
        _event(
            "kube-controller-manager/v1 (l/a) k/abc/job-controller", "get", "pods", stage="ResponseStarted"
        ),
    ]
    counts = count_requests(events, "ns", frozenset({"operator/kopf", "operator/client"}))
    assert counts.in_namespace[("operator/client", "patch", "trainingjobs/status")] == 2
    assert counts.in_namespace[("kwok", "patch", "pods/status")] == 1
    assert counts.controller[("operator/kopf", "watch", "pods")] == 1
    assert ("operator/kopf", "watch", "pods") not in counts.in_namespace
    assert sum(counts.controller.values()) == 4
    assert writes(counts.in_namespace) == 6
    assert writes(counts.in_namespace, exclude_clients=["bench"]) == 5
    assert writes(counts.controller) == 3
    assert by_client_verb(counts.controller, per=2)["operator/client"] == {
        "create jobs": 0.5,
        "patch trainingjobs/status": 1.0,
    }


# ---- rows and the table ---------------------------------------------------------------------------------


def _row(system: str, jobs: int, wall: float, nodes: int = 1) -> Row:
    return Row(system, jobs, nodes, wall, None, 0.5, 1.0, 100.0, 12.0, 7.0, controller_writes_per_job=3.0)


def test_ratios_against_raw_of_the_same_size_only() -> None:
    rows = with_ratios(
        [
            _row("raw", 100, 50.0),
            _row("operator", 100, 55.0),
            _row("operator", 200, 90.0, nodes=4),
            _row("raw", 500, 200.0),
        ]
    )
    assert [r.ratio_to_raw for r in rows] == [1.0, 1.1, None, 1.0]


def test_rows_carry_the_issue_fields_and_the_table_shows_them() -> None:
    row = with_ratios([_row("raw", 100, 50.0), _row("training-operator", 100, 25.0)])[1]
    assert list(row.as_json())[:10] == [
        "system", "jobs", "nodes_per_job", "wall_s", "ratio_to_raw",
        "lag_p50_s", "lag_p99_s", "peak_rss_mb", "cpu_s", "writes_per_job",
    ]  # fmt: skip
    table = format_table([row]).splitlines()
    assert table[0].count("|") == table[1].count("|") == table[2].count("|")
    assert "| burst | training-operator | 100 x 1 | 25.0 | 0.50 |" in table[2]
    assert "7.0 (3.0)" in table[2]


# ---- what the watches saw -------------------------------------------------------------------------------


def _pod(uid: str, key: str, phase: str, finished: str | None = None) -> dict[str, Any]:
    state = {"terminated": {"finishedAt": finished}} if finished else {"running": {}}
    return {
        "metadata": {"uid": uid, "labels": {JOB_KEY_LABEL: key}},
        "status": {"phase": phase, "containerStatuses": [{"name": "main", "state": state}]},
    }


def test_terminal_status_of_each_system() -> None:
    raw = {
        "spec": {"template": {"metadata": {"labels": {JOB_KEY_LABEL: "k1"}}}},
        "status": {
            "conditions": [
                {"type": "Complete", "status": "True", "lastTransitionTime": "2026-01-01T00:00:05Z"}
            ]
        },
    }
    assert job_key("raw", raw) == "k1" and terminal("raw", raw) == (True, 1767225605.0)
    tj = {"metadata": {"uid": "u"}, "status": {"executionState": "running"}}
    assert job_key("operator", tj) == "u" and terminal("operator", tj) is None
    tj["status"] = {"executionState": "failed", "executionStateTransitionTime": "2026-01-01T00:00:06Z"}
    assert terminal("operator", tj) == (False, 1767225606.0)
    pt = {
        "spec": {
            "pytorchReplicaSpecs": {"Master": {"template": {"metadata": {"labels": {JOB_KEY_LABEL: "k2"}}}}}
        },
        "status": {
            "conditions": [
                {"type": "Running", "status": "False", "lastTransitionTime": "2026-01-01T00:00:06Z"},
                {"type": "Succeeded", "status": "True", "lastTransitionTime": "2026-01-01T00:00:07Z"},
            ]
        },
    }
    assert job_key("training-operator", pt) == "k2" and terminal("training-operator", pt) == (
        True,
        1767225607.0,
    )


def test_observation_timings_use_the_last_pod_of_each_job() -> None:
    obs = Observation("operator")
    obs.pod(_pod("p1", "u", "Pending"), 100.0)
    obs.pod(_pod("p1", "u", "Running"), 101.0)
    obs.pod(_pod("p2", "u", "Running"), 102.0)
    obs.pod(_pod("p1", "u", "Succeeded", "2026-01-01T00:00:03Z"), 103.0)
    assert obs.all_running_at(2) == 102.0 and obs.all_running_at(3) is None
    done = {
        "metadata": {"uid": "u"},
        "status": {"executionState": "succeeded", "executionStateTransitionTime": "2026-01-01T00:00:06Z"},
    }
    obs.job(done, 106.5)
    assert obs.timings() == []  # p2 has not finished: no lag yet
    obs.pod(_pod("p2", "u", "Succeeded", "2026-01-01T00:00:04Z"), 104.0)
    obs.job(done, 110.0)  # seen again: the first sighting counts
    [timing] = obs.timings()
    assert timing.terminal_status - timing.last_pod_finished == 2.0
    assert timing.terminal_seen - timing.last_pod_seen == 2.5
    assert obs.terminal_count() == 1 and obs.failed() == 0 and obs.all_terminal_at() == 106.5


# ---- the same pods for every system ---------------------------------------------------------------------


def _template(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj["spec"]
    return (
        spec["pytorchReplicaSpecs"]["Master"]["template"]
        if "pytorchReplicaSpecs" in spec
        else spec["template"]
    )


def test_raw_and_peer_run_the_operators_pod_template() -> None:
    raw, peer = raw_job("ns", "j1", 1, uid="u1"), pytorch_job("ns", "j1", 1, uid="u1")
    raw_pod, peer_pod = _template(raw)["spec"], _template(peer)["spec"]
    assert peer_pod["containers"][0]["name"] == PEER_CONTAINER
    peer_pod["containers"][0]["name"] = raw_pod["containers"][0]["name"]
    assert raw_pod == peer_pod
    assert raw_pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
    # The operator's labels are gone (its watches select them); the anti-affinity key label stays.
    labels = _template(raw)["metadata"]["labels"]
    assert set(labels) == {"bench", JOB_KEY_LABEL}
    term = raw_pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["labelSelector"]["matchLabels"] == {JOB_KEY_LABEL: labels[JOB_KEY_LABEL]}
    assert "ownerReferences" not in raw["metadata"] and raw["spec"]["completions"] == 1


def test_multi_node_peer_job_has_workers_and_each_job_its_own_key() -> None:
    peer = pytorch_job("ns", "j2", 4)["spec"]["pytorchReplicaSpecs"]
    assert peer["Master"]["replicas"] == 1 and peer["Worker"]["replicas"] == 3
    assert raw_job("ns", "j2", 4)["spec"]["parallelism"] == 4
    assert job_key("raw", raw_job("ns", "a", 1)) != job_key("raw", raw_job("ns", "a", 1))
    tj = training_job("ns", "j3", 4)
    assert tj["spec"]["nodeCount"] == 4 and tj["metadata"]["annotations"]["sim.batchai.io/run-for"] == "2s"


# ---- profile summary ------------------------------------------------------------------------------------


def test_profile_summary_inclusive_and_self_per_function() -> None:
    from profile_summary import report, summarize

    lines = [
        "thread (0x7f);run (asyncio/events.py:80);sync_job (/w/operator/batchai_operator/handlers.py:220) 6",
        "thread (0x7f);run (asyncio/events.py:80);sync_job (/w/operator/batchai_operator/handlers.py:221);"
        "dumps (/v/lib/python3.11/json/__init__.py:231) 4",
        "garbage",
    ]
    s = summarize(lines)
    assert s.total == 10
    assert s.inclusive["sync_job (batchai_operator/handlers.py)"] == 10
    assert s.self_["sync_job (batchai_operator/handlers.py)"] == 6
    assert s.self_["dumps (json/__init__.py)"] == 4
    out = report(s, top=5, match="batchai")
    assert "100.0%  sync_job (batchai_operator/handlers.py)" in out and "dumps" not in out


# ---- history and restart ----------------------------------------------------------------------------


def test_scenarios_and_counts_from_the_environment() -> None:
    assert parse_scenarios("restart,history") == ["history", "restart"]
    with pytest.raises(ValueError, match="BENCH_SCENARIOS"):
        parse_scenarios("history,upgrade")
    assert parse_count("BENCH_HISTORY", None, 10_000) == 10_000
    assert parse_count("BENCH_HISTORY", "500", 10_000) == 500
    for bad in ("0", "many"):
        with pytest.raises(ValueError, match="BENCH_HISTORY"):
            parse_count("BENCH_HISTORY", bad, 10_000)


def test_history_rows_compare_to_the_same_run_without_history() -> None:
    bare = _row("operator", 500, 80.0)
    bare.scenario = "history"
    full = _row("operator", 500, 84.0)
    full.scenario, full.history_jobs = "history", 10_000
    burst = _row("operator", 500, 70.0)
    rows = with_ratios([_row("raw", 500, 160.0), bare, full, burst])
    assert [r.wall_ratio_to_no_history for r in rows] == [None, None, 1.05, None]
    assert rows[2].ratio_to_raw == 0.525
    assert "| history (10000 finished) | operator | 500 x 1 |" in format_table([full])


def test_writes_by_verb_and_writes_to_named_objects() -> None:
    op = "OpenAPI-Generator/37/python"
    events = [
        {**_event(op, "patch", "trainingjobs/status"), "objectRef": {
            "resource": "trainingjobs", "subresource": "status", "namespace": "ns", "name": "history-00001"}},
        {**_event(op, "patch", "trainingjobs/status"), "objectRef": {
            "resource": "trainingjobs", "subresource": "status", "namespace": "ns", "name": "r1"}},
        {**_event(op, "get", "trainingjobs"), "objectRef": {
            "resource": "trainingjobs", "namespace": "ns", "name": "history-00002"}},
        {**_event("batchai-bench", "patch", "trainingjobs"), "objectRef": {
            "resource": "trainingjobs", "namespace": "ns", "name": "history-00002"}},
        _event(op, "create", "jobs"),
    ]  # fmt: skip
    clients = frozenset({"operator/client"})
    assert writes_to(events, "ns", "trainingjobs", {"history-00001", "history-00002"}, clients) == 1
    counts = count_requests(events, "ns", clients)
    assert writes_by_verb(counts.controller) == {"create jobs": 1, "patch trainingjobs/status": 2}


def test_caught_up_when_every_job_reached_a_wanted_state() -> None:
    log = StateLog()
    log.job({"metadata": {"name": "a", "uid": "u-a"}, "status": {"executionState": "running"}}, 1.0)
    log.job({"metadata": {"name": "a", "uid": "u-a"}, "status": {"executionState": "succeeded"}}, 5.0)
    log.job({"metadata": {"name": "a", "uid": "u-a"}, "status": {"executionState": "succeeded"}}, 9.0)
    log.job({"metadata": {"name": "new", "uid": "u-n"}, "status": {}}, 2.0)
    want = {"a": ("succeeded",), "new": ("running", "succeeded")}
    assert caught_up_at(log.first_seen, want) is None
    log.job({"metadata": {"name": "new", "uid": "u-n"}, "status": {"executionState": "succeeded"}}, 4.0)
    assert caught_up_at(log.first_seen, want) == 5.0
    assert log.uids == {"a": "u-a", "new": "u-n"} and log.in_state(["a", "new"], "running") == 1


def test_restart_row_fields_and_summary() -> None:
    row = RestartRow(10_000, 500, 250, 12.5, 0, {"patch trainingjobs/status": 251}, 180.0, 20.0)
    assert list(row.as_json())[3:8] == [
        "caught_up_s", "writes_to_finished", "writes_by_verb", "peak_rss_mb", "cpu_s",
    ]  # fmt: skip
    assert row.as_json()["scenario"] == "restart"
    assert "caught up in 12.5 s" in format_restart(row) and "patch trainingjobs/status=251" in format_restart(
        row
    )


def test_history_jobs_get_the_template_status_with_their_own_names() -> None:
    template = {
        "executionState": "succeeded",
        "jobOutputDirectoryPathSegment": "ns/history-template/uid-t",
        "cluster": "bench",
    }
    out = history_status(template, "history-template", "uid-t", "history-00007", "uid-7")
    assert out == {**template, "jobOutputDirectoryPathSegment": "ns/history-00007/uid-7"}
    job = training_job("ns", "history-00007", 1, history=True)
    assert job["metadata"]["labels"] == {HISTORY_LABEL: "true"}
    assert "labels" not in training_job("ns", "j1", 1)["metadata"]


# ---- scenario mixed: GPUs held by pods waiting for their peers ------------------------------------------


def _bound_pod(uid: str, key: str, node: str | None, phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"uid": uid, "labels": {JOB_KEY_LABEL: key}},
        "spec": {"nodeName": node, "containers": [{"resources": {"limits": {"nvidia.com/gpu": "1"}}}]},
        "status": {"phase": phase},
    }


def test_gang_bound_together_holds_nothing_and_a_partial_job_holds_until_its_last_peer() -> None:
    obs = Observation("operator")
    obs.job({"metadata": {"uid": "gang"}, "spec": {"nodeCount": 2}}, 0.0)
    obs.job({"metadata": {"uid": "part"}, "spec": {"nodeCount": 3}}, 0.0)
    # The gang's two pods bound 0.2 s apart (within the grace): nothing held.
    obs.pod(_bound_pod("g0", "gang", "n0"), 10.0)
    obs.pod(_bound_pod("g1", "gang", "n1"), 10.2)
    # Two of three bound at 10 and 12; the third only at 30, when the first two still hold their nodes.
    obs.pod(_bound_pod("p0", "part", None, "Pending"), 9.0)
    obs.pod(_bound_pod("p0", "part", "n2"), 10.0)
    obs.pod(_bound_pod("p1", "part", "n3"), 12.0)
    obs.pod(_bound_pod("p2", "part", "n0"), 30.0)
    assert obs.held_gpu_seconds(end=40.0) == pytest.approx(20.0 + 18.0)


def test_a_job_never_bound_whole_holds_until_each_pod_ended() -> None:
    obs = Observation("raw")
    raw = {"spec": {"parallelism": 3, "template": {"metadata": {"labels": {JOB_KEY_LABEL: "k"}}}}}
    obs.job(raw, 0.0)
    obs.pod(_bound_pod("a", "k", "n0"), 0.0)
    obs.pod(_bound_pod("b", "k", "n1"), 0.0)
    obs.pod(_bound_pod("a", "k", "n0", "Succeeded"), 10.0)  # ended before the third was bound
    obs.pod(_bound_pod("c", "k", "n2"), 12.0)
    # a: 10 s; b: until the end (50); c: 38 s, its peers never all on their nodes with it.
    assert obs.held_gpu_seconds(end=50.0) == pytest.approx(10.0 + 50.0 + 38.0)
    assert all_bound_at([(0.0, 10.0, 1), (0.0, 50.0, 1), (12.0, 50.0, 1)], 3) is None
    assert all_bound_at([(0.0, 10.0, 1), (5.0, 50.0, 1), (6.0, 50.0, 1)], 3) == 6.0


def test_node_counts_of_each_systems_job_and_interleaved_workloads() -> None:
    assert job_nodes("operator", {"spec": {"nodeCount": 3}}) == 3
    assert job_nodes("raw", raw_job("ns", "a", 3)) == 3
    assert job_nodes("training-operator", pytorch_job("ns", "a", 3)) == 3
    assert job_nodes("training-operator", pytorch_job("ns", "a", 1)) == 1
    assert list(interleave(parse_sizes("2x3,3x1", "BENCH_MIXED"))) == [3, 1, 3, 1, 1]
    with pytest.raises(ValueError, match="BENCH_MIXED"):
        parse_sizes("3y", "BENCH_MIXED")


def test_mixed_rows_compare_to_raw_of_the_same_workload_and_show_it() -> None:
    mixed = [
        Row(s, 12, 3, w, None, 1.0, 2.0, None, None, 6.0, scenario="mixed", workload="6x3,6x1", held_gpu_s=h)
        for s, w, h in (("raw", 80.0, 120.0), ("operator", 60.0, 0.0))
    ]
    rows = with_ratios([_row("raw", 12, 200.0, nodes=3), *mixed])
    assert [r.ratio_to_raw for r in rows] == [1.0, 1.0, 0.75]
    table = format_table(rows).splitlines()
    assert "| mixed | operator | 6 x 3,6 x 1 | 60.0 | 0.75 |" in table[4]
    assert "| 0.0 |" in table[4] and "| 120.0 |" in table[3]
