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
from ..names import ANNOTATION_LOCATION, ANNOTATION_RESOURCE_GROUP, MAIN_CONTAINER
from ..names import LABEL_COMPLETION_INDEX as INDEX_LABEL
from .naming import batchai_name
from .output import Column

JOB_COLUMNS: list[Column] = [
    ("Name", lambda r: r["name"]),
    ("Kubernetes Name", lambda r: r["kubernetesName"]),
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
        "name": batchai_name(obj),
        "kubernetesName": meta.get("name"),
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


def experiment_rows(
    jobs: list[dict[str, Any]], created: list[tuple[str, str]] | None = None
) -> list[dict[str, Any]]:
    """`experiment list`: the experiments `experiment create` made and those jobs belong to, per
    workspace ((workspace, experiment) pairs in `created`), with job counts by state."""
    groups: dict[tuple[str, str], Counter[str]] = {key: Counter() for key in created or []}
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


# ---- cluster nodes, workspaces, experiments, usages ---------------------------------------------------

CLUSTER_NODE_COLUMNS: list[Column] = [
    ("Node Id", lambda r: r["nodeId"]),
    ("IP", lambda r: r.get("ipAddress")),
    ("State", lambda r: r.get("state")),
    ("Job Pods", lambda r: r.get("jobPods")),
]


def _ready(node: dict[str, Any]) -> bool:
    conditions = (node.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _internal_ip(node: dict[str, Any]) -> str | None:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return str(address.get("address"))
    return None


def cluster_node_rows(nodes: list[dict[str, Any]], job_pods: dict[str, int]) -> list[dict[str, Any]]:
    """`cluster node list`: az's {nodeId, ipAddress, port} per node, with its state (leaving, unusable
    when NotReady, running when job pods are on it, else idle) and how many job pods it runs. `port` is
    None: nodes are reached through the API server (`cluster node exec`), not over SSH."""
    rows = []
    for node in nodes:
        meta = node.get("metadata") or {}
        name = str(meta.get("name"))
        if meta.get("deletionTimestamp") or (node.get("spec") or {}).get("unschedulable"):
            state = "leaving"
        elif not _ready(node):
            state = "unusable"
        elif job_pods.get(name):
            state = "running"
        else:
            state = "idle"
        rows.append(
            {
                "nodeId": name,
                "ipAddress": _internal_ip(node),
                "port": None,
                "state": state,
                "jobPods": job_pods.get(name, 0),
            }
        )
    return sorted(rows, key=lambda r: str(r["nodeId"]))


def workspace_view(ns: dict[str, Any], managed: bool) -> dict[str, Any]:
    """A namespace as `az batchai workspace show` printed a workspace."""
    meta = ns.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    phase = (ns.get("status") or {}).get("phase")
    return {
        "name": batchai_name(ns),
        "kubernetesName": meta.get("name"),
        "resourceGroup": annotations.get(ANNOTATION_RESOURCE_GROUP),
        "location": annotations.get(ANNOTATION_LOCATION),
        "creationTime": meta.get("creationTimestamp"),
        "provisioningState": "deleting" if phase == "Terminating" else "succeeded",
        "createdByKubectlBatchai": managed,
        "type": "Microsoft.BatchAI/workspaces",
    }


def experiment_view(
    name: str, workspace: str, config_map: dict[str, Any] | None, jobs: list[dict[str, Any]]
) -> dict[str, Any]:
    """`experiment show`: the experiment, its creation time (from its ConfigMap, else its first job)
    and its jobs by state."""
    states = Counter(str(job_view(j)["state"]) for j in jobs)
    created = ((config_map or {}).get("metadata") or {}).get("creationTimestamp")
    if created is None and jobs:
        created = min(str((j.get("metadata") or {}).get("creationTimestamp") or "") for j in jobs) or None
    return {
        "name": name,
        "workspace": workspace,
        "creationTime": created,
        "provisioningState": "succeeded",
        "jobs": len(jobs),
        "running": states["running"] + states["terminating"],
        "succeeded": states["succeeded"],
        "failed": states["failed"],
        "type": "Microsoft.BatchAI/workspaces/experiments",
    }


USAGE_COLUMNS: list[Column] = [
    ("Name", lambda r: r["name"]["localizedValue"]),
    ("Usage", lambda r: r["currentValue"]),
    ("Limit", lambda r: r["limit"]),
]


def vm_family(vm_size: str) -> str:
    """Batch AI's quota family of a VM size: Standard_NC6s_v3 -> standardNCSv3Family."""
    parts = vm_size.split("_")
    series = "".join(c for c in (parts[1] if len(parts) > 1 else parts[0]) if c.isalpha())
    suffix = "".join(p.capitalize() for p in parts[2:])
    return f"standard{series.upper()}{suffix}Family"


def usage_rows(
    clusters: list[dict[str, Any]],
    gpus_by_cluster: dict[tuple[str, str], tuple[int, int]],
    quota: int | None,
) -> list[dict[str, Any]]:
    """`list-usages`: GPUs per VM family, in use (job pods' requests) and allowed (the GPUs of the
    clusters' nodes, capped by a ResourceQuota on requests.nvidia.com/gpu), as az's Usage objects."""
    totals: dict[str, list[int]] = {}
    for c in clusters:
        meta = c.get("metadata") or {}
        family = vm_family(str((c.get("spec") or {}).get("vmSize") or "unknown"))
        used, capacity = gpus_by_cluster.get((str(meta.get("namespace")), str(meta.get("name"))), (0, 0))
        entry = totals.setdefault(family, [0, 0])
        entry[0] += used
        entry[1] += capacity
    rows = []
    for family, (used, capacity) in sorted(totals.items()):
        limit = capacity if quota is None else min(capacity, quota)
        label = f"{family.removeprefix('standard').removesuffix('Family')} Family GPUs"
        rows.append(
            {
                "currentValue": used,
                "limit": limit,
                "name": {"localizedValue": f"Standard {label}", "value": family},
                "unit": "Count",
            }
        )
    return rows
