"""What each custom resource kind is, besides its schema: names, description, printer columns and the
constraints on metadata.name (kubebuilder keeps these as markers on the type; here they sit beside the
models). crdgen.py turns them, with the models' JSON schemas, into the CRDs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from ..names import CLUSTER_KIND, CLUSTER_PLURAL, GROUP, TRAININGJOB_KIND, TRAININGJOB_PLURAL
from .cluster import BatchAIClusterSpec, BatchAIClusterStatus
from .trainingjob import JOB_NAME_PATTERN, MAX_JOB_NAME, ROOT_RULES, TrainingJobSpec, TrainingJobStatus

CATEGORY = "batchai"


@dataclass(frozen=True)
class KindInfo:
    kind: str
    plural: str
    short_names: Sequence[str]
    spec_model: type[BaseModel]
    status_model: type[BaseModel]
    description: str
    columns: Sequence[Mapping[str, Any]]
    # Constraints on metadata.name (the only metadata field a structural schema may constrain).
    name_schema: Mapping[str, Any] = field(default_factory=dict)
    root_rules: Sequence[Mapping[str, str]] = field(default_factory=tuple)
    # Fields `kubectl get --field-selector` (and the operator's own watch) may select on.
    selectable_fields: Sequence[str] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def file_name(self) -> str:
        return f"{GROUP}_{self.plural}.yaml"


def _col(
    name: str, path: str, type_: str = "string", description: str = "", priority: int = 0
) -> dict[str, Any]:
    col: dict[str, Any] = {"name": name, "type": type_, "jsonPath": path}
    if description:
        col["description"] = description
    if priority:
        col["priority"] = priority
    return col


_AGE = _col("Age", ".metadata.creationTimestamp", "date")

KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        TRAININGJOB_KIND,
        TRAININGJOB_PLURAL,
        ("tj",),
        TrainingJobSpec,
        TrainingJobStatus,
        description=(
            "TrainingJob is an Azure Batch AI job: spec is the job.json `properties`, field for field "
            "(convert a job.json with 'kubectl batchai job convert -f job.json'). The operator runs it as "
            "an Indexed Job with one pod per node on the BatchAICluster named by spec.cluster, and reports "
            "Batch AI's executionState, exit code and output paths in status."
        ),
        columns=(
            _col(
                "State",
                ".status.executionState",
                description="queued, running, terminating, succeeded, failed",
            ),
            _col("Exit Code", ".status.executionInfo.exitCode", "integer"),
            _col("Tool", ".status.toolType"),
            _col(
                "Nodes",
                ".status.nodesSummary",
                description="nodes started (running+succeeded+failed)/nodeCount",
            ),
            _col("Cluster", ".spec.cluster"),
            _col("Experiment", ".spec.experiment", priority=1),
            _AGE,
        ),
        name_schema={
            "description": (
                f"At most {MAX_JOB_NAME} lowercase letters, digits and '-', starting with a letter: the name "
                "is also the name of the job's Service and Job and the prefix of its pods' host names."
            ),
            "type": "string",
            "maxLength": MAX_JOB_NAME,
            "pattern": JOB_NAME_PATTERN,
        },
        root_rules=ROOT_RULES,
        selectable_fields=(".status.settled", ".status.executionState", ".spec.cluster", ".spec.experiment"),
    ),
    KindInfo(
        CLUSTER_KIND,
        CLUSTER_PLURAL,
        ("bac",),
        BatchAIClusterSpec,
        BatchAIClusterStatus,
        description=(
            "BatchAICluster is an Azure Batch AI cluster as a view over one AKS GPU node pool: TrainingJobs "
            "naming it run on the nodes it selects (by vmSize or agentPool), get its mounts and wait for its "
            "setup task. Status counts the nodes by state, as 'az batchai cluster list' did."
        ),
        columns=(
            _col("VM Size", ".spec.vmSize"),
            _col("State", ".status.allocationState", description="steady or resizing"),
            _col("Idle", ".status.nodeStateCounts.idleNodeCount", "integer"),
            _col("Running", ".status.nodeStateCounts.runningNodeCount", "integer"),
            _col("Preparing", ".status.nodeStateCounts.preparingNodeCount", "integer"),
            _col("Leaving", ".status.nodeStateCounts.leavingNodeCount", "integer"),
            _col("Unusable", ".status.nodeStateCounts.unusableNodeCount", "integer"),
            _AGE,
        ),
        name_schema={
            "description": "At most 63 characters: the name is also used as a label value.",
            "type": "string",
            "maxLength": 63,
        },
    ),
)
