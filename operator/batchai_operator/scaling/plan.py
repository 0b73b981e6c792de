"""Pure planning of an AKS agent-pool update from a BatchAICluster's scaleSettings.

Batch AI's `manual` scale settings become a fixed agent-pool `count` with the cluster autoscaler off;
`autoScale` becomes `enableAutoScaling` with `minCount`/`maxCount` (AKS requires `count` inside that
range, so it is clamped; `initialNodeCount` is used the first time only, as Batch AI used it at creation).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from ..api.cluster import BatchAIClusterSpec

# Agent-pool properties the service sets; never sent back in a PUT.
READ_ONLY_PROPERTIES = (
    "provisioningState",
    "currentOrchestratorVersion",
    "nodeImageVersion",
    "eTag",
    "status",
    "virtualMachineNodesStatus",
)


@dataclass(frozen=True)
class DesiredScale:
    """The agent pool and the scale settings to apply to it."""

    subscription_id: str
    resource_group: str
    cluster_name: str
    agent_pool_name: str
    mode: str  # "manual" | "autoScale"
    count: int | None = None  # manual
    min_count: int | None = None  # autoScale
    max_count: int | None = None  # autoScale
    initial_count: int | None = None  # autoScale, first application only

    def key(self) -> str:
        """Canonical text of what is applied; recorded on the BatchAICluster once applied."""
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @property
    def pool_path(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/"
            f"Microsoft.ContainerService/managedClusters/{self.cluster_name}/agentPools/{self.agent_pool_name}"
        )


def desired_scale(spec: BatchAIClusterSpec) -> DesiredScale | None:
    """What to apply through ARM; None when the cluster only observes (no spec.aks or no scaleSettings)."""
    if spec.aks is None or spec.scale_settings is None:
        return None
    aks = spec.aks
    pool = (aks.subscription_id, aks.resource_group, aks.cluster_name, aks.agent_pool_name)
    manual = spec.scale_settings.manual
    if manual is not None:
        return DesiredScale(*pool, mode="manual", count=manual.target_node_count)
    auto = spec.scale_settings.auto_scale
    assert auto is not None
    return DesiredScale(
        *pool,
        mode="autoScale",
        min_count=auto.minimum_node_count,
        max_count=auto.maximum_node_count,
        initial_count=auto.initial_node_count,
    )


def matches(properties: dict[str, Any], desired: DesiredScale) -> bool:
    """Whether the agent pool already has the desired scale settings."""
    autoscaling = bool(properties.get("enableAutoScaling"))
    if desired.mode == "manual":
        return not autoscaling and properties.get("count") == desired.count
    return (
        autoscaling
        and properties.get("minCount") == desired.min_count
        and properties.get("maxCount") == desired.max_count
    )


def updated_properties(
    properties: dict[str, Any], desired: DesiredScale, first_time: bool
) -> dict[str, Any] | None:
    """The agent pool's properties with the desired scale applied, for a PUT; None when nothing changes."""
    if matches(properties, desired):
        return None
    out = {k: v for k, v in properties.items() if k not in READ_ONLY_PROPERTIES}
    if desired.mode == "manual":
        out["count"] = desired.count
        out["enableAutoScaling"] = False
        out.pop("minCount", None)
        out.pop("maxCount", None)
        return out
    assert desired.min_count is not None and desired.max_count is not None
    count = properties.get("count")
    if first_time and desired.initial_count is not None:
        count = desired.initial_count
    if not isinstance(count, int):
        count = desired.min_count
    out["count"] = min(max(count, desired.min_count), desired.max_count)
    out["enableAutoScaling"] = True
    out["minCount"] = desired.min_count
    out["maxCount"] = desired.max_count
    return out
