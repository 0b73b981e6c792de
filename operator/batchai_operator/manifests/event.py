"""A core/v1 Event about one of the operator's objects (what `kubectl describe` lists under Events)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ..decide.common import Event, fmt_time
from ..names import MANAGED_BY

# The apiserver refuses longer messages; a long one keeps its start and its end.
MAX_MESSAGE = 1024
CUT = " [...] "


def event_manifest(obj: Mapping[str, Any], event: Event, now: datetime, instance: str) -> dict[str, Any]:
    """The Event about `obj` (a view with apiVersion, kind and metadata name, namespace, uid), from this
    operator (`instance`: its pod, or host)."""
    meta = obj["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"namespace": meta["namespace"], "generateName": f"{meta['name']}."},
        "involvedObject": {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
        },
        "type": event.type,
        "reason": event.reason,
        "message": _shortened(event.message),
        "source": {"component": MANAGED_BY},
        "reportingComponent": MANAGED_BY,
        "reportingInstance": instance,
        "firstTimestamp": fmt_time(now),
        "lastTimestamp": fmt_time(now),
        "count": 1,
    }


def _shortened(message: str) -> str:
    if len(message) <= MAX_MESSAGE:
        return message
    keep = (MAX_MESSAGE - len(CUT)) // 2
    return f"{message[:keep]}{CUT}{message[-keep:]}"
