"""TrainingJob: a Batch AI job. `spec` is Batch AI's job `properties`, field for field, plus a few
Kubernetes additions (experiment, suspend, terminate, ttlSecondsAfterFinished, serviceAccountName)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from ..names import API_VERSION
from .base import ApiModel, StatusModel, cel, rules
from .common import (
    ENV_NAME_PATTERN,
    MAX_COMMAND,
    MAX_ENV,
    MAX_GPUS_PER_NODE,
    MAX_NAME,
    MAX_PATH,
    EnvironmentVariable,
    EnvironmentVariableWithSecretValue,
    KeyVaultSecretReference,
    MountVolumes,
    SecretKeyRef,
    check_unique,
    unique_rule,
)
from .duration import DEFAULT_MAX_WALL_CLOCK_TIME, DURATION_PATTERN, parse_duration, to_seconds
from .toolkits import (
    TOOLKIT_FIELDS,
    Caffe2Settings,
    CaffeSettings,
    ChainerSettings,
    CNTKsettings,
    CustomMpiSettings,
    CustomToolkitSettings,
    HorovodSettings,
    PyTorchSettings,
    TensorFlowSettings,
)

# `cluster`: a BatchAICluster name, or an ARM id whose last segment is one.
CLUSTER_PATTERN = r"^(.*/clusters/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
# `experiment` is copied to a label value and used as a path segment.
EXPERIMENT_PATTERN = r"^[A-Za-z0-9]([-_A-Za-z0-9]{0,61}[A-Za-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
# Longest TrainingJob name: it names the job's Service (a DNS-1035 label) and, with "-<index>", the
# host names of its pods (63 characters at most), with room for the operator's child-name suffixes.
# Enforced by a CEL rule on metadata.name (crdgen).
MAX_JOB_NAME = 52
JOB_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"

MSG_REGISTRY_PASSWORD = (
    "containerSettings.imageSourceRegistry.credentials.password: registry passwords are not accepted "
    "inline; create a docker-registry Secret and set credentials.secretRef.name"
)
MSG_REGISTRY_KEYVAULT = (
    "containerSettings.imageSourceRegistry.credentials.passwordSecretReference: Key Vault references "
    "are not supported; set credentials.secretRef.name"
)
MSG_ONE_TOOLKIT = (
    "spec: set exactly one toolkit: cntkSettings, tensorFlowSettings, pyTorchSettings, caffeSettings, "
    "caffe2Settings, chainerSettings, horovodSettings, customMpiSettings or customToolkitSettings"
)
MSG_PS_COUNT = "spec.tensorFlowSettings.parameterServerCount must not exceed nodeCount"
MSG_WORKER_CAP = (
    "spec.tensorFlowSettings.workerCount must not exceed nodeCount x GPUs per VM "
    f"(at most nodeCount x {MAX_GPUS_PER_NODE})"
)
MSG_OUTPUT_IDS = "spec.outputDirectories: ids must be unique"
MSG_INPUT_IDS = "spec.inputDirectories: ids must be unique"
MSG_ENV_NAMES = "spec.environmentVariables: names must be unique"
MSG_SECRET_NAMES = "spec.secrets: names must be unique"
MSG_IMMUTABLE = (
    "spec is immutable except suspend, terminate and ttlSecondsAfterFinished: delete and re-create the "
    "job to change nodeCount, cluster, stdOutErrPathPrefix or experiment"
)
MSG_TERMINATE = "spec.terminate cannot be reverted once set"
MSG_TTL_SETTLED = (
    "spec.ttlSecondsAfterFinished cannot be set on a settled job (status.settled: finished for good, no "
    "longer watched by the operator): delete the job instead"
)
# Rules on the whole object (they read status, which rules on spec cannot): a settled job is not watched,
# so a change that would need the operator is refused, not left undone.
ROOT_RULES = (
    cel(
        "!has(self.status) || !has(self.status.settled) || !self.status.settled || "
        "!has(self.spec.ttlSecondsAfterFinished)",
        MSG_TTL_SETTLED,
        field_path=".spec.ttlSecondsAfterFinished",
    ),
)


class RegistryCredentials(ApiModel):
    """Credentials for a private registry, kept in a kubernetes.io/dockerconfigjson Secret."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel("!has(self.password)", MSG_REGISTRY_PASSWORD, reason="FieldValueForbidden"),
            cel("!has(self.passwordSecretReference)", MSG_REGISTRY_KEYVAULT, reason="FieldValueForbidden"),
        )
    }

    username: str | None = Field(
        default=None, description="Registry user name (informational here).", max_length=MAX_NAME
    )
    password: str | None = Field(
        default=None, description="Batch AI's inline password. Rejected here.", max_length=MAX_COMMAND
    )
    password_secret_reference: KeyVaultSecretReference | None = Field(
        default=None, description="Batch AI's Key Vault reference. Rejected here."
    )
    secret_ref: SecretKeyRef | None = Field(
        default=None, description="kubernetes.io/dockerconfigjson Secret used as the pod's imagePullSecret."
    )

    @model_validator(mode="after")
    def _check(self) -> RegistryCredentials:
        if self.password is not None:
            raise ValueError(MSG_REGISTRY_PASSWORD)
        if self.password_secret_reference is not None:
            raise ValueError(MSG_REGISTRY_KEYVAULT)
        return self


class ImageSourceRegistry(ApiModel):
    """The job's container image and where to pull it from."""

    server_url: str | None = Field(
        default=None, description="Registry URL; the image must then be fully qualified.", max_length=MAX_PATH
    )
    image: str = Field(
        description="Container image, e.g. microsoft/cntk:2.5.1-gpu-python3.5-cuda9.0-cudnn7.0.",
        pattern=r"^\S+$",
        min_length=1,
        max_length=MAX_PATH,
    )
    credentials: RegistryCredentials | None = Field(
        default=None, description="Pull credentials for the registry."
    )


class ContainerSettings(ApiModel):
    """Run the job in this container (without it, the toolkit's default image is used)."""

    image_source_registry: ImageSourceRegistry = Field(description="Image and registry.")
    shm_size: str | None = Field(
        default=None,
        description="Size of /dev/shm in docker format, e.g. '16gb' or '512m'.",
        pattern=r"^[0-9]+(\.[0-9]+)?([bkmgtBKMGT]|[kmgtKMGT][bB])?$",
        max_length=32,
    )


class JobPreparation(ApiModel):
    """A command run on every node of the job before the toolkit starts."""

    command_line: str = Field(
        description="Command line, run by a shell; failure fails the job.",
        min_length=1,
        max_length=MAX_COMMAND,
    )


class InputDirectory(ApiModel):
    """An input directory, exported as AZ_BATCHAI_INPUT_<id>."""

    id: str = Field(
        description="Id; the variable is AZ_BATCHAI_INPUT_<id> (case kept), so letters, digits and '_'.",
        pattern=ENV_NAME_PATTERN,
        max_length=MAX_NAME,
    )
    path: str = Field(description="Path of the directory.", min_length=1, max_length=MAX_PATH)


MSG_PATH_SUFFIX = "outputDirectories[].pathSuffix must stay below the job's outputs: no leading '/', no '..'"


class OutputDirectory(ApiModel):
    """An output directory, exported as AZ_BATCHAI_OUTPUT_<id>.

    The path is <pathPrefix>/<segment>/outputs[/<pathSuffix>].
    """

    id: str = Field(
        description="Id; the variable is AZ_BATCHAI_OUTPUT_<id> (case kept), so letters, digits and '_'.",
        pattern=ENV_NAME_PATTERN,
        max_length=MAX_NAME,
    )
    path_prefix: str = Field(
        description="Prefix of the path, usually on a mount.", min_length=1, max_length=MAX_PATH
    )
    path_suffix: str | None = Field(
        default=None,
        description="Suffix appended after '<segment>/outputs' (stays below it: no leading '/', no '..').",
        max_length=MAX_PATH,
        json_schema_extra=rules(
            cel("!self.startsWith('/') && !self.split('/').exists(p, p == '..')", MSG_PATH_SUFFIX)
        ),
    )

    @field_validator("path_suffix")
    @classmethod
    def _below_outputs(cls, value: str | None) -> str | None:
        if value is not None and (value.startswith("/") or ".." in value.split("/")):
            raise ValueError(MSG_PATH_SUFFIX)
        return value


MSG_WALL_CLOCK_ZERO = "constraints.maxWallClockTime must be longer than zero"


class Constraints(ApiModel):
    """Limits on the job."""

    max_wall_clock_time: str = Field(
        default=DEFAULT_MAX_WALL_CLOCK_TIME,
        description="Maximum run time: '7.00:00:00', '7 days, 0:00:00' or ISO 8601 'P7D'. Default 7 days.",
        pattern=DURATION_PATTERN,
        max_length=64,
        json_schema_extra=rules(
            cel("self != 'P' && !self.endsWith('T')", "constraints.maxWallClockTime is not a valid duration"),
            # A duration with a non-zero digit is longer than zero (a Job's deadline must be positive).
            cel("self.matches('[1-9]')", MSG_WALL_CLOCK_ZERO),
        ),
    )
    max_retry_count: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description=(
            "Kubernetes addition: times a failed node is retried (Job backoffLimit). Default 0, as Batch AI."
        ),
    )

    @field_validator("max_wall_clock_time")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        if parse_duration(value).total_seconds() <= 0:
            raise ValueError(MSG_WALL_CLOCK_ZERO)
        return value

    @property
    def max_wall_clock_seconds(self) -> int:
        return to_seconds(self.max_wall_clock_time)


_TOOLKITS_CEL = (
    "[" + ", ".join(f"has(self.{to_camel(f)})" for f in TOOLKIT_FIELDS) + "].filter(x, x).size() == 1"
)

_SPEC_RULES = rules(
    cel(_TOOLKITS_CEL, MSG_ONE_TOOLKIT),
    cel(
        "!has(self.tensorFlowSettings) || !has(self.tensorFlowSettings.parameterServerCount) || "
        "self.tensorFlowSettings.parameterServerCount <= self.nodeCount",
        MSG_PS_COUNT,
        field_path=".tensorFlowSettings.parameterServerCount",
    ),
    # The exact cap needs the cluster's GPUs per node (checked when the job starts); this one does not.
    cel(
        "!has(self.tensorFlowSettings) || !has(self.tensorFlowSettings.workerCount) || "
        f"self.tensorFlowSettings.workerCount <= self.nodeCount * {MAX_GPUS_PER_NODE}",
        MSG_WORKER_CAP,
        field_path=".tensorFlowSettings.workerCount",
    ),
    unique_rule("outputDirectories", "id", MSG_OUTPUT_IDS),
    unique_rule("inputDirectories", "id", MSG_INPUT_IDS),
    unique_rule("environmentVariables", "name", MSG_ENV_NAMES),
    unique_rule("secrets", "name", MSG_SECRET_NAMES),
    # A running job cannot be changed underneath its pods (Batch AI jobs were immutable too); only the
    # Kubernetes controls suspend, terminate and ttlSecondsAfterFinished may change.
    cel(
        "self.nodeCount == oldSelf.nodeCount && self.cluster == oldSelf.cluster && "
        "self.stdOutErrPathPrefix == oldSelf.stdOutErrPathPrefix && self.experiment == oldSelf.experiment",
        MSG_IMMUTABLE,
    ),
    cel(
        "!has(oldSelf.terminate) || !oldSelf.terminate || (has(self.terminate) && self.terminate)",
        MSG_TERMINATE,
        field_path=".terminate",
    ),
)


class TrainingJobSpec(ApiModel):
    """A Batch AI job: the job.json `properties`, field for field, plus Kubernetes additions."""

    model_config = ApiModel.model_config | {"json_schema_extra": _SPEC_RULES}

    cluster: str = Field(
        description=(
            "BatchAICluster to run on: a name in the same namespace, or a Batch AI cluster ARM id "
            "(.../clusters/<name>) whose last segment names it."
        ),
        min_length=1,
        max_length=1024,
        pattern=CLUSTER_PATTERN,
    )
    node_count: int = Field(
        description="Number of nodes (pods) the job runs on, one pod per node. Unless the operator's gang "
        "setting is off, a multi-node job gets all of them at once or none (docs/gang-scheduling.md).",
        ge=1,
        le=1000,
    )
    std_out_err_path_prefix: str = Field(
        description="Prefix of the stdout/stderr directory, e.g. $AZ_BATCHAI_JOB_MOUNT_ROOT/logs.",
        min_length=1,
        max_length=MAX_PATH,
    )
    scheduling_priority: Literal["low", "normal", "high"] = Field(
        default="normal",
        description="low, normal or high; mapped to PriorityClasses configured in the chart.",
    )
    mount_volumes: MountVolumes | None = Field(
        default=None, description="Job-level mounts, under $AZ_BATCHAI_JOB_MOUNT_ROOT."
    )
    container_settings: ContainerSettings | None = Field(
        default=None, description="Container image; the toolkit's default image is used when unset."
    )
    job_preparation: JobPreparation | None = Field(
        default=None, description="Command run on every node before the toolkit."
    )
    input_directories: list[InputDirectory] | None = Field(
        default=None, description="Input directories, exported as AZ_BATCHAI_INPUT_<id>.", max_length=64
    )
    output_directories: list[OutputDirectory] | None = Field(
        default=None, description="Output directories, exported as AZ_BATCHAI_OUTPUT_<id>.", max_length=64
    )
    environment_variables: list[EnvironmentVariable] | None = Field(
        default=None, description="Environment variables for the job and its preparation.", max_length=MAX_ENV
    )
    secrets: list[EnvironmentVariableWithSecretValue] | None = Field(
        default=None,
        description="Secret environment variables, read from Kubernetes Secrets.",
        max_length=MAX_ENV,
    )
    constraints: Constraints | None = Field(default=None, description="Limits, such as maxWallClockTime.")

    cntk_settings: CNTKsettings | None = Field(
        default=None,
        description=(
            "CNTK toolkit: a Python script (pythonScriptFilePath) or BrainScript (configFilePath; "
            "languageType is inferred when unset), run under MPI with processCount ranks. Set exactly one "
            "toolkit."
        ),
    )
    tensor_flow_settings: TensorFlowSettings | None = Field(
        default=None,
        description=(
            "TensorFlow toolkit: workerCount workers and parameterServerCount parameter servers, each "
            "'python <pythonScriptFilePath> <role args>', with TF_CONFIG set. Set exactly one toolkit."
        ),
    )
    py_torch_settings: PyTorchSettings | None = Field(
        default=None,
        description=(
            "PyTorch toolkit: processCount ranks of 'python <pythonScriptFilePath> <commandLineArgs>', with "
            "AZ_BATCHAI_PYTORCH_INIT_METHOD and AZ_BATCHAI_PYTORCH_BACKEND set. Set exactly one toolkit."
        ),
    )
    caffe_settings: CaffeSettings | None = Field(
        default=None,
        description=(
            "Caffe toolkit: 'caffe train --solver=<configFilePath>' or a Python script, under MPI with "
            "processCount ranks. Set exactly one toolkit."
        ),
    )
    caffe2_settings: Caffe2Settings | None = Field(
        default=None,
        description="Caffe2 toolkit: the Python script on every node. Set exactly one toolkit.",
    )
    chainer_settings: ChainerSettings | None = Field(
        default=None,
        description=(
            "Chainer toolkit: the Python script under mpirun, processCount ranks. Set exactly one toolkit."
        ),
    )
    horovod_settings: HorovodSettings | None = Field(
        default=None,
        description=(
            "Horovod toolkit: the Python script under mpirun, processCount ranks. Set exactly one toolkit."
        ),
    )
    custom_mpi_settings: CustomMpiSettings | None = Field(
        default=None,
        description="A custom program run under mpirun with processCount ranks. Set exactly one toolkit.",
    )
    custom_toolkit_settings: CustomToolkitSettings | None = Field(
        default=None,
        description="A custom command line run by a shell on the job's first node. Set exactly one toolkit.",
    )

    # Kubernetes additions.
    experiment: str = Field(
        default="default",
        description=(
            "Batch AI experiment the job belongs to; copied to label batchai.io/experiment, so at most 63 "
            "letters, digits, '-' and '_', starting and ending with a letter or digit."
        ),
        pattern=EXPERIMENT_PATTERN,
        max_length=63,
    )
    suspend: bool | None = Field(
        default=None, description="Suspend the job (passed to the child Job; Kueue uses it)."
    )
    terminate: bool | None = Field(
        default=None, description="Terminate the job, as 'az batchai job terminate'. Cannot be reverted."
    )
    ttl_seconds_after_finished: int | None = Field(
        default=None,
        ge=0,
        le=315_360_000,
        description="Delete the job this many seconds after it succeeded or failed (at most 10 years).",
    )
    service_account_name: str | None = Field(
        default=None,
        description="ServiceAccount for the job pods (for workload identity).",
        max_length=253,
        pattern=DNS_SUBDOMAIN_PATTERN,
    )

    @model_validator(mode="after")
    def _check(self) -> TrainingJobSpec:
        if sum(getattr(self, f) is not None for f in TOOLKIT_FIELDS) != 1:
            raise ValueError(MSG_ONE_TOOLKIT)
        tf = self.tensor_flow_settings
        if (
            tf is not None
            and tf.parameter_server_count is not None
            and tf.parameter_server_count > self.node_count
        ):
            raise ValueError(MSG_PS_COUNT)
        if (
            tf is not None
            and tf.worker_count is not None
            and tf.worker_count > self.node_count * MAX_GPUS_PER_NODE
        ):
            raise ValueError(MSG_WORKER_CAP)
        check_unique((d.id for d in self.output_directories or []), MSG_OUTPUT_IDS)
        check_unique((d.id for d in self.input_directories or []), MSG_INPUT_IDS)
        check_unique((v.name for v in self.environment_variables or []), MSG_ENV_NAMES)
        check_unique((v.name for v in self.secrets or []), MSG_SECRET_NAMES)
        return self

    @property
    def tool_type(self) -> str:
        for field, tool in TOOLKIT_FIELDS.items():
            if getattr(self, field) is not None:
                return tool
        raise ValueError("no toolkit settings")

    @property
    def cluster_name(self) -> str:
        return cluster_name(self.cluster)

    @property
    def effective_constraints(self) -> Constraints:
        return self.constraints or Constraints()


def cluster_name(cluster: str) -> str:
    """The BatchAICluster name spec.cluster names: the value itself, or the last segment of an ARM id."""
    return cluster.rstrip("/").rsplit("/", 1)[-1]


class TrainingJob(ApiModel):
    """The whole custom resource as parsed from Kubernetes (metadata kept as a plain dict)."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    api_version: str = Field(default=API_VERSION)
    kind: Literal["TrainingJob"] = "TrainingJob"
    metadata: dict[str, object] = Field(default_factory=dict)
    spec: TrainingJobSpec


# ---- status -----------------------------------------------------------------------------------------

ExecutionState = Literal["queued", "running", "terminating", "succeeded", "failed"]


class NameValuePair(StatusModel):
    """A name and a value (details of an error)."""

    name: str = Field(description="Name.")
    value: str = Field(description="Value.")


class BatchAIError(StatusModel):
    """An error with Batch AI's codes (JobFailed, JobPreparationFailed, FailedStartingContainer, ...)."""

    code: str = Field(description="Batch AI error code.")
    message: str = Field(description="Human-readable message.")
    details: list[NameValuePair] | None = Field(default=None, description="Further details.")


class ExecutionInfo(StatusModel):
    """When the job ran and how it ended."""

    start_time: str | None = Field(default=None, description="When the job started running (RFC 3339).")
    end_time: str | None = Field(default=None, description="When the job completed (RFC 3339).")
    exit_code: int | None = Field(default=None, description="Exit code of the node that decided the outcome.")
    errors: list[BatchAIError] | None = Field(default=None, description="Errors that failed the job.")
    requeue_count: int | None = Field(
        default=None,
        description=(
            "Times a node of the job was taken away by Kubernetes (its node lost, drained or preempted) and "
            "run again; these do not count against constraints.maxRetryCount (Azure Batch's requeueCount)."
        ),
    )


class Requeue(StatusModel):
    """One node of the job taken away by Kubernetes and run again."""

    pod: str = Field(description="The pod that was taken away.")
    node_index: int = Field(description="The job's node (pod index) it ran.")
    node_name: str | None = Field(default=None, description="The Kubernetes node it ran on.")
    reason: str = Field(description="NodeLost, Evicted, Preempted or NodeShutdown.")
    message: str = Field(description="What Kubernetes said (the pod's DisruptionTarget condition).")
    time: str = Field(description="When the operator saw it (RFC 3339).")


class StoragePath(StatusModel):
    """Where a directory is in Azure Storage: a path in an Azure Files share or a blob container."""

    account_name: str = Field(description="Storage account.")
    share_name: str | None = Field(default=None, description="Azure Files share (for a share mount).")
    container_name: str | None = Field(default=None, description="Blob container (for a blob mount).")
    path: str = Field(description="Path below the share or container root ('' for the root).")


class DirectoryPath(StatusModel):
    """A resolved directory path (output directories)."""

    id: str = Field(description="Directory id.")
    path: str = Field(description="Path in the pod, with environment variables unexpanded as written.")
    storage: StoragePath | None = Field(
        default=None,
        description="Where the directory is in Azure Storage, when it lies on a mounted share or container.",
    )


class NodeCounts(StatusModel):
    """Pods (nodes) of the job by state."""

    ready: int = Field(default=0, description="Pods ready.")
    running: int = Field(default=0, description="Pods running.")
    succeeded: int = Field(default=0, description="Pods succeeded.")
    failed: int = Field(default=0, description="Pods failed.")


class GangStatus(StatusModel):
    """How a multi-node job gets all its nodes or none (docs/gang-scheduling.md), and while it waits for
    them, how many are free and why it waits."""

    mechanism: Literal["kueue", "workload", "admission"] = Field(
        description="kueue (Kueue admits the whole job), workload (a PodGroup the scheduler binds all or "
        "nothing) or admission (the operator starts the job when all its nodes are free)."
    )
    needed: int = Field(description="Nodes the job needs at once (nodeCount).")
    free: int | None = Field(
        default=None, description="While it waits: nodes of its placement with its GPUs free."
    )
    message: str | None = Field(
        default=None, description="While it waits: why, in the words of the mechanism that holds it."
    )


class Condition(StatusModel):
    """A Kubernetes-style condition."""

    type: str = Field(description="Condition type.")
    status: Literal["True", "False", "Unknown"] = Field(description="True, False or Unknown.")
    reason: str | None = Field(default=None, description="CamelCase reason.")
    message: str | None = Field(default=None, description="Human-readable message.")
    last_transition_time: str | None = Field(default=None, description="When status last changed (RFC 3339).")
    observed_generation: int | None = Field(default=None, description="Generation the condition was set for.")


class TrainingJobStatus(StatusModel):
    """What the job is doing, as Batch AI reported it, plus Kubernetes conditions."""

    execution_state: ExecutionState | None = Field(
        default=None, description="queued, running, terminating, succeeded or failed."
    )
    execution_state_transition_time: str | None = Field(
        default=None, description="When executionState changed."
    )
    execution_info: ExecutionInfo | None = Field(
        default=None, description="Start, end, exit code and errors."
    )
    job_output_directory_path_segment: str | None = Field(
        default=None, description="<namespace>/<experiment>/<job>/<uid>: the segment of output paths."
    )
    output_directories: list[DirectoryPath] | None = Field(
        default=None, description="Resolved AZ_BATCHAI_OUTPUT_<id> paths."
    )
    std_out_err_directory: str | None = Field(default=None, description="Directory of stdout/stderr files.")
    std_out_err_storage: StoragePath | None = Field(
        default=None,
        description="Where the stdout/stderr directory is in Azure Storage, when it lies on a mounted share "
        "or container.",
    )
    tool_type: str | None = Field(default=None, description="Toolkit: cntk, tensorflow, pytorch, ...")
    cluster: str | None = Field(default=None, description="BatchAICluster name the job runs on.")
    nodes: NodeCounts | None = Field(default=None, description="Job pods by state.")
    nodes_summary: str | None = Field(
        default=None, description="'<running+succeeded+failed>/<nodeCount>': nodes started, for printing."
    )
    gang: GangStatus | None = Field(
        default=None, description="Multi-node jobs: what keeps their nodes together, and what they wait for."
    )
    conditions: list[Condition] | None = Field(
        default=None, description="Queued, Running, Succeeded, Failed, Suspended."
    )
    requeues: list[Requeue] | None = Field(
        default=None,
        description="The job's nodes taken away by Kubernetes and run again, oldest first (requeueCount).",
    )
    observed_generation: int | None = Field(default=None, description="Last spec generation acted on.")
    settled: bool | None = Field(
        default=None,
        description="true once the job has finished and nothing about it will change any more (its pods are "
        "done, no ttlSecondsAfterFinished to run): the operator no longer watches it.",
    )
