"""Admin-only powers, per namespace: what a BatchAICluster or TrainingJob may make the operator do that the
namespace's own users could not do themselves (the operator acts with its own, wider rights). Pure.

The admin grants each power to namespaces with chart values `allow.*` (config.AllowPolicy); the chart's
ValidatingAdmissionPolicy refuses the same things at the apiserver. These checks are the operator's own,
so a cluster without the policy (or an object created before it) is refused all the same.
"""

from __future__ import annotations

from ..api.cluster import BatchAIClusterSpec
from ..config import OperatorConfig, namespace_matches
from ..names import (
    ERR_PLACEMENT_NOT_ALLOWED,
    ERR_SETUP_TASK_NOT_ALLOWED,
)
from ..observe.views import ClusterView
from ..scaling import DesiredScale

Refusal = tuple[str, str]  # (Batch AI error code, message)


def cluster_refusal(namespace: str, spec: BatchAIClusterSpec, config: OperatorConfig) -> Refusal | None:
    """Why this namespace may not have this cluster (a setup task, tolerations or a node selector that
    the admin did not grant it), or None."""
    allow = config.allow
    if spec.node_setup and spec.node_setup.setup_task and not namespace_matches(allow.setup_tasks, namespace):
        return (
            ERR_SETUP_TASK_NOT_ALLOWED,
            "nodeSetup.setupTask runs as root on every node of the cluster; namespace "
            f"{namespace} may not run setup tasks (an admin grants it in the chart value allow.setupTasks)",
        )
    placed = [f for f, v in (("tolerations", spec.tolerations), ("nodeSelector", spec.node_selector)) if v]
    if placed and not namespace_matches(allow.placement, namespace):
        return (
            ERR_PLACEMENT_NOT_ALLOWED,
            f"{' and '.join(placed)} choose which nodes (taints included) the cluster's pods run on; "
            f"namespace {namespace} may not set them (an admin grants it in the chart value allow.placement)",
        )
    return None


def agent_pool_refusal(namespace: str, desired: DesiredScale, config: OperatorConfig) -> str | None:
    """Why the operator must not scale this agent pool for this namespace, or None when the admin mapped
    the pool to the namespace (so nobody can make the operator resize a pool that is not theirs)."""
    for pool in config.allow.pools_for(namespace):
        if pool.same_pool(
            desired.subscription_id, desired.resource_group, desired.cluster_name, desired.agent_pool_name
        ):
            return None
    return (
        f"spec.aks names agent pool {desired.agent_pool_name} of AKS cluster {desired.cluster_name} "
        f"(resource group {desired.resource_group}, subscription {desired.subscription_id}), which is not "
        f"mapped to namespace {namespace} (chart value allow.agentPools); the operator scales only the "
        "pools an admin mapped to the cluster's namespace"
    )


def cluster_problem(namespace: str, view: ClusterView, config: OperatorConfig) -> str | None:
    """Why the jobs on a cluster cannot start: its spec does not parse, or it asks for a power the
    namespace was not granted. None: it can be used."""
    if view["spec"] is None:
        return view["specError"] or "the spec cannot be parsed"
    refusal = cluster_refusal(namespace, view["spec"], config)
    return refusal[1] if refusal else None
