"""kopf registrations for TrainingJobs: every change of a TrainingJob, or of the BatchAICluster it waits
for, syncs it (reconcile/trainingjob.py); no polling timers. A change of its batch Job or its pods does
too, from the operator's own watches of those (reconcile/child_watches.py), not from kopf."""

from __future__ import annotations

from typing import Any

import kopf

from ..names import CLUSTER_PLURAL, GROUP, TRAININGJOB_PLURAL, VERSION
from ..reconcile import trainingjob
from ..reconcile.runtime import current


@kopf.on.event(GROUP, VERSION, TRAININGJOB_PLURAL)
async def on_trainingjob(event: kopf.RawEvent, uid: str, **_: Any) -> None:
    if event.get("type") == "DELETED":
        current().forget(uid)
    else:
        await trainingjob.on_trainingjob_event(current(), uid)


@kopf.on.event(GROUP, VERSION, CLUSTER_PLURAL)
async def on_cluster_for_trainingjobs(namespace: str | None, name: str, **_: Any) -> None:
    """A cluster appeared or changed: jobs waiting for it may start now."""
    await trainingjob.on_cluster_event(current(), namespace, name)
