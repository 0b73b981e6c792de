"""batchai-operator: Azure Batch AI jobs and clusters as Kubernetes custom resources."""

GROUP = "batchai.io"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
