"""What every builder of one TrainingJob's children needs, worked out once (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..api.cluster import BatchAIClusterSpec
from ..api.trainingjob import TrainingJobSpec
from ..config import OperatorConfig
from ..decide.gang import Mechanism
from .paths import TrainingJobIdentity


@dataclass(frozen=True)
class TrainingJobContext:
    """One TrainingJob on one cluster, with the names, labels and counts its children share."""

    obj: Mapping[str, Any]  # the TrainingJob as read from the API (metadata, apiVersion)
    spec: TrainingJobSpec
    ident: TrainingJobIdentity
    cluster_name: str
    cluster: BatchAIClusterSpec
    cluster_uid: str | None
    config: OperatorConfig
    child: str  # name of the Job, ConfigMap, Service; prefix of the SSH Secret
    labels: dict[str, str]
    owner: dict[str, Any]
    gpus: int
    hosts: list[str]  # the nodes' DNS names in index order
    gang: Mechanism | None = None  # what keeps a multi-node job's nodes together (decide/gang.py)

    @property
    def namespace(self) -> str:
        return self.ident.namespace

    @property
    def multi_node(self) -> bool:
        return self.spec.node_count > 1

    @property
    def ssh_secret_name(self) -> str:
        """Named after the TrainingJob's uid too: an existing Secret of that name can only be this job's
        own (the operator cannot read Secrets to check who owns one)."""
        return f"{self.child}-ssh-{self.ident.uid[:8]}"

    def metadata(self, name: str | None = None) -> dict[str, Any]:
        """metadata of a child: name, namespace, the shared labels and the owner reference."""
        return {
            "name": name or self.child,
            "namespace": self.namespace,
            "labels": dict(self.labels),
            "ownerReferences": [dict(self.owner)],
        }


def hosts(child: str, node_count: int) -> list[str]:
    """Stable DNS names of the job's pods: hostname '<job>-<index>' under the headless Service."""
    return [f"{child}-{i}.{child}" for i in range(node_count)]
