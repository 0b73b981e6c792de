"""The pure BatchAICluster status (decide/cluster_status.py): nodes, TrainingJob pods and setup pods ->
counts, state, errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batchai_operator.api.cluster import BatchAIClusterSpec, BatchAIClusterStatus
from batchai_operator.api.trainingjob import BatchAIError
from batchai_operator.decide import cluster, cluster_status
from batchai_operator.decide.cluster_status import setup_pods_to_mark, setup_state
from batchai_operator.decide.common import Event, fmt_time, status_patch
from batchai_operator.observe.cluster import selects
from batchai_operator.observe.views import pod_on_node, slim_node, slim_setup_pod

NOW = datetime(2026, 11, 29, 12, 0, 0, tzinfo=UTC)
REV = "rev1"
LABELS = {"node.kubernetes.io/instance-type": "Standard_NC6", "kubernetes.azure.com/agentpool": "nc6pool"}


def ago(seconds: float) -> str:
    return fmt_time(NOW - timedelta(seconds=seconds))


def node(
    name: str,
    ready: str | None = "True",
    since: float = 3600,
    unschedulable: bool = False,
    deleting: bool = False,
    taints: list[str] | None = None,
    created: float = 7200,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "metadata": {"name": name, "labels": dict(LABELS), "creationTimestamp": ago(created)},
        "spec": {
            "unschedulable": unschedulable,
            "taints": [{"key": t, "effect": "NoSchedule"} for t in taints or []],
        },
        "status": {"conditions": []},
    }
    if deleting:
        body["metadata"]["deletionTimestamp"] = ago(1)
    if ready is not None:
        body["status"]["conditions"].append(
            {"type": "Ready", "status": ready, "lastTransitionTime": ago(since)}
        )
    return slim_node(body)


def trainingjob_pod(node_name: str, phase: str = "Running") -> dict[str, Any]:
    slim = pod_on_node(
        {
            "metadata": {"name": f"job-{node_name}", "namespace": "ns"},
            "spec": {"nodeName": node_name},
            "status": {"phase": phase},
        }
    )
    assert slim is not None
    return slim


def setup_pod(
    node_name: str,
    init: dict[str, Any] | None,
    revision: str = REV,
    deleting: bool = False,
    created: float = 10,
    last: dict[str, Any] | None = None,
    restarts: int = 0,
) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Running"}
    if init is not None:
        cs: dict[str, Any] = {"name": "setup-task", "state": init, "restartCount": restarts}
        if last:
            cs["lastState"] = {"terminated": last}
        status["initContainerStatuses"] = [cs]
    meta: dict[str, Any] = {
        "name": f"setup-{node_name}-{revision}",
        "labels": {"batchai.io/setup-task-revision": revision},
        "creationTimestamp": ago(created),
    }
    if deleting:
        meta["deletionTimestamp"] = ago(1)
    return slim_setup_pod({"metadata": meta, "spec": {"nodeName": node_name}, "status": status})


DONE = {"terminated": {"exitCode": 0, "reason": "Completed"}}
RUNNING = {"running": {"startedAt": ago(5)}}
FAILED = {"terminated": {"exitCode": 2, "reason": "Error"}}


@dataclass
class ClusterStatusResult:
    status: dict[str, Any]  # as written to the API
    events: list[Event]
    recheck_after: float | None


def status_input(**kw: Any) -> cluster_status.ClusterStatusInput:
    """ClusterStatusInput, with the previous status and the scale error given as the API shows them."""
    kw["status"] = BatchAIClusterStatus.model_validate(kw.get("status") or {})
    if kw.get("scale_error") is not None:
        kw["scale_error"] = BatchAIError.model_validate(kw["scale_error"])
    return cluster_status.ClusterStatusInput(**kw)


def compute_cluster_status(obs: cluster_status.ClusterStatusInput, now: datetime) -> ClusterStatusResult:
    r = cluster_status.compute_cluster_status(obs, now)
    return ClusterStatusResult(r.status.wire(), r.events, r.recheck_after)


def spec(**extra: Any) -> BatchAIClusterSpec:
    return BatchAIClusterSpec.model_validate({"vmSize": "Standard_NC4as_T4_v3", **extra})


def status_of(
    nodes: list[dict[str, Any]], status: dict[str, Any] | None = None, **kw: Any
) -> ClusterStatusResult:
    obs = status_input(
        spec=kw.pop("spec", spec()),
        generation=kw.pop("generation", 3),
        status=status or {},
        nodes=nodes,
        **kw,
    )
    return compute_cluster_status(obs, NOW)


def counts(result: ClusterStatusResult) -> tuple[int, int, int, int, int]:
    c = result.status["nodeStateCounts"]
    return (
        c["idleNodeCount"],
        c["runningNodeCount"],
        c["preparingNodeCount"],
        c["unusableNodeCount"],
        c["leavingNodeCount"],
    )


def ready(result: ClusterStatusResult) -> dict[str, Any]:
    [cond] = result.status["conditions"]
    assert cond["type"] == "Ready"
    return cond


# ---- counts --------------------------------------------------------------------------------------


def test_ready_nodes_without_jobs_are_idle() -> None:
    r = status_of([node("a"), node("b")])
    assert counts(r) == (2, 0, 0, 0, 0)
    assert r.status["currentNodeCount"] == 2
    assert r.status["allocationState"] == "steady"
    assert r.status["observedGeneration"] == 3
    assert ready(r)["status"] == "True" and ready(r)["reason"] == "Steady"
    assert "errors" not in r.status


def test_running_and_pending_job_pods_make_a_node_running() -> None:
    r = status_of(
        [node("a"), node("b"), node("c")],
        trainingjob_pods={"a": [trainingjob_pod("a")], "b": [trainingjob_pod("b", "Pending")], "c": []},
    )
    assert counts(r) == (1, 2, 0, 0, 0)


def test_job_pods_on_other_nodes_do_not_count() -> None:
    r = status_of([node("a")], trainingjob_pods={"zzz": [trainingjob_pod("zzz")]})
    assert counts(r) == (1, 0, 0, 0, 0)


def test_not_ready_within_grace_is_preparing_and_asks_for_a_recheck() -> None:
    r = status_of([node("a", ready="False", since=100), node("b", ready=None, created=30)], grace_seconds=300)
    assert counts(r) == (0, 0, 2, 0, 0)
    assert r.recheck_after == pytest.approx(200)
    assert ready(r)["reason"] == "NodesPreparing"


def test_not_ready_past_grace_is_unusable() -> None:
    r = status_of(
        [node("a", ready="False", since=301), node("b", ready="Unknown", since=1000)], grace_seconds=300
    )
    assert counts(r) == (0, 0, 0, 2, 0)
    assert r.recheck_after is None
    cond = ready(r)
    assert cond["status"] == "False" and cond["reason"] == "NodesUnusable"
    assert "a, b" in cond["message"]


def test_not_ready_with_job_pods_is_not_running() -> None:
    r = status_of([node("a", ready="False", since=10)], trainingjob_pods={"a": [trainingjob_pod("a")]})
    assert counts(r) == (0, 0, 1, 0, 0)


@pytest.mark.parametrize(
    "kwargs", [{"unschedulable": True}, {"deleting": True}, {"taints": ["ToBeDeletedByClusterAutoscaler"]}]
)
def test_cordoned_deleted_or_autoscaler_marked_nodes_are_leaving(kwargs: dict[str, Any]) -> None:
    r = status_of([node("a", **kwargs), node("b")], trainingjob_pods={"a": [trainingjob_pod("a")]})
    assert counts(r) == (1, 0, 0, 0, 1)
    assert r.status["currentNodeCount"] == 2
    assert ready(r)["status"] == "True"
    assert "1 leaving" in ready(r)["message"]


def test_leaving_wins_over_unusable() -> None:
    r = status_of([node("a", unschedulable=True, ready="False", since=9999)])
    assert counts(r) == (0, 0, 0, 0, 1)


def test_other_taints_do_not_make_a_node_leave() -> None:
    assert counts(status_of([node("a", taints=["sku"])])) == (1, 0, 0, 0, 0)


# ---- setup task ----------------------------------------------------------------------------------


def test_setup_task_states_per_node() -> None:
    nodes = [node("done"), node("running"), node("missing"), node("failed"), node("busy")]
    pods = [
        setup_pod("done", DONE),
        setup_pod("running", RUNNING),
        setup_pod("failed", FAILED),
        setup_pod("busy", RUNNING),
    ]
    r = status_of(
        nodes,
        setup_revision=REV,
        setup_pods=pods,
        trainingjob_pods={"busy": [trainingjob_pod("busy")]},
        setup_stdouterr_dir="/logs/ns/clusters/c/u",
    )
    # idle, running, preparing, unusable, leaving
    assert counts(r) == (1, 1, 2, 1, 0)
    [err] = r.status["errors"]
    assert err["code"] == "SetupTaskFailed"
    assert "node failed" in err["message"] and "exit code 2" in err["message"]
    assert "stderr-failed.txt in /logs/ns/clusters/c/u" in err["message"]
    details = {d["name"]: d["value"] for d in err["details"]}
    assert (
        details["nodeName"] == "failed" and details["exitCode"] == "2" and details["setupTaskRevision"] == REV
    )
    cond = ready(r)
    assert (cond["status"], cond["reason"]) == ("False", "SetupTaskFailed")
    assert "failed" in cond["message"]
    assert ("Warning", "SetupTaskFailed", err["message"]) in r.events


def test_setup_pod_without_init_status_yet_is_preparing() -> None:
    r = status_of([node("a")], setup_revision=REV, setup_pods=[setup_pod("a", None)])
    assert counts(r) == (0, 0, 1, 0, 0)


def test_only_current_revision_counts() -> None:
    r = status_of([node("a")], setup_revision="rev2", setup_pods=[setup_pod("a", DONE, revision=REV)])
    assert counts(r) == (0, 0, 1, 0, 0)
    r = status_of(
        [node("a")],
        setup_revision="rev2",
        setup_pods=[setup_pod("a", FAILED, revision=REV), setup_pod("a", DONE, revision="rev2")],
    )
    assert counts(r) == (1, 0, 0, 0, 0)
    assert "errors" not in r.status


def test_crash_looping_setup_task_is_unusable() -> None:
    waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 10s"}}
    r = status_of(
        [node("a"), node("b")],
        setup_revision=REV,
        setup_pods=[
            setup_pod("a", waiting, last={"exitCode": 127, "reason": "Error"}, restarts=3),
            setup_pod("b", RUNNING, last={"exitCode": 1, "reason": "Error"}, restarts=1),
        ],
    )
    assert counts(r) == (0, 0, 0, 2, 0)
    assert [e["details"][1]["value"] for e in r.status["errors"]] == ["127", "1"]


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "CreateContainerConfigError"])
def test_setup_task_that_cannot_start_is_unusable(reason: str) -> None:
    init = {"waiting": {"reason": reason, "message": 'secret "setup-secrets" not found'}}
    r = status_of([node("a")], setup_revision=REV, setup_pods=[setup_pod("a", init)])
    assert counts(r) == (0, 0, 0, 1, 0)
    [err] = r.status["errors"]
    assert reason in err["message"] and "node a" in err["message"]


def test_pod_initializing_is_preparing() -> None:
    init = {"waiting": {"reason": "PodInitializing"}}
    assert counts(status_of([node("a")], setup_revision=REV, setup_pods=[setup_pod("a", init)])) == (
        0,
        0,
        1,
        0,
        0,
    )


def test_failure_sticks_while_the_daemonset_replaces_the_failed_pod() -> None:
    first = status_of([node("a")], setup_revision=REV, setup_pods=[setup_pod("a", FAILED)])
    assert counts(first) == (0, 0, 0, 1, 0)
    # The failed pod is gone and a new one is starting: still unusable, same error, no new Event.
    second = status_of(
        [node("a")],
        status=first.status,
        setup_revision=REV,
        setup_pods=[setup_pod("a", {"waiting": {"reason": "PodInitializing"}})],
    )
    assert counts(second) == (0, 0, 0, 1, 0)
    assert second.status["errors"] == first.status["errors"]
    assert not [e for e in second.events if e[1] == "SetupTaskFailed"]
    # It succeeds this time: idle, error gone.
    third = status_of(
        [node("a")], status=second.status, setup_revision=REV, setup_pods=[setup_pod("a", DONE)]
    )
    assert counts(third) == (1, 0, 0, 0, 0)
    assert "errors" not in third.status
    # A new setup task revision forgets the old failure.
    fourth = status_of([node("a")], status=first.status, setup_revision="rev2", setup_pods=[])
    assert counts(fourth) == (0, 0, 1, 0, 0)


def test_a_deleted_failed_pod_still_tells_the_failure() -> None:
    r = status_of([node("a")], setup_revision=REV, setup_pods=[setup_pod("a", FAILED, deleting=True)])
    assert counts(r) == (0, 0, 0, 1, 0)


def test_live_pod_wins_over_a_deleted_one() -> None:
    st = setup_state(
        [setup_pod("a", FAILED, deleting=True, created=100), setup_pod("a", DONE, created=5)], REV
    )
    assert st.state == "done"


def test_without_setup_task_pods_are_ignored() -> None:
    r = status_of([node("a")], setup_revision=None, setup_pods=[setup_pod("a", FAILED)])
    assert counts(r) == (1, 0, 0, 0, 0)


def test_errors_only_for_nodes_of_the_cluster() -> None:
    r = status_of(
        [node("a")], setup_revision=REV, setup_pods=[setup_pod("a", DONE), setup_pod("elsewhere", FAILED)]
    )
    assert "errors" not in r.status


# ---- allocation state ----------------------------------------------------------------------------


def test_manual_target_differs_resizing_then_steady() -> None:
    s = spec(scaleSettings={"manual": {"targetNodeCount": 3}})
    r1 = status_of([node("a"), node("b")], spec=s)
    assert r1.status["allocationState"] == "resizing"
    assert r1.status["allocationStateTransitionTime"] == fmt_time(NOW)
    assert ready(r1)["reason"] == "Resizing" and "2 node(s)" in ready(r1)["message"]
    assert r1.events == []  # the first status is not a transition

    later = NOW + timedelta(seconds=30)
    obs = status_input(spec=s, generation=3, status=r1.status, nodes=[node("a"), node("b"), node("c")])
    r2 = compute_cluster_status(obs, later)
    assert r2.status["allocationState"] == "steady"
    assert r2.status["allocationStateTransitionTime"] == fmt_time(later)
    assert ready(r2)["status"] == "True" and ready(r2)["lastTransitionTime"] == fmt_time(later)
    assert [e[1] for e in r2.events] == ["Steady"]

    obs = status_input(spec=s, generation=3, status=r2.status, nodes=[node("a"), node("b"), node("c")])
    r3 = compute_cluster_status(obs, later + timedelta(seconds=30))
    assert r3.status == r2.status  # nothing moved: same times, no patch
    assert r3.events == []


@pytest.mark.parametrize(("n", "state"), [(0, "resizing"), (1, "steady"), (4, "steady"), (5, "resizing")])
def test_autoscale_range(n: int, state: str) -> None:
    s = spec(scaleSettings={"autoScale": {"minimumNodeCount": 1, "maximumNodeCount": 4}})
    r = status_of([node(f"n{i}") for i in range(n)], spec=s)
    assert r.status["allocationState"] == state


def test_leaving_nodes_count_in_current() -> None:
    s = spec(scaleSettings={"manual": {"targetNodeCount": 1}})
    r = status_of([node("a"), node("b", deleting=True)], spec=s)
    assert r.status["currentNodeCount"] == 2
    assert r.status["allocationState"] == "resizing"


def test_a_resize_nothing_can_apply_is_steady_and_says_why() -> None:
    """No spec.aks (or a pool the admin did not allow): not `resizing` forever, the reason in Ready."""
    s = spec(scaleSettings={"manual": {"targetNodeCount": 3}})
    r = status_of([node("a")], spec=s, scale_blocked="the cluster has no AKS agent pool binding")
    assert r.status["allocationState"] == "steady"
    cond = ready(r)
    assert (cond["status"], cond["reason"]) == ("False", "ScaleNotApplied")
    assert "1 node(s), scaleSettings ask for 3" in cond["message"]
    assert "no AKS agent pool binding" in cond["message"]
    # In range, the same cluster is simply ready.
    assert ready(status_of([node("a"), node("b"), node("c")], spec=s, scale_blocked="x"))["status"] == "True"


def test_decide_blocks_scaling_without_spec_aks() -> None:
    s = spec(scaleSettings={"manual": {"targetNodeCount": 2}})
    assert cluster._scale_blocked(s, None) is not None
    assert cluster._scale_blocked(spec(), None) is None
    aks = {"subscriptionId": "s", "resourceGroup": "g", "clusterName": "c", "agentPoolName": "p"}
    bound = spec(scaleSettings={"manual": {"targetNodeCount": 2}}, aks=aks)
    assert cluster._scale_blocked(bound, None) is None
    refused = BatchAIError(code="AgentPoolNotAllowed", message="not mapped")
    assert cluster._scale_blocked(bound, refused) == "not mapped"


def test_scale_in_flight_is_resizing() -> None:
    s = spec(scaleSettings={"manual": {"targetNodeCount": 1}})
    assert status_of([node("a")], spec=s, scaling=True).status["allocationState"] == "resizing"


def test_no_scale_settings_is_steady_but_no_nodes_is_not_ready() -> None:
    r = status_of([])
    assert r.status["allocationState"] == "steady" and r.status["currentNodeCount"] == 0
    assert (ready(r)["status"], ready(r)["reason"]) == ("False", "NoNodes")
    # Scaled to zero on purpose: ready.
    r = status_of([], spec=spec(scaleSettings={"manual": {"targetNodeCount": 0}}))
    assert ready(r)["status"] == "True"


# ---- errors and conditions ---------------------------------------------------------------------


def test_scale_error_comes_first_and_sets_ready_false() -> None:
    scale_error = {"code": "ScaleFailed", "message": "HTTP 403 AuthorizationFailed: no"}
    r = status_of(
        [node("a")], scale_error=scale_error, setup_revision=REV, setup_pods=[setup_pod("a", FAILED)]
    )
    assert [e["code"] for e in r.status["errors"]] == ["ScaleFailed", "SetupTaskFailed"]
    assert (ready(r)["reason"], ready(r)["message"]) == ("ScaleFailed", scale_error["message"])


def test_invalid_spec() -> None:
    r = status_of([], spec=None, problem=("InvalidSpec", "vmSize: Field required"))
    assert r.status["errors"] == [{"code": "InvalidSpec", "message": "vmSize: Field required"}]
    assert ready(r)["reason"] == "InvalidSpec"


def test_ready_transition_time_kept_while_status_unchanged() -> None:
    old = status_of([node("a")]).status
    obs = status_input(spec=spec(), generation=4, status=old, nodes=[node("a"), node("b")])
    r = compute_cluster_status(obs, NOW + timedelta(minutes=5))
    assert ready(r)["lastTransitionTime"] == fmt_time(NOW)
    assert ready(r)["observedGeneration"] == 4 and r.status["observedGeneration"] == 4


def test_allocation_events() -> None:
    s = spec(scaleSettings={"manual": {"targetNodeCount": 2}})
    steady = status_of([node("a"), node("b")], spec=s)
    r = status_of([node("a")], status=steady.status, spec=s)
    assert r.events == [("Normal", "Resizing", "Resizing: 1 node(s), scaleSettings ask for 2")]


# ---- helpers -------------------------------------------------------------------------------------


def test_status_patch_only_changes_and_nulls_dropped_keys() -> None:
    old = {"currentNodeCount": 2, "errors": [{"code": "X", "message": "m"}], "allocationState": "steady"}
    new = {"currentNodeCount": 2, "allocationState": "resizing"}
    assert status_patch(old, new) == {"allocationState": "resizing", "errors": None}
    assert status_patch(new, dict(new)) is None
    assert status_patch({}, new) == new


def test_slim_node_and_pods() -> None:
    n = node("a", ready="False", since=5, unschedulable=True, taints=["b", "a"])
    assert n["ready"] == "False" and n["unschedulable"] and n["taints"] == ["a", "b"]
    assert pod_on_node({"metadata": {"name": "p"}, "spec": {}, "status": {"phase": "Pending"}}) is None
    assert (
        pod_on_node({"metadata": {"name": "p"}, "spec": {"nodeName": "a"}, "status": {"phase": "Succeeded"}})
        is None
    )
    assert selects({"a": "1"}, {"a": "1", "b": "2"}) and not selects({"a": "1", "c": "3"}, {"a": "1"})


def test_setup_pods_to_mark_only_current_finished_unmarked_pods() -> None:
    done = {"state": "terminated", "exitCode": 0}
    pods = [
        {"name": "a", "revision": "r2", "init": done, "marked": False},
        {"name": "b", "revision": "r2", "init": done, "marked": True},
        {"name": "c", "revision": "r1", "init": done, "marked": False},
        {"name": "d", "revision": "r2", "init": {"state": "terminated", "exitCode": 1}},
        {"name": "e", "revision": "r2", "init": {"state": "running"}},
        {"name": "f", "revision": "r2", "init": done, "deleting": True},
    ]
    assert setup_pods_to_mark(pods, "r2") == ["a"]
    assert setup_pods_to_mark(pods, None) == []
