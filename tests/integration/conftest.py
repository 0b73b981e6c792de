"""Integration-test fixtures: the local control plane (hack/devcluster) and per-test namespaces.

The session fixture starts the control plane once (or reuses one that is already up), exports
KUBECONFIG and PATH (toolchain bin dir first, so `kubectl` is the v1.37.2 build) and loads the
kubernetes client configuration. Integration tests never skip: if the cluster cannot come up,
they error.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import secret_scan
from devcluster import (
    DevCluster,
    create_fake_node,
    delete_node,
    export_env,
    node_ready,
    up,
    wait_for,
)
from kubernetes import client, config


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """test_aks_guide.py and test_chart.py run first, then the e2e tier, then the rest: the chart's
    operators watch all namespaces and e2e starts its own operator, and none may run beside the session
    `operator` fixture, which stays up from the first test that requests it to the end."""

    def rank(item: pytest.Item) -> int:
        if item.path.name in ("test_aks_guide.py", "test_chart.py"):
            return 0
        return 1 if item.path.parent.name == "e2e" else 2

    items.sort(key=rank)  # stable: file order otherwise


@pytest.fixture(scope="session", autouse=True)
def secret_scan_of_logs() -> Iterator[None]:
    """At the very end of the session: no known secret value in any operator's log (secret_scan.py)."""
    yield
    secret_scan.check_logs()
    assert secret_scan.SCANNED or not secret_scan.LOGS, "no namespace was scanned"


@pytest.fixture(scope="session", autouse=True)
def devcluster(secret_scan_of_logs: None) -> DevCluster:
    """The running local control plane (started by `hack/devcluster up` if needed)."""
    cluster = up()
    export_env(cluster)
    config.load_kube_config(config_file=cluster.kubeconfig)
    return cluster


@pytest.fixture(scope="session")
def core_v1(devcluster: DevCluster) -> client.CoreV1Api:
    return client.CoreV1Api()


@pytest.fixture(scope="session")
def batch_v1(devcluster: DevCluster) -> client.BatchV1Api:
    return client.BatchV1Api()


@pytest.fixture
def namespace(core_v1: client.CoreV1Api) -> Iterator[str]:
    """A fresh namespace with a random name; deleted afterwards (without waiting)."""
    name = f"it-{uuid.uuid4().hex[:10]}"
    core_v1.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"batchai.io/integration-test": "true"})
        )
    )
    # The ServiceAccount admission plugin rejects pods until the namespace's default SA exists.
    wait_for(
        lambda: core_v1.read_namespaced_service_account("default", name),
        timeout=30,
        what=f"default ServiceAccount in {name}",
    )
    yield name
    # Before it goes: no secret value in any of its non-Secret objects (secret_scan.py).
    secret_scan.check_namespace(name)
    try:
        core_v1.delete_namespace(name, propagation_policy="Background")
    except client.ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture
def fake_node(core_v1: client.CoreV1Api) -> Iterator[Callable[..., client.V1Node]]:
    """Factory creating extra kwok-managed nodes for one test; they are deleted afterwards.

    Usage: fake_node("n1", gpus=2, labels={...}, taints=[{"key": k, "value": v, "effect": e}])
    (arguments as in devcluster.fake_node_body). The name gets a random suffix; use the returned
    node's metadata.name.
    """
    created: list[str] = []

    def make(name: str = "node", **kwargs: Any) -> client.V1Node:
        full = f"{name}-{uuid.uuid4().hex[:6]}"
        wait_ready = kwargs.pop("wait_ready", True)
        node = create_fake_node(core_v1, full, wait_ready=False, **kwargs)
        created.append(full)
        if wait_ready:
            wait_for(lambda: node_ready(core_v1, full), timeout=30, what=f"node {full} Ready")
        return node

    yield make
    for name in created:
        delete_node(core_v1, name)


# The operator subprocess and the CRDs it needs (tests/integration/operator_process.py).
from operator_process import crds_installed, operator  # noqa: E402, F401

# Azurite and the Azure Files double (tests/storage_services.py), for kubectl batchai job file list/stream.
from storage_services import azurite, azurite_oauth, files_double  # noqa: E402, F401
