"""The shared job temp of a multi-node job: a per-job ReadWriteMany volume behind AZ_BATCHAI_SHARED_JOB_TEMP.

Batch AI gave every job a temp folder on the cluster's shared file system; recipes rely on it (Caffe2's
--file_store_path, PyTorch's file:// rendezvous). Here it is a PersistentVolumeClaim of a configurable
StorageClass (azurefile-csi on AKS: SMB, with the atomic renames and byte-range locks those need), owned by
the TrainingJob so it goes with it. Single-node jobs keep a pod-local folder: one node shares with itself.
"""

from __future__ import annotations

from typing import Any

from .context import TrainingJobContext


def shared_temp_claim_name(ctx: TrainingJobContext) -> str | None:
    """The claim's name, or None when the job has no shared temp volume (one node, or none configured)."""
    if not ctx.multi_node or not ctx.config.shared_temp_storage_class:
        return None
    return f"{ctx.child}-shared-temp"


def build_shared_temp_claim(ctx: TrainingJobContext) -> dict[str, Any] | None:
    name = shared_temp_claim_name(ctx)
    if name is None:
        return None
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": ctx.metadata(name),
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": ctx.config.shared_temp_storage_class,
            "resources": {"requests": {"storage": ctx.config.shared_temp_size}},
        },
    }
