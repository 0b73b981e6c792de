"""Names, labels, annotations and owner references of the objects the operator creates."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from ..names import (
    API_VERSION,
    LABEL_CLUSTER,
    LABEL_CLUSTER_UID,
    LABEL_EXPERIMENT,
    LABEL_MANAGED_BY,
    LABEL_ROLE,
    LABEL_TRAININGJOB,
    LABEL_TRAININGJOB_UID,
    MANAGED_BY,
    NOT_FOR_PODS,
    RESERVED_LABEL_PREFIXES,
    RESERVED_LABELS,
    SETUP_ROLE,
)

# Pod hostnames of an Indexed Job are '<job>-<index>' and must fit a 63-character DNS label, and the
# headless Service name must be a DNS-1035 label (starting with a letter).
_MAX_CHILD = 50
_MAX_NAME = 63


def child_name(job_name: str) -> str:
    """Name of the Job, Service, ConfigMap and SSH Secret of a TrainingJob."""
    base = re.sub(r"[^a-z0-9-]", "-", job_name.lower()).strip("-") or "job"
    if not base[0].isalpha():
        base = "j" + base
    if base == job_name and len(base) <= _MAX_CHILD:
        return base
    digest = hashlib.sha256(job_name.encode()).hexdigest()[:8]
    return f"{base[: _MAX_CHILD - 9].rstrip('-')}-{digest}"


def setup_task_name(cluster_name: str) -> str:
    """Name of the setup-task DaemonSet of a cluster (a DNS label, hashed when too long)."""
    base = f"{cluster_name}-setup"
    if len(base) <= _MAX_NAME:
        return base
    digest = hashlib.sha256(cluster_name.encode()).hexdigest()[:8]
    return f"{cluster_name[: _MAX_NAME - 15].rstrip('-.')}-{digest}-setup"


def label_value(text: str) -> str:
    """A label value (63 chars max), shortened with a hash when needed."""
    if len(text) <= 63:
        return text
    return text[:54].rstrip("-_.") + "-" + hashlib.sha256(text.encode()).hexdigest()[:8]


def child_labels(job_name: str, uid: str, experiment: str) -> dict[str, str]:
    """Labels every child of a TrainingJob carries; the operator watches its children by these."""
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_TRAININGJOB: label_value(job_name),
        LABEL_TRAININGJOB_UID: uid,
        LABEL_EXPERIMENT: label_value(experiment),
    }


def setup_labels(cluster_name: str, uid: str) -> dict[str, str]:
    """Labels of a setup DaemonSet and its pods; the operator finds a cluster's setup pods by them."""
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_CLUSTER: label_value(cluster_name),
        LABEL_CLUSTER_UID: uid,
        LABEL_ROLE: SETUP_ROLE,
    }


def owner_reference(obj: Mapping[str, Any], kind: str) -> dict[str, Any]:
    """Controller owner reference to one of our custom objects: deleting it garbage-collects the child."""
    meta = obj["metadata"]
    return {
        "apiVersion": obj.get("apiVersion") or API_VERSION,
        "kind": kind,
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def pod_annotations(annotations: Mapping[str, str] | None) -> dict[str, str]:
    """The owner's annotations that its pods get: everything but tool and operator bookkeeping."""
    return {k: v for k, v in (annotations or {}).items() if not k.startswith(NOT_FOR_PODS)}


def reserved_label(key: str) -> bool:
    """A label the operator keeps for its own bookkeeping (watch selectors, setup state, ownership)."""
    return key in RESERVED_LABELS or key.startswith(RESERVED_LABEL_PREFIXES)


def user_labels(labels: Mapping[str, str] | None) -> dict[str, str]:
    """A TrainingJob's labels that its children carry: all but the operator's own, so that a label set on
    a TrainingJob can never make a pod look like a setup-task pod or another object's child."""
    return {k: v for k, v in (labels or {}).items() if not reserved_label(k)}
