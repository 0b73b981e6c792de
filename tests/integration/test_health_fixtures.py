"""Argo CD health checks on real objects: every TrainingJob and BatchAICluster state the operator writes here
is captured, compared with the committed fixture (argocd/.../testdata, see health_fixtures.py) and run
through the Lua check, which must give the health health_test.yaml names for it.

(This module sorts after test_chart.py, which must run before any module requesting `operator`.)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from devcluster import SIM_EXIT_CODE, SIM_INIT_EXIT_CODE, SIM_RUN_FOR, delete_node, fake_node_body, wait_for
from health_fixtures import record
from jobs import (
    GROUP,
    VERSION,
    create_cluster,
    create_storage_secret,
    create_trainingjob,
    custom,
    get_trainingjob,
    wait_state,
)
from kubernetes import client
from operator_process import OperatorProcess

from samples import cntk_spec

pytestmark = pytest.mark.integration
TJ = "TrainingJob"
BAC = "BatchAICluster"


def simple(**extra: Any) -> dict[str, Any]:
    return {
        "cluster": "nc6",
        "nodeCount": 1,
        "customToolkitSettings": {"commandLine": "python train.py"},
        "stdOutErrPathPrefix": "/tmp/logs",
        **extra,
    }


def state_with_reason(ns: str, name: str, state: str, reason: str) -> Callable[[], dict[str, Any] | None]:
    def check() -> dict[str, Any] | None:
        obj = get_trainingjob(ns, name)
        st = obj.get("status") or {}
        conds = {c["type"]: c for c in st.get("conditions") or [] if c["status"] == "True"}
        ok = st.get("executionState") == state and any(c["reason"] == reason for c in conds.values())
        return obj if ok else None

    return check


def test_trainingjob_states(operator: OperatorProcess, namespace: str) -> None:
    verdicts: dict[str, dict[str, str]] = {}
    create_cluster(namespace)  # nc6: the devcluster's Standard_NC6 nodes
    create_cluster(namespace, "nowhere", vmSize="Standard_NC6", agentPool="no-such-pool")
    create_storage_secret(namespace)

    fresh = create_trainingjob(namespace, "no-status", simple(cluster="missing"))
    verdicts["no-status"] = record(TJ, "no-status", fresh)

    create_trainingjob(namespace, "cluster-not-found", simple(cluster="missing"))
    create_trainingjob(namespace, "waiting-for-nodes", simple(cluster="nowhere"))
    create_trainingjob(namespace, "suspended", simple(suspend=True))
    create_trainingjob(namespace, "running", cntk_spec(), annotations={SIM_RUN_FOR: "120s"})
    create_trainingjob(namespace, "succeeded", cntk_spec(), annotations={SIM_RUN_FOR: "1s"})
    create_trainingjob(namespace, "failed", simple(), annotations={SIM_RUN_FOR: "1s", SIM_EXIT_CODE: "3"})

    def unschedulable() -> dict[str, Any] | None:
        # Once the scheduler found the pod unschedulable, its verdict is in the message.
        obj = state_with_reason(namespace, "waiting-for-nodes", "queued", "WaitingForNodes")()
        return obj if obj and "nodes are available" in str(obj["status"]) else None

    waits = {
        "cluster-not-found": state_with_reason(namespace, "cluster-not-found", "queued", "ClusterNotFound"),
        "waiting-for-nodes": unschedulable,
        "suspended": state_with_reason(namespace, "suspended", "queued", "Suspended"),
    }
    for name, check in waits.items():
        obj = wait_for(check, timeout=60, what=f"TrainingJob {name}")
        verdicts[name] = record(TJ, name, obj)
    for name, count in (("running", "ready"), ("succeeded", "succeeded"), ("failed", "failed")):
        wait_state(namespace, name, name, timeout=90)

        def settled(name: str = name, count: str = count) -> dict[str, Any] | None:
            # The state flips first; the node counts follow with the pod's next status update.
            obj = get_trainingjob(namespace, name)
            return obj if obj["status"]["nodes"][count] == 1 else None

        verdicts[name] = record(TJ, name, wait_for(settled, timeout=30, what=f"{name}: node counts"))

    # A spec edit the operator has not reconciled yet: the PATCH response itself (generation 2, status of 1).
    patched = custom().patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "trainingjobs", "running", {"spec": {"ttlSecondsAfterFinished": 600}}
    )
    assert patched["metadata"]["generation"] == 2 and patched["status"]["observedGeneration"] == 1
    verdicts["spec-not-observed"] = record(TJ, "spec-not-observed", patched)
    wait_for(
        lambda: get_trainingjob(namespace, "running")["status"].get("observedGeneration") == 2,
        timeout=30,
        what="generation 2 observed",
    )
    print("\nArgo CD health of real TrainingJobs:")
    for name, v in verdicts.items():
        print(f"  {name:20} {v['status']:12} {v['message']}")


def test_batchaicluster_states(
    operator: OperatorProcess,
    namespace: str,
    fake_node: Callable[..., client.V1Node],
    core_v1: client.CoreV1Api,
) -> None:
    pools = {p: f"hf{p}{uuid.uuid4().hex[:6]}" for p in ("a", "b", "c")}
    nodes: dict[str, str] = {}
    for key in ("a", "b"):
        made = [
            fake_node(f"aks-{pools[key]}", gpus=1, instance_type="Standard_NC6", agent_pool=pools[key])
            for _ in range(2)
        ]
        # Names in sorted order, so the operator's (name-sorted) lists keep one order in the fixtures.
        for i, name in enumerate(sorted(n.metadata.name for n in made)):
            nodes[name] = f"aks-pool{key}-vmss00000{i}"
    # A node still joining: no kwok annotation, so no kubelet ever reports it Ready (AKS provisioning).
    joining = fake_node_body(
        f"aks-{pools['c']}-joining", gpus=1, instance_type="Standard_NC6", agent_pool=pools["c"]
    )
    joining["metadata"]["annotations"].pop("kwok.x-k8s.io/node")
    core_v1.create_node(joining)
    nodes[joining["metadata"]["name"]] = "aks-poolc-vmss000000"
    replace = {**nodes, **{pool: f"pool{key}" for key, pool in pools.items()}}
    try:
        _cluster_states(namespace, pools, replace)
    finally:
        delete_node(core_v1, joining["metadata"]["name"])


def _cluster_states(namespace: str, pools: dict[str, str], replace: dict[str, str]) -> None:

    def bac(name: str, spec: dict[str, Any], annotations: dict[str, str] | None = None) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": BAC,
            "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
            "spec": {"vmSize": "Standard_NC6", **spec},
        }
        made = custom().create_namespaced_custom_object(GROUP, VERSION, namespace, "batchaiclusters", body)
        return dict(made)

    def get(name: str) -> dict[str, Any]:
        return dict(custom().get_namespaced_custom_object(GROUP, VERSION, namespace, "batchaiclusters", name))

    def ready_reason(name: str, reason: str) -> Callable[[], dict[str, Any] | None]:
        def check() -> dict[str, Any] | None:
            obj = get(name)
            conds = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}
            return obj if conds.get("Ready", {}).get("reason") == reason else None

        return check

    verdicts: dict[str, dict[str, str]] = {}
    setup = {"commandLine": "echo setup", "stdOutErrPathPrefix": "/tmp/setup-logs"}
    fresh = bac("no-status", {"agentPool": pools["a"]})
    verdicts["no-status"] = record(BAC, "no-status", fresh, replace)
    bac("steady", {"agentPool": pools["a"], "scaleSettings": {"manual": {"targetNodeCount": 2}}})
    # Without spec.aks nothing resizes the pool: steady, Ready says why (testdata/resizing.yaml, the
    # Progressing case, is a bound cluster's status captured before that; no pool is bound here).
    bac("scale-not-applied", {"agentPool": pools["a"], "scaleSettings": {"manual": {"targetNodeCount": 3}}})
    bac("no-nodes", {"agentPool": "empty-pool"})
    bac(
        "setup-failed",
        {"agentPool": pools["b"], "nodeSetup": {"setupTask": {**setup, "commandLine": "exit 3"}}},
        annotations={SIM_INIT_EXIT_CODE: "3", SIM_RUN_FOR: "200ms"},
    )
    bac("preparing", {"agentPool": pools["c"]})
    for name, reason in (
        ("steady", "Steady"),
        ("scale-not-applied", "ScaleNotApplied"),
        ("no-nodes", "NoNodes"),
        ("setup-failed", "SetupTaskFailed"),
        ("preparing", "NodesPreparing"),
    ):
        obj = wait_for(ready_reason(name, reason), timeout=60, what=f"BatchAICluster {name} {reason}")
        if name == "setup-failed":
            obj = wait_for(
                lambda: (o := get("setup-failed")) and len(o["status"].get("errors") or []) == 2 and o,
                timeout=30,
                what="both nodes' setup errors",
            )
        verdicts[name] = record(BAC, name, obj, replace)

    patched = custom().patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "batchaiclusters", "steady",
        {"spec": {"scaleSettings": {"manual": {"targetNodeCount": 1}}}},
    )  # fmt: skip
    assert patched["metadata"]["generation"] == 2 and patched["status"]["observedGeneration"] == 1
    verdicts["spec-not-observed"] = record(BAC, "spec-not-observed", patched, replace)
    print("\nArgo CD health of real BatchAIClusters:")
    for name, v in verdicts.items():
        print(f"  {name:20} {v['status']:12} {v['message']}")
