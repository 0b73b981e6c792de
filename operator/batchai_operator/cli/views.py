"""What `kubectl batchai` shows for each object, in the shape `az batchai` showed it (pure).

A job or cluster is shown flat, as Batch AI's GET returned it: its name, workspace (the namespace) and
experiment, then the spec's fields, then the read-only ones from status. Each output directory also
carries its resolved `path` and, when it lies on a mounted share or container, its `storage` location.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from pydantic.alias_generators import to_camel

from ..api.toolkits import TOOLKIT_FIELDS
from ..config import IMAGE_CONTENTS
from ..names import LABEL_COMPLETION_INDEX as INDEX_LABEL
from ..names import MAIN_CONTAINER
from .output import Column

JOB_COLUMNS: list[Column] = [
    ("Name", lambda r: r["name"]),
    ("Cluster", lambda r: r.get("cluster")),
    ("Workspace", lambda r: r["workspace"]),
    ("Experiment", lambda r: r.get("experiment")),
    ("Tool", lambda r: r.get("toolType")),
    ("Nodes", lambda r: r.get("nodeCount")),
    ("State", lambda r: r.get("state")),
    ("Exit code", lambda r: (r.get("executionInfo") or {}).get("exitCode")),
]

CLUSTER_COLUMNS: list[Column] = [
    ("Name", lambda r: r["name"]),
    ("Workspace", lambda r: r["workspace"]),
    ("VM Size", lambda r: r.get("vmSize")),
    ("State", lambda r: r.get("state")),
    ("Idle", lambda r: _count(r, "idleNodeCount")),
    ("Running", lambda r: _count(r, "runningNodeCount")),
    ("Preparing", lambda r: _count(r, "preparingNodeCount")),
    ("Leaving", lambda r: _count(r, "leavingNodeCount")),
    ("Unusable", lambda r: _count(r, "unusableNodeCount")),
]

FILE_COLUMNS: list[Column] = [
    ("Name", lambda r: r["name"]),
    ("Type", lambda r: r["fileType"]),
    ("Size", lambda r: r.get("contentLength")),
    ("Modified", lambda r: r.get("lastModified")),
]

NODE_COLUMNS: list[Column] = [
    ("Node", lambda r: r["nodeIndex"]),
    ("Pod", lambda r: r["podName"]),
    ("Host", lambda r: r.get("nodeName")),
    ("IP", lambda r: r.get("ipAddress")),
    ("State", lambda r: r.get("state")),
    ("Exit code", lambda r: r.get("exitCode")),
]

EXPERIMENT_COLUMNS: list[Column] = [
    ("Name", lambda r: r["name"]),
    ("Workspace", lambda r: r["workspace"]),
    ("Jobs", lambda r: r["jobs"]),
    ("Running", lambda r: r["running"]),
    ("Succeeded", lambda r: r["succeeded"]),
    ("Failed", lambda r: r["failed"]),
]

WORKSPACE_COLUMNS: list[Column] = [
    ("Name", lambda r: r["name"]),
    ("Clusters", lambda r: r["clusters"]),
    ("Experiments", lambda r: r["experiments"]),
    ("Jobs", lambda r: r["jobs"]),
]


def _count(row: dict[str, Any], key: str) -> int:
    return int((row.get("nodeStateCounts") or {}).get(key) or 0)


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    return {
        "name": meta.get("name"),
        "workspace": meta.get("namespace"),
        "creationTime": meta.get("creationTimestamp"),
        # Batch AI's provisioningState: the object exists (succeeded) or is going away (deleting).
        "provisioningState": "deleting" if meta.get("deletionTimestamp") else "succeeded",
    }


def job_view(obj: dict[str, Any]) -> dict[str, Any]:
    """A TrainingJob as `az batchai job show` printed a job."""
    spec = dict(obj.get("spec") or {})
    status = dict(obj.get("status") or {})
    out = _meta(obj)
    out["experiment"] = spec.pop("experiment", "default")
    out["cluster"] = spec.pop("cluster", None)
    resolved = {d.get("id"): d for d in status.pop("outputDirectories", None) or []}
    if spec.get("outputDirectories"):
        spec["outputDirectories"] = [
            {**d, **{k: v for k, v in resolved.get(d.get("id"), {}).items() if k != "id"}}
            for d in spec["outputDirectories"]
        ]
    out.update(spec)
    tools = [tool for f, tool in TOOLKIT_FIELDS.items() if to_camel(f) in spec]
    out.setdefault("toolType", tools[0] if tools else None)
    out.update(status)
    state = status.get("executionState") or "queued"
    out["state"] = "deleting" if out["provisioningState"] == "deleting" else state
    return out


def image_view(job: dict[str, Any], batch_jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """The image the job runs (its Job's main container, else containerSettings') and, for a default
    image, what it holds; before the Job exists a job without containerSettings names the chart value."""
    image = None
    for batch_job in batch_jobs:
        pod_spec = ((batch_job.get("spec") or {}).get("template") or {}).get("spec") or {}
        image = next(
            (c.get("image") for c in pod_spec.get("containers") or [] if c.get("name") == MAIN_CONTAINER),
            None,
        )
    if image is None:
        registry = ((job.get("spec") or {}).get("containerSettings") or {}).get("imageSourceRegistry") or {}
        image = registry.get("image")
    if image is None:
        tool = job_view(job).get("toolType")
        return {
            "image": None,
            "imageContents": f"the default image for {tool} (chart value jobs.images.{tool}); "
            "named here once the job's pods are created",
        }
    out: dict[str, Any] = {"image": image}
    if image in IMAGE_CONTENTS:
        out["imageContents"] = IMAGE_CONTENTS[image]
    return out


def cluster_view(obj: dict[str, Any]) -> dict[str, Any]:
    """A BatchAICluster as `az batchai cluster show` printed a cluster."""
    out = _meta(obj)
    out.update(obj.get("spec") or {})
    out.update(obj.get("status") or {})
    allocation = out.get("allocationState") or "steady"
    out["state"] = "deleting" if out["provisioningState"] == "deleting" else allocation
    return out


def node_rows(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`job node list`: one row per pod (Batch AI node) of the job, by node index."""
    rows = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        annotations = meta.get("annotations") or {}
        index = labels.get(INDEX_LABEL) or annotations.get(INDEX_LABEL)
        status = pod.get("status") or {}
        exit_code = None
        for cs in status.get("containerStatuses") or []:
            term = (cs.get("state") or {}).get("terminated")
            if term is not None and cs.get("name") == MAIN_CONTAINER:
                exit_code = term.get("exitCode")
        rows.append(
            {
                "nodeIndex": int(index) if index is not None else None,
                "podName": meta.get("name"),
                "nodeName": (pod.get("spec") or {}).get("nodeName"),
                "ipAddress": status.get("podIP"),
                "state": status.get("phase"),
                "exitCode": exit_code,
            }
        )
    return sorted(rows, key=lambda r: (r["nodeIndex"] is None, r["nodeIndex"] or 0, r["podName"] or ""))


def experiment_rows(jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`experiment list`: the experiments jobs belong to, per workspace, with job counts by state."""
    groups: dict[tuple[str, str], Counter[str]] = {}
    for job in jobs:
        view = job_view(job)
        key = (str(view["workspace"]), str(view["experiment"]))
        groups.setdefault(key, Counter())[str(view["state"])] += 1
    return [
        {
            "name": exp,
            "workspace": ws,
            "jobs": sum(c.values()),
            "running": c["running"] + c["terminating"],
            "succeeded": c["succeeded"],
            "failed": c["failed"],
        }
        for (ws, exp), c in sorted(groups.items())
    ]


def workspace_rows(jobs: list[dict[str, Any]], clusters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`workspace list`: namespaces that hold TrainingJobs or BatchAIClusters."""
    names: dict[str, dict[str, Any]] = {}

    def row(ns: str) -> dict[str, Any]:
        return names.setdefault(ns, {"name": ns, "clusters": 0, "experiments": 0, "jobs": 0, "_exp": set()})

    for c in clusters:
        row(str((c.get("metadata") or {}).get("namespace")))["clusters"] += 1
    for j in jobs:
        r = row(str((j.get("metadata") or {}).get("namespace")))
        r["jobs"] += 1
        r["_exp"].add((j.get("spec") or {}).get("experiment", "default"))
    out = []
    for ns in sorted(names):
        r = names[ns]
        r["experiments"] = len(r.pop("_exp"))
        out.append(r)
    return out


def file_rows(entries: list[Any]) -> list[dict[str, Any]]:
    """`job file list`: az's flattened File (name, fileType, contentLength, lastModified, downloadUrl)."""
    rows = []
    for e in entries:
        row: dict[str, Any] = {"name": e.name, "fileType": "directory" if e.is_directory else "file"}
        if not e.is_directory:
            row["contentLength"] = e.size
            if e.last_modified is not None:
                row["lastModified"] = e.last_modified.isoformat()
            if e.download_url is not None:
                row["downloadUrl"] = e.download_url
        rows.append(row)
    return rows
