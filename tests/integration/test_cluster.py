"""BatchAICluster against the real local control plane, with kwok nodes and pods, and the operator as a
subprocess whose Azure Resource Manager and Entra endpoints are the local ARM double
(tests/doubles/arm_agentpools.py, a test double, not Azure).

Each test makes its own kwok nodes in its own agent pool (a fresh `kubernetes.azure.com/agentpool`
label), so the counts it asserts are its own; the nodes are deleted afterwards.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from devcluster import SIM_INIT_EXIT_CODE, SIM_RUN_FOR, DevCluster, wait_for
from kubernetes import client
from operator_process import TEST_ALLOW, OperatorProcess, operator_env

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doubles.arm_agentpools import ArmAgentPoolsDouble

pytestmark = pytest.mark.integration

GROUP, VERSION, PLURAL = "batchai.io", "v1alpha1", "batchaiclusters"
REPO = Path(__file__).resolve().parents[2]
FAST = 8.0  # "within a few seconds" (a cluster's node counts are written at most every 3 s)
GPU_TAINT = {"key": "sku", "value": "gpu", "effect": "NoSchedule"}


# ---- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmAgentPoolsDouble]:
    with ArmAgentPoolsDouble(tmp_path_factory.mktemp("arm-double")) as double:
        yield double


def _kubectl(*args: str) -> str:
    out = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stderr}"
    return out.stdout


def _still_running(op: OperatorProcess) -> None:
    """start() only checks the liveness port, which another operator process may hold."""
    time.sleep(2)
    assert op.proc is not None and op.proc.poll() is None, "operator exited:\n" + op.log_text()[-3000:]


@pytest.fixture(scope="module")
def cluster_operator(
    request: pytest.FixtureRequest,
    devcluster: DevCluster,
    arm: ArmAgentPoolsDouble,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The operator, running with the ARM double's environment for this module.

    Uses the session `operator` when the suite provides it (restarted with the double's environment,
    and restored afterwards), so two operators never run at once; otherwise installs the CRDs and
    runs its own.
    """
    try:
        shared: OperatorProcess | None = request.getfixturevalue("operator")
    except pytest.FixtureLookupError:
        shared = None
    if shared is None:
        _kubectl(
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=batchai-cluster-tests",
            "-f",
            str(REPO / "crds"),
        )
        _kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            f"crd/{PLURAL}.{GROUP}",
            f"crd/trainingjobs.{GROUP}",
        )
        op = OperatorProcess(
            tmp_path_factory.mktemp("cluster-operator") / "operator.log", {**arm.env(), **ARM_GRANT}
        )
        op.start()
        _still_running(op)
        yield op
        op.stop()
        return
    saved = dict(shared.extra_env)
    shared.stop()
    shared.extra_env = {**saved, **arm.env(), **ARM_GRANT}
    shared.start()
    _still_running(shared)
    yield shared
    shared.stop()
    shared.extra_env = saved
    shared.start()


# The agent pools the module's ARM tests scale, mapped by the admin (chart value allow.agentPools) to the
# tests' namespaces: the operator scales no other pool.
ARM_SUB = str(uuid.uuid4())
ARM_POOLS = tuple(f"it{uuid.uuid4().hex[:8]}" for _ in range(2))
ARM_GRANT = operator_env(
    {
        **TEST_ALLOW,
        "agentPools": {
            "it-*": [
                {"subscriptionId": ARM_SUB, "resourceGroup": "rg-ml", "clusterName": "aks-ml"}
                | {"agentPoolName": p}
                for p in ARM_POOLS
            ]
        },
    }
)


@pytest.fixture
def pool() -> str:
    """A fresh agent pool name for this test's nodes and cluster."""
    return f"it{uuid.uuid4().hex[:8]}"


# ---- helpers ------------------------------------------------------------------------------------


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi()


def create_bac(
    ns: str, name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BatchAICluster",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
        "spec": spec,
    }
    return custom().create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)


def get_bac(ns: str, name: str) -> dict[str, Any]:
    return custom().get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name)


def patch_bac(ns: str, name: str, patch: dict[str, Any]) -> None:
    custom().patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, name, patch)


def counts_of(obj: dict[str, Any]) -> dict[str, int]:
    st = obj.get("status") or {}
    c = st.get("nodeStateCounts") or {}
    return {
        "current": st.get("currentNodeCount", -1),
        "idle": c.get("idleNodeCount", -1),
        "running": c.get("runningNodeCount", -1),
        "preparing": c.get("preparingNodeCount", -1),
        "unusable": c.get("unusableNodeCount", -1),
        "leaving": c.get("leavingNodeCount", -1),
    }


def wait_counts(ns: str, name: str, timeout: float = FAST, **expected: int) -> dict[str, Any]:
    """Wait until the cluster's counts include `expected`; return the object."""

    def check() -> dict[str, Any] | None:
        obj = get_bac(ns, name)
        got = counts_of(obj)
        return obj if all(got[k] == v for k, v in expected.items()) else None

    try:
        return wait_for(check, timeout=timeout, interval=0.1, what=f"{ns}/{name} counts {expected}")
    except TimeoutError as e:
        raise TimeoutError(f"{e}; status now: {get_bac(ns, name).get('status')}") from None


def wait_status(
    ns: str, name: str, pred: Callable[[dict[str, Any]], bool], what: str, timeout: float = FAST
) -> dict[str, Any]:
    try:
        return wait_for(
            lambda: o if pred(o := get_bac(ns, name)) else None, timeout=timeout, interval=0.1, what=what
        )
    except TimeoutError as e:
        raise TimeoutError(f"{e}; status now: {get_bac(ns, name).get('status')}") from None


def gpu_node(make: Callable[..., client.V1Node], pool: str, **kwargs: Any) -> str:
    node = make(
        f"aks-{pool}", gpus=1, instance_type="Standard_NC6", agent_pool=pool, taints=[GPU_TAINT], **kwargs
    )
    return str(node.metadata.name)


def cluster_events(ns: str, name: str) -> list[client.CoreV1Event]:
    return client.CoreV1Api().list_namespaced_event(ns, field_selector=f"involvedObject.name={name}").items


def wait_cluster_events(
    ns: str, name: str, match: Callable[[client.CoreV1Event], bool], what: str
) -> list[client.CoreV1Event]:
    """The Events about a cluster that match; the operator posts them in the background, so one may
    reach the apiserver just after the status that goes with it."""
    return wait_for(lambda: [e for e in cluster_events(ns, name) if match(e)], timeout=10, what=what)


def setup_pods(ns: str, name: str) -> list[client.V1Pod]:
    uid = get_bac(ns, name)["metadata"]["uid"]
    return client.CoreV1Api().list_namespaced_pod(ns, label_selector=f"batchai.io/cluster-uid={uid}").items


# ---- node counts --------------------------------------------------------------------------------


def test_counts_follow_nodes_added_cordoned_and_removed(
    cluster_operator: OperatorProcess,
    namespace: str,
    pool: str,
    fake_node: Callable[..., client.V1Node],
    core_v1: client.CoreV1Api,
) -> None:
    create_bac(
        namespace,
        "gpu",
        {"vmSize": "STANDARD_NC6", "agentPool": pool, "scaleSettings": {"manual": {"targetNodeCount": 2}}},
    )
    obj = wait_counts(namespace, "gpu", timeout=15, current=0)
    st = obj["status"]
    # No spec.aks: nothing resizes the pool, so not `resizing` forever; Ready says why.
    assert st["allocationState"] == "steady"
    assert {c["type"]: c for c in st["conditions"]}["Ready"]["reason"] == "ScaleNotApplied"
    assert st["observedGeneration"] == obj["metadata"]["generation"]

    a = gpu_node(fake_node, pool)
    wait_counts(namespace, "gpu", current=1, idle=1)
    b = gpu_node(fake_node, pool)
    obj = wait_counts(namespace, "gpu", current=2, idle=2, running=0, preparing=0, unusable=0, leaving=0)
    assert obj["status"]["allocationState"] == "steady"
    ready = {c["type"]: c for c in obj["status"]["conditions"]}["Ready"]
    assert ready["status"] == "True"

    # Cordon: leaving, within seconds.
    started = time.monotonic()
    core_v1.patch_node(a, {"spec": {"unschedulable": True}})
    wait_counts(namespace, "gpu", current=2, idle=1, leaving=1)
    assert time.monotonic() - started < FAST
    core_v1.patch_node(a, {"spec": {"unschedulable": False}})
    wait_counts(namespace, "gpu", current=2, idle=2, leaving=0)

    # Remove a node: the count drops below the target (2) again, which nothing here will restore.
    started = time.monotonic()
    core_v1.delete_node(b)
    obj = wait_counts(namespace, "gpu", current=1, idle=1)
    assert time.monotonic() - started < FAST
    assert obj["status"]["allocationState"] == "steady"
    ready = {c["type"]: c for c in obj["status"]["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "ScaleNotApplied")
    assert "1 node(s), scaleSettings ask for 2" in ready["message"]

    # A node of another pool does not count.
    gpu_node(fake_node, pool + "x")
    time.sleep(1)
    assert counts_of(get_bac(namespace, "gpu"))["current"] == 1


def test_relabelled_node_leaves_the_cluster(
    cluster_operator: OperatorProcess,
    namespace: str,
    pool: str,
    fake_node: Callable[..., client.V1Node],
    core_v1: client.CoreV1Api,
) -> None:
    create_bac(namespace, "gpu", {"vmSize": "Standard_NC6", "agentPool": pool})
    a = gpu_node(fake_node, pool)
    wait_counts(namespace, "gpu", timeout=15, current=1, idle=1)
    core_v1.patch_node(a, {"metadata": {"labels": {"kubernetes.azure.com/agentpool": pool + "-moved"}}})
    obj = wait_counts(namespace, "gpu", current=0)
    ready = {c["type"]: c for c in obj["status"]["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "NoNodes")


# ---- setup task ---------------------------------------------------------------------------------


SETUP = {
    "commandLine": "apt-get install -y nfs-common",
    "stdOutErrPathPrefix": "/tmp/setup-logs",
    "environmentVariables": [{"name": "STAGE", "value": "1"}],
}


def test_setup_task_daemonset_pinned_to_the_cluster_nodes(
    cluster_operator: OperatorProcess,
    namespace: str,
    pool: str,
    fake_node: Callable[..., client.V1Node],
) -> None:
    nodes = {gpu_node(fake_node, pool) for _ in range(2)}
    gpu_node(fake_node, pool + "other")  # must get no setup pod
    created = create_bac(
        namespace, "setup", {"vmSize": "Standard_NC6", "agentPool": pool, "nodeSetup": {"setupTask": SETUP}}
    )
    apps = client.AppsV1Api()
    ds = wait_for(
        lambda: apps.read_namespaced_daemon_set("setup-setup", namespace), timeout=15, what="setup DaemonSet"
    )
    assert ds.metadata.owner_references[0].uid == created["metadata"]["uid"]
    assert ds.spec.template.spec.node_selector == {"kubernetes.azure.com/agentpool": pool}
    assert any(t.key == "sku" for t in ds.spec.template.spec.tolerations)
    init = ds.spec.template.spec.init_containers[0]
    env = {e.name: e.value for e in init.env}
    assert env["AZ_BATCHAI_STDOUTERR_DIR"] == (
        f"/tmp/setup-logs/{namespace}/clusters/setup/{created['metadata']['uid']}"
    )
    assert env["STAGE"] == "1" and env["BATCHAI_SETUP_TASK_COMMAND_LINE"] == SETUP["commandLine"]
    assert "nvidia.com/gpu" not in str(ds.spec.template.spec.containers[0].resources)

    # Setup done on both nodes (kwok reports the init container finished): idle.
    wait_counts(namespace, "setup", timeout=20, current=2, idle=2, preparing=0, unusable=0)
    pods = [p for p in setup_pods(namespace, "setup") if p.spec.node_name]
    assert {p.spec.node_name for p in pods} == nodes

    # Removing the setup task removes the DaemonSet.
    patch_bac(namespace, "setup", {"spec": {"nodeSetup": None}})
    wait_for(
        lambda: not apps.list_namespaced_daemon_set(namespace).items,
        timeout=FAST,
        what="setup DaemonSet deleted",
    )


def test_failing_setup_task_makes_nodes_unusable_with_errors_naming_them(
    cluster_operator: OperatorProcess,
    namespace: str,
    pool: str,
    fake_node: Callable[..., client.V1Node],
) -> None:
    nodes = sorted(gpu_node(fake_node, pool) for _ in range(2))
    # kwok fails the first init container of the setup pods with exit code 3 (see tests/k8s/README.md).
    create_bac(
        namespace,
        "broken",
        {
            "vmSize": "Standard_NC6",
            "agentPool": pool,
            "nodeSetup": {"setupTask": {**SETUP, "commandLine": "exit 3"}},
        },
        annotations={SIM_INIT_EXIT_CODE: "3", SIM_RUN_FOR: "200ms"},
    )
    obj = wait_counts(namespace, "broken", timeout=30, current=2, unusable=2, idle=0)
    st = obj["status"]
    errors = [e for e in st["errors"] if e["code"] == "SetupTaskFailed"]
    named = sorted({d["value"] for e in errors for d in e["details"] if d["name"] == "nodeName"})
    assert named == nodes
    for e in errors:
        assert "exit code 3" in e["message"]
        assert any(n in e["message"] for n in nodes)
    ready = {c["type"]: c for c in st["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "SetupTaskFailed")
    wait_cluster_events(
        namespace,
        "broken",
        lambda e: e.type == "Warning" and e.reason == "SetupTaskFailed" and nodes[0] in e.message,
        f"a SetupTaskFailed Event naming {nodes[0]}",
    )
    # While the DaemonSet controller replaces the failed pods, the nodes stay unusable.
    for _ in range(20):
        assert counts_of(get_bac(namespace, "broken"))["unusable"] == 2
        time.sleep(0.1)


# ---- jobs land on the cluster's nodes -------------------------------------------------------------


def test_job_runs_only_on_the_cluster_nodes_and_counts_as_running(
    cluster_operator: OperatorProcess,
    namespace: str,
    pool: str,
    fake_node: Callable[..., client.V1Node],
) -> None:
    mine = {gpu_node(fake_node, pool) for _ in range(2)}
    create_bac(namespace, "mine", {"vmSize": "Standard_NC6", "agentPool": pool})
    wait_counts(namespace, "mine", timeout=15, current=2, idle=2)
    job = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": "hello", "namespace": namespace, "annotations": {SIM_RUN_FOR: "6s"}},
        "spec": {
            "cluster": "mine",
            "nodeCount": 1,
            "stdOutErrPathPrefix": "/tmp/logs",
            "customToolkitSettings": {"commandLine": "true"},
        },
    }
    created = custom().create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", job)
    uid = created["metadata"]["uid"]

    def scheduled() -> client.V1Pod | None:
        pods = (
            client.CoreV1Api()
            .list_namespaced_pod(namespace, label_selector=f"batchai.io/trainingjob-uid={uid}")
            .items
        )
        return next((p for p in pods if p.spec.node_name), None)

    pod = wait_for(scheduled, timeout=30, what="job pod scheduled")
    assert pod.spec.node_name in mine
    wait_counts(namespace, "mine", current=2, running=1, idle=1)
    # The job ends: its node is idle again.
    wait_counts(namespace, "mine", timeout=30, current=2, running=0, idle=2)


# ---- kubectl get bac ----------------------------------------------------------------------------


def test_kubectl_get_bac_shows_az_batchai_cluster_list_columns(
    cluster_operator: OperatorProcess,
    namespace: str,
    pool: str,
    fake_node: Callable[..., client.V1Node],
    core_v1: client.CoreV1Api,
) -> None:
    a = gpu_node(fake_node, pool)
    gpu_node(fake_node, pool)
    create_bac(
        namespace,
        "nc6",
        {"vmSize": "STANDARD_NC6", "agentPool": pool, "scaleSettings": {"manual": {"targetNodeCount": 2}}},
    )
    core_v1.patch_node(a, {"spec": {"unschedulable": True}})
    wait_counts(namespace, "nc6", timeout=15, current=2, idle=1, leaving=1)
    out = _kubectl("get", "bac", "-n", namespace)
    header, row = out.splitlines()[:2]
    assert header.split() == [
        "NAME",
        "VM",
        "SIZE",
        "STATE",
        "IDLE",
        "RUNNING",
        "PREPARING",
        "LEAVING",
        "UNUSABLE",
        "AGE",
    ]
    assert row.split()[:8] == ["nc6", "STANDARD_NC6", "steady", "1", "0", "0", "1", "0"]
    # `kubectl get batchai` (the category) lists it too.
    assert "nc6" in _kubectl("get", "batchai", "-n", namespace)


# ---- scaling through ARM ------------------------------------------------------------------------


def test_arm_double_sees_exactly_the_updates_scale_settings_ask_for(
    cluster_operator: OperatorProcess,
    arm: ArmAgentPoolsDouble,
    namespace: str,
    fake_node: Callable[..., client.V1Node],
) -> None:
    pool = ARM_POOLS[0]
    sub = ARM_SUB
    path = arm.add_pool(sub, "rg-ml", "aks-ml", pool, count=1)
    aks = {"subscriptionId": sub, "resourceGroup": "rg-ml", "clusterName": "aks-ml", "agentPoolName": pool}
    gpu_node(fake_node, pool)
    create_bac(
        namespace,
        "scaled",
        {
            "vmSize": "Standard_NC6",
            "agentPool": pool,
            "aks": aks,
            "scaleSettings": {"manual": {"targetNodeCount": 3}},
        },
    )
    wait_for(
        lambda: len(arm.puts(path)) == 1 and arm.pool(path)["provisioningState"] == "Succeeded",
        timeout=15,
        what="first agent-pool PUT",
    )
    first = arm.puts(path)[0]["properties"]
    assert (first["count"], first["enableAutoScaling"]) == (3, False)
    assert "minCount" not in first and "maxCount" not in first
    obj = wait_status(
        namespace,
        "scaled",
        lambda o: "batchai.io/applied-scale-settings" in (o["metadata"].get("annotations") or {}),
        "applied annotation",
    )
    assert json.loads(obj["metadata"]["annotations"]["batchai.io/applied-scale-settings"])["count"] == 3
    # One node of three: resizing (kwok does not add nodes for the double).
    assert obj["status"]["allocationState"] == "resizing"
    wait_cluster_events(namespace, "scaled", lambda e: e.reason == "Scaled", "a Scaled Event")

    # Switch to the autoscaler: exactly one more PUT.
    patch_bac(
        namespace,
        "scaled",
        {
            "spec": {
                "scaleSettings": {"manual": None, "autoScale": {"minimumNodeCount": 1, "maximumNodeCount": 5}}
            }
        },
    )
    wait_for(lambda: len(arm.puts(path)) == 2, timeout=15, what="second agent-pool PUT")
    second = arm.puts(path)[1]["properties"]
    assert (second["enableAutoScaling"], second["minCount"], second["maxCount"], second["count"]) == (
        True,
        1,
        5,
        3,
    )
    wait_status(
        namespace,
        "scaled",
        lambda o: (o.get("status") or {}).get("allocationState") == "steady",
        "steady within 1..5",
    )

    # Changes that do not touch scaleSettings, and node churn, send nothing.
    patch_bac(namespace, "scaled", {"spec": {"nodeSelector": {"type": "kwok"}}})
    gpu_node(fake_node, pool)
    time.sleep(3)
    assert len(arm.puts(path)) == 2
    # Every request went to this pool (or its operations), authorized with a workload-identity token.
    assert all(r.authorized for r in arm.pool_requests())


def test_scale_failure_reported_without_secrets(
    cluster_operator: OperatorProcess,
    arm: ArmAgentPoolsDouble,
    namespace: str,
) -> None:
    pool = ARM_POOLS[1]
    sub = ARM_SUB
    path = arm.add_pool(sub, "rg-ml", "aks-ml", pool, count=1)
    arm.fail(
        "PUT",
        path,
        403,
        "AuthorizationFailed",
        "The client 'c0ffee' with object id 'c0ffee' does not have authorization to perform action "
        "'Microsoft.ContainerService/managedClusters/agentPools/write'",
    )
    aks = {"subscriptionId": sub, "resourceGroup": "rg-ml", "clusterName": "aks-ml", "agentPoolName": pool}
    create_bac(
        namespace,
        "denied",
        {
            "vmSize": "Standard_NC6",
            "agentPool": pool,
            "aks": aks,
            "scaleSettings": {"manual": {"targetNodeCount": 2}},
        },
    )
    obj = wait_status(
        namespace,
        "denied",
        lambda o: any(e["code"] == "ScaleFailed" for e in (o.get("status") or {}).get("errors") or []),
        "ScaleFailed error",
        timeout=15,
    )
    err = next(e for e in obj["status"]["errors"] if e["code"] == "ScaleFailed")
    assert "AuthorizationFailed" in err["message"] and pool in err["message"]
    ready = {c["type"]: c for c in obj["status"]["conditions"]}["Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "ScaleFailed")
    warnings = wait_cluster_events(
        namespace,
        "denied",
        lambda e: e.type == "Warning" and e.reason == "ScaleFailed",
        "a ScaleFailed Event",
    )
    shown = json.dumps(obj["status"]) + " ".join(e.message for e in warnings)
    for secret in [*arm.issued_tokens, arm.federated_token]:
        assert secret not in shown
    assert "annotations" not in obj["metadata"] or (
        "batchai.io/applied-scale-settings" not in obj["metadata"]["annotations"]
    )

    # A new target is tried at once; this time ARM accepts it and the error goes away.
    patch_bac(namespace, "denied", {"spec": {"scaleSettings": {"manual": {"targetNodeCount": 3}}}})
    wait_status(
        namespace, "denied", lambda o: not (o.get("status") or {}).get("errors"), "error cleared", timeout=15
    )
    assert [p["properties"]["count"] for p in arm.puts(path)] == [2, 3]
    assert arm.pool(path)["count"] == 3


def test_no_arm_calls_without_spec_aks(
    cluster_operator: OperatorProcess,
    arm: ArmAgentPoolsDouble,
    namespace: str,
    pool: str,
    fake_node: Callable[..., client.V1Node],
) -> None:
    before = len(arm.requests)
    gpu_node(fake_node, pool)
    create_bac(
        namespace,
        "observed",
        {"vmSize": "Standard_NC6", "agentPool": pool, "scaleSettings": {"manual": {"targetNodeCount": 4}}},
    )
    obj = wait_counts(namespace, "observed", timeout=15, current=1, idle=1)
    assert obj["status"]["allocationState"] == "steady"
    assert {c["type"]: c for c in obj["status"]["conditions"]}["Ready"]["reason"] == "ScaleNotApplied"
    patch_bac(
        namespace,
        "observed",
        {
            "spec": {
                "scaleSettings": {"manual": None, "autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 3}}
            }
        },
    )
    wait_status(
        namespace,
        "observed",
        lambda o: {c["type"]: c for c in o["status"]["conditions"]}["Ready"]["status"] == "True",
        "Ready once in the new range",
    )
    time.sleep(2)
    assert arm.requests[before:] == []
