"""Operator configuration: read once from environment variables (set by the Helm chart).

Kept as a plain pydantic model so the pure builders take it as an argument and tests build one directly.
"""

from __future__ import annotations

import json
import os

from pydantic import BaseModel, Field

# Label and annotation prefix of everything the operator writes.
DOMAIN = "batchai.io"
FINALIZER = f"{DOMAIN}/finalizer"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "batchai-operator"
LABEL_JOB = f"{DOMAIN}/trainingjob"
LABEL_JOB_UID = f"{DOMAIN}/trainingjob-uid"
LABEL_EXPERIMENT = f"{DOMAIN}/experiment"
LABEL_CLUSTER = f"{DOMAIN}/cluster"
LABEL_ROLE = f"{DOMAIN}/role"

DEFAULT_IMAGES: dict[str, str] = {
    "cntk": "microsoft/cntk:2.5.1-gpu-python3.5-cuda9.0-cudnn7.0",
    "tensorflow": "tensorflow/tensorflow:1.15.5-gpu-py3",
    "pytorch": "pytorch/pytorch:1.13.1-cuda11.6-cudnn8-runtime",
    "caffe": "bvlc/caffe:gpu",
    "caffe2": "caffe2ai/caffe2:latest",
    "chainer": "chainer/chainer:v7.8.1-python3",
    "horovod": "horovod/horovod:0.28.1",
    "mpi": "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest",
    "custom": "ubuntu:22.04",
}

# GPUs per VM for the Azure sizes Batch AI users ran, and their successors. Keys are lowercase;
# values are (canonical label value of node.kubernetes.io/instance-type, GPU count).
VM_SIZES: dict[str, tuple[str, int]] = {
    name.lower(): (name, gpus)
    for name, gpus in [
        ("Standard_NC6", 1), ("Standard_NC12", 2), ("Standard_NC24", 4), ("Standard_NC24r", 4),
        ("Standard_NC6s_v2", 1), ("Standard_NC12s_v2", 2), ("Standard_NC24s_v2", 4),
        ("Standard_NC24rs_v2", 4), ("Standard_NC6s_v3", 1), ("Standard_NC12s_v3", 2),
        ("Standard_NC24s_v3", 4), ("Standard_NC24rs_v3", 4),
        ("Standard_ND6s", 1), ("Standard_ND12s", 2), ("Standard_ND24s", 4), ("Standard_ND24rs", 4),
        ("Standard_NV6", 1), ("Standard_NV12", 2), ("Standard_NV24", 4),
        ("Standard_NC4as_T4_v3", 1), ("Standard_NC8as_T4_v3", 1), ("Standard_NC16as_T4_v3", 1),
        ("Standard_NC64as_T4_v3", 4), ("Standard_NC24ads_A100_v4", 1), ("Standard_NC48ads_A100_v4", 2),
        ("Standard_NC96ads_A100_v4", 4), ("Standard_ND96asr_v4", 8), ("Standard_ND96amsr_A100_v4", 8),
        ("Standard_ND96isr_H100_v5", 8),
        ("Standard_D2s_v3", 0), ("Standard_D4s_v3", 0), ("Standard_D8s_v3", 0), ("Standard_D16s_v3", 0),
    ]
}  # fmt: skip


def vm_size_info(vm_size: str) -> tuple[str, int | None]:
    """(instance-type label value, GPUs per node or None when the size is unknown)."""
    known = VM_SIZES.get(vm_size.lower())
    if known:
        return known
    return vm_size, None


class OperatorConfig(BaseModel):
    """Settings of one operator installation."""

    images: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_IMAGES))
    priority_classes: dict[str, str] = Field(
        default_factory=dict, description="schedulingPriority (low/normal/high) -> PriorityClass name."
    )
    allow_privileged_mounts: bool = Field(
        default=False, description="Allow unmanagedFileSystems, which need privileged job pods."
    )
    unusable_grace_seconds: int = Field(default=300, description="NotReady longer than this: node unusable.")
    mount_failure_threshold: int = Field(
        default=3,
        description="FailedMount attempts (Event count) after which a job fails with AZFMountError.",
    )

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OperatorConfig:
        env = dict(os.environ) if env is None else env
        cfg = cls()
        if env.get("BATCHAI_IMAGES"):
            cfg.images.update(json.loads(env["BATCHAI_IMAGES"]))
        if env.get("BATCHAI_PRIORITY_CLASSES"):
            cfg.priority_classes = json.loads(env["BATCHAI_PRIORITY_CLASSES"])
        cfg.allow_privileged_mounts = env.get("BATCHAI_ALLOW_PRIVILEGED_MOUNTS", "false").lower() == "true"
        if env.get("BATCHAI_MOUNT_FAILURE_THRESHOLD"):
            cfg.mount_failure_threshold = int(env["BATCHAI_MOUNT_FAILURE_THRESHOLD"])
        if env.get("BATCHAI_UNUSABLE_GRACE_SECONDS"):
            cfg.unusable_grace_seconds = int(env["BATCHAI_UNUSABLE_GRACE_SECONDS"])
        return cfg
