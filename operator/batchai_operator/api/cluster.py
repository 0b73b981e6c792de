"""BatchAICluster: a Batch AI cluster as a view over one AKS GPU node pool."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from .base import ApiModel, StatusModel, cel, rules
from .common import EnvironmentVariable, EnvironmentVariableWithSecretValue, MountVolumes, ResourceId, Toleration
from .trainingjob import BatchAIError, Condition

KIND = "BatchAICluster"
PLURAL = "batchaiclusters"


class ManualScaleSettings(ApiModel):
    """A fixed node count."""

    target_node_count: int = Field(default=0, ge=0, le=1000, description="Nodes wanted.")
    node_deallocation_option: Literal["requeue", "terminate", "waitforjobcompletion"] = Field(
        default="requeue", description="What happens to running jobs when the pool shrinks."
    )


class AutoScaleSettings(ApiModel):
    """Autoscaler bounds (the AKS cluster autoscaler's min/max on the agent pool)."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel(
                "self.minimumNodeCount <= self.maximumNodeCount",
                "scaleSettings.autoScale.minimumNodeCount must not exceed maximumNodeCount",
                field_path=".minimumNodeCount",
            )
        )
    }

    minimum_node_count: int = Field(ge=0, le=1000, description="Minimum nodes.")
    maximum_node_count: int = Field(ge=1, le=1000, description="Maximum nodes.")
    initial_node_count: int | None = Field(default=None, ge=0, description="Nodes at creation (Batch AI compat).")


class ScaleSettings(ApiModel):
    """Exactly one of manual or autoScale."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel("has(self.manual) != has(self.autoScale)", "scaleSettings: set exactly one of manual or autoScale")
        )
    }

    manual: ManualScaleSettings | None = Field(default=None, description="A fixed node count.")
    auto_scale: AutoScaleSettings | None = Field(default=None, description="Autoscaler bounds.")


class SetupTask(ApiModel):
    """A command run as root on every node of the cluster when it joins (a DaemonSet's init container)."""

    command_line: str = Field(description="Command line, run by bash; must be idempotent.", min_length=1)
    environment_variables: list[EnvironmentVariable] | None = Field(
        default=None, description="Environment variables for the command."
    )
    secrets: list[EnvironmentVariableWithSecretValue] | None = Field(
        default=None, description="Secret environment variables, read from Kubernetes Secrets."
    )
    std_out_err_path_prefix: str = Field(description="Prefix of the setup task's output directory.", min_length=1)


class AppInsightsReference(ApiModel):
    """Batch AI's Application Insights reference (performance counters)."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel(
                "!has(self.instrumentationKey)",
                "nodeSetup.performanceCountersSettings.appInsightsReference.instrumentationKey: keys are not "
                "accepted inline; use instrumentationKeySecretRef",
                reason="FieldValueForbidden",
            )
        )
    }

    component: ResourceId = Field(description="Application Insights component.")
    instrumentation_key: str | None = Field(default=None, description="Batch AI's inline key. Rejected here.")
    instrumentation_key_secret_reference: dict[str, str] | None = Field(
        default=None, description="Batch AI's Key Vault reference (accepted, not used)."
    )


class PerformanceCountersSettings(ApiModel):
    """Accepted for compatibility; node counters come from the cluster's own monitoring here."""

    app_insights_reference: AppInsightsReference = Field(description="Application Insights target.")


class NodeSetup(ApiModel):
    """What every node of the cluster gets: mounts and a setup task."""

    setup_task: SetupTask | None = Field(default=None, description="Command run on each node as it joins.")
    mount_volumes: MountVolumes | None = Field(
        default=None, description="Cluster mounts, added to every job on the cluster under $AZ_BATCHAI_MOUNT_ROOT."
    )
    performance_counters_settings: PerformanceCountersSettings | None = Field(
        default=None, description="Accepted for compatibility; not used."
    )


class UserAccountSettings(ApiModel):
    """Accepted for compatibility: AKS nodes are not reached by SSH; the admin user is not created."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel(
                "!has(self.adminUserPassword)",
                "userAccountSettings.adminUserPassword: passwords are not accepted in a BatchAICluster",
                reason="FieldValueForbidden",
            )
        )
    }

    admin_user_name: str = Field(description="Admin user name (not used on AKS).", min_length=1)
    admin_user_ssh_public_key: str | None = Field(default=None, description="Public key (not used on AKS).")
    admin_user_password: str | None = Field(default=None, description="Rejected: never store passwords here.")


class ImageReference(ApiModel):
    """A VM image; accepted for compatibility (AKS node images are chosen by the node pool)."""

    publisher: str = Field(description="Image publisher.")
    offer: str = Field(description="Image offer.")
    sku: str = Field(description="Image SKU.")
    version: str | None = Field(default=None, description="Image version.")
    virtual_machine_image_id: str | None = Field(default=None, description="Custom image id.")


class VirtualMachineConfiguration(ApiModel):
    """Accepted for compatibility: the node pool decides the node image on AKS."""

    image_reference: ImageReference | None = Field(default=None, description="VM image (not used on AKS).")


class AksAgentPool(ApiModel):
    """The AKS agent pool the operator scales through Azure Resource Manager."""

    subscription_id: str = Field(description="Azure subscription id.", min_length=1)
    resource_group: str = Field(description="Resource group of the AKS cluster.", min_length=1)
    cluster_name: str = Field(description="AKS cluster name.", min_length=1)
    agent_pool_name: str = Field(description="Agent pool name.", min_length=1)


class ToolkitImages(ApiModel):
    """Per-toolkit default images for jobs on this cluster without containerSettings."""

    cntk: str | None = Field(default=None, description="Image for cntk jobs.")
    tensorflow: str | None = Field(default=None, description="Image for tensorflow jobs.")
    pytorch: str | None = Field(default=None, description="Image for pytorch jobs.")
    caffe: str | None = Field(default=None, description="Image for caffe jobs.")
    caffe2: str | None = Field(default=None, description="Image for caffe2 jobs.")
    chainer: str | None = Field(default=None, description="Image for chainer jobs.")
    horovod: str | None = Field(default=None, description="Image for horovod jobs.")
    mpi: str | None = Field(default=None, description="Image for customMpi jobs.")
    custom: str | None = Field(default=None, description="Image for customToolkit jobs.")


class BatchAIClusterSpec(ApiModel):
    """A Batch AI cluster: Batch AI's cluster properties, plus how to find its nodes on AKS."""

    vm_size: str = Field(
        description="Azure VM size, e.g. Standard_NC6; selects nodes by node.kubernetes.io/instance-type.",
        min_length=1,
    )
    vm_priority: Literal["dedicated", "lowpriority"] = Field(
        default="dedicated", description="lowpriority tolerates AKS spot nodes."
    )
    scale_settings: ScaleSettings | None = Field(default=None, description="Manual count or autoscaler bounds.")
    node_setup: NodeSetup | None = Field(default=None, description="Setup task and cluster mounts.")
    user_account_settings: UserAccountSettings | None = Field(
        default=None, description="Accepted for compatibility; not used on AKS."
    )
    virtual_machine_configuration: VirtualMachineConfiguration | None = Field(
        default=None, description="Accepted for compatibility; the node pool decides the image."
    )
    subnet: ResourceId | None = Field(default=None, description="Accepted for compatibility; AKS decides networking.")

    # Kubernetes additions.
    agent_pool: str | None = Field(
        default=None, description="Select nodes by kubernetes.azure.com/agentpool instead of the instance type."
    )
    node_selector: dict[str, str] | None = Field(
        default=None, description="Extra node labels the cluster's nodes carry."
    )
    tolerations: list[Toleration] | None = Field(
        default=None, description="Tolerations added to job pods, besides the usual AKS GPU taints."
    )
    gpus_per_node: int | None = Field(
        default=None, ge=0, le=64, description="GPUs per node, when vmSize is not in the operator's table."
    )
    images: ToolkitImages | None = Field(default=None, description="Per-toolkit default images.")
    aks: AksAgentPool | None = Field(
        default=None, description="AKS agent pool to scale through Azure Resource Manager; without it, observe only."
    )


class NodeStateCounts(StatusModel):
    """Nodes by state, as az batchai cluster list showed them."""

    idle_node_count: int = Field(default=0, description="Ready nodes with no job pods.")
    running_node_count: int = Field(default=0, description="Nodes running job pods.")
    preparing_node_count: int = Field(default=0, description="Nodes not Ready yet or still running the setup task.")
    unusable_node_count: int = Field(default=0, description="Setup task failed, or NotReady past the grace period.")
    leaving_node_count: int = Field(default=0, description="Cordoned or being deleted.")


class BatchAIClusterStatus(StatusModel):
    """What the cluster's nodes are doing."""

    allocation_state: Literal["steady", "resizing"] | None = Field(default=None, description="steady or resizing.")
    allocation_state_transition_time: str | None = Field(default=None, description="When allocationState changed.")
    current_node_count: int | None = Field(default=None, description="Nodes in the cluster.")
    node_state_counts: NodeStateCounts | None = Field(default=None, description="Nodes by state.")
    errors: list[BatchAIError] | None = Field(default=None, description="Setup task and scaling errors.")
    conditions: list[Condition] | None = Field(default=None, description="Ready.")
    observed_generation: int | None = Field(default=None, description="Last spec generation acted on.")
