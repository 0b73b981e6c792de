"""What both kinds' decisions share: what they get (`Desired`) and return (`Decision`, `Event`), and the
status helpers (time stamps, Kubernetes conditions, status merge patches)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, NamedTuple, TypeVar

from ..api.trainingjob import Condition

_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def fmt_time(t: datetime) -> str:
    """RFC 3339 in UTC, to the second, as Kubernetes writes time stamps."""
    return t.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
    except ValueError:
        return None


class Event(NamedTuple):
    """A Kubernetes Event to post about the object: type (Normal/Warning), reason, message."""

    type: str
    reason: str
    message: str


ChildrenT = TypeVar("ChildrenT")
StatusT = TypeVar("StatusT")
ActionT = TypeVar("ActionT")


@dataclass(frozen=True)
class Desired(Generic[ChildrenT]):
    """The children an object's spec asks for (manifests/ builds them in reconcile's desired step), or
    why its spec cannot become children here. Both None: not built this pass (none are wanted now)."""

    children: ChildrenT | None = None
    error: tuple[str, str] | None = None  # (Batch AI error code, message)


@dataclass(frozen=True)
class Decision(Generic[StatusT, ActionT]):
    """A decision: the object's whole status, the Events to post, the actions to take (after the status
    is written) and when to look again whatever happens."""

    status: StatusT
    events: list[Event] = field(default_factory=list)
    actions: list[ActionT] = field(default_factory=list)
    requeue_after: float | None = None  # seconds


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: bool,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """`conditions` with the one of `type_` set; lastTransitionTime is kept when its status did not change.

    The order of existing conditions is kept; a new type is appended.
    """
    value = "True" if status else "False"
    old = next((c for c in conditions if c.type == type_), None)
    wanted = (value, reason, message, generation)
    if old is not None and (old.status, old.reason, old.message, old.observed_generation) == wanted:
        return list(conditions)  # as it was: most syncs, and no model to build (make bench's profile)
    since = old.last_transition_time if old is not None and old.status == value else None
    new = Condition(
        type=type_,
        status=value,
        reason=reason,
        message=message,
        last_transition_time=since or fmt_time(now),
        observed_generation=generation,
    )
    out = [new if c.type == type_ else c for c in conditions]
    if old is None:
        out.append(new)
    return out


def find_condition(conditions: Sequence[Condition] | None, type_: str) -> Condition | None:
    return next((c for c in conditions or [] if c.type == type_), None)


def status_patch(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
    """The JSON merge patch turning status `old` into `new` (both as on the wire), or None if equal.

    Changed top-level keys are sent whole, with explicit nulls for keys they lost at any depth (a merge
    patch keeps what it does not mention); top-level keys that are gone become null.
    """
    patch: dict[str, Any] = {k: _with_nulls(old.get(k), v) for k, v in new.items() if old.get(k) != v}
    for k, v in old.items():
        if k not in new and v is not None:
            patch[k] = None
    return patch or None


def _with_nulls(old: Any, new: Any) -> Any:
    if not isinstance(old, Mapping) or not isinstance(new, Mapping):
        return new
    out: dict[str, Any] = {k: None for k in old if k not in new}
    out.update({k: _with_nulls(old.get(k), v) for k, v in new.items()})
    return out
