"""batchai-operator: Azure Batch AI jobs and clusters as Kubernetes custom resources."""

from .names import API_VERSION, GROUP, VERSION

__all__ = ["API_VERSION", "GROUP", "VERSION"]
