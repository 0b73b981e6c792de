"""Gang scheduling, the pure parts: the Workload and PodGroup manifests, the choice of mechanism, the
words of a waiting job, and the operator's own admission (first come first served within a priority)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from batchai_operator.decide.admission import (
    GangJob,
    NodeRoom,
    Placement,
    admit,
    tolerates,
)
from batchai_operator.decide.gang import (
    Mechanism,
    ServedApis,
    choose,
    pod_group_words,
    setting_error,
    waiting_message,
    workload_api_served,
)
from batchai_operator.manifests.gang import build_pod_group, build_workload, join_pod_group
from batchai_operator.observe.views import pod_gpus, slim_node

META = {"name": "tj", "namespace": "team-a", "labels": {"a": "b"}, "ownerReferences": [{"uid": "u"}]}
BOTH = ServedApis(workload=True, kueue=True)
NEITHER = ServedApis(workload=False, kueue=False)
NC6 = {"node.kubernetes.io/instance-type": "Standard_NC6"}
GPU_TAINT = {"key": "sku", "value": "gpu", "effect": "NoSchedule"}
PLACE = Placement(
    node_selector=NC6, tolerations=[{"key": "sku", "operator": "Equal", "value": "gpu"}], gpus=1
)


def test_workload_is_one_gang_template_of_node_count() -> None:
    w = build_workload(dict(META), 3)
    assert (w["apiVersion"], w["kind"]) == ("scheduling.k8s.io/v1beta1", "Workload")
    assert w["spec"] == {
        "podGroupTemplates": [{"name": "workers", "schedulingPolicy": {"gang": {"minCount": 3}}}]
    }
    assert w["metadata"]["ownerReferences"] == [{"uid": "u"}]


def test_pod_group_refers_to_the_workload_template_with_the_same_gang() -> None:
    pg = build_pod_group(dict(META), 4)
    assert pg["kind"] == "PodGroup"
    assert pg["spec"]["workloadRef"] == {"workloadName": "tj", "templateName": "workers"}
    assert pg["spec"]["schedulingPolicy"] == {"gang": {"minCount": 4}}


def test_the_gang_has_its_pods_priority_class() -> None:
    w, pg = build_workload(dict(META), 2, "batchai-high"), build_pod_group(dict(META), 2, "batchai-high")
    assert w["spec"]["podGroupTemplates"][0]["priorityClassName"] == "batchai-high"
    assert pg["spec"]["priorityClassName"] == "batchai-high"
    assert "priorityClassName" not in build_pod_group(dict(META), 2)["spec"]


def test_join_pod_group_sets_scheduling_group_and_keeps_the_rest() -> None:
    spec = {"containers": [{"name": "c"}], "restartPolicy": "Never"}
    joined = join_pod_group(spec, "tj")
    assert joined["schedulingGroup"] == {"podGroupName": "tj"}
    assert joined["containers"] == spec["containers"] and "schedulingGroup" not in spec


@pytest.mark.parametrize(
    ("setting", "served", "queue", "expected"),
    [
        ("auto", BOTH, "gpu", Mechanism.KUEUE),
        ("auto", BOTH, None, Mechanism.WORKLOAD),
        ("auto", ServedApis(workload=False, kueue=True), None, Mechanism.ADMISSION),
        ("auto", NEITHER, "gpu", Mechanism.KUEUE),  # Kueue may come after the operator started
        ("workload", BOTH, None, Mechanism.WORKLOAD),
        ("admission", BOTH, None, Mechanism.ADMISSION),
        ("admission", BOTH, "gpu", Mechanism.KUEUE),  # Kueue's webhook holds it anyway: no second gang
        ("kueue", BOTH, None, None),
        ("off", BOTH, None, None),
        ("off", BOTH, "gpu", Mechanism.KUEUE),
    ],
)
def test_choose(setting: str, served: ServedApis, queue: str | None, expected: Mechanism | None) -> None:
    assert choose(setting, served, 3, queue) is expected


@pytest.mark.parametrize("setting", ["auto", "kueue", "workload", "admission", "off"])
def test_single_node_jobs_pay_nothing(setting: str) -> None:
    assert choose(setting, BOTH, 1, "gpu") is None


def test_setting_errors_name_what_is_missing() -> None:
    assert setting_error("auto", NEITHER) is None
    assert setting_error("admission", NEITHER) is None
    assert "GenericWorkload" in (setting_error("workload", NEITHER) or "")
    assert "Kueue" in (setting_error("kueue", NEITHER) or "")
    assert "not one of" in (setting_error("volcano", BOTH) or "")


def test_pod_group_words_only_while_unscheduled() -> None:
    waiting = {
        "status": {
            "conditions": [
                {
                    "type": "PodGroupInitiallyScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "minCount (3) cannot be satisfied",
                }
            ]
        }
    }
    assert pod_group_words(waiting) == "minCount (3) cannot be satisfied"
    placed = {"status": {"conditions": [{"type": "PodGroupInitiallyScheduled", "status": "True"}]}}
    assert pod_group_words(placed) is None and pod_group_words(None) is None


def test_waiting_message_has_counts_mechanism_and_detail() -> None:
    text = waiting_message(Mechanism.ADMISSION, 3, 1)
    assert "3 nodes needed, 1 free" in text and "operator" in text
    assert waiting_message(Mechanism.WORKLOAD, 3, None, "minCount (3)").endswith(": minCount (3)")


def node(
    name: str,
    used: int = 0,
    gpus: int = 1,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, Any]] | None = None,
    schedulable: bool = True,
) -> NodeRoom:
    return NodeRoom(name, NC6 if labels is None else labels, taints or [], gpus, used, schedulable)


def job(key: str, n: int, created: str = "2026-01-01T00:00:00Z", priority: int = 0, **kw: Any) -> GangJob:
    return GangJob(key=key, node_count=n, placement=PLACE, priority=priority, created=created, **kw)


POOL4 = [node(f"n{i}") for i in range(4)]


def test_two_three_node_jobs_on_four_nodes_first_starts_second_waits() -> None:
    v = admit([job("a", 3, "t1"), job("b", 3, "t2")], POOL4)
    assert v["a"].start and (v["a"].needed, v["a"].free) == (3, 4)
    assert not v["b"].start and (v["b"].needed, v["b"].free) == (3, 1) and v["b"].never is None


def test_a_started_job_keeps_the_nodes_its_unbound_pods_are_about_to_take() -> None:
    # a is unsuspended, one of its pods bound (n0 used), two not yet: b must not start on n1..n3.
    nodes = [node("n0", used=1), *POOL4[1:]]
    v = admit([job("a", 3, "t1", started=True, bound=1), job("b", 3, "t2")], nodes)
    assert set(v) == {"b"} and not v["b"].start and v["b"].free == 1


def test_the_second_starts_when_the_first_has_finished() -> None:
    assert admit([job("b", 3, "t2")], POOL4)["b"].start


def test_first_come_first_served_a_big_job_is_not_starved_by_small_ones() -> None:
    nodes = [node("n0", used=1), *POOL4[1:]]  # 3 free
    v = admit([job("big", 4, "t1"), job("small", 2, "t2")], nodes)
    assert not v["big"].start and not v["small"].start  # small would fit, but big came first


def test_higher_priority_goes_first_whatever_the_time() -> None:
    v = admit([job("early", 3, "t1"), job("urgent", 3, "t9", priority=10)], POOL4)
    assert v["urgent"].start and not v["early"].start


def test_jobs_of_other_pools_do_not_block_each_other() -> None:
    nc24 = {"node.kubernetes.io/instance-type": "Standard_NC24"}
    big = [node(f"b{i}", gpus=4, labels=nc24) for i in range(2)]
    other = GangJob("other", 2, Placement(nc24, [], 4), 0, "t2")
    v = admit([job("wide", 4, "t1"), other], [node("n0", used=1), *POOL4[1:], *big])
    assert not v["wide"].start and v["other"].start


def test_a_job_larger_than_the_pool_can_never_run_and_says_so() -> None:
    v = admit([job("huge", 5)], POOL4)
    assert not v["huge"].start and "can never run" in (v["huge"].never or "")
    assert admit([job("huge", 5, pool_max=8)], POOL4)["huge"].never is None  # the pool can grow to 8


def test_on_an_autoscaled_pool_too_small_for_it_a_job_starts_so_that_the_autoscaler_adds_nodes() -> None:
    """Held, it would wait for ever: the cluster autoscaler adds nodes only for pods that wait."""
    # A 2-node job on a pool scaled to zero, autoscaler 0..4.
    v = admit([job("a", 2, pool_max=4, grows_on_demand=True)], [])
    assert v["a"].start and (v["a"].needed, v["a"].free) == (2, 0)
    # One node there and free: it starts, its pods take it and wait for the second; a job behind it
    # does not get that node.
    v = admit([job("a", 2, "t1", pool_max=4, grows_on_demand=True), job("b", 1, "t2")], POOL4[:1])
    assert v["a"].start and v["a"].free == 1 and not v["b"].start
    # Enough nodes of its placement exist but are busy: it waits for them, as on any pool.
    busy = [node(f"n{i}", used=1) for i in range(4)]
    assert not admit([job("a", 2, pool_max=8, grows_on_demand=True)], busy)["a"].start
    # A pool of a fixed size (a manual target) still being resized: the nodes come anyway; it waits.
    assert not admit([job("a", 2, pool_max=4)], POOL4[:1])["a"].start


def test_taints_not_tolerated_and_unschedulable_nodes_are_not_free() -> None:
    nodes = [
        node("n0", taints=[{"key": "x", "effect": "NoSchedule"}]),
        node("n1", schedulable=False),
        node("n2", taints=[GPU_TAINT]),
        node("n3"),
    ]
    v = admit([job("a", 3)], nodes)
    assert not v["a"].start and v["a"].free == 2 and v["a"].never is None  # n1 is cordoned, not gone


def test_tolerates() -> None:
    assert tolerates([{"operator": "Exists"}], {"key": "k", "effect": "NoExecute"})
    assert tolerates([], {"key": "k", "effect": "PreferNoSchedule"})
    assert not tolerates(
        [{"key": "k", "value": "a", "effect": "NoSchedule"}],
        {"key": "k", "value": "b", "effect": "NoSchedule"},
    )


def test_slim_node_and_pod_gpus_from_api_objects() -> None:
    api_node = {
        "metadata": {"name": "n", "labels": NC6},
        "spec": {"unschedulable": True, "taints": [GPU_TAINT, {"key": "soft", "effect": "PreferNoSchedule"}]},
        "status": {
            "allocatable": {"nvidia.com/gpu": "4"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    slim = slim_node(api_node)
    assert (slim["gpus"], slim["hardTaints"], slim["unschedulable"]) == (4, [GPU_TAINT], True)
    pod = {
        "spec": {
            "containers": [{"resources": {"limits": {"nvidia.com/gpu": "2"}}}, {}],
            "initContainers": [{"resources": {"requests": {"nvidia.com/gpu": "3"}}}],
        },
    }
    assert pod_gpus(pod) == 3


@given(
    sizes=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=8),
    used=st.lists(st.integers(min_value=0, max_value=1), min_size=6, max_size=6),
)
def test_started_jobs_never_need_more_gpus_than_are_free(sizes: list[int], used: list[int]) -> None:
    nodes = [node(f"n{i}", used=u) for i, u in enumerate(used)]
    jobs = [job(f"j{i}", n, f"t{i:02d}") for i, n in enumerate(sizes)]
    v = admit(jobs, nodes)
    started = [j for j in jobs if v[j.key].start]
    assert sum(j.node_count for j in started) <= used.count(0)
    # first come first served in one pool: the started ones are a prefix of the queue
    assert started == jobs[: len(started)]


def test_workload_api_needs_both_kinds_served() -> None:
    assert workload_api_served(["workloads", "podgroups", "workloads/status"])
    assert not workload_api_served(["workloads"]) and not workload_api_served(None)
