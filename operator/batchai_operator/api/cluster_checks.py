"""Checks of a TrainingJob that need its cluster's facts, made when the job starts (pure).

Batch AI refused these at job creation, when it knew the cluster. A TrainingJob may be created before
its BatchAICluster, so the CRD checks only what needs no cluster (e.g. workerCount <= nodeCount x 64)
and the operator calls `check_against_cluster` once the cluster, and so its GPUs per node, are known.
"""

from __future__ import annotations

from .trainingjob import TrainingJobSpec

# Error code for a job whose spec does not fit its cluster (the job fails without starting).
CODE_INVALID_WORKER_COUNT = "InvalidWorkerCount"


def check_against_cluster(spec: TrainingJobSpec, gpus_per_node: int) -> tuple[str, str] | None:
    """(code, message) for the first rule of Batch AI's REST spec the job breaks on a cluster with
    `gpus_per_node` GPUs per node, or None when it fits.

    - tensorFlowSettings.workerCount <= nodeCount x GPUs per VM. A CPU-only VM counts as one GPU, so
      CPU clusters can run nodeCount workers (the default), as they could on Batch AI.
    """
    tf = spec.tensor_flow_settings
    if tf is not None and tf.worker_count is not None:
        per_node = max(gpus_per_node, 1)
        cap = spec.node_count * per_node
        if tf.worker_count > cap:
            return (
                CODE_INVALID_WORKER_COUNT,
                f"tensorFlowSettings.workerCount {tf.worker_count} exceeds nodeCount x GPUs per VM "
                f"({spec.node_count} x {per_node} = {cap})",
            )
    return None
