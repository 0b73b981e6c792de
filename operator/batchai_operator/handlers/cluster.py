"""kopf registrations for BatchAIClusters: a change of a cluster, a node, a setup pod or a setup DaemonSet
syncs the clusters it concerns (reconcile/cluster.py); so does a job pod's on a node, from the operator's
own watch of job pods (reconcile/own_watches.py)."""

from __future__ import annotations

from typing import Any

import kopf

from ..names import CLUSTER_PLURAL, GROUP, LABEL_CLUSTER_UID, VERSION
from ..reconcile import cluster
from ..reconcile.runtime import current
from .indexes import SETUP_OBJECTS


@kopf.on.event(GROUP, VERSION, CLUSTER_PLURAL)
async def on_cluster(type: str, namespace: str | None, name: str, **_: Any) -> None:
    current().kopf_indexed.set()
    if namespace is None:
        return
    if type == "DELETED":
        current().forget((namespace, name))
    else:
        await cluster.request_sync(current(), (namespace, name))


@kopf.on.event("", "v1", "nodes")
async def on_node(name: str, **_: Any) -> None:
    current().kopf_indexed.set()
    await cluster.on_node_event(current(), name)


@kopf.on.event("", "v1", "pods", labels=SETUP_OBJECTS)
@kopf.on.event("apps", "v1", "daemonsets", labels=SETUP_OBJECTS)
async def on_setup_object(labels: kopf.Labels, namespace: str | None, **_: Any) -> None:
    await cluster.on_setup_object_event(current(), namespace, labels.get(LABEL_CLUSTER_UID))
