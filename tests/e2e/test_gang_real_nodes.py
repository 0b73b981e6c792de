"""Gang scheduling on the real nodes: a 2-node GPU job while one real node's GPU is taken does not start
node 0 (no pod of it is bound, so no container of it runs); when the GPU is freed, both nodes start
together and the job succeeds. The pool's two GPUs are the device-plugin double's, one per real node; the
dev cluster serves the Workload API, so the operator's gang is a PodGroup (gang: auto).
"""

from __future__ import annotations

import time

import pytest
from devcluster import wait_for
from gang_watch import BindingWatch, violations
from jobs import create_trainingjob, get_trainingjob, patch_trainingjob, trainingjob_pods, wait_state
from kubernetes import client

from .realnodes import cluster_body, job_spec

pytestmark = pytest.mark.e2e
CLUSTER = "real-gpu"
HOLD_SECONDS = 20  # how long the 2-node job is watched holding nothing while the GPU is taken


def test_two_node_job_does_not_start_node_0_while_one_gpu_is_taken(module_namespace: str) -> None:
    ns = module_namespace
    client.CustomObjectsApi().create_namespaced_custom_object(
        "batchai.io", "v1alpha1", ns, "batchaiclusters", cluster_body(ns, CLUSTER)
    )
    watch = BindingWatch(ns)
    watch.start()
    try:
        create_trainingjob(
            ns, "blocker", job_spec(CLUSTER, customToolkitSettings={"commandLine": "sleep 600"})
        )
        wait_state(ns, "blocker", "running", timeout=180)
        create_trainingjob(
            ns,
            "pair",
            job_spec(
                CLUSTER,
                node_count=2,
                customToolkitSettings={"commandLine": "echo node $AZ_BATCHAI_TASK_INDEX"},
            ),
        )

        def held() -> dict[str, object] | None:
            status = get_trainingjob(ns, "pair").get("status") or {}
            return status if (status.get("gang") or {}).get("message") else None

        status = wait_for(held, timeout=90, what="the 2-node job waiting for its gang")
        gang = status["gang"]
        assert (gang["mechanism"], gang["needed"], gang["free"]) == ("workload", 2, 1), gang
        deadline = time.monotonic() + HOLD_SECONDS
        while time.monotonic() < deadline:
            bound = [p.metadata.name for p in trainingjob_pods(ns, "pair") if p.spec.node_name]
            assert not bound, f"pods of the 2-node job bound while one GPU is taken: {bound}"
            assert get_trainingjob(ns, "pair")["status"]["executionState"] == "queued"
            time.sleep(1)
        patch_trainingjob(ns, "blocker", {"spec": {"terminate": True}})
        wait_state(ns, "pair", "succeeded", timeout=240)
    finally:
        time.sleep(1)
        watch.finish()
    lines = watch.report({"pair": 2})
    print("\n" + "\n".join(lines))
    assert not violations(lines), lines
