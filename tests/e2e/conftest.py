"""End-to-end fixtures: the dev cluster with its real nodes, and one operator process for the whole tier.

`hack/devcluster up` (run here, as by the integration tier) starts the real nodes real-0 and real-1 with
the rest; their job pods really run, from the images built by hack/images, and their Azure Files and
Blob volumes really mount (the Files double's directories; Azurite's containers through rclone's FUSE).
The operator runs once for the tier (package scope: it stops before the kwok tier's own operator
starts), watching only namespaces named `e2e-*` (and the seed's `quickstart`), with every toolkit's
default image pointing at the local images.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator

import pytest
from devcluster import DevCluster, export_env, node_ready, up, wait_for
from kubernetes import client, config
from operator_process import LIVENESS_PORT, OperatorProcess, crds_installed

from storage_services import running_azurite

from .realnodes import LOCAL_IMAGES, REAL_NODES

NAMESPACE_PREFIX = "e2e-"


@pytest.fixture(scope="session")
def devcluster() -> DevCluster:
    """The running dev cluster (started by `hack/devcluster up` if needed), real nodes Ready."""
    if os.environ.get("BATCHAI_REAL_NODES") == "0":
        pytest.fail("BATCHAI_REAL_NODES=0: the e2e tier needs the real nodes (make integration does not)")
    cluster = up()
    export_env(cluster)
    config.load_kube_config(config_file=cluster.kubeconfig)
    core = client.CoreV1Api()
    for name in REAL_NODES:
        wait_for(lambda n=name: node_ready(core, n), timeout=120, what=f"real node {name} Ready")
    return cluster


@pytest.fixture(scope="session")
def core_v1(devcluster: DevCluster) -> client.CoreV1Api:
    return client.CoreV1Api()


@pytest.fixture(scope="package")
def operator(
    devcluster: DevCluster, crds_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator for the tier, on the local images, for namespaces e2e-* only."""
    with socket.socket() as s:
        s.settimeout(0.5)
        if s.connect_ex(("127.0.0.1", LIVENESS_PORT)) == 0:
            pytest.fail(f"another operator is live on 127.0.0.1:{LIVENESS_PORT}: two would fight over jobs")
    # Blob volumes name the dev cluster's Azurite as their `server` (the blob stand-in mounts it).
    op = OperatorProcess(
        tmp_path_factory.mktemp("e2e-operator") / "operator.log",
        extra_env={
            "BATCHAI_IMAGES": json.dumps(LOCAL_IMAGES),
            "BATCHAI_STORAGE_BLOB_ENDPOINT": running_azurite().endpoint,
            # Small requests: the real nodes share this VM, and test_failures' LimitRange gives a 64Mi
            # default limit that a request must not exceed (the default 1Gi would be refused).
            "BATCHAI_JOB_RESOURCES": json.dumps({"requests": {"cpu": "100m", "memory": "32Mi"}}),
        },
        # test_seed_quickstart.py runs the seed's own commands, whose workspace is `quickstart`.
        scope_args=[f"--namespace={NAMESPACE_PREFIX}*", "--namespace=quickstart"],
    )
    op.start()
    yield op
    op.stop()


def new_namespace(core: client.CoreV1Api, prefix: str = NAMESPACE_PREFIX) -> str:
    name = f"{prefix}{uuid.uuid4().hex[:10]}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    wait_for(
        lambda: core.read_namespaced_service_account("default", name),
        timeout=30,
        what=f"default ServiceAccount in {name}",
    )
    return name


def delete_namespace(core: client.CoreV1Api, name: str) -> None:
    try:
        core.delete_namespace(name, propagation_policy="Background")
    except client.ApiException as exc:
        if exc.status != 404:
            raise


@pytest.fixture(scope="module")
def module_namespace(core_v1: client.CoreV1Api, operator: OperatorProcess) -> Iterator[str]:
    """One namespace for a module whose jobs run side by side (submitted together, checked one by one)."""
    name = new_namespace(core_v1)
    yield name
    delete_namespace(core_v1, name)


__all__ = ["crds_installed"]
