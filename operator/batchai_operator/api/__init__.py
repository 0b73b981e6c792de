"""The API: pydantic models for TrainingJob and BatchAICluster (the single source of truth)."""

from .cluster import BatchAIClusterSpec, BatchAIClusterStatus
from .trainingjob import TrainingJob, TrainingJobSpec, TrainingJobStatus

__all__ = [
    "BatchAIClusterSpec",
    "BatchAIClusterStatus",
    "TrainingJob",
    "TrainingJobSpec",
    "TrainingJobStatus",
]
