"""Batch AI names and Kubernetes names (pure).

Batch AI allowed names Kubernetes does not (`cntk_python_1`: `^[-\\w]+$`, up to 64 characters). Such a
name becomes the nearest Kubernetes name (`cntk-python-1`) and is kept in the annotation
`batchai.io/name`; every verb takes either, and lists print the Batch AI name. `--ids` takes the ARM ids
of Batch AI resources: their workspace, experiment and name are what counts here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..names import ANNOTATION_BATCHAI_NAME
from .convert.document import dns_label, dns_subdomain

_NAMESPACE_MAX = 63
_ARM_ID = re.compile(
    r"^/subscriptions/[^/]+/resourceGroups/(?P<rg>[^/]+)/providers/Microsoft\.BatchAI/"
    r"workspaces/(?P<ws>[^/]+)(?:/(?P<kind>clusters|experiments|fileServers)/(?P<name>[^/]+)"
    r"(?:/jobs/(?P<job>[^/]+))?)?/?$",
    re.IGNORECASE,
)


def namespace_name(workspace: str) -> str:
    """The namespace of a workspace: the nearest DNS-1123 label."""
    out = re.sub(r"[^a-z0-9-]+", "-", workspace.lower())
    out = re.sub(r"-{2,}", "-", out).strip("-")[:_NAMESPACE_MAX].rstrip("-")
    return out or "default"


def kubernetes_name(kind: str, name: str) -> str:
    """The Kubernetes name `kubectl batchai` derives from a Batch AI name, per kind."""
    if kind == "BatchAICluster":
        return dns_subdomain(name)
    if kind == "Namespace":
        return namespace_name(name)
    return dns_label(name)


def batchai_name(obj: dict[str, Any]) -> str:
    """The name Batch AI users know the object by: the annotation, else the Kubernetes name."""
    meta = obj.get("metadata") or {}
    return str((meta.get("annotations") or {}).get(ANNOTATION_BATCHAI_NAME) or meta.get("name") or "")


def is_named(obj: dict[str, Any], name: str) -> bool:
    """Whether `name` (Batch AI or Kubernetes) names this object."""
    meta = obj.get("metadata") or {}
    return name in (meta.get("name"), (meta.get("annotations") or {}).get(ANNOTATION_BATCHAI_NAME))


@dataclass(frozen=True)
class ResourceId:
    """What an az batchai ARM id names."""

    resource_group: str
    workspace: str
    kind: str | None  # clusters | experiments | fileServers | jobs; None: the workspace
    name: str | None
    experiment: str | None = None


def parse_id(text: str) -> ResourceId:
    """A Batch AI ARM id (`.../workspaces/W/clusters/C`, `.../experiments/E/jobs/J`, `.../workspaces/W`)."""
    m = _ARM_ID.match(text.strip())
    if m is None:
        raise ValueError(
            f"--ids {text!r} is not a Batch AI resource id (/subscriptions/S/resourceGroups/G/providers/"
            "Microsoft.BatchAI/workspaces/W[/clusters/C | /experiments/E[/jobs/J]])"
        )
    kind = m["kind"].lower() if m["kind"] else None
    if kind == "fileservers":
        kind = "fileServers"
    if m["job"]:
        return ResourceId(m["rg"], m["ws"], "jobs", m["job"], experiment=m["name"])
    return ResourceId(m["rg"], m["ws"], kind, m["name"])
