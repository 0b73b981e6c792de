"""Operator configuration: read once from environment variables (set by the Helm chart).

Kept as a plain pydantic model so the pure builders take it as an argument and tests build one directly.
"""

from __future__ import annotations

import json
import os
from typing import cast

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from .decide.gang import GANG_SETTINGS, GangSetting

# The image a job without containerSettings runs in, per toolkit (Batch AI ran such jobs on the VM image).
# The chart's values.yaml carries the same map (jobs.images, a unit test keeps them equal) and passes it as
# BATCHAI_IMAGES; docs/migration.md lists them. Maintained images where the toolkit still has one.
DEFAULT_IMAGES: dict[str, str] = {
    "cntk": "mcr.microsoft.com/cntk/release:2.7-gpu-python3.5-cuda10.0-cudnn7.3",
    "tensorflow": "tensorflow/tensorflow:2.18.0-gpu",
    "pytorch": "pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime",
    "caffe": "bvlc/caffe:gpu",
    "caffe2": "caffe2ai/caffe2:latest",
    "chainer": "chainer/chainer:v7.8.1-python3",
    "horovod": "horovod/horovod:0.28.1",
    "mpi": "mcr.microsoft.com/azureml/openmpi4.1.0-cuda11.8-cudnn8-ubuntu22.04:latest",
    "custom": "ubuntu:22.04",
}

# What each default image holds, as `kubectl batchai job show` states it (imageContents) and
# docs/migration.md lists it. CUDA 10 and older predate the A100 and H100 (CUDA 11 supports them).
IMAGE_CONTENTS: dict[str, str] = {
    DEFAULT_IMAGES["cntk"]: (
        "CNTK 2.7, Python 3.5, CUDA 10.0, cuDNN 7.3; CNTK's last release (2019), unmaintained; "
        "predates the A100 and H100 (NCasT4_v3's T4 is supported)"
    ),
    DEFAULT_IMAGES["tensorflow"]: (
        "TensorFlow 2.18.0, CUDA 12.5, cuDNN 9.3; TensorFlow 1.x scripts need a 1.x image in "
        "containerSettings"
    ),
    DEFAULT_IMAGES["pytorch"]: "PyTorch 2.5.1, CUDA 12.4, cuDNN 9",
    DEFAULT_IMAGES["caffe"]: (
        "Caffe 1.0, Python 2.7, CUDA 8.0, cuDNN 6; unmaintained since 2017; predates the A100 and H100"
    ),
    DEFAULT_IMAGES["caffe2"]: (
        "Caffe2's Docker Hub image, unmaintained (Caffe2 moved into PyTorch in 2018); its tag states no CUDA "
        "version"
    ),
    DEFAULT_IMAGES["chainer"]: (
        "Chainer 7.8.1 with CuPy, Python 3; Chainer's final release (in maintenance only since 2019); "
        "its tag states no CUDA version"
    ),
    DEFAULT_IMAGES["horovod"]: (
        "Horovod 0.28.1 (its last release, 2023) with TensorFlow 2.9, PyTorch 1.12, MXNet 1.9, CUDA 11.3, "
        "cuDNN 8.2, Open MPI 4.1 (Horovod's Dockerfile)"
    ),
    DEFAULT_IMAGES["mpi"]: (
        "Azure ML's base image: Open MPI 4.1.0, CUDA 11.8, cuDNN 8, Ubuntu 22.04; maintained"
    ),
    DEFAULT_IMAGES["custom"]: "Ubuntu 22.04, no CUDA; maintained",
}


# Namespace patterns: a name, a prefix ending in "*" ("team-*"), or "*" for every namespace.
NamespacePattern = str


def namespace_matches(patterns: list[NamespacePattern], namespace: str) -> bool:
    """Whether `namespace` is one of the patterns (exact name, "prefix*", or "*")."""
    for p in patterns:
        if p == namespace or p == "*" or (p.endswith("*") and namespace.startswith(p[:-1])):
            return True
    return False


class AgentPoolRef(BaseModel):
    """An AKS agent pool, as chart values name it (camelCase, as spec.aks)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    subscription_id: str
    resource_group: str
    cluster_name: str
    agent_pool_name: str

    def same_pool(self, subscription_id: str, resource_group: str, cluster_name: str, pool: str) -> bool:
        """ARM names are case-insensitive."""
        mine = (self.subscription_id, self.resource_group, self.cluster_name, self.agent_pool_name)
        theirs = (subscription_id, resource_group, cluster_name, pool)
        return all(a.casefold() == b.casefold() for a, b in zip(mine, theirs, strict=True))


class AllowPolicy(BaseModel):
    """What an admin lets a namespace's BatchAIClusters and TrainingJobs do beyond what the namespace's
    own users may do (the operator acts with its own, wider rights). Chart values `allow.*`.

    Empty lists (the default) grant nothing to anyone.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    setup_tasks: list[NamespacePattern] = Field(
        default_factory=list, description="nodeSetup.setupTask: a command run as root on every node."
    )
    placement: list[NamespacePattern] = Field(
        default_factory=list, description="BatchAICluster tolerations and nodeSelector."
    )
    privileged_mounts: list[NamespacePattern] = Field(
        default_factory=list, description="unmanagedFileSystems: privileged job and setup pods."
    )
    agent_pools: dict[NamespacePattern, list[AgentPoolRef]] = Field(
        default_factory=dict, description="AKS agent pools a namespace's BatchAIClusters may scale."
    )

    def pools_for(self, namespace: str) -> list[AgentPoolRef]:
        return [
            p
            for pattern, pools in self.agent_pools.items()
            if namespace_matches([pattern], namespace)
            for p in pools
        ]


MIGRATE_PRIVILEGED_MOUNTS = (
    "BATCHAI_ALLOW_PRIVILEGED_MOUNTS (chart value jobs.allowPrivilegedMounts) was a cluster-wide switch and "
    "is no longer read: list the namespaces that may use unmanagedFileSystems in allow.privilegedMounts "
    '(env BATCHAI_ALLOW), or ["*"] for every namespace as before'
)


class OperatorConfig(BaseModel):
    """Settings of one operator installation."""

    images: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_IMAGES))
    priority_classes: dict[str, str] = Field(
        default_factory=dict, description="schedulingPriority (low/normal/high) -> PriorityClass name."
    )
    allow: AllowPolicy = Field(default_factory=AllowPolicy, description="Per-namespace admin grants.")
    operator_service_account: tuple[str, str] | None = Field(
        default=None, description="(namespace, name) of the operator's own ServiceAccount: no job runs as it."
    )
    job_resources: dict[str, dict[str, str]] = Field(
        default_factory=lambda: {"requests": {"cpu": "500m", "memory": "1Gi"}},
        description="Main container resources (GPUs added); requests keep job pods out of BestEffort.",
    )
    max_shm_size: str = Field(
        default="64Gi",
        description="Largest containerSettings.shmSize (a memory-backed /dev/shm) a job may ask.",
    )
    watch_namespaces: list[str] = Field(
        default_factory=list, description="Namespaces watched (empty: all); the FailedMount watch follows."
    )
    shared_temp_storage_class: str | None = Field(
        default=None,
        description=(
            "StorageClass (ReadWriteMany) of the per-job volume behind AZ_BATCHAI_SHARED_JOB_TEMP on "
            "multi-node jobs (the chart sets azurefile-csi); unset: multi-node jobs have no shared temp."
        ),
    )
    shared_temp_size: str = Field(default="1Gi", description="Size of that volume.")
    unusable_grace_seconds: int = Field(default=300, description="NotReady longer than this: node unusable.")
    blob_endpoint: str | None = Field(
        default=None,
        description=(
            "Blob endpoint template with {account} (e.g. http://127.0.0.1:20100/{account} for Azurite), "
            "the `server` of blob volumes; unset: Azure's https://<account>.blob.core.windows.net."
        ),
    )
    mount_failure_threshold: int = Field(
        default=3,
        description="FailedMount attempts (Event count) after which a job fails with AZFMountError.",
    )
    gang: GangSetting = Field(
        default="auto",
        description=(
            "How multi-node jobs get all their nodes or none: auto (Kueue for jobs with a queue name, else "
            "the Workload API when served, else the operator's own admission), kueue, workload, admission, "
            "or off (docs/gang-scheduling.md)."
        ),
    )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OperatorConfig:
        env = dict(os.environ) if env is None else env
        cfg = cls()
        cfg.shared_temp_storage_class = env.get("BATCHAI_SHARED_TEMP_STORAGE_CLASS") or None
        if env.get("BATCHAI_SHARED_TEMP_SIZE"):
            cfg.shared_temp_size = env["BATCHAI_SHARED_TEMP_SIZE"]
        if env.get("BATCHAI_IMAGES"):
            cfg.images.update(json.loads(env["BATCHAI_IMAGES"]))
        if env.get("BATCHAI_PRIORITY_CLASSES"):
            cfg.priority_classes = json.loads(env["BATCHAI_PRIORITY_CLASSES"])
        if env.get("BATCHAI_ALLOW_PRIVILEGED_MOUNTS", "false").lower() == "true":
            raise ValueError(MIGRATE_PRIVILEGED_MOUNTS)
        if env.get("BATCHAI_ALLOW"):
            cfg.allow = AllowPolicy.model_validate(json.loads(env["BATCHAI_ALLOW"]))
        if env.get("BATCHAI_OPERATOR_SERVICE_ACCOUNT"):
            ns, _, name = env["BATCHAI_OPERATOR_SERVICE_ACCOUNT"].partition("/")
            cfg.operator_service_account = (ns, name)
        if env.get("BATCHAI_JOB_RESOURCES"):
            cfg.job_resources = json.loads(env["BATCHAI_JOB_RESOURCES"])
        if env.get("BATCHAI_MAX_SHM_SIZE"):
            cfg.max_shm_size = env["BATCHAI_MAX_SHM_SIZE"]
        if env.get("BATCHAI_WATCH_NAMESPACES"):
            cfg.watch_namespaces = list(json.loads(env["BATCHAI_WATCH_NAMESPACES"]))
        # The same variable kubectl-batchai reads to reach the blob endpoint (storage/access.py).
        cfg.blob_endpoint = env.get("BATCHAI_STORAGE_BLOB_ENDPOINT") or None
        if env.get("BATCHAI_MOUNT_FAILURE_THRESHOLD"):
            cfg.mount_failure_threshold = int(env["BATCHAI_MOUNT_FAILURE_THRESHOLD"])
        if env.get("BATCHAI_GANG"):
            cfg.gang = _gang_setting(env["BATCHAI_GANG"])
        if env.get("BATCHAI_UNUSABLE_GRACE_SECONDS"):
            cfg.unusable_grace_seconds = int(env["BATCHAI_UNUSABLE_GRACE_SECONDS"])
        return cfg


def _gang_setting(value: str) -> GangSetting:
    if value not in GANG_SETTINGS:
        raise ValueError(
            f"BATCHAI_GANG (chart value gang) is {value!r}, not one of {', '.join(GANG_SETTINGS)}"
        )
    return cast(GangSetting, value)  # checked against the Literal's values just above
