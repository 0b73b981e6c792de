"""kopf registrations for TrainingJobs: a change of the BatchAICluster a job waits for syncs it
(reconcile/trainingjob.py); no polling timers. A change of a TrainingJob, its batch Job or its pods does
too, from the operator's own watches of those (reconcile/own_watches.py), not from kopf."""

from __future__ import annotations

from typing import Any

import kopf

from ..names import CLUSTER_PLURAL, GROUP, VERSION
from ..reconcile import trainingjob
from ..reconcile.runtime import current


@kopf.on.event(GROUP, VERSION, CLUSTER_PLURAL)
async def on_cluster_for_trainingjobs(namespace: str | None, name: str, **_: Any) -> None:
    """A cluster appeared or changed: jobs waiting for it may start now."""
    await trainingjob.on_cluster_event(current(), namespace, name)
