"""Every job reaches a terminal state or says why it waits, and creation is exact: on the local control
plane with the operator running (kwok plays the kubelets)."""

from __future__ import annotations

from typing import Any

import pytest
from devcluster import wait_for
from jobs import (
    create_cluster,
    create_storage_secret,
    create_trainingjob,
    custom,
    get_trainingjob,
    task_files,
    wait_state,
)
from kubernetes import client

from samples import cntk_spec, job_spec

pytestmark = pytest.mark.usefixtures("operator")


def queued_reason(ns: str, name: str, reason: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        conds = (get_trainingjob(ns, name).get("status") or {}).get("conditions") or []
        return next(
            (c for c in conds if c["type"] == "Queued" and c["status"] == "True" and c["reason"] == reason),
            None,
        )

    return wait_for(check, timeout=60, what=f"{name} queued with {reason}")


def test_pods_refused_after_the_job_exists_say_why_the_job_waits(namespace: str) -> None:
    """A quota on pods lets the Job be created but not its pods: the Job controller's reason is shown."""
    core = client.CoreV1Api()
    core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "no-pods"}, "spec": {"hard": {"pods": "0"}}}
    )
    wait_for(lambda: core.read_namespaced_resource_quota_status("no-pods", namespace).status.hard, timeout=30)
    create_cluster(namespace)
    create_trainingjob(namespace, "nopods", job_spec(customToolkitSettings={"commandLine": "true"}))
    cond = queued_reason(namespace, "nopods", "PodCreationRejected")
    assert "exceeded quota" in cond["message"] and "pods" in cond["message"]
    core.delete_namespaced_resource_quota("no-pods", namespace)
    wait_state(namespace, "nopods", "succeeded", timeout=120)


def test_a_missing_service_account_is_reported(namespace: str) -> None:
    create_cluster(namespace)
    create_trainingjob(
        namespace,
        "nosa",
        job_spec(customToolkitSettings={"commandLine": "true"}, serviceAccountName="nobody"),
    )
    cond = queued_reason(namespace, "nosa", "PodCreationRejected")
    assert "nobody" in cond["message"]


def test_a_child_the_apiserver_refuses_fails_the_job_with_its_message(namespace: str) -> None:
    """A toleration with operator Exists and a value is invalid in a pod: a 422 for the Job is final."""
    create_cluster(
        namespace, tolerations=[{"key": "k", "operator": "Exists", "value": "v", "effect": "NoSchedule"}]
    )
    create_trainingjob(namespace, "invalid", job_spec(customToolkitSettings={"commandLine": "true"}))
    st = wait_state(namespace, "invalid", "failed")["status"]
    [err] = st["executionInfo"]["errors"]
    assert err["code"] == "InvalidSpec" and "refused the job's Job" in err["message"]
    assert "tolerations" in err["message"]


def test_a_job_too_large_fails_before_anything_is_created(namespace: str) -> None:
    create_cluster(namespace, vmSize="Standard_ND96asr_v4")
    tf = {"pythonScriptFilePath": "mnist.py", "parameterServerCount": 4, "workerCount": 500}
    create_trainingjob(namespace, "huge", job_spec(nodes=100, tensorFlowSettings=tf))
    st = wait_state(namespace, "huge", "failed")["status"]
    [err] = st["executionInfo"]["errors"]
    assert err["code"] == "JobTooLarge" and "504 task(s) on 100 node(s)" in err["message"]
    assert (
        not client.CoreV1Api()
        .list_namespaced_config_map(namespace, label_selector="batchai.io/trainingjob=huge")
        .items
    )


def test_a_job_recreated_under_the_same_name_runs_its_own_command(namespace: str) -> None:
    create_cluster(namespace)
    create_trainingjob(
        namespace,
        "again",
        job_spec(customToolkitSettings={"commandLine": "echo old"}),
        annotations={"sim.batchai.io/run-for": "60s"},
    )
    wait_state(namespace, "again", "running")
    custom().delete_namespaced_custom_object("batchai.io", "v1alpha1", namespace, "trainingjobs", "again")
    wait_for(
        lambda: (
            not custom().list_namespaced_custom_object("batchai.io", "v1alpha1", namespace, "trainingjobs")[
                "items"
            ]
        ),
        timeout=30,
    )
    new = create_trainingjob(namespace, "again", job_spec(customToolkitSettings={"commandLine": "echo new"}))
    wait_state(namespace, "again", "succeeded", timeout=120)
    tasks = task_files(namespace, "again")["tasks-0.sh"]
    assert "echo new" in tasks and "echo old" not in tasks
    job = client.BatchV1Api().read_namespaced_job("again", namespace)
    assert job.metadata.owner_references[0].uid == new["metadata"]["uid"]


def test_a_storage_secret_created_later_starts_the_job(namespace: str) -> None:
    """Waiting is level-based: the job looks again on its own and starts once the Secret exists."""
    create_cluster(namespace)
    create_trainingjob(namespace, "later", cntk_spec())
    queued_reason(namespace, "later", "SecretNotFound")
    create_storage_secret(namespace)
    wait_state(namespace, "later", "succeeded", timeout=120)
