"""Pure: the Workload and PodGroup (scheduling.k8s.io/v1beta1) that gang-schedule a multi-node job.

kube-scheduler binds the pods of a PodGroup with a `gang` policy all or nothing: none of them gets a
node until `minCount` of them can be placed together (KEP-4671; the GangScheduling plugin, on with the
GenericWorkload feature gate). A pod joins the group through `spec.schedulingGroup.podGroupName`, set in
the batch Job's pod template. The TrainingJob owns both objects, so they go when it goes.

The operator creates the PodGroup itself rather than leaving it to the Job controller (WorkloadWithJob's
delegated mode): that needs only the beta API, not an alpha gate (docs/gang-scheduling.md).
"""

from __future__ import annotations

from typing import Any

SCHEDULING_API_VERSION = "scheduling.k8s.io/v1beta1"
# The one template of a TrainingJob's Workload: all its nodes are workers of one gang.
GANG_TEMPLATE = "workers"


def gang_policy(node_count: int) -> dict[str, Any]:
    """All `node_count` pods or none."""
    return {"gang": {"minCount": node_count}}


def _priority(priority_class: str | None) -> dict[str, Any]:
    # The scheduler refuses a gang whose pods' priority differs from its PodGroup's: both get the class.
    return {"priorityClassName": priority_class} if priority_class else {}


def build_workload(
    metadata: dict[str, Any], node_count: int, priority_class: str | None = None
) -> dict[str, Any]:
    """The job's Workload: one gang template of `node_count` pods. `metadata` is the child's (name,
    namespace, labels, the TrainingJob's owner reference); `priority_class` its pods' PriorityClass."""
    template = {
        "name": GANG_TEMPLATE,
        "schedulingPolicy": gang_policy(node_count),
        **_priority(priority_class),
    }
    return {
        "apiVersion": SCHEDULING_API_VERSION,
        "kind": "Workload",
        "metadata": metadata,
        "spec": {"podGroupTemplates": [template]},
    }


def build_pod_group(
    metadata: dict[str, Any], node_count: int, priority_class: str | None = None
) -> dict[str, Any]:
    """The job's PodGroup, the runtime instance of the Workload's template (of the same name)."""
    return {
        "apiVersion": SCHEDULING_API_VERSION,
        "kind": "PodGroup",
        "metadata": metadata,
        "spec": {
            "workloadRef": {"workloadName": metadata["name"], "templateName": GANG_TEMPLATE},
            "schedulingPolicy": gang_policy(node_count),
            **_priority(priority_class),
        },
    }


def join_pod_group(pod_spec: dict[str, Any], pod_group_name: str) -> dict[str, Any]:
    """A pod spec whose pods belong to the PodGroup (the field is immutable on a pod, so it is set in
    the template before the Job exists)."""
    return {**pod_spec, "schedulingGroup": {"podGroupName": pod_group_name}}
