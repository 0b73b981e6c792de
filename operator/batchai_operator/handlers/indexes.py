"""kopf registrations: the in-memory indexes both syncs read instead of the API, one line each
(observe/indexes.py says what each keeps, and under which key). The TrainingJobs', job pods' and batch
Jobs' are not kopf's: reconcile/own_watches.py fills them."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import kopf

from ..names import (
    CLUSTER_PLURAL,
    GROUP,
    LABEL_MANAGED_BY,
    LABEL_ROLE,
    MANAGED_BY,
    SETUP_ROLE,
    VERSION,
)
from ..observe import indexes as idx

MANAGED: dict[str, Any] = {LABEL_MANAGED_BY: MANAGED_BY}
SETUP_OBJECTS: dict[str, Any] = {**MANAGED, LABEL_ROLE: SETUP_ROLE}


def _index(
    entries: Callable[[Mapping[str, Any]], dict[Any, Any]], *resource: str, labels: Any = None
) -> None:
    """Register `entries` (named as the index) as a kopf indexer of the resource."""

    # async, though it awaits nothing: kopf runs a sync handler in a thread of its executor, a hop per watch
    # event (a tenth of the operator's CPU at 500 jobs, py-spy in make bench); a view is built in
    # microseconds and never blocks, so in the event loop it costs less than the hop.
    async def indexer(body: kopf.Body, **_: Any) -> dict[Any, Any]:
        return entries(body)

    kopf.index(*resource, labels=labels, id=entries.__name__)(indexer)


_index(idx.clusters, GROUP, VERSION, CLUSTER_PLURAL)
_index(idx.nodes, "", "v1", "nodes")
_index(idx.setup_pods, "", "v1", "pods", labels=SETUP_OBJECTS)
_index(idx.setup_daemonsets, "apps", "v1", "daemonsets", labels=SETUP_OBJECTS)
