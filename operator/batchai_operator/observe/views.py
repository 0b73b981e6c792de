"""Slim views of API objects: what the decisions read, and all the operator keeps in its in-memory indexes.

Each view keeps the shape of the API object it comes from (a subset of its fields), so a decision reads a
view and a full object alike. Dropped on purpose: managedFields, last-applied annotations, pod specs,
everything no decision reads (the indexes hold one view per object of the cluster).

The two kinds' own objects have one shape, `CustomObjectView`: apiVersion, kind, metadata, the spec
parsed once here (or None, with `specError` saying why) and the status as on the wire.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Generic, TypedDict, TypeVar

from pydantic import BaseModel, ValidationError

from ..api.cluster import BatchAIClusterSpec
from ..api.trainingjob import TrainingJobSpec, cluster_name
from ..manifests.naming import pod_annotations
from ..manifests.placement import node_selector
from ..names import (
    ANNOTATION_APPLIED_SCALE,
    ANNOTATION_SPEC_HASH,
    CLUSTER_KIND,
    LABEL_COMPLETION_INDEX,
    LABEL_SETUP_REVISION,
    LABEL_SETUP_STATE,
    RESOURCE_GPU,
    SETUP_CONTAINER,
    SETUP_SUCCEEDED,
    TERMINAL_STATES,
    TRAININGJOB_KIND,
)

log = logging.getLogger("batchai_operator")
SpecT = TypeVar("SpecT")
ModelT = TypeVar("ModelT", bound=BaseModel)
# Annotations of ours that the operator reads back from its own objects (the rest of its domain's are
# kopf's bookkeeping, and dropped).
READ_BACK_ANNOTATIONS = (ANNOTATION_APPLIED_SCALE,)
# Views of the children and the nodes: subsets of the API objects, in their shape (see each builder).
BatchJobView = Mapping[str, Any]
PodView = Mapping[str, Any]


class ObjectMeta(TypedDict):
    name: str
    namespace: str
    uid: str
    generation: int
    creationTimestamp: str | None
    labels: dict[str, str]
    annotations: dict[str, str]  # those pods get, and READ_BACK_ANNOTATIONS
    deletionTimestamp: str | None


class CustomObjectView(TypedDict, Generic[SpecT]):
    """A TrainingJob or BatchAICluster as the indexes keep it."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: SpecT | None  # None when the spec does not parse
    specError: str | None  # why it does not (field paths, never input values)
    status: dict[str, Any]  # as on the wire


class TrainingJobView(CustomObjectView[TrainingJobSpec]):
    cluster: str  # the BatchAICluster name spec.cluster gives (also when the spec does not parse)


class ClusterView(CustomObjectView[BatchAIClusterSpec]):
    selector: dict[str, str] | None  # the nodes it is made of (None when the spec does not parse)


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


# ---- the two kinds' own objects -------------------------------------------------------------------------


def object_meta(meta: Mapping[str, Any]) -> ObjectMeta:
    raw = meta.get("annotations") or {}
    annotations = pod_annotations(raw)  # drops tool bookkeeping: last-applied configurations can be large
    annotations.update({k: raw[k] for k in READ_BACK_ANNOTATIONS if k in raw})
    return {
        "name": meta.get("name") or "",
        "namespace": meta.get("namespace") or "",
        "uid": meta.get("uid") or "",
        "generation": int(meta.get("generation") or 1),
        "creationTimestamp": meta.get("creationTimestamp"),
        "labels": dict(meta.get("labels") or {}),
        "annotations": annotations,
        "deletionTimestamp": meta.get("deletionTimestamp"),
    }


def _parse_spec(model: type[ModelT], raw: Mapping[str, Any]) -> tuple[ModelT | None, str | None]:
    """The spec, or None and why it cannot be used."""
    try:
        return model.model_validate(dict(raw)), None
    except ValidationError as e:
        return None, validation_message(e)
    except (ValueError, OverflowError) as e:  # a value the validators let through but cannot use
        return None, str(e).splitlines()[0]


def custom_object_view(body: Mapping[str, Any], model: type[ModelT], kind: str) -> CustomObjectView[ModelT]:
    """One of our own objects, with its spec parsed once here rather than on every sync."""
    spec, error = _parse_spec(model, body.get("spec") or {})
    return {
        "apiVersion": body.get("apiVersion") or "",
        "kind": body.get("kind") or kind,
        "metadata": object_meta(body.get("metadata") or {}),
        "spec": spec,
        "specError": error,
        "status": dict(body.get("status") or {}),
    }


# What the index keeps of a finished TrainingJob's status: what its sync reads (decide's step 1: the state,
# its end time and errors, the node counts and generation it was written for) and the metrics' toolType.
# A finished job's sync then patches only what differs from these (status_patch leaves other keys alone),
# and 10,000 finished jobs keep a fifth of their statuses' memory (their conditions, paths, messages).
FINISHED_STATUS_FIELDS = (
    "executionState",
    "executionStateTransitionTime",
    "executionInfo",
    "observedGeneration",
    "nodes",
    "toolType",
    "settled",
)


def trainingjob_view(body: Mapping[str, Any]) -> TrainingJobView:
    cluster = cluster_name(str((body.get("spec") or {}).get("cluster") or ""))
    view: TrainingJobView = {
        **custom_object_view(body, TrainingJobSpec, TRAININGJOB_KIND),
        "cluster": cluster,
    }
    view["status"] = indexed_status(view["status"])
    return view


def indexed_status(status: dict[str, Any]) -> dict[str, Any]:
    """A TrainingJob's status as the index keeps it: whole, or a finished job's FINISHED_STATUS_FIELDS."""
    if status.get("executionState") not in TERMINAL_STATES:
        return status
    return {k: status[k] for k in FINISHED_STATUS_FIELDS if k in status}


def cluster_view(body: Mapping[str, Any]) -> ClusterView:
    view = custom_object_view(body, BatchAIClusterSpec, CLUSTER_KIND)
    spec = view["spec"]
    return {**view, "selector": node_selector(spec) if spec is not None else None}


def parse_status(model: type[ModelT], raw: Mapping[str, Any]) -> ModelT:
    """The status last written, typed; a status that does not parse (edited by hand, or by an older
    operator) counts as none, so that the next write replaces it."""
    try:
        return model.model_validate(raw)
    except ValidationError:
        log.warning("ignoring a %s that does not parse: %s", model.__name__, sorted(raw))
        return model()


# ---- the children of a TrainingJob, nodes, setup pods and DaemonSets -------------------------------------


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
    """A pod of a TrainingJob's Job: phase, scheduling, readiness, disruption and container states."""
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    conditions = [
        {k: c.get(k) for k in ("type", "status", "reason", "message") if c.get(k) is not None}
        for c in status.get("conditions") or []
        # DisruptionTarget: Kubernetes is taking the pod away (decide/requeues.py).
        if c.get("type") in ("PodScheduled", "Ready", "DisruptionTarget")
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
        # what the operator's own gang admission needs (decide/admission.py)
        "gpus": gpu_count((status.get("allocatable") or {}).get(RESOURCE_GPU)),
        "hardTaints": [
            {k: t[k] for k in ("key", "value", "effect") if k in t}
            for t in spec.get("taints") or []
            if t.get("effect") in ("NoSchedule", "NoExecute")
        ],
    }


def gpu_count(quantity: Any) -> int:
    """`nvidia.com/gpu` of a node or container (whole numbers; absent or unreadable: 0)."""
    try:
        return int(str(quantity)) if quantity is not None else 0
    except ValueError:
        return 0


def pod_on_node(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """A TrainingJob's pod occupying a node (bound, pending or running), or None when it occupies none."""
    meta = body.get("metadata") or {}
    node = (body.get("spec") or {}).get("nodeName")
    phase = (body.get("status") or {}).get("phase")
    if not node or phase not in ("Pending", "Running", None):
        return None
    return {
        "namespace": meta.get("namespace"),
        "name": meta.get("name"),
        "nodeName": node,
        "phase": phase,
        "gpus": pod_gpus(body),
    }


def pod_gpus(body: Mapping[str, Any]) -> int:
    """GPUs a pod takes on its node, as the scheduler counts them: its containers' requests (the limit
    when no request) summed, or its largest init container's, whichever is more."""
    spec = body.get("spec") or {}

    def one(c: Mapping[str, Any]) -> int:
        res = c.get("resources") or {}
        return gpu_count(
            (res.get("requests") or {}).get(RESOURCE_GPU) or (res.get("limits") or {}).get(RESOURCE_GPU)
        )

    main = sum(one(c) for c in spec.get("containers") or [])
    return max(main, max((one(c) for c in spec.get("initContainers") or []), default=0))


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
    """A setup DaemonSet: enough to tell whether it is current and ours, and to replace it safely."""
    meta = body.get("metadata") or {}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "controllerUid": controller_uid(meta),
        "resourceVersion": meta.get("resourceVersion"),
        "revision": (meta.get("annotations") or {}).get(LABEL_SETUP_REVISION),
    }
