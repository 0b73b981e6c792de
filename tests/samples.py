"""Sample specs shared by unit and integration tests (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from typing import Any


def cntk_spec(secret: str = "storage", **extra: Any) -> dict[str, Any]:
    """The seed quickstart's job, converted: one node, CNTK Python, Azure Files + Blob mounts."""
    creds = {"secretRef": {"name": secret}}
    spec: dict[str, Any] = {
        "cluster": "nc6",
        "nodeCount": 1,
        "cntkSettings": {
            "pythonScriptFilePath": "$AZ_BATCHAI_JOB_MOUNT_ROOT/scripts/cntk/ConvNet_MNIST.py",
            "commandLineArgs": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data/mnist_cntk $AZ_BATCHAI_OUTPUT_MODEL",
        },
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "outputDirectories": [{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}],
        "mountVolumes": {
            "azureFileShares": [
                {
                    "accountName": "acct",
                    "azureFileUrl": "https://acct.file.core.windows.net/logs",
                    "credentials": creds,
                    "relativeMountPath": "logs",
                },
                {
                    "accountName": "acct",
                    "azureFileUrl": "https://acct.file.core.windows.net/scripts",
                    "credentials": creds,
                    "relativeMountPath": "scripts",
                },
            ],
            "azureBlobFileSystems": [
                {
                    "accountName": "acct",
                    "containerName": "data",
                    "credentials": creds,
                    "relativeMountPath": "data",
                }
            ],
        },
    }
    spec.update(extra)
    return spec
