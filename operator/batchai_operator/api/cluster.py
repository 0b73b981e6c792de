"""BatchAICluster: a Batch AI cluster as a view over one AKS GPU node pool."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import ApiModel, StatusModel, cel, rules
from .common import (
    MAX_COMMAND,
    MAX_ENV,
    MAX_GPUS_PER_NODE,
    MAX_PATH,
    EnvironmentVariable,
    EnvironmentVariableWithSecretValue,
    KeyVaultSecretReference,
    MountVolumes,
    ResourceId,
    Toleration,
    check_unique,
    unique_rule,
)
from .trainingjob import BatchAIError, Condition

MSG_AUTOSCALE_BOUNDS = "scaleSettings.autoScale.minimumNodeCount must not exceed maximumNodeCount"
MSG_SCALE_ONE_OF = "scaleSettings: set exactly one of manual or autoScale"
MSG_APPINSIGHTS_KEY = (
    "nodeSetup.performanceCountersSettings.appInsightsReference.instrumentationKey: keys are not accepted "
    "inline; performance counters are not sent to Application Insights here, so leave it out"
)
MSG_ADMIN_PASSWORD = "userAccountSettings.adminUserPassword: passwords are not accepted in a BatchAICluster"
MSG_SETUP_ENV_NAMES = "nodeSetup.setupTask.environmentVariables: names must be unique"
MSG_SETUP_SECRET_NAMES = "nodeSetup.setupTask.secrets: names must be unique"


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
                MSG_AUTOSCALE_BOUNDS,
                field_path=".minimumNodeCount",
            )
        )
    }

    minimum_node_count: int = Field(ge=0, le=1000, description="Minimum nodes.")
    maximum_node_count: int = Field(ge=1, le=1000, description="Maximum nodes.")
    initial_node_count: int | None = Field(
        default=None, ge=0, le=1000, description="Nodes at creation (Batch AI compat)."
    )

    @model_validator(mode="after")
    def _check(self) -> AutoScaleSettings:
        if self.minimum_node_count > self.maximum_node_count:
            raise ValueError(MSG_AUTOSCALE_BOUNDS)
        return self


class ScaleSettings(ApiModel):
    """Exactly one of manual or autoScale."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(cel("has(self.manual) != has(self.autoScale)", MSG_SCALE_ONE_OF))
    }

    manual: ManualScaleSettings | None = Field(default=None, description="A fixed node count.")
    auto_scale: AutoScaleSettings | None = Field(default=None, description="Autoscaler bounds.")

    @model_validator(mode="after")
    def _check(self) -> ScaleSettings:
        if (self.manual is None) == (self.auto_scale is None):
            raise ValueError(MSG_SCALE_ONE_OF)
        return self


class SetupTask(ApiModel):
    """A command run as root on every node of the cluster when it joins (a DaemonSet's init container)."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            unique_rule("environmentVariables", "name", MSG_SETUP_ENV_NAMES),
            unique_rule("secrets", "name", MSG_SETUP_SECRET_NAMES),
        )
    }

    command_line: str = Field(
        description="Command line, run by bash; must be idempotent.", min_length=1, max_length=MAX_COMMAND
    )
    environment_variables: list[EnvironmentVariable] | None = Field(
        default=None, description="Environment variables for the command.", max_length=MAX_ENV
    )
    secrets: list[EnvironmentVariableWithSecretValue] | None = Field(
        default=None,
        description="Secret environment variables, read from Kubernetes Secrets.",
        max_length=MAX_ENV,
    )
    std_out_err_path_prefix: str = Field(
        description="Prefix of the setup task's output directory.", min_length=1, max_length=MAX_PATH
    )

    @model_validator(mode="after")
    def _check(self) -> SetupTask:
        check_unique((v.name for v in self.environment_variables or []), MSG_SETUP_ENV_NAMES)
        check_unique((v.name for v in self.secrets or []), MSG_SETUP_SECRET_NAMES)
        return self


class AppInsightsReference(ApiModel):
    """Batch AI's Application Insights reference (performance counters)."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel("!has(self.instrumentationKey)", MSG_APPINSIGHTS_KEY, reason="FieldValueForbidden")
        )
    }

    component: ResourceId = Field(description="Application Insights component.")
    instrumentation_key: str | None = Field(
        default=None, description="Batch AI's inline key. Rejected here.", max_length=MAX_COMMAND
    )
    instrumentation_key_secret_reference: KeyVaultSecretReference | None = Field(
        default=None, description="Batch AI's Key Vault reference (accepted, not used)."
    )

    @model_validator(mode="after")
    def _check(self) -> AppInsightsReference:
        if self.instrumentation_key is not None:
            raise ValueError(MSG_APPINSIGHTS_KEY)
        return self


class PerformanceCountersSettings(ApiModel):
    """Accepted for compatibility; node counters come from the cluster's own monitoring here."""

    app_insights_reference: AppInsightsReference = Field(description="Application Insights target.")


class NodeSetup(ApiModel):
    """What every node of the cluster gets: mounts and a setup task."""

    setup_task: SetupTask | None = Field(default=None, description="Command run on each node as it joins.")
    mount_volumes: MountVolumes | None = Field(
        default=None,
        description="Cluster mounts, added to every job on the cluster under $AZ_BATCHAI_MOUNT_ROOT.",
    )
    performance_counters_settings: PerformanceCountersSettings | None = Field(
        default=None, description="Accepted for compatibility; not used."
    )


class UserAccountSettings(ApiModel):
    """Accepted for compatibility: AKS nodes are not reached by SSH; the admin user is not created."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel("!has(self.adminUserPassword)", MSG_ADMIN_PASSWORD, reason="FieldValueForbidden")
        )
    }

    admin_user_name: str = Field(
        description="Admin user name (not used on AKS).", min_length=1, max_length=64
    )
    admin_user_ssh_public_key: str | None = Field(
        default=None, description="Public key (not used on AKS).", max_length=MAX_COMMAND
    )
    admin_user_password: str | None = Field(
        default=None, description="Rejected: never store passwords here.", max_length=MAX_COMMAND
    )

    @model_validator(mode="after")
    def _check(self) -> UserAccountSettings:
        if self.admin_user_password is not None:
            raise ValueError(MSG_ADMIN_PASSWORD)
        return self


class ImageReference(ApiModel):
    """A VM image; accepted for compatibility (AKS node images are chosen by the node pool)."""

    publisher: str = Field(description="Image publisher.", max_length=256)
    offer: str = Field(description="Image offer.", max_length=256)
    sku: str = Field(description="Image SKU.", max_length=256)
    version: str | None = Field(default=None, description="Image version.", max_length=256)
    virtual_machine_image_id: str | None = Field(
        default=None, description="Custom image id.", max_length=1024
    )


class VirtualMachineConfiguration(ApiModel):
    """Accepted for compatibility: the node pool decides the node image on AKS."""

    image_reference: ImageReference | None = Field(default=None, description="VM image (not used on AKS).")


class AksAgentPool(ApiModel):
    """The AKS agent pool the operator scales through Azure Resource Manager."""

    subscription_id: str = Field(description="Azure subscription id.", min_length=1, max_length=64)
    resource_group: str = Field(description="Resource group of the AKS cluster.", min_length=1, max_length=90)
    cluster_name: str = Field(description="AKS cluster name.", min_length=1, max_length=63)
    agent_pool_name: str = Field(description="Agent pool name.", min_length=1, max_length=12)


class ToolkitImages(ApiModel):
    """Per-toolkit default images for jobs on this cluster without containerSettings."""

    cntk: str | None = Field(default=None, description="Image for cntk jobs.", max_length=MAX_PATH)
    tensorflow: str | None = Field(
        default=None, description="Image for tensorflow jobs.", max_length=MAX_PATH
    )
    pytorch: str | None = Field(default=None, description="Image for pytorch jobs.", max_length=MAX_PATH)
    caffe: str | None = Field(default=None, description="Image for caffe jobs.", max_length=MAX_PATH)
    caffe2: str | None = Field(default=None, description="Image for caffe2 jobs.", max_length=MAX_PATH)
    chainer: str | None = Field(default=None, description="Image for chainer jobs.", max_length=MAX_PATH)
    horovod: str | None = Field(default=None, description="Image for horovod jobs.", max_length=MAX_PATH)
    mpi: str | None = Field(default=None, description="Image for customMpi jobs.", max_length=MAX_PATH)
    custom: str | None = Field(default=None, description="Image for customToolkit jobs.", max_length=MAX_PATH)


class BatchAIClusterSpec(ApiModel):
    """A Batch AI cluster: Batch AI's cluster properties, plus how to find its nodes on AKS."""

    vm_size: str = Field(
        description="Azure VM size, e.g. Standard_NC6; selects nodes by node.kubernetes.io/instance-type.",
        min_length=1,
        max_length=63,
    )
    vm_priority: Literal["dedicated", "lowpriority"] = Field(
        default="dedicated", description="lowpriority tolerates AKS spot nodes."
    )
    scale_settings: ScaleSettings | None = Field(
        default=None, description="Manual count or autoscaler bounds."
    )
    node_setup: NodeSetup | None = Field(default=None, description="Setup task and cluster mounts.")
    user_account_settings: UserAccountSettings | None = Field(
        default=None,
        description=(
            "Accepted so Batch AI cluster.json files apply unchanged, and ignored: AKS nodes are not reached "
            "over SSH and no admin user is created. adminUserPassword is rejected."
        ),
    )
    virtual_machine_configuration: VirtualMachineConfiguration | None = Field(
        default=None,
        description=(
            "Accepted so Batch AI cluster.json files apply unchanged, and ignored: the AKS node pool decides "
            "the node image; job containers bring their own software."
        ),
    )
    subnet: ResourceId | None = Field(
        default=None,
        description="Accepted for compatibility and ignored; the AKS cluster decides networking.",
    )

    # Kubernetes additions.
    agent_pool: str | None = Field(
        default=None,
        description="Select nodes by kubernetes.azure.com/agentpool instead of the instance type.",
        max_length=63,
    )
    node_selector: dict[str, Annotated[str, Field(max_length=63)]] | None = Field(
        default=None, description="Extra node labels the cluster's nodes carry.", max_length=64
    )
    tolerations: list[Toleration] | None = Field(
        default=None,
        description="Tolerations added to job pods, besides the usual AKS GPU taints.",
        max_length=64,
    )
    gpus_per_node: int | None = Field(
        default=None,
        ge=0,
        le=MAX_GPUS_PER_NODE,
        description="GPUs per node, when vmSize is not in the operator's table.",
    )
    images: ToolkitImages | None = Field(default=None, description="Per-toolkit default images.")
    aks: AksAgentPool | None = Field(
        default=None,
        description="AKS agent pool to scale through Azure Resource Manager; without it, observe only.",
    )


class NodeStateCounts(StatusModel):
    """Nodes by state, as az batchai cluster list showed them."""

    idle_node_count: int = Field(default=0, description="Ready nodes with no job pods.")
    running_node_count: int = Field(default=0, description="Nodes running job pods.")
    preparing_node_count: int = Field(
        default=0, description="Nodes not Ready yet or still running the setup task."
    )
    unusable_node_count: int = Field(
        default=0, description="Setup task failed, or NotReady past the grace period."
    )
    leaving_node_count: int = Field(default=0, description="Cordoned or being deleted.")


class BatchAIClusterStatus(StatusModel):
    """What the cluster's nodes are doing."""

    allocation_state: Literal["steady", "resizing"] | None = Field(
        default=None, description="steady or resizing."
    )
    allocation_state_transition_time: str | None = Field(
        default=None, description="When allocationState changed."
    )
    current_node_count: int | None = Field(default=None, description="Nodes in the cluster.")
    node_state_counts: NodeStateCounts | None = Field(default=None, description="Nodes by state.")
    errors: list[BatchAIError] | None = Field(default=None, description="Setup task and scaling errors.")
    conditions: list[Condition] | None = Field(default=None, description="Ready.")
    observed_generation: int | None = Field(default=None, description="Last spec generation acted on.")
