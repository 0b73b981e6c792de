"""kopf's watch events without the objects' managedFields (kopf 1.45).

kopf queues each object's event for that object's worker as it reads it, and reads a whole first list
before the workers catch up: at an operator's start with 10,000 finished TrainingJobs, 10,000 whole
bodies wait at once, and the memory they took stays with the process (Python keeps the partly used
arenas). managedFields (who set which field, per field) is a third to a half of each body, and nothing
in kopf or in this operator reads it (observe/views.py drops it from the indexes too).

kopf has no setting to filter bodies: `install` wraps the function its watch loop reads the list and
the watch stream through (tests/unit/test_kopf_bodies.py fails if a kopf upgrade stops calling it there).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from kopf._cogs.clients import watching

KOPFS = watching.continuous_watch  # kopf's own (the tests compare with it)


def slim(event: Any) -> Any:
    """The event with its object's metadata.managedFields dropped (in place: kopf made the dict)."""
    if isinstance(event, dict):
        meta = (event.get("object") or {}).get("metadata")
        if isinstance(meta, dict):
            meta.pop("managedFields", None)
    return event


def without_managed_fields(
    continuous_watch: Callable[..., AsyncIterator[Any]],
) -> Callable[..., AsyncIterator[Any]]:
    async def slimmed(**kwargs: Any) -> AsyncIterator[Any]:
        events = continuous_watch(**kwargs)
        try:
            async for event in events:
                yield slim(event)
        finally:  # closed with the loop that reads it, as kopf's own generator would be
            close = getattr(events, "aclose", None)
            if close is not None:
                await close()

    return slimmed


def install() -> None:
    """Make kopf's watch loop read slimmed events (before `kopf run` starts the operator)."""
    if watching.continuous_watch is KOPFS:
        watching.continuous_watch = without_managed_fields(KOPFS)
