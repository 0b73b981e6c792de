"""Operator configuration: read once from environment variables (set by the Helm chart).

Kept as a plain pydantic model so the pure builders take it as an argument and tests build one directly.
"""

from __future__ import annotations

import json
import os

from pydantic import BaseModel, Field

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
