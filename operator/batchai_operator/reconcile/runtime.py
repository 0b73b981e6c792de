"""One runtime for both kinds: the API client and configuration, kopf's indexes, each kind's memory,
per-object locks, retry with backoff, one-shot timers, background tasks, what each object's last status
was, and Event posting.

Made once by the startup hook (reconcile/lifecycle.py); kopf's handlers reach it through `current()`.
Objects are identified by a key: a TrainingJob by its uid, a BatchAICluster by (namespace, name).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubernetes.client.exceptions import ApiException

from ..api.base import StatusModel
from ..config import OperatorConfig
from ..decide.common import Event, status_patch
from ..decide.gang import ServedApis
from ..kube import KubeClient
from ..kube_errors import api_message
from ..manifests.event import event_manifest
from ..metrics import RECONCILE_ERRORS, RECONCILE_SECONDS
from ..observe.indexes import Index, Indexes
from ..scaling import AgentPoolScaler

log = logging.getLogger("batchai_operator")

Key = Hashable
MemoryT = TypeVar("MemoryT")
# A failed sync is retried after 2, 4, 8, ... seconds, at most a minute apart.
RETRY_BASE_SECONDS = 2.0
RETRY_MAX_SECONDS = 60.0
EVENT_RETRY_SECONDS = (1.0, 5.0)


class Runtime:
    """Process-wide state of the operator."""

    def __init__(
        self,
        kube: KubeClient,
        config: OperatorConfig,
        indexes: Mapping[str, Index],
        scaler: AgentPoolScaler | None = None,
        status_intervals: Mapping[str, float] | None = None,
        coalesce_seconds: float = 0.0,
        start_slots: int = 1000,  # the startup hook passes the real number; 1000 is no limit in tests
    ) -> None:
        self.kube = kube
        # Writes that do not change an object's state (node counts, a waiting reason) are spread at least
        # this far apart; a change of state is written at once. And syncs that many watch events ask for
        # (a cluster, on every job pod's move) wait this long, so a burst of them makes one.
        self.status_intervals = dict(status_intervals or {})  # by plural; 0 when not given
        self.coalesce_seconds = coalesce_seconds
        # How many new objects' first syncs (which create their children) run at once: a burst of new
        # jobs waits here, not in the client's thread pool ahead of the status writes of running ones.
        self.start_slots = asyncio.Semaphore(start_slots)
        self._last_write: dict[Key, float] = {}
        self.config = config
        # What the cluster serves (discovery at start: reconcile/lifecycle.py): the gang mechanisms there.
        self.served = ServedApis(workload=False, kueue=False)
        self.indexes = Indexes(indexes)
        self.scaler = scaler
        # What each kind's sync remembers about an object between syncs, by memory type (observe/memory.py).
        self._memory: dict[type, dict[Key, Any]] = {}
        # The status last written per object: the index may not have caught up with our own patch yet.
        self.written: dict[Key, dict[str, Any]] = {}
        # The metadata each object's last sync began from: a watch event that changes neither it nor the
        # status (the echo of our own status write) brings nothing to sync (reconcile/trainingjob.py).
        self.synced_meta: dict[Key, Any] = {}
        # Objects many jobs share (the launcher's ConfigMap per namespace), known to exist.
        self.shared_objects: set[tuple[str, str]] = set()
        self._locks: dict[Key, tuple[asyncio.Lock, int]] = {}  # per object syncing: its lock, how many use it
        self._asked: set[Key] = set()  # objects whose sync is asked for and has not begun (Runtime.ask)
        self.last_sync = 0.0  # monotonic time the last sync ended (reconcile/malloc.py: idle or not)
        self._failures: dict[Key, int] = {}
        self._timers: dict[tuple[Key, str], asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # Who posts the Events: the operator's pod (its host name), as reportingInstance.
        self.instance = socket.gethostname()
        # Set at shutdown: threads of the operator's own watches stop.
        self.stopping = threading.Event()
        # Set by kopf's first handler call: kopf calls none before its indexes (clusters, nodes, setup
        # objects) hold their first lists, and a TrainingJob's sync reads them (reconcile/own_watches.py).
        self.kopf_indexed = asyncio.Event()

    def memory(self, kind: type[MemoryT]) -> dict[Key, MemoryT]:
        """One kind's memory of its objects (TrainingJobMemory, ClusterMemory), by key."""
        return self._memory.setdefault(kind, {})

    # ---- running syncs ------------------------------------------------------------------------------

    def ask(self, key: Key, sync: Callable[[], Awaitable[None]], kind: str = "object") -> None:
        """Run one sync of an object in the background (`run`). Asks that come before it has begun are
        one: a burst of watch events about one job makes one sync, plus one for those during it."""
        if key in self._asked:
            return
        self._asked.add(key)
        self.spawn(self.run(key, sync, kind, asked=True))

    async def run(
        self, key: Key, sync: Callable[[], Awaitable[None]], kind: str = "object", asked: bool = False
    ) -> None:
        """One sync of an object, serialized per object. kopf does not retry event handlers, so a failed
        sync is retried here, with backoff, or the change that triggered it would be lost."""
        lock, users = self._locks.get(key) or (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                if asked:  # from here on, what changes is not yet seen: a new ask makes a new sync
                    self._asked.discard(key)
                await self._run_locked(key, sync, kind)
        finally:
            # No lock kept for an object nobody syncs now (10,000 finished jobs need none).
            entry = self._locks.get(key)
            if entry is not None and entry[1] > 1:
                self._locks[key] = (entry[0], entry[1] - 1)
            elif entry is not None:
                del self._locks[key]

    async def _run_locked(self, key: Key, sync: Callable[[], Awaitable[None]], kind: str) -> None:
        started = time.monotonic()
        try:
            await sync()
        except asyncio.CancelledError:
            raise
        except Exception:
            RECONCILE_ERRORS.labels(kind).inc()
            failures = self._failures[key] = self._failures.get(key, 0) + 1
            delay = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS**failures)
            log.exception("sync of %s failed (attempt %d); retrying in %.0fs", key, failures, delay)
            self.after(key, "retry", delay, lambda: self.run(key, sync, kind))
        else:
            self._failures.pop(key, None)
        finally:
            self.last_sync = time.monotonic()
            RECONCILE_SECONDS.labels(kind).observe(self.last_sync - started)

    def after(
        self, key: Key, purpose: str, delay: float | None, fn: Callable[[], Coroutine[Any, Any, None]]
    ) -> None:
        """One pending one-shot timer per object and purpose, replacing the previous one; None cancels."""
        old = self._timers.pop((key, purpose), None)
        if old is not None:
            old.cancel()
        if delay is None:
            return

        def fire() -> None:
            self._timers.pop((key, purpose), None)
            self.spawn(fn())

        self._timers[(key, purpose)] = asyncio.get_running_loop().call_later(max(delay, 0.0), fire)

    def soon(self, key: Key, purpose: str, delay: float, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A one-shot timer like `after`, but one already pending is kept (many asks, one run)."""
        if (key, purpose) not in self._timers:
            self.after(key, purpose, delay, fn)

    def has_timer(self, key: Key, purpose: str) -> bool:
        return (key, purpose) in self._timers

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run in the background, keeping a reference so the task is not garbage-collected mid-flight."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def settle(self) -> None:
        """Wait for the background tasks running now (tests, and a clean shutdown)."""
        while pending := [t for t in self._tasks if not t.done()]:
            await asyncio.gather(*pending, return_exceptions=True)

    def forget(self, key: Key) -> None:
        """The object is gone: drop everything kept about it."""
        self._locks.pop(key, None)
        self._failures.pop(key, None)
        for memory in self._memory.values():
            memory.pop(key, None)
        self.written.pop(key, None)
        self.synced_meta.pop(key, None)
        self._last_write.pop(key, None)
        for timer_key in [k for k in self._timers if k[0] == key]:
            self._timers.pop(timer_key).cancel()

    async def close(self) -> None:
        self.stopping.set()
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        if self.scaler is not None:
            await self.scaler.close()

    # ---- status -------------------------------------------------------------------------------------

    async def write_status(
        self,
        key: Key,
        plural: str,
        namespace: str,
        name: str,
        indexed: Mapping[str, Any],
        new: StatusModel,
        state_field: str,
        resync: Callable[[], Coroutine[Any, Any, None]],
        news: bool = False,
    ) -> None:
        """Merge-patch the object's status to `new` when it differs from the status last written (or, after
        a restart, `indexed`, the one in the index): at most one patch per pass of a sync, none when
        nothing changed. A change that keeps `state_field` as it was, and is not `news` (it comes with an
        Event, which the next pass must see was said), comes at most every `status_intervals[plural]`
        seconds: `resync` then runs when the interval is over, and writes whatever is true by then."""
        old = self.written.get(key) or indexed
        wire = new.wire()
        patch = status_patch(old, wire)
        if patch is None:
            return
        now = asyncio.get_running_loop().time()
        wait = self._last_write.get(key, -1e9) + self.status_intervals.get(plural, 0.0) - now
        if state_field not in patch and not news and old and wait > 0:
            self.soon(key, "status", wait, resync)
            return
        await self.kube.patch_status(plural, namespace, name, patch)
        self.written[key] = wire
        self._last_write[key] = now

    # ---- Events -------------------------------------------------------------------------------------

    def post(self, obj: Mapping[str, Any], events: Iterable[Event]) -> None:
        """Post Events about one of our objects (a view with apiVersion, kind, name, namespace, uid), in
        the background. The operator's own poster, not kopf's: kopf's needs the context of a kopf
        per-object task, and the operator's busiest objects are not kopf's (reconcile/own_watches.py)."""
        now = datetime.now(UTC)
        for event in events:
            self.spawn(self._post(event_manifest(obj, event, now, self.instance)))

    async def _post(self, manifest: dict[str, Any]) -> None:
        """Events are said at most once and never hold up a sync: one that failed is tried again twice,
        then logged; one the apiserver refused for good (RBAC, a namespace being deleted, an invalid
        Event: a 4xx but 429) is logged at once, as trying again would change nothing."""
        for delay in (*EVENT_RETRY_SECONDS, None):
            try:
                await self.kube.post_event(manifest)
                return
            except Exception as e:
                refused = isinstance(e, ApiException) and 400 <= (e.status or 0) < 500 and e.status != 429
                if delay is None or refused:
                    what = f"{manifest['reason']} about {manifest['involvedObject']['name']}"
                    why = api_message(e) if isinstance(e, ApiException) else f"{type(e).__name__}: {e}"
                    log.warning("could not post the Event %s: %s", what, why)
                    return
                await asyncio.sleep(delay)


_current: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    global _current
    _current = runtime


def current() -> Runtime:
    """The runtime made by the startup hook."""
    if _current is None:
        raise RuntimeError("the operator's runtime is not started (kopf's startup hook has not run)")
    return _current
