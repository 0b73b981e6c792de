"""The operator in cluster: `helm install` of the chart with localhost/batchai/operator:dev, built from
the project's Dockerfile (hack/images, BASE_IMAGE = our Debian Python image), runs the operator as a pod
on a real node with the chart's ServiceAccount and in-cluster configuration (the `kubernetes` Service,
through kube-proxy), and it runs a TrainingJob to success. This proves the Dockerfile, the chart and
in-cluster configuration together.

Its namespace is not e2e-*: the tier's own operator (a local process) leaves it to this one.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from devcluster import DevCluster, wait_for
from jobs import create_trainingjob, trainingjob_pods, wait_state
from kubernetes import client

from .conftest import delete_namespace, new_namespace
from .realnodes import LOCAL_IMAGES, REAL_NODES, cluster_body, job_spec, nodes_dir, on_node

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "hack" / "images"
CHART = REPO / "charts" / "batchai-operator"
RELEASE = "ic"
IMAGE = "localhost/batchai/operator:dev"


def run(*cmd: str) -> str:
    out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"{' '.join(cmd)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}"
    return out.stdout


@pytest.fixture(scope="module")
def operator_image(devcluster: DevCluster) -> None:
    """The operator's image, built when its inputs changed and imported into every real node."""
    run(str(IMAGES), "build", "operator")
    for node in REAL_NODES:
        run(str(IMAGES), "load", str(nodes_dir() / node / "containerd.sock"), "operator")


@pytest.fixture(scope="module")
def release(operator_image: None, crds_installed: None, core_v1: client.CoreV1Api) -> Iterator[str]:
    ns = new_namespace(core_v1, prefix="ic-")
    values = {
        "image.repository": IMAGE.split(":")[0],
        "image.tag": "dev",
        "crds.enabled": "false",  # the session's CRDs (crds_installed)
        "jobs.priorityClasses.create": "false",
        "watchNamespaces[0]": ns,
    }
    json_values = {
        "jobs.images": LOCAL_IMAGES,
        "nodeSelector": {"kubernetes.azure.com/agentpool": "real"},
        "tolerations": [{"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
    }
    args = [a for k, v in values.items() for a in ("--set", f"{k}={v}")]
    args += [a for k, v in json_values.items() for a in ("--set-json", f"{k}={json.dumps(v)}")]
    run("helm", "install", RELEASE, str(CHART), "-n", ns, *args, "--wait", "--timeout", "240s")
    yield ns
    subprocess.run(["helm", "uninstall", RELEASE, "-n", ns, "--wait"], capture_output=True, timeout=120)
    delete_namespace(core_v1, ns)


def operator_pod(ns: str) -> client.V1Pod:
    (pod,) = (
        client.CoreV1Api()
        .list_namespaced_pod(ns, label_selector="app.kubernetes.io/name=batchai-operator")
        .items
    )
    return pod


def test_operator_runs_in_cluster_on_a_real_node(release: str) -> None:
    pod = operator_pod(release)
    assert pod.spec.node_name in REAL_NODES
    assert pod.status.phase == "Running"
    (container,) = pod.spec.containers
    assert container.image == IMAGE
    assert container.image_pull_policy == "Never"  # a local image (tests/k8s/local-images.yaml)
    assert pod.spec.service_account_name.startswith(RELEASE)
    status = pod.status.container_statuses[0]
    assert status.ready and status.restart_count == 0
    print(run("kubectl", "get", "pods", "-o", "wide", "-n", release))


def test_operator_in_cluster_runs_a_training_job(release: str) -> None:
    ns = release
    client.CustomObjectsApi().create_namespaced_custom_object(
        "batchai.io", "v1alpha1", ns, "batchaiclusters", cluster_body(ns, "real-gpu")
    )
    command = "echo hello from a job of the in-cluster operator on $(hostname)"
    create_trainingjob(ns, "hello", job_spec("real-gpu", customToolkitSettings={"commandLine": command}))
    tj = wait_state(ns, "hello", "succeeded", timeout=180)
    assert tj["status"]["executionInfo"]["exitCode"] == 0
    (pod,) = trainingjob_pods(ns, "hello")
    stdout = on_node(pod, tj["status"]["stdOutErrDirectory"]) / "stdout.txt"
    # Indexed Jobs name each pod's host <job>-<index>.
    assert stdout.read_text() == f"hello from a job of the in-cluster operator on {pod.spec.hostname}\n"

    def reasons() -> set[str]:
        events = client.CoreV1Api().list_namespaced_event(ns, field_selector="involvedObject.name=hello")
        return {e.reason for e in events.items}

    wait_for(lambda: "Succeeded" in reasons(), timeout=30, what="the in-cluster operator's Events")
    logs = client.CoreV1Api().read_namespaced_pod_log(operator_pod(ns).metadata.name, ns)
    assert "Forbidden" not in logs and " 403" not in logs, logs[-3000:]
