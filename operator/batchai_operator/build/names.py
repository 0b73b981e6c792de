"""Names and labels of the children of a TrainingJob."""

from __future__ import annotations

import hashlib
import re

from ..config import LABEL_EXPERIMENT, LABEL_JOB, LABEL_JOB_UID, LABEL_MANAGED_BY, LABEL_ROLE, MANAGED_BY

# Pod hostnames of an Indexed Job are '<job>-<index>' and must fit a 63-character DNS label, and the
# headless Service name must be a DNS-1035 label (starting with a letter).
_MAX_CHILD = 50


def child_name(job_name: str) -> str:
    """Name of the Job, Service, ConfigMap and SSH Secret of a TrainingJob."""
    base = re.sub(r"[^a-z0-9-]", "-", job_name.lower()).strip("-") or "job"
    if not base[0].isalpha():
        base = "j" + base
    if base == job_name and len(base) <= _MAX_CHILD:
        return base
    digest = hashlib.sha256(job_name.encode()).hexdigest()[:8]
    return f"{base[: _MAX_CHILD - 9].rstrip('-')}-{digest}"


def label_value(text: str) -> str:
    """A label value (63 chars max), shortened with a hash when needed."""
    if len(text) <= 63:
        return text
    return text[:54].rstrip("-_.") + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]


def child_labels(job_name: str, uid: str, experiment: str) -> dict[str, str]:
    """Labels every child carries; the operator watches its children by these."""
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_JOB: label_value(job_name),
        LABEL_JOB_UID: uid,
        LABEL_EXPERIMENT: label_value(experiment),
    }


# Setup-task pods: which cluster they belong to, and (set by the operator once the setup task exited 0)
# that the node is ready for jobs. Job pods of a cluster with a setup task require such a pod on their node.
LABEL_CLUSTER_UID = "batchai.io/cluster-uid"
LABEL_SETUP_STATE = "batchai.io/setup-task-state"
SETUP_ROLE = "setup-task"
SETUP_SUCCEEDED = "succeeded"


def setup_done_affinity(cluster_uid: str) -> dict[str, object]:
    """Pod affinity term: schedule only onto nodes whose setup-task pod has finished successfully."""
    return {
        "labelSelector": {
            "matchLabels": {
                LABEL_CLUSTER_UID: cluster_uid,
                LABEL_ROLE: SETUP_ROLE,
                LABEL_SETUP_STATE: SETUP_SUCCEEDED,
            }
        },
        "topologyKey": "kubernetes.io/hostname",
    }


def owner_reference(job: dict[str, object]) -> dict[str, object]:
    """Controller owner reference to the TrainingJob, so deleting it garbage-collects every child."""
    meta = job["metadata"]
    assert isinstance(meta, dict)
    return {
        "apiVersion": job.get("apiVersion", "batchai.io/v1alpha1"),
        "kind": "TrainingJob",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }
