"""kind-config.yaml's GPU worker looks like an AKS Standard_NC4as_T4_v3 node (the labels of the devcluster's
fake GPU nodes, the sku=gpu:NoSchedule taint), with labels a kubelet may set on itself. kind's own loader
and validation run on it in tests/integration/test_kind_validation.py (kind is a Go build)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "kind-config.yaml"
# Label keys in the kubernetes.io / k8s.io namespaces a kubelet may set with --node-labels
# (k8s.io/kubelet: KubeletLabels and KubeletLabelNamespaces); any other such key stops the kubelet.
KUBELET_LABELS = {
    "kubernetes.io/hostname", "kubernetes.io/os", "kubernetes.io/arch", "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch", "node.kubernetes.io/instance-type", "beta.kubernetes.io/instance-type",
    "topology.kubernetes.io/zone", "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone", "failure-domain.beta.kubernetes.io/region",
}  # fmt: skip
KUBELET_NAMESPACES = ("kubelet.kubernetes.io/", "node.kubernetes.io/")


def workers() -> list[dict[str, Any]]:
    doc = yaml.safe_load(CONFIG.read_text())
    return [n for n in doc["nodes"] if n["role"] == "worker"]


def test_gpu_worker_is_labelled_and_tainted_like_an_aks_gpu_node() -> None:
    (gpu,) = [n for n in workers() if n["labels"].get("kubernetes.azure.com/accelerator") == "nvidia"]
    nodes = [d for d in yaml.safe_load_all((REPO / "tests" / "k8s" / "nodes.yaml").read_text()) if d]
    instance_type = "node.kubernetes.io/instance-type"
    nc6 = next(n for n in nodes if n["metadata"]["labels"][instance_type] == "Standard_NC6")
    fake_labels = {
        k: v
        for k, v in nc6["metadata"]["labels"].items()
        if not k.startswith("kubernetes.io/") and k != "type"  # set by the kubelet itself / kwok only
    }
    # The dev cluster's fake GPU nodes, on today's size (Standard_NC6 is retired) in their own pool.
    size, pool = "Standard_NC4as_T4_v3", "t4pool"
    fake_labels |= {instance_type: size, "beta.kubernetes.io/instance-type": size}
    fake_labels |= {"kubernetes.azure.com/agentpool": pool, "agentpool": pool}
    assert gpu["labels"] == fake_labels
    (patch,) = [yaml.safe_load(p) for p in gpu["kubeadmConfigPatches"]]
    assert patch["kind"] == "JoinConfiguration"
    assert patch["nodeRegistration"]["taints"] == [{"key": "sku", "value": "gpu", "effect": "NoSchedule"}]


def test_a_system_worker_without_taints_for_the_operator() -> None:
    system = [n for n in workers() if n["labels"].get("kubernetes.azure.com/mode") == "system"]
    assert len(system) == 1 and "kubeadmConfigPatches" not in system[0]


def test_worker_labels_are_ones_a_kubelet_may_set() -> None:
    for node in workers():
        for key in node["labels"]:
            domain = key.split("/", 1)[0] if "/" in key else ""
            if domain.endswith(("kubernetes.io", "k8s.io")):
                assert key in KUBELET_LABELS or key.startswith(KUBELET_NAMESPACES), key
