"""Creating an object's children, for both kinds: `ensure(manifest, owner)` creates a child, adopts one
of its name that the owner controls, and refuses one it does not (or one the apiserver will not take).

A refusal is returned as data (observe/memory.py's Refusal), for the kind's memory and its next decision.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

from kubernetes.client.exceptions import ApiException

from ..kube import KubeClient
from ..kube_errors import api_message
from ..observe.memory import Refusal

# Statuses with which the apiserver refuses a write for good reason (an invalid object, admission): the
# outcome to remember. Anything else (a timeout, a conflict, a 5xx) is an error the sync is retried for.
REFUSED = (400, 403, 422)
T = TypeVar("T")


async def ensure(kube: KubeClient, manifest: dict[str, Any], owner_uid: str | None) -> Refusal | None:
    """Create `manifest`. One of that name that exists already is adopted when `owner_uid` controls it (a
    retry, or a restart between a create and its watch event) and refused otherwise: one left by a deleted
    object of the same name, not yet garbage-collected, must not be run with. `owner_uid` None: any
    existing one is ours (its name holds the owner's uid, or its content's hash)."""
    kind, meta = manifest["kind"], manifest["metadata"]
    created = await refused_or(kind, kube.create(manifest))
    if isinstance(created, Refusal):
        return created
    if created or owner_uid is None:
        return None
    if await kube.controller_uid(kind, meta["namespace"], meta["name"]) == owner_uid:
        return None
    message = (
        f"{kind} {meta['name']} exists and belongs to another object (a deleted one of the same name may "
        "still be being cleaned up)"
    )
    return Refusal(kind, 409, message, datetime.now(UTC))


async def refused_or(kind: str, write: Awaitable[T]) -> T | Refusal:
    """The outcome of a write of a `kind` child, or the apiserver's refusal of it."""
    try:
        return await write
    except ApiException as e:
        if e.status not in REFUSED:
            raise
        return Refusal(kind, e.status, api_message(e), datetime.now(UTC))
