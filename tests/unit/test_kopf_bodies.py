"""reconcile/kopf_bodies.py: kopf's watch loop reads events without managedFields, through the function
install() wraps, and nothing else of an event changes."""

from __future__ import annotations

import copy
from collections.abc import AsyncGenerator
from typing import Any

from kopf._cogs.clients import watching

from batchai_operator.reconcile import kopf_bodies


def _event(kind: Any = "ADDED") -> dict[str, Any]:
    meta = {"name": "a", "uid": "u", "managedFields": [{"manager": "m", "fieldsV1": {"f:spec": {}}}]}
    return {"type": kind, "object": {"metadata": meta, "spec": {"x": 1}, "status": {"y": 2}}}


async def test_kopfs_watch_loop_reads_events_without_managed_fields() -> None:
    """Through kopf's own infinite_watch: a kopf upgrade that stops reading continuous_watch from its
    module fails here, not silently at scale."""
    import batchai_operator.main  # noqa: F401  (installs)

    assert watching.continuous_watch is not kopf_bodies.KOPFS
    sent = [_event(None), watching.Bookmark.LISTED, _event("MODIFIED")]

    async def fake(**_: Any) -> AsyncGenerator[Any, None]:
        for e in copy.deepcopy(sent):
            yield e

    wrapped = watching.continuous_watch
    watching.continuous_watch = kopf_bodies.without_managed_fields(fake)  # type: ignore[assignment]
    try:
        got = []
        async for event in watching.infinite_watch(
            settings=watching.configuration.OperatorSettings(),
            resource=watching.references.Resource("", "v1", "pods", namespaced=True),
            namespace=None,
            _iterations=1,
        ):
            got.append(event)
            if len(got) == len(sent):
                break
    finally:
        watching.continuous_watch = wrapped  # type: ignore[assignment]
    assert got[1] is watching.Bookmark.LISTED
    for event, original in ((got[0], sent[0]), (got[2], sent[2])):
        assert "managedFields" not in event["object"]["metadata"]
        original["object"]["metadata"].pop("managedFields")
        assert event == original


def test_slim_leaves_other_inputs_alone() -> None:
    assert kopf_bodies.slim(watching.Bookmark.LISTED) is watching.Bookmark.LISTED
    assert kopf_bodies.slim({"type": "ERROR", "object": {"code": 410}}) == {
        "type": "ERROR",
        "object": {"code": 410},
    }
