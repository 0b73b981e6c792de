"""Helpers for TrainingJob integration tests: create clusters, secrets and jobs; wait on status."""

from __future__ import annotations

from typing import Any

from devcluster import wait_for
from kubernetes import client

GROUP, VERSION = "batchai.io", "v1alpha1"
SECRET_KEY_VALUE = "c2VjcmV0LWtleS1zaG91bGQtbmV2ZXItbGVhaw=="  # a storage key the tests hunt for in logs


def custom() -> client.CustomObjectsApi:
    return client.CustomObjectsApi()


def create_cluster(
    ns: str, name: str = "nc6", annotations: dict[str, str] | None = None, **spec: Any
) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BatchAICluster",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}},
        "spec": {"vmSize": "STANDARD_NC6", "scaleSettings": {"manual": {"targetNodeCount": 4}}, **spec},
    }
    return custom().create_namespaced_custom_object(GROUP, VERSION, ns, "batchaiclusters", body)


def create_storage_secret(ns: str, name: str = "storage") -> None:
    client.CoreV1Api().create_namespaced_secret(
        ns,
        {
            "metadata": {"name": name},
            "stringData": {"azurestorageaccountname": "acct", "azurestorageaccountkey": SECRET_KEY_VALUE},
        },
    )


def create_trainingjob(
    ns: str,
    name: str,
    spec: dict[str, Any],
    annotations: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": ns, "annotations": annotations or {}, "labels": labels or {}},
        "spec": spec,
    }
    return custom().create_namespaced_custom_object(GROUP, VERSION, ns, "trainingjobs", body)


def get_trainingjob(ns: str, name: str) -> dict[str, Any]:
    return custom().get_namespaced_custom_object(GROUP, VERSION, ns, "trainingjobs", name)


def patch_trainingjob(ns: str, name: str, patch: dict[str, Any]) -> None:
    custom().patch_namespaced_custom_object(GROUP, VERSION, ns, "trainingjobs", name, patch)


def wait_state(ns: str, name: str, state: str, timeout: float = 60) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        obj = get_trainingjob(ns, name)
        return obj if (obj.get("status") or {}).get("executionState") == state else None

    try:
        return wait_for(check, timeout=timeout, what=f"TrainingJob {ns}/{name} {state}")
    except TimeoutError as e:
        raise TimeoutError(f"{e}; status now: {get_trainingjob(ns, name).get('status')}") from None


def trainingjob_pods(ns: str, name: str) -> list[client.V1Pod]:
    uid = get_trainingjob(ns, name)["metadata"]["uid"]
    return (
        client.CoreV1Api().list_namespaced_pod(ns, label_selector=f"batchai.io/trainingjob-uid={uid}").items
    )


def events_for(ns: str, name: str) -> list[client.CoreV1Event]:
    return client.CoreV1Api().list_namespaced_event(ns, field_selector=f"involvedObject.name={name}").items


def trainingjob_event_reasons(ns: str, name: str) -> list[str]:
    """The reasons of the Events about the TrainingJob itself (its Job, of the same name, has its own)."""
    return [e.reason for e in events_for(ns, name) if e.involved_object.kind == "TrainingJob"]


def task_files(ns: str, name: str) -> dict[str, str]:
    """The launcher files the job's nodes run: a multi-node job's own ConfigMap or, for a single-node job
    (it carries its tasks in the pod, beside the namespace's shared launcher ConfigMap), tasks-0.sh and
    the hostfile from its Job's pod template."""
    core = client.CoreV1Api()
    try:
        return dict(core.read_namespaced_config_map(name, ns).data or {})
    except client.ApiException as e:
        if e.status != 404:
            raise
    template = client.BatchV1Api().read_namespaced_job(name, ns).spec.template
    env = {e.name: e.value or "" for e in template.spec.containers[0].env if e.value_from is None}
    return {"tasks-0.sh": env["BATCHAI_TASKS"], "hostfile": env["BATCHAI_HOSTFILE"]}
