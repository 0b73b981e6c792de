"""The BatchAICluster sync (reconcile/cluster.py) with in-memory indexes, a recording Kube and a recording
scaler: which writes happen (DaemonSet create/replace/delete, status patches only on change, one ARM apply
per scaleSettings change)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import kopf
import pytest

from batchai_operator.config import AgentPoolRef, AllowPolicy, OperatorConfig
from batchai_operator.names import ANNOTATION_APPLIED_SCALE
from batchai_operator.observe import cluster as observe_cluster
from batchai_operator.observe import indexes as indexers
from batchai_operator.observe.indexes import NODES, Indexes
from batchai_operator.observe.memory import ClusterMemory
from batchai_operator.observe.views import slim_node
from batchai_operator.reconcile import cluster
from batchai_operator.reconcile.runtime import Runtime
from batchai_operator.scaling import DesiredScale, ScaleError, ScaleResult
from recording_kube import RecordingKube

AKS = {"subscriptionId": "sub-1", "resourceGroup": "rg", "clusterName": "aks", "agentPoolName": "nc6pool"}
KEY = ("team-a", "nc6")
# The admin granted team-a setup tasks and its agent pool (chart values allow.*).
GRANTED = OperatorConfig(
    allow=AllowPolicy(setup_tasks=["team-a"], agent_pools={"team-*": [AgentPoolRef.model_validate(AKS)]})
)


class FakeScaler:
    def __init__(self) -> None:
        self.applied: list[tuple[DesiredScale, bool]] = []
        self.error: ScaleError | None = None

    async def apply(self, desired: DesiredScale, first_time: bool) -> ScaleResult:
        self.applied.append((desired, first_time))
        if self.error:
            raise self.error
        return ScaleResult(True, {})

    async def close(self) -> None:
        return None


RT: Runtime  # the runtime of the running test (set by `env`)
Env = tuple[RecordingKube, FakeScaler, list[tuple[str, str, str]]]


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[RecordingKube, FakeScaler, list[tuple[str, str, str]]]]:
    global RT
    kube, scaler = RecordingKube(), FakeScaler()
    RT = Runtime(kube, GRANTED, {}, scaler)
    events: list[tuple[str, str, str]] = []
    monkeypatch.setattr(  # Runtime.post's own tests: test_runtime_events.py
        Runtime,
        "post",
        lambda self, obj, posted: events.extend((e.type, e.reason, e.message) for e in posted),
    )
    yield kube, scaler, events
    RT.forget(KEY)


async def sync_cluster(key: tuple[str, str], indexes: dict[str, Any]) -> None:
    RT.indexes = Indexes(indexes)
    await cluster.request_sync(RT, key)


def clusters_of_node(node: str, indexes: dict[str, Any]) -> list[tuple[str, str]]:
    RT.indexes = Indexes(indexes)
    return observe_cluster.clusters_of_node(RT.indexes, RT.memory(ClusterMemory), node)


def node(name: str, pool: str = "nc6pool") -> dict[str, Any]:
    return slim_node(
        {
            "metadata": {
                "name": name,
                "labels": {
                    "node.kubernetes.io/instance-type": "Standard_NC6",
                    "kubernetes.azure.com/agentpool": pool,
                },
            },
            "spec": {},
            "status": {
                "conditions": [
                    {"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}
                ]
            },
        }
    )


def cluster_body(spec: dict[str, Any], annotations: dict[str, str] | None = None) -> kopf.Body:
    return kopf.Body(
        {  # type: ignore[typeddict-item]
            "apiVersion": "batchai.io/v1alpha1",
            "kind": "BatchAICluster",
            "metadata": {
                "name": "nc6",
                "namespace": "team-a",
                "uid": "uid-1",
                "generation": 1,
                "annotations": annotations or {},
            },
            "spec": spec,
            "status": {},
        }
    )


def indexes(
    spec: dict[str, Any],
    nodes: list[dict[str, Any]],
    annotations: dict[str, str] | None = None,
    daemonset: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body = cluster_body(spec, annotations)
    entry = indexers.clusters(body)
    return {
        indexers.CLUSTERS: {k: [v] for k, v in entry.items()},
        indexers.NODES: {n["name"]: [n] for n in nodes},
        indexers.TRAININGJOB_PODS: {},
        indexers.SETUP_PODS: {},
        indexers.SETUP_DAEMONSETS: {"uid-1": [daemonset]} if daemonset else {},
    }


SPEC = {"vmSize": "Standard_NC6", "agentPool": "nc6pool"}
SETUP = {"nodeSetup": {"setupTask": {"commandLine": "echo hi", "stdOutErrPathPrefix": "/logs"}}}


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)
    await RT.settle()


async def test_status_patched_once_and_only_on_change(env: Any) -> None:
    kube, scaler, _ = env
    idx = indexes(SPEC, [node("a"), node("b"), node("x", pool="other")])
    await sync_cluster(KEY, idx)
    [status] = kube.of("status")
    assert status["currentNodeCount"] == 2
    assert status["nodeStateCounts"]["idleNodeCount"] == 2
    await sync_cluster(KEY, idx)
    assert len(kube.of("status")) == 1  # nothing changed: no second patch
    idx[NODES]["c"] = [node("c")]
    await sync_cluster(KEY, idx)
    assert kube.of("status")[-1] == {
        "currentNodeCount": 3,
        "nodeStateCounts": {
            "idleNodeCount": 3,
            "runningNodeCount": 0,
            "preparingNodeCount": 0,
            "unusableNodeCount": 0,
            "leavingNodeCount": 0,
        },
        "conditions": kube.of("status")[-1]["conditions"],
    }
    assert scaler.applied == []
    assert kube.of("create") == []  # no setup task: no DaemonSet


async def test_daemonset_created_replaced_and_deleted(env: Any) -> None:
    kube, _, _ = env
    await sync_cluster(KEY, indexes({**SPEC, **SETUP}, [node("a")]))
    [ds] = kube.of("create")
    assert ds["kind"] == "DaemonSet" and ds["metadata"]["name"] == "nc6-setup"
    revision = ds["metadata"]["annotations"]["batchai.io/setup-task-revision"]
    existing = {
        "name": "nc6-setup",
        "namespace": "team-a",
        "controllerUid": "uid-1",
        "resourceVersion": "42",
        "revision": revision,
    }
    # Unchanged: nothing to do. The node waits for its setup pod: preparing.
    await sync_cluster(KEY, indexes({**SPEC, **SETUP}, [node("a")], daemonset=existing))
    assert len(kube.of("create")) == 1 and kube.of("json-patch") == []
    assert kube.of("status")[-1]["nodeStateCounts"]["preparingNodeCount"] == 1
    # A changed command replaces it, guarded by the resourceVersion.
    changed = {
        **SPEC,
        "nodeSetup": {"setupTask": {"commandLine": "echo bye", "stdOutErrPathPrefix": "/logs"}},
    }
    await sync_cluster(KEY, indexes(changed, [node("a")], daemonset=existing))
    [(kind, ns, name, ops)] = kube.of("json-patch")
    assert (kind, ns, name) == ("DaemonSet", "team-a", "nc6-setup")
    assert ops[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "42"}
    spec_op = next(op for op in ops if op["path"] == "/spec")
    init = spec_op["value"]["template"]["spec"]["initContainers"][0]
    assert {"name": "BATCHAI_SETUP_TASK_COMMAND_LINE", "value": "echo bye"} in init["env"]
    # setupTask removed: the DaemonSet goes.
    await sync_cluster(KEY, indexes(SPEC, [node("a")], daemonset=existing))
    assert kube.of("delete") == [("DaemonSet", "team-a", "nc6-setup")]


async def test_scale_applied_once_per_change_and_recorded(env: Any) -> None:
    kube, scaler, events = env
    spec = {**SPEC, "aks": AKS, "scaleSettings": {"manual": {"targetNodeCount": 2}}}
    idx = indexes(spec, [node("a")])
    await sync_cluster(KEY, idx)
    assert kube.of("status")[0]["allocationState"] == "resizing"
    await settle()
    assert [(d.mode, d.count, first) for d, first in scaler.applied] == [("manual", 2, True)]
    [patch] = kube.of("custom")
    recorded = patch["metadata"]["annotations"][ANNOTATION_APPLIED_SCALE]
    assert recorded == scaler.applied[0][0].key()
    assert ("Normal", "Scaled") in [(e[0], e[1]) for e in events]
    # More syncs (nodes coming and going) before the annotation comes back: no new ARM call.
    idx[NODES]["b"] = [node("b")]
    await sync_cluster(KEY, idx)
    await settle()
    assert len(scaler.applied) == 1
    # With the annotation in place, still nothing; a new target applies once more.
    await sync_cluster(KEY, indexes(spec, [node("a"), node("b")], {ANNOTATION_APPLIED_SCALE: recorded}))
    await settle()
    assert len(scaler.applied) == 1
    spec2 = {**spec, "scaleSettings": {"autoScale": {"minimumNodeCount": 1, "maximumNodeCount": 4}}}
    await sync_cluster(KEY, indexes(spec2, [node("a"), node("b")], {ANNOTATION_APPLIED_SCALE: recorded}))
    await settle()
    assert [(d.mode, d.min_count, d.max_count, first) for d, first in scaler.applied[1:]] == [
        ("autoScale", 1, 4, False)
    ]


async def test_no_arm_calls_without_aks(env: Any) -> None:
    _, scaler, _ = env
    await sync_cluster(
        KEY, indexes({**SPEC, "scaleSettings": {"manual": {"targetNodeCount": 5}}}, [node("a")])
    )
    await settle()
    assert scaler.applied == []


async def test_scale_failure_reported_and_retried_later(env: Any) -> None:
    kube, scaler, events = env
    scaler.error = ScaleError(
        "HTTP 403 AuthorizationFailed: no access", status_code=403, arm_code="AuthorizationFailed"
    )
    spec = {**SPEC, "aks": AKS, "scaleSettings": {"manual": {"targetNodeCount": 1}}}
    idx = indexes(spec, [node("a")])
    await sync_cluster(KEY, idx)
    await settle()
    status = kube.of("status")[-1]
    [err] = status["errors"]
    assert err["code"] == "ScaleFailed"
    assert (
        "agent pool nc6pool of AKS cluster aks" in err["message"] and "AuthorizationFailed" in err["message"]
    )
    assert status["conditions"][0]["reason"] == "ScaleFailed"
    assert [e for e in events if e[1] == "ScaleFailed" and e[0] == "Warning"]
    assert RT.has_timer(KEY, "requeue")  # a one-shot retry is scheduled
    # Syncs before the retry time do not call ARM again.
    await sync_cluster(KEY, idx)
    await settle()
    assert len(scaler.applied) == 1
    # Removing spec.aks clears the error.
    await sync_cluster(KEY, indexes({**SPEC, "scaleSettings": spec["scaleSettings"]}, [node("a")]))
    assert kube.of("status")[-1]["errors"] is None


async def test_invalid_spec_reported(env: Any) -> None:
    kube, _, _ = env
    await sync_cluster(KEY, indexes({"vmSize": "Standard_NC6", "bogus": 1}, [node("a")]))
    status = kube.of("status")[-1]
    assert status["errors"][0]["code"] == "InvalidSpec"
    assert status["currentNodeCount"] == 0


async def test_clusters_of_node(env: Any) -> None:
    idx = indexes(SPEC, [node("a"), node("x", pool="other")])
    assert clusters_of_node("a", idx) == [KEY]
    assert clusters_of_node("x", idx) == []
    await sync_cluster(KEY, idx)
    # A node that left (relabelled or deleted) still resyncs the cluster that counted it.
    del idx[NODES]["a"]
    assert clusters_of_node("a", idx) == [KEY]


def test_indexers_return_empty_mappings_to_drop_objects() -> None:
    """kopf keeps an object's previous index values when an indexer returns None; {} removes them."""
    running = kopf.Body(
        {  # type: ignore[typeddict-item]
            "metadata": {"name": "p", "namespace": "ns", "labels": {}},
            "spec": {"nodeName": "a"},
            "status": {"phase": "Running"},
        }
    )
    done = kopf.Body(
        {  # type: ignore[typeddict-item]
            "metadata": {"name": "p", "namespace": "ns", "labels": {}},
            "spec": {"nodeName": "a"},
            "status": {"phase": "Succeeded"},
        }
    )
    assert set(indexers.pods_by_node(running)) == {"a"}
    assert indexers.pods_by_node(done) == {}
    assert indexers.setup_pods(done) == {}
    assert indexers.setup_daemonsets(done) == {}


async def test_rejected_daemonset_is_reported(env: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from kubernetes.client.exceptions import ApiException

    kube, _, _ = env

    async def refuse(manifest: dict[str, Any]) -> bool:
        e = ApiException(status=422, reason="Unprocessable Entity")
        e.body = '{"message": "DaemonSet.apps \\"nc6-setup\\" is invalid: spec.template...: Invalid value"}'
        raise e

    monkeypatch.setattr(kube, "create", refuse)
    await sync_cluster(KEY, indexes({**SPEC, **SETUP}, [node("a")]))
    status = kube.of("status")[-1]
    assert status["errors"][0]["code"] == "SetupTaskRejected"
    assert "is invalid" in status["errors"][0]["message"]
    assert status["conditions"][0]["reason"] == "SetupTaskRejected"


async def test_a_daemonset_of_that_name_is_adopted_only_when_the_cluster_controls_it(env: Any) -> None:
    """The same ensure() as a TrainingJob's children: a DaemonSet left by another object is not run with."""
    kube, _, _ = env
    kube.existing[("DaemonSet", "nc6-setup")] = "uid-of-another-object"
    await sync_cluster(KEY, indexes({**SPEC, **SETUP}, [node("a")]))
    status = kube.of("status")[-1]
    assert status["errors"][0]["code"] == "SetupTaskRejected"
    assert "belongs to another object" in status["errors"][0]["message"]
    kube.existing[("DaemonSet", "nc6-setup")] = (
        "uid-1"  # the cluster's own (a restart between create and watch)
    )
    RT.forget(KEY)
    kube.calls.clear()
    await sync_cluster(KEY, indexes({**SPEC, **SETUP}, [node("a")]))
    assert "errors" not in kube.of("status")[-1]


async def test_a_setup_task_the_namespace_was_not_granted_is_refused(env: Any) -> None:
    kube, _, _ = env
    RT.config = OperatorConfig(allow=AllowPolicy(setup_tasks=["team-b"], placement=["team-b"]))
    await sync_cluster(KEY, indexes({**SPEC, **SETUP}, [node("a")]))
    assert kube.of("create") == []  # no root DaemonSet on the nodes
    [error] = kube.of("status")[-1]["errors"]
    assert error["code"] == "SetupTaskNotAllowed" and "allow.setupTasks" in error["message"]
    # Granted later, or an existing DaemonSet after the grant is withdrawn: created, then deleted.
    RT.config = GRANTED
    await sync_cluster(KEY, indexes({**SPEC, **SETUP}, [node("a")]))
    assert [d["kind"] for d in kube.of("create")] == ["DaemonSet"]
    existing = {
        "name": "nc6-setup",
        "namespace": "team-a",
        "controllerUid": "uid-1",
        "resourceVersion": "1",
        "revision": "r",
    }
    RT.config = OperatorConfig()
    await sync_cluster(KEY, indexes({**SPEC, **SETUP}, [node("a")], daemonset=existing))
    assert kube.of("delete") == [("DaemonSet", "team-a", "nc6-setup")]


async def test_tolerations_and_node_selectors_need_the_placement_grant(env: Any) -> None:
    kube, _, _ = env
    spec = {**SPEC, "tolerations": [{"operator": "Exists"}]}
    await sync_cluster(KEY, indexes(spec, [node("a")]))
    [error] = kube.of("status")[-1]["errors"]
    assert error["code"] == "PlacementNotAllowed" and "tolerations" in error["message"]
    RT.config = OperatorConfig(allow=AllowPolicy(placement=["team-a"]))
    await sync_cluster(KEY, indexes({**SPEC, "nodeSelector": {"pool": "x"}}, [node("a")]))
    assert not kube.of("status")[-1].get("errors")


async def test_an_agent_pool_not_mapped_to_the_namespace_is_never_scaled(env: Any) -> None:
    kube, scaler, _ = env
    for aks in (
        {**AKS, "agentPoolName": "system"},
        {**AKS, "clusterName": "other-aks"},
        {**AKS, "subscriptionId": "sub-2"},
        {**AKS, "resourceGroup": "rg-prod"},
    ):
        spec = {**SPEC, "aks": aks, "scaleSettings": {"manual": {"targetNodeCount": 0}}}
        await sync_cluster(KEY, indexes(spec, [node("a")]))
        await settle()
        [error] = kube.of("status")[-1]["errors"]
        assert error["code"] == "AgentPoolNotAllowed" and "allow.agentPools" in error["message"]
    # Mapped, in another case (ARM names are case-insensitive): applied.
    upper = {k: v.upper() for k, v in AKS.items()}
    await sync_cluster(
        KEY, indexes({**SPEC, "aks": upper, "scaleSettings": {"manual": {"targetNodeCount": 1}}}, [node("a")])
    )
    await settle()
    assert [d.agent_pool_name for d, _ in scaler.applied] == ["NC6POOL"]
    # The same pool for a namespace it is not mapped to: refused.
    scaler.applied.clear()
    body = cluster_body({**SPEC, "aks": AKS, "scaleSettings": {"manual": {"targetNodeCount": 1}}})
    body["metadata"]["namespace"] = "ops"
    entry = {("ops", "nc6"): [v for v in indexers.clusters(body).values()]}
    idx = indexes(SPEC, [node("a")])
    idx[indexers.CLUSTERS] = entry
    await sync_cluster(("ops", "nc6"), idx)
    await settle()
    assert scaler.applied == []
    RT.forget(("ops", "nc6"))
