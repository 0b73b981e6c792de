"""The job pods and batch Jobs, watched by the operator itself rather than by kopf: they bring most of the
watch events (about 10 of a single-node job's 15), and kopf's machinery around each event (causes,
progress state, patches, loggers, contexts) cost more CPU than the operator's syncs (py-spy in make bench).

Each watch lists and then streams its resource in a thread (kube.Kube.list_and_watch), builds the index
entries there (observe/indexes.py's functions, as kopf's indexers did), and hands them to the event loop,
which updates the index (observe/store.py) and asks for the syncs the change concerns: the pod's or Job's
TrainingJob, and a pod's node's clusters. The startup waits for every first list, so no sync runs before
the indexes hold what exists (kopf's readiness did the same for its own indexes).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..kube import Kube, collection_path
from ..names import LABEL_MANAGED_BY, LABEL_TRAININGJOB_UID, MANAGED_BY
from ..observe import indexes as idx
from ..observe.store import ObjectId, ObjectIndex, replace_all
from . import cluster, trainingjob
from .runtime import Runtime

log = logging.getLogger("batchai_operator")
# The server ends a watch after this long (it is then resumed from its last version, with no list).
WATCH_SECONDS = 300
# While the startup waits for the first lists, it says so this often.
WAITING_LOG_SECONDS = 10.0


@dataclass(frozen=True)
class ChildWatch:
    name: str
    prefix: str  # the API path prefix of the resource
    plural: str
    label_selector: str
    index: str  # the index it fills (observe/indexes.py)
    entries: Callable[[Mapping[str, Any]], dict[Any, Any]]  # an object's entries in that index
    syncs_clusters: bool  # a change syncs the clusters of the object's node (pods)


MANAGED = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
CHILD_WATCHES = (
    ChildWatch(
        "pods",
        "/api/v1",
        "pods",
        f"{MANAGED},{LABEL_TRAININGJOB_UID}",
        idx.TRAININGJOB_PODS,
        idx.trainingjob_pods,
        syncs_clusters=True,
    ),
    # All of the operator's Jobs: the index keeps those a TrainingJob controls (never by label alone).
    ChildWatch(
        "batch-jobs",
        "/apis/batch/v1",
        "jobs",
        MANAGED,
        idx.BATCH_JOBS_BY_OWNER,
        idx.batch_jobs_by_owner,
        syncs_clusters=False,
    ),
)


@dataclass(frozen=True)
class Change:
    """One object as a watch saw it, made ready for the loop: its entries, and whom it concerns."""

    obj: ObjectId
    deleted: bool
    entries: dict[Any, Any]
    owner: str | None  # the TrainingJob uid label: that job syncs
    node: str | None  # the pod's node: its clusters sync


def change_of(watch: ChildWatch, kind: str, body: Mapping[str, Any]) -> Change:
    meta = body.get("metadata") or {}
    deleted = kind == "DELETED"
    return Change(
        obj=(str(meta.get("namespace") or ""), str(meta.get("uid") or "")),
        deleted=deleted,
        entries={} if deleted else watch.entries(body),
        owner=(meta.get("labels") or {}).get(LABEL_TRAININGJOB_UID),
        node=(body.get("spec") or {}).get("nodeName") if watch.syncs_clusters else None,
    )


def make_indexes() -> dict[str, ObjectIndex]:
    return {watch.index: ObjectIndex() for watch in CHILD_WATCHES}


async def start(rt: Runtime, kube: Kube, indexes: Mapping[str, ObjectIndex]) -> None:
    """Start every child watch (in each watched namespace, or in all) and wait for their first lists."""
    loop = asyncio.get_running_loop()
    namespaces: list[str | None] = [*rt.config.watch_namespaces] or [None]
    listed: list[asyncio.Event] = []
    for watch in CHILD_WATCHES:
        for namespace in namespaces:
            done = asyncio.Event()
            listed.append(done)
            feed = _Feed(rt, loop, watch, indexes[watch.index], namespace, done)
            threading.Thread(
                target=kube.list_and_watch,
                args=(
                    collection_path(watch.prefix, watch.plural, namespace),
                    ("labelSelector", watch.label_selector),
                    feed.on_list,
                    feed.on_event,
                    rt.stopping,
                ),
                kwargs={
                    "what": f"{watch.name} in {namespace or 'all namespaces'}",
                    "server_timeout": WATCH_SECONDS,
                    "client_timeout": WATCH_SECONDS + 30,
                },
                name=f"{watch.name}-watch-{namespace or 'all'}",
                daemon=True,
            ).start()
    waiting = asyncio.gather(*(done.wait() for done in listed))
    while True:
        try:
            await asyncio.wait_for(asyncio.shield(waiting), WAITING_LOG_SECONDS)
            return
        except TimeoutError:
            log.info("waiting for the first lists of job pods and batch Jobs from the apiserver")


class _Feed:
    """What one watch thread calls: builds the changes there, applies them in the loop."""

    def __init__(
        self,
        rt: Runtime,
        loop: asyncio.AbstractEventLoop,
        watch: ChildWatch,
        index: ObjectIndex,
        namespace: str | None,
        listed: asyncio.Event,
    ) -> None:
        self.rt, self.loop, self.watch, self.index = rt, loop, watch, index
        self.namespace, self.listed = namespace, listed

    def on_list(self, items: list[dict[str, Any]]) -> None:
        changes = [change_of(self.watch, "ADDED", item) for item in items]
        self.loop.call_soon_threadsafe(self._relisted, changes, context=self.rt.context)

    def on_event(self, kind: str, body: dict[str, Any]) -> None:
        change = change_of(self.watch, kind, body)
        self.loop.call_soon_threadsafe(self._changed, change, context=self.rt.context)

    def _relisted(self, changes: list[Change]) -> None:
        """A (re)list: the index now holds exactly what was listed. The first list syncs nothing (the
        TrainingJobs' own first list syncs every job); a later one (the watch fell too far behind, which
        is rare) syncs every job the operator watches, as what it missed may concern any of them."""
        replace_all(self.index, self.namespace, ((c.obj, c.entries) for c in changes))
        if not self.listed.is_set():
            self.listed.set()
            return
        for uid, _ in self.rt.indexes.items(idx.TRAININGJOBS):
            trainingjob.ask_sync(self.rt, uid)

    def _changed(self, change: Change) -> None:
        if change.deleted:
            self.index.remove(change.obj)
        else:
            self.index.put(change.obj, change.entries)
        if change.owner:
            trainingjob.ask_sync(self.rt, change.owner)
        if change.node:
            self.rt.spawn(cluster.on_node_event(self.rt, change.node))
