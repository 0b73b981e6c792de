"""The in-memory indexes both syncs read instead of the API: their names, what each keeps per object,
and `Indexes`, the read-only lookups into them.

Each index is filled, on every watch event of its resource, by one of the functions below: it returns
{key: slim view}, or {} to drop the object. kopf calls them as indexers (handlers/ registers them under
the names below; kopf keeps an object's previous values when given None); the TrainingJobs', job pods'
and batch Jobs' are filled by the operator's own watches instead (reconcile/own_watches.py, into
observe/store.py's ObjectIndex, read the same way). The startup hook hands both to the runtime, which
wraps them in `Indexes`.

One index per watched resource: kopf's own cost of running an indexer (its context, arguments and
bookkeeping) was most of a pod event's (py-spy in make bench), so the lookups of one resource are kept in
one index (PHYSICAL), each under keys tagged with its name, and filled by one function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..api.trainingjob import cluster_name
from ..names import LABEL_CLUSTER_UID, LABEL_TRAININGJOB_UID, TERMINAL_STATES, TRAININGJOB_KIND
from . import views

TRAININGJOBS = "trainingjobs"  # uid -> TrainingJob view
TRAININGJOBS_BY_CLUSTER = "trainingjobs_by_cluster"  # (namespace, cluster name) -> uid, unfinished jobs
BATCH_JOBS_BY_OWNER = "batch_jobs_by_owner"  # (namespace, TrainingJob uid of its controller) -> Job view
PODS_BY_OWNER = "pods_by_owner"  # (namespace, TrainingJob uid label) -> pod view (owner checked on use)
POD_OWNER_BY_NAME = "pod_owner_by_name"  # (namespace, pod name) -> (TrainingJob uid label, pod view)
CLUSTERS = "clusters"  # (namespace, name) -> BatchAICluster view
NODES = "nodes"  # node name -> slim node
PODS_BY_NODE = "pods_by_node"  # node name -> job pods occupying it
SETUP_PODS = "setup_pods"  # cluster uid -> slim setup pod
SETUP_DAEMONSETS = "setup_daemonsets"  # cluster uid -> slim DaemonSet
# The indexes that hold several lookups, and which: TrainingJobs, and the pods of TrainingJobs.
TRAININGJOB_INDEX = "trainingjob_index"
TRAININGJOB_PODS = "trainingjob_pods"
PHYSICAL = {
    TRAININGJOBS: TRAININGJOB_INDEX,
    TRAININGJOBS_BY_CLUSTER: TRAININGJOB_INDEX,
    PODS_BY_OWNER: TRAININGJOB_PODS,
    POD_OWNER_BY_NAME: TRAININGJOB_PODS,
    PODS_BY_NODE: TRAININGJOB_PODS,
}
# The indexes the operator's own watches fill (reconcile/own_watches.py), and kopf's, by the names
# handlers/indexes.py registers them under.
OWN_INDEXES = (TRAININGJOB_INDEX, BATCH_JOBS_BY_OWNER, TRAININGJOB_PODS)
KOPF_INDEXES = (
    CLUSTERS,
    NODES,
    SETUP_PODS,
    SETUP_DAEMONSETS,
)
ALL = (*KOPF_INDEXES, *OWN_INDEXES)


# A kopf index (or, in tests, a dict): key -> the values of every object indexed under that key.
Index = Mapping[Any, Iterable[Any]]


class Indexes:
    """kopf's indexes by name, read only; the lookups kept in a shared kopf index (PHYSICAL) by their own
    names."""

    def __init__(self, by_name: Mapping[str, Index]) -> None:
        self.by_name = by_name

    def __getitem__(self, index: str) -> Index:
        if index in PHYSICAL:
            raise KeyError(f"{index} is kept in the kopf index {PHYSICAL[index]}: read it with items()")
        return self.by_name[index]

    def items(self, index: str) -> list[tuple[Any, Iterable[Any]]]:
        """Every (key, values) of an index (a copy: kopf may change it meanwhile)."""
        physical = PHYSICAL.get(index)
        if physical is None:
            return list(self.by_name[index].items())
        return [(k[1], v) for k, v in list(self.by_name[physical].items()) if k[0] == index]

    def _get(self, index: str, key: Any) -> Iterable[Any] | None:
        physical = PHYSICAL.get(index)
        if physical is None:
            return self.by_name[index].get(key)
        return self.by_name[physical].get((index, key))

    def first(self, index: str, key: Any) -> Any:
        """The one value indexed under `key`, or None."""
        store = self._get(index, key)
        return next(iter(store), None) if store else None

    def all(self, index: str, key: Any) -> list[Any]:
        return list(self._get(index, key) or [])


def _tagged(index: str, entries: dict[Any, Any]) -> dict[Any, Any]:
    return {(index, k): v for k, v in entries.items()}


def trainingjob_index(body: Mapping[str, Any]) -> dict[Any, Any]:
    """TRAININGJOBS and TRAININGJOBS_BY_CLUSTER of one TrainingJob."""
    return {
        **_tagged(TRAININGJOBS, trainingjobs(body)),
        **_tagged(TRAININGJOBS_BY_CLUSTER, trainingjobs_by_cluster(body)),
    }


def trainingjob_pods(body: Mapping[str, Any]) -> dict[Any, Any]:
    """PODS_BY_OWNER, POD_OWNER_BY_NAME and PODS_BY_NODE of one pod of a TrainingJob (one view shared)."""
    meta = _meta(body)
    owner = (meta.get("labels") or {}).get(LABEL_TRAININGJOB_UID)
    if not owner:
        return {}
    view = views.pod_view(body)
    namespace = meta.get("namespace")
    out = {
        (PODS_BY_OWNER, (namespace, owner)): view,
        (POD_OWNER_BY_NAME, (namespace, meta.get("name"))): (owner, view),
    }
    return {**out, **_tagged(PODS_BY_NODE, pods_by_node(body))}


def _meta(body: Mapping[str, Any]) -> Mapping[str, Any]:
    return body.get("metadata") or {}


def trainingjobs(body: Mapping[str, Any]) -> dict[Any, Any]:
    return {_meta(body)["uid"]: views.trainingjob_view(body)}


def trainingjobs_by_cluster(body: Mapping[str, Any]) -> dict[Any, Any]:
    """Only jobs that may still wait for their cluster: a cluster's every change (its node counts move
    with each job) looks through its jobs, and finished ones would be most of them."""
    if (body.get("status") or {}).get("executionState") in TERMINAL_STATES:
        return {}
    meta = _meta(body)
    cluster = cluster_name(str((body.get("spec") or {}).get("cluster") or ""))
    return {(meta.get("namespace"), cluster): meta["uid"]}


def batch_jobs_by_owner(body: Mapping[str, Any]) -> dict[Any, Any]:
    """Jobs whose controller is a TrainingJob, under that TrainingJob's uid (never by label alone)."""
    meta = _meta(body)
    owner = views.controller_ref(meta)
    if owner is None or owner.get("kind") != TRAININGJOB_KIND:
        return {}
    return {(meta.get("namespace"), owner["uid"]): views.batch_job_view(body)}


def pods_by_owner(body: Mapping[str, Any]) -> dict[Any, Any]:
    meta = _meta(body)
    owner = (meta.get("labels") or {}).get(LABEL_TRAININGJOB_UID)
    return {(meta.get("namespace"), owner): views.pod_view(body)} if owner else {}


def pod_owner_by_name(body: Mapping[str, Any]) -> dict[Any, Any]:
    """(TrainingJob uid label, pod view): the label only says which job to look at; the pod counts only
    when that job's batch Job controls it (decide/failures.py: failed_mount)."""
    meta = _meta(body)
    owner = (meta.get("labels") or {}).get(LABEL_TRAININGJOB_UID)
    if not owner:
        return {}
    return {(meta.get("namespace"), meta.get("name")): (owner, views.pod_view(body))}


def clusters(body: Mapping[str, Any]) -> dict[Any, Any]:
    meta = _meta(body)
    if meta.get("namespace") is None:
        return {}
    return {(meta["namespace"], meta["name"]): views.cluster_view(body)}


def nodes(body: Mapping[str, Any]) -> dict[Any, Any]:
    return {_meta(body)["name"]: views.slim_node(body)}


def pods_by_node(body: Mapping[str, Any]) -> dict[Any, Any]:
    slim = views.pod_on_node(body)
    return {slim["nodeName"]: slim} if slim else {}


def setup_pods(body: Mapping[str, Any]) -> dict[Any, Any]:
    uid = (_meta(body).get("labels") or {}).get(LABEL_CLUSTER_UID)
    return {uid: views.slim_setup_pod(body)} if uid else {}


def setup_daemonsets(body: Mapping[str, Any]) -> dict[Any, Any]:
    uid = (_meta(body).get("labels") or {}).get(LABEL_CLUSTER_UID)
    return {uid: views.slim_daemonset(body)} if uid else {}
