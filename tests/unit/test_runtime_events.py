"""The operator's own Event poster (Runtime.post, manifests/event.py): what an Event says, and that a
refused post is tried again, then logged, never raised into a sync."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

from batchai_operator.config import OperatorConfig
from batchai_operator.decide.common import Event
from batchai_operator.manifests.event import MAX_MESSAGE, event_manifest
from batchai_operator.reconcile import runtime
from batchai_operator.reconcile.runtime import Runtime
from recording_kube import RecordingKube

JOB = {
    "apiVersion": "batchai.io/v1",
    "kind": "TrainingJob",
    "metadata": {"name": "cntk", "namespace": "team-a", "uid": "uid-1"},
}


def test_an_event_names_its_object_and_the_operator_and_keeps_both_ends_of_a_long_message() -> None:
    now = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
    manifest = event_manifest(JOB, Event("Warning", "Failed", "x" * 600 + "y" * 600), now, "pod-1")
    assert manifest["metadata"] == {"namespace": "team-a", "generateName": "cntk."}
    assert manifest["involvedObject"] == {
        "apiVersion": "batchai.io/v1",
        "kind": "TrainingJob",
        "name": "cntk",
        "namespace": "team-a",
        "uid": "uid-1",
    }
    assert (manifest["type"], manifest["reason"]) == ("Warning", "Failed")
    assert (
        manifest["source"] == {"component": "batchai-operator"} and manifest["reportingInstance"] == "pod-1"
    )
    assert manifest["firstTimestamp"] == manifest["lastTimestamp"] == "2026-12-07T18:00:00Z"
    message = manifest["message"]
    assert len(message) <= MAX_MESSAGE and message.startswith("x") and message.endswith("y")
    assert event_manifest(JOB, Event("Normal", "Started", "short"), now, "p")["message"] == "short"


class RefusingKube(RecordingKube):
    def __init__(self, refusals: int) -> None:
        super().__init__()
        self.refusals = refusals

    async def post_event(self, manifest: dict[str, Any]) -> None:
        if self.refusals > 0:
            self.refusals -= 1
            raise ConnectionError("the apiserver went away")
        await super().post_event(manifest)


@pytest.mark.parametrize(("refusals", "posted"), [(0, 1), (2, 1), (3, 0)])
async def test_a_refused_event_is_tried_again_twice_then_logged(
    refusals: int, posted: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runtime, "EVENT_RETRY_SECONDS", (0.0, 0.0))
    kube = RefusingKube(refusals)
    rt = Runtime(kube, OperatorConfig(), {})
    rt.post(JOB, [Event("Normal", "Started", "it runs")])
    await rt.settle()
    assert [m["reason"] for kind, m in kube.calls if kind == "event"] == ["Started"] * posted
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert logged == (
        []
        if posted
        else ["could not post the Event Started about cntk: ConnectionError: the apiserver went away"]
    )


async def test_an_event_the_apiserver_refuses_for_good_is_logged_at_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A 403 (RBAC) is not tried again: it would be refused the same way; its words are logged."""

    class ForbiddingKube(RecordingKube):
        tries = 0

        async def post_event(self, manifest: dict[str, Any]) -> None:
            self.tries += 1
            raise ApiException(status=403, reason="Forbidden")

    monkeypatch.setattr(runtime, "EVENT_RETRY_SECONDS", (0.0, 0.0))
    kube = ForbiddingKube()
    rt = Runtime(kube, OperatorConfig(), {})
    rt.post(JOB, [Event("Normal", "Started", "it runs")])
    await rt.settle()
    assert kube.tries == 1
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert logged == ["could not post the Event Started about cntk: Forbidden"]
