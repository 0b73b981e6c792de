"""The TrainingJobs, their job pods and their batch Jobs, watched by the operator itself rather than by
kopf: they bring almost every watch event (a single-node job's 15), and kopf's machinery around each
event (causes, progress state, patches, loggers, contexts) cost more CPU than the operator's syncs (py-spy
in make bench). kopf keeps the rare ones: clusters, nodes, setup pods and DaemonSets.

Each watch lists and then streams its resource in a thread (kube.Kube.list_and_watch), builds the index
entries there (observe/indexes.py's functions, as kopf's indexers did), and hands them to the event loop,
which updates the index (observe/store.py) and asks for the syncs the change concerns: a TrainingJob's
own; a pod's or batch Job's TrainingJob, and a pod's node's clusters. The startup waits for the first
lists of the children; the TrainingJobs' watch starts once kopf's indexes are filled too (each listed job
then syncs), so no sync runs before the indexes hold what exists (kopf's readiness does the same for the
handlers of what kopf watches).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..kube import Kube, collection_path
from ..names import GROUP, LABEL_MANAGED_BY, LABEL_TRAININGJOB_UID, MANAGED_BY, TRAININGJOB_PLURAL, VERSION
from ..observe import indexes as idx
from ..observe.store import ObjectId, ObjectIndex, replace_all
from . import cluster, trainingjob
from .runtime import Runtime

log = logging.getLogger("batchai_operator")
# The server ends a watch after this long (it is then resumed from its last version, with no list).
WATCH_SECONDS = 300
# While the startup waits for the first lists, it says so this often.
WAITING_LOG_SECONDS = 10.0
# Settled TrainingJobs (finished for good: decide/trainingjob.py) are not watched at all: thousands of
# them cost neither a restart's first list nor memory. Selected by the apiserver on the CRD's
# selectableFields; an absent field reads as "", so a job not yet settled is selected.
NOT_SETTLED = "status.settled!=true"


@dataclass(frozen=True)
class Change:
    """One object as a watch saw it, made ready for the loop: its entries, and whom it concerns."""

    obj: ObjectId  # (namespace, uid)
    deleted: bool
    entries: dict[Any, Any]
    owner: str | None  # the TrainingJob uid label of a child: that job syncs
    node: str | None  # a pod's node: its clusters sync


@dataclass(frozen=True)
class OwnWatch:
    name: str
    prefix: str  # the API path prefix of the resource
    plural: str
    selector: tuple[str, str]  # ("labelSelector" or "fieldSelector", the selector)
    index: str  # the index it fills (observe/indexes.py)
    entries: Callable[[Mapping[str, Any]], dict[Any, Any]]  # an object's entries in that index
    syncs_clusters: bool  # a change syncs the clusters of the object's node (pods)
    changed: Callable[[Runtime, Change], None]  # what a change (after the first list) asks for
    first_listed: Callable[[Runtime, list[Change]], None]  # what the first list asks for


def _child_changed(rt: Runtime, change: Change) -> None:
    if change.owner:
        trainingjob.ask_sync(rt, change.owner)
    if change.node:
        rt.spawn(cluster.on_node_event(rt, change.node))


def _trainingjob_changed(rt: Runtime, change: Change) -> None:
    if change.deleted:  # deleted, or settled (it left the selection): nothing is kept about it
        rt.forget(change.obj[1])
    else:
        trainingjob.on_trainingjob_change(rt, change.obj[1])


def _children_listed(rt: Runtime, changes: list[Change]) -> None:
    """Nothing: the TrainingJobs' first list, which comes after, syncs every job."""


def _trainingjobs_listed(rt: Runtime, changes: list[Change]) -> None:
    for change in changes:
        _trainingjob_changed(rt, change)


MANAGED = f"{LABEL_MANAGED_BY}={MANAGED_BY}"
CHILD_WATCHES = (
    OwnWatch(
        "pods",
        "/api/v1",
        "pods",
        ("labelSelector", f"{MANAGED},{LABEL_TRAININGJOB_UID}"),
        idx.TRAININGJOB_PODS,
        idx.trainingjob_pods,
        syncs_clusters=True,
        changed=_child_changed,
        first_listed=_children_listed,
    ),
    # All of the operator's Jobs: the index keeps those a TrainingJob controls (never by label alone).
    OwnWatch(
        "batch-jobs",
        "/apis/batch/v1",
        "jobs",
        ("labelSelector", MANAGED),
        idx.BATCH_JOBS_BY_OWNER,
        idx.batch_jobs_by_owner,
        syncs_clusters=False,
        changed=_child_changed,
        first_listed=_children_listed,
    ),
)
TRAININGJOB_WATCH = OwnWatch(
    "trainingjobs",
    f"/apis/{GROUP}/{VERSION}",
    TRAININGJOB_PLURAL,
    ("fieldSelector", NOT_SETTLED),
    idx.TRAININGJOB_INDEX,
    idx.trainingjob_index,
    syncs_clusters=False,
    changed=_trainingjob_changed,
    first_listed=_trainingjobs_listed,
)
OWN_WATCHES = (*CHILD_WATCHES, TRAININGJOB_WATCH)


def change_of(watch: OwnWatch, kind: str, body: Mapping[str, Any]) -> Change:
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
    return {watch.index: ObjectIndex() for watch in OWN_WATCHES}


async def start(rt: Runtime, kube: Kube, indexes: Mapping[str, ObjectIndex]) -> None:
    """Start every own watch (in each watched namespace, or in all): the children's first, and wait for
    their first lists; then, in the background, the TrainingJobs' once kopf's indexes hold their first
    lists too (a job's sync reads the clusters and nodes kopf indexes; kopf fills them only after the
    startup, and a job synced before would say its cluster is not found)."""
    namespaces: list[str | None] = [*rt.config.watch_namespaces] or [None]
    await _wait_listed(
        "job pods and batch Jobs",
        [_start(rt, kube, watch, indexes[watch.index], ns) for watch in CHILD_WATCHES for ns in namespaces],
    )

    async def trainingjobs() -> None:
        await _wait("clusters and nodes (kopf's)", rt.kopf_indexed.wait())
        await _wait_listed(
            "TrainingJobs",
            [_start(rt, kube, TRAININGJOB_WATCH, indexes[TRAININGJOB_WATCH.index], ns) for ns in namespaces],
        )

    rt.spawn(trainingjobs())


async def _wait_listed(what: str, listed: list[asyncio.Event]) -> None:
    await _wait(what, asyncio.gather(*(done.wait() for done in listed)))


async def _wait(what: str, done: Awaitable[Any]) -> None:
    """Wait, and say so every WAITING_LOG_SECONDS (an apiserver slow to list, or RBAC that refuses it)."""
    waiting = asyncio.ensure_future(done)
    while True:
        try:
            await asyncio.wait_for(asyncio.shield(waiting), WAITING_LOG_SECONDS)
            return
        except TimeoutError:
            log.info("waiting for the first lists of %s from the apiserver", what)


def _start(
    rt: Runtime, kube: Kube, watch: OwnWatch, index: ObjectIndex, namespace: str | None
) -> asyncio.Event:
    """One watch's thread; the Event set once its first list is in the index."""
    listed = asyncio.Event()
    feed = _Feed(rt, asyncio.get_running_loop(), watch, index, namespace, listed)
    threading.Thread(
        target=kube.list_and_watch,
        args=(
            collection_path(watch.prefix, watch.plural, namespace),
            watch.selector,
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
    return listed


class _Feed:
    """What one watch thread calls: builds the changes there, applies them in the loop, in order. A burst
    of events wakes the loop once, not once per event (each wake-up is a write to the loop's self-pipe and
    a read: a few per cent of the operator's CPU at 500 jobs, py-spy in make bench)."""

    def __init__(
        self,
        rt: Runtime,
        loop: asyncio.AbstractEventLoop,
        watch: OwnWatch,
        index: ObjectIndex,
        namespace: str | None,
        listed: asyncio.Event,
    ) -> None:
        self.rt, self.loop, self.watch, self.index = rt, loop, watch, index
        self.namespace, self.listed = namespace, listed
        # Filled by the thread, emptied by the loop (deque's append and popleft are atomic): a change, or
        # a list's changes. `_woken`: a drain is due; the thread sets it, the loop clears it before it
        # drains, so what the thread appends after a drain began is drained then or wakes the loop again.
        self._pending: deque[Change | list[Change]] = deque()
        self._woken = False

    def on_list(self, items: list[dict[str, Any]]) -> None:
        self._hand_over([change_of(self.watch, "ADDED", item) for item in items])

    def on_event(self, kind: str, body: dict[str, Any]) -> None:
        self._hand_over(change_of(self.watch, kind, body))

    def _hand_over(self, item: Change | list[Change]) -> None:
        self._pending.append(item)
        if not self._woken:
            self._woken = True
            self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._woken = False
        while self._pending:
            item = self._pending.popleft()
            if isinstance(item, list):
                self._relisted(item)
            else:
                self._changed(item)

    def _relisted(self, changes: list[Change]) -> None:
        """A (re)list: the index now holds exactly what was listed. The first list asks for what the
        watch's `first_listed` says; a later one (the watch fell too far behind, which is rare) syncs
        every TrainingJob the operator watches, as what it missed may concern any of them, and forgets
        the TrainingJobs that are gone."""
        gone = replace_all(self.index, self.namespace, ((c.obj, c.entries) for c in changes))
        if not self.listed.is_set():
            self.listed.set()
            self.watch.first_listed(self.rt, changes)
            return
        if self.watch is TRAININGJOB_WATCH:
            for _, uid in gone:
                self.rt.forget(uid)
        for uid, _ in self.rt.indexes.items(idx.TRAININGJOBS):
            trainingjob.ask_sync(self.rt, uid)

    def _changed(self, change: Change) -> None:
        if change.deleted:
            self.index.remove(change.obj)
        else:
            self.index.put(change.obj, change.entries)
        self.watch.changed(self.rt, change)
