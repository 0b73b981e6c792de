"""Slim views of API objects: what the decisions read, and all the operator keeps in its in-memory indexes.

Each view keeps the shape of the API object it comes from (a subset of its fields), so a decision reads a
view and a full object alike. Dropped on purpose: managedFields, last-applied annotations, pod specs,
everything no decision reads (the indexes hold one view per object of the cluster).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import ValidationError

from ..api.cluster import BatchAIClusterSpec
from ..api.trainingjob import TrainingJobSpec, cluster_name
from ..manifests.naming import pod_annotations
from ..manifests.placement import node_selector
from ..names import (
    ANNOTATION_SPEC_HASH,
    LABEL_COMPLETION_INDEX,
    LABEL_SETUP_REVISION,
    LABEL_SETUP_STATE,
    SETUP_CONTAINER,
    SETUP_SUCCEEDED,
)


def controller_ref(meta: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The object's controller: its ownerReference with controller: true, if any."""
    return next((ref for ref in meta.get("ownerReferences") or [] if ref.get("controller")), None)


def controller_uid(meta: Mapping[str, Any]) -> str | None:
    """The uid of the object's controller, if any."""
    ref = controller_ref(meta)
    return str(ref.get("uid")) if ref is not None else None


def _owned_metadata(meta: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The metadata of a child: who it is and which object controls it."""
    out = {"name": meta.get("name"), "namespace": meta.get("namespace"), "uid": meta.get("uid")}
    return {**out, "controllerUid": controller_uid(meta), **extra}


def validation_message(e: ValidationError) -> str:
    """A pydantic error in one line, naming the fields (never echoing input values)."""
    return "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'spec'}: {err['msg']}" for err in e.errors())


def pod_index(pod: Mapping[str, Any]) -> int:
    """The node index of a pod of an Indexed Job (its completion index)."""
    meta = pod.get("metadata") or {}
    raw = (meta.get("labels") or {}).get(LABEL_COMPLETION_INDEX) or (meta.get("annotations") or {}).get(
        LABEL_COMPLETION_INDEX
    )
    return int(raw or "0")


# ---- TrainingJobs and their children --------------------------------------------------------------------


def trainingjob_view(body: Mapping[str, Any]) -> dict[str, Any]:
    """A TrainingJob, with its spec parsed once here rather than on every sync."""
    meta = body.get("metadata") or {}
    raw_spec = body.get("spec") or {}
    spec: TrainingJobSpec | None = None
    spec_error: str | None = None
    try:
        spec = TrainingJobSpec.model_validate(raw_spec)
    except ValidationError as e:
        spec_error = validation_message(e)
    except (ValueError, OverflowError) as e:  # a value the validators let through but cannot use
        spec_error = str(e).splitlines()[0]
    return {
        "apiVersion": body.get("apiVersion"),
        "metadata": {
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "generation": meta.get("generation"),
            "creationTimestamp": meta.get("creationTimestamp"),
            "labels": dict(meta.get("labels") or {}),
            "annotations": pod_annotations(meta.get("annotations")),  # last-applied ones can be large
            "deletionTimestamp": meta.get("deletionTimestamp"),
        },
        "spec": spec,
        "specError": spec_error,
        "cluster": cluster_name(str(raw_spec.get("cluster") or "")),
        "status": dict(body.get("status") or {}),
    }


def batch_job_view(body: Mapping[str, Any]) -> dict[str, Any]:
    """A batch/v1 Job of a TrainingJob."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    spec_hash = (meta.get("annotations") or {}).get(ANNOTATION_SPEC_HASH)
    return {
        "metadata": _owned_metadata(
            meta,
            annotations={ANNOTATION_SPEC_HASH: spec_hash} if spec_hash else {},
            deletionTimestamp=meta.get("deletionTimestamp"),
        ),
        "spec": {"suspend": bool((body.get("spec") or {}).get("suspend"))},
        "status": {"conditions": [dict(c) for c in status.get("conditions") or []]},
    }


def pod_view(body: Mapping[str, Any]) -> dict[str, Any]:
    """A pod of a TrainingJob's Job: phase, scheduling, readiness and container states."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    conditions = [
        {k: c.get(k) for k in ("type", "status", "reason", "message") if c.get(k) is not None}
        for c in status.get("conditions") or []
        if c.get("type") in ("PodScheduled", "Ready")
    ]
    index = (meta.get("labels") or {}).get(LABEL_COMPLETION_INDEX) or (meta.get("annotations") or {}).get(
        LABEL_COMPLETION_INDEX
    )
    return {
        "metadata": _owned_metadata(
            meta, labels={LABEL_COMPLETION_INDEX: index} if index is not None else {}
        ),
        "spec": {"nodeName": (body.get("spec") or {}).get("nodeName")},
        "status": {
            "phase": status.get("phase"),
            "startTime": status.get("startTime"),
            "conditions": conditions,
            "containerStatuses": [
                {"name": cs.get("name"), "state": cs.get("state") or {}}
                for cs in status.get("containerStatuses") or []
            ],
        },
    }


# ---- clusters: nodes, job pods on them, setup pods and DaemonSets ----------------------------------------


def cluster_view(body: Mapping[str, Any]) -> dict[str, Any]:
    """A BatchAICluster, with its spec parsed (or why it cannot be) and the node selector it implies."""
    meta = body.get("metadata") or {}
    spec: BatchAIClusterSpec | None = None
    invalid: str | None = None
    try:
        spec = BatchAIClusterSpec.model_validate(dict(body.get("spec") or {}))
    except ValidationError as e:
        invalid = validation_message(e)
    return {
        "body": {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "metadata": {
                "name": meta.get("name"),
                "namespace": meta.get("namespace"),
                "uid": meta.get("uid"),
                "generation": meta.get("generation"),
                "annotations": dict(meta.get("annotations") or {}),
                "deletionTimestamp": meta.get("deletionTimestamp"),
            },
        },
        "status": dict(body.get("status") or {}),
        "spec": spec,
        "invalid": invalid,
        "selector": node_selector(spec) if spec is not None else None,
    }


def slim_node(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the counts need of a Node."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
    return {
        "name": meta.get("name"),
        "labels": dict(meta.get("labels") or {}),
        "creationTimestamp": meta.get("creationTimestamp"),
        "deleting": bool(meta.get("deletionTimestamp")),
        "unschedulable": bool(spec.get("unschedulable")),
        "taints": sorted({t.get("key", "") for t in spec.get("taints") or []}),
        "ready": ready.get("status") if ready else None,
        "readySince": ready.get("lastTransitionTime") if ready else None,
    }


def pod_on_node(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """A job pod occupying a node (bound, pending or running), or None when it occupies none."""
    meta = body.get("metadata") or {}
    node = (body.get("spec") or {}).get("nodeName")
    phase = (body.get("status") or {}).get("phase")
    if not node or phase not in ("Pending", "Running", None):
        return None
    return {"namespace": meta.get("namespace"), "name": meta.get("name"), "nodeName": node, "phase": phase}


def _container_state(statuses: Iterable[Mapping[str, Any]], name: str) -> dict[str, Any] | None:
    cs = next((s for s in statuses if s.get("name") == name), None)
    if cs is None:
        return None
    state = cs.get("state") or {}
    last = (cs.get("lastState") or {}).get("terminated") or {}
    out: dict[str, Any] = {"restartCount": cs.get("restartCount", 0)}
    if "terminated" in state:
        term = state["terminated"] or {}
        out.update(
            state="terminated",
            exitCode=term.get("exitCode"),
            reason=term.get("reason"),
            message=term.get("message"),
        )
    elif "running" in state:
        out["state"] = "running"
    else:
        waiting = state.get("waiting") or {}
        out.update(state="waiting", reason=waiting.get("reason"), message=waiting.get("message"))
    if last:
        out["lastExitCode"] = last.get("exitCode")
        out["lastReason"] = last.get("reason")
    return out


def slim_setup_pod(body: Mapping[str, Any]) -> dict[str, Any]:
    """What the counts need of a setup-task pod."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    return {
        "name": meta.get("name"),
        "nodeName": (body.get("spec") or {}).get("nodeName"),
        "revision": (meta.get("labels") or {}).get(LABEL_SETUP_REVISION),
        "marked": (meta.get("labels") or {}).get(LABEL_SETUP_STATE) == SETUP_SUCCEEDED,
        "deleting": bool(meta.get("deletionTimestamp")),
        "creationTimestamp": meta.get("creationTimestamp"),
        "phase": status.get("phase"),
        "init": _container_state(status.get("initContainerStatuses") or [], SETUP_CONTAINER),
    }


def slim_daemonset(body: Mapping[str, Any]) -> dict[str, Any]:
    """A setup DaemonSet: enough to tell whether it is current and to replace it safely."""
    meta = body.get("metadata") or {}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "resourceVersion": meta.get("resourceVersion"),
        "revision": (meta.get("annotations") or {}).get(LABEL_SETUP_REVISION),
    }
