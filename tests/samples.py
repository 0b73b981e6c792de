"""Sample specs shared by unit and integration tests (tests/ is on pytest's pythonpath)."""

from __future__ import annotations

from typing import Any

from batchai_operator.api.trainingjob import TrainingJobSpec


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


def job_spec(nodes: int = 1, cluster: str = "nc6", **fields: Any) -> dict[str, Any]:
    """A small spec: the toolkit settings and other fields given, on `nodes` nodes, stdout/stderr under
    /tmp/logs unless given. Example: job_spec(nodes=2, horovodSettings={"pythonScriptFilePath": "t.py"})."""
    return {"cluster": cluster, "nodeCount": nodes, "stdOutErrPathPrefix": "/tmp/logs", **fields}


def launcher_spec(node_count: int = 1, **toolkit: Any) -> TrainingJobSpec:
    """A parsed spec with the given toolkit settings, stdout/stderr under the job's mount root (the
    launcher tests' jobs)."""
    return TrainingJobSpec.model_validate(
        job_spec(nodes=node_count, stdOutErrPathPrefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/logs", **toolkit)
    )
