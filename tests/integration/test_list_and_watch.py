"""kube.Kube.list_and_watch, the operator's own list-then-watch of its job pods and batch Jobs
(reconcile/own_watches.py), against the real apiserver: the first list in pages, then every change
(ADDED, MODIFIED, DELETED) from the list's version, in one namespace only, by label."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from devcluster import DevCluster, wait_for
from kubernetes import client

from batchai_operator import kube as kube_module
from batchai_operator.kube import Kube, collection_path

pytestmark = pytest.mark.integration

LABEL = "batchai-test/watched"


def config_map(name: str, watched: bool = True, data: str = "1") -> dict[str, Any]:
    labels = {LABEL: "yes"} if watched else {}
    return {"metadata": {"name": name, "labels": labels}, "data": {"v": data}}


def test_lists_in_pages_then_streams_every_change_of_the_selected_objects(
    devcluster: DevCluster, namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    core = client.CoreV1Api()
    for i in range(5):
        core.create_namespaced_config_map(namespace, config_map(f"before-{i}"))
    core.create_namespaced_config_map(namespace, config_map("unlabelled", watched=False))
    monkeypatch.setattr(kube_module, "LIST_PAGE", 2)  # 5 objects: 3 pages
    pages: list[int] = []
    real_request = Kube._request

    def counted(self: Kube, method: str, path: str, *args: Any, **kw: Any) -> bytes:
        if "watch" not in dict(kw.get("query") or []):
            pages.append(1)
        return real_request(self, method, path, *args, **kw)

    monkeypatch.setattr(Kube, "_request", counted)
    listed: list[list[str]] = []
    events: list[tuple[str, str, str]] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=Kube().list_and_watch,
        args=(
            collection_path("/api/v1", "configmaps", namespace),
            ("labelSelector", LABEL),
            lambda items: listed.append(sorted(i["metadata"]["name"] for i in items)),
            lambda kind, obj: events.append(
                (kind, obj["metadata"]["name"], (obj.get("data") or {}).get("v"))
            ),
            stop,
        ),
        kwargs={"server_timeout": 10, "client_timeout": 20.0},
        daemon=True,
    )
    thread.start()
    try:
        wait_for(lambda: listed, timeout=15, what="the first list")
        assert listed == [[f"before-{i}" for i in range(5)]] and len(pages) == 3
        core.create_namespaced_config_map(namespace, config_map("after"))
        core.create_namespaced_config_map(namespace, config_map("after-unlabelled", watched=False))
        core.patch_namespaced_config_map("before-0", namespace, {"data": {"v": "2"}})
        core.delete_namespaced_config_map("before-1", namespace)
        wait_for(lambda: len(events) >= 3, timeout=15, what="the three changes")
        assert events == [
            ("ADDED", "after", "1"),
            ("MODIFIED", "before-0", "2"),
            ("DELETED", "before-1", "1"),
        ]
        assert listed == [[f"before-{i}" for i in range(5)]]  # no list again
    finally:
        stop.set()
        thread.join(30)
