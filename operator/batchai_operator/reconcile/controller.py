"""The one sync both kinds plug into (the Python shape of kueue's GenericJob reconciler): a kind says
how to observe its objects, which children their specs ask for, how to decide and how to apply; the
loop, the status write, Events, timers and start slots are here, once.

    observe (read only) -> desired (the children; a build error is data) -> decide (pure)
        -> write the status -> post Events, set the requeue timer -> apply the actions

The status is written before the actions are applied, so an outcome is saved before anything destructive
follows from it: a finished job's status is saved before its batch Job is deleted, and a crash in
between cannot run it again. When an action's outcome changes what the next observe sees (the apiserver
refused a child), a second pass runs at once, so the status says it; never more than two.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Hashable
from datetime import UTC, datetime
from functools import partial
from typing import Any, Generic, Protocol, TypeVar

from ..decide.common import Decision, Desired
from ..manifests.errors import BuildError
from ..observe.views import CustomObjectView
from .runtime import Runtime

MAX_PASSES = 2
KeyT = TypeVar("KeyT", bound=Hashable)
ViewT = TypeVar("ViewT", bound=CustomObjectView[Any])
WorldT = TypeVar("WorldT", bound="World")
ChildrenT = TypeVar("ChildrenT")
ActionT = TypeVar("ActionT")


class World(Protocol):
    """What a kind's observe returns: at least the object as indexed, and whether its children are to
    be built this pass (not every sync: a running or finished object needs none)."""

    @property
    def view(self) -> CustomObjectView[Any]: ...

    @property
    def wants_children(self) -> bool: ...


class Kind(ABC, Generic[KeyT, ViewT, WorldT, ChildrenT, ActionT]):
    """One kind of object the operator reconciles (reconcile/trainingjob.py, reconcile/cluster.py)."""

    name: str  # its API kind, for metrics and logs
    plural: str  # its API plural (status writes)
    index: str  # the index of its views, by key (observe/indexes.py)
    state_field: str  # the status field whose change is written at once (other changes are throttled)
    # Build the children in a thread: a big job's take a while (its task files), and the event loop must
    # not wait; a small child (a DaemonSet) costs less to build than the thread hop (make bench).
    build_in_thread = True

    @abstractmethod
    async def observe(self, rt: Runtime, view: ViewT) -> WorldT:
        """The object's world, from the indexes and the kind's memory. Reads only."""

    @abstractmethod
    def desired(self, world: WorldT) -> ChildrenT | None:
        """The children its spec asks for (pure, from manifests/); raises BuildError when the spec cannot
        become children here."""

    @abstractmethod
    def decide(self, world: WorldT, desired: Desired[ChildrenT], now: datetime) -> Decision[Any, ActionT]:
        """The pure decision (decide/)."""

    @abstractmethod
    async def apply(self, rt: Runtime, key: KeyT, world: WorldT, decision: Decision[Any, ActionT]) -> bool:
        """Bring the kind's memory up to what the world shows, then carry out the actions; True when an
        outcome changed what the next observe sees (a second pass then follows)."""


async def request_sync(rt: Runtime, kind: Kind[KeyT, Any, Any, Any, Any], key: KeyT) -> None:
    """Sync one object, serialized per object and retried with backoff when it fails (Runtime.run)."""
    await rt.run(key, partial(sync, rt, kind, key), kind.name)


def ask_sync(rt: Runtime, kind: Kind[KeyT, Any, Any, Any, Any], key: KeyT) -> None:
    """`request_sync` in the background, for callbacks that cannot wait; asks before it begins are one."""
    rt.ask(key, partial(sync, rt, kind, key), kind.name)


async def sync(rt: Runtime, kind: Kind[KeyT, ViewT, WorldT, ChildrenT, ActionT], key: KeyT) -> None:
    """Bring one object's children and status in line with its spec (idempotent). A new object's first
    sync (it creates the children) waits for one of the runtime's start slots."""
    view: ViewT | None = rt.indexes.first(kind.index, key)
    new = view is not None and not (rt.written.get(key) or view["status"])
    async with rt.start_slots if new else contextlib.nullcontext():
        for _ in range(MAX_PASSES):
            view = rt.indexes.first(kind.index, key)
            if view is None or view["metadata"]["deletionTimestamp"]:
                return
            rt.synced_meta[key] = view["metadata"]
            world = await kind.observe(rt, view)
            desired = await _desired(kind, world)
            decision = kind.decide(world, desired, datetime.now(UTC))
            resync = partial(request_sync, rt, kind, key)
            meta = view["metadata"]
            await rt.write_status(
                key,
                kind.plural,
                meta["namespace"],
                meta["name"],
                view["status"],
                decision.status,
                kind.state_field,
                resync,
                news=bool(decision.events),
            )
            rt.post(view, decision.events)
            rt.after(key, "requeue", decision.requeue_after, resync)
            if not await kind.apply(rt, key, world, decision):
                return


async def _desired(kind: Kind[Any, Any, WorldT, ChildrenT, Any], world: WorldT) -> Desired[ChildrenT]:
    """The desired step; none when the world wants no children this pass."""
    if not world.wants_children:
        return Desired()
    if kind.build_in_thread:
        return await asyncio.to_thread(build_desired, kind, world)
    return build_desired(kind, world)


def build_desired(kind: Kind[Any, Any, WorldT, ChildrenT, Any], world: WorldT) -> Desired[ChildrenT]:
    """The children the world's spec asks for, or the build error as data for decide to report."""
    if not world.wants_children:
        return Desired()
    try:
        return Desired(children=kind.desired(world))
    except BuildError as e:
        return Desired(error=(e.code, e.message))
