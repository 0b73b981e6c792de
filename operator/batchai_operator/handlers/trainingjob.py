"""kopf registrations for TrainingJobs: every change of a TrainingJob, its batch Job or its pods, or of the
BatchAICluster it waits for, syncs it (reconcile/trainingjob.py); no polling timers."""

from __future__ import annotations

from typing import Any

import kopf

from ..names import CLUSTER_PLURAL, GROUP, LABEL_TRAININGJOB_UID, TRAININGJOB_PLURAL, VERSION
from ..reconcile import cluster, trainingjob
from ..reconcile.runtime import current
from .indexes import TRAININGJOB_CHILDREN


@kopf.on.event(GROUP, VERSION, TRAININGJOB_PLURAL)
async def on_trainingjob(event: kopf.RawEvent, uid: str, **_: Any) -> None:
    if event.get("type") == "DELETED":
        current().forget(uid)
    else:
        await trainingjob.request_sync(current(), uid)


@kopf.on.event("batch", "v1", "jobs", labels=TRAININGJOB_CHILDREN)
async def on_batch_job(labels: kopf.Labels, **_: Any) -> None:
    await trainingjob.request_sync(current(), labels[LABEL_TRAININGJOB_UID])


@kopf.on.event("", "v1", "pods", labels=TRAININGJOB_CHILDREN)
async def on_pod(labels: kopf.Labels, body: kopf.Body, **_: Any) -> None:
    """A job pod syncs its TrainingJob and, once on a node, that node's clusters: one handler for both
    (kopf's own cost of calling a handler is most of a pod event's)."""
    rt = current()
    await trainingjob.request_sync(rt, labels[LABEL_TRAININGJOB_UID])
    node = body.spec.get("nodeName")
    if node:
        await cluster.on_node_event(rt, node)


@kopf.on.event(GROUP, VERSION, CLUSTER_PLURAL)
async def on_cluster_for_trainingjobs(namespace: str | None, name: str, **_: Any) -> None:
    """A cluster appeared or changed: jobs waiting for it may start now."""
    await trainingjob.on_cluster_event(current(), namespace, name)
