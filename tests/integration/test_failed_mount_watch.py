"""The operator's FailedMount watch (kube.Kube.watch_events with reconcile/trainingjob.py's
FAILED_MOUNT_EVENTS) against the real apiserver, through a TCP relay that can go silent like a half-open
connection (the one network fault a test can play here).

- a new watch does not replay the Events that exist when it starts (it begins at a fresh list);
- a silent connection ends in the client-side timeout, and the watch recovers and delivers what was
  posted meanwhile;
- with a namespace (chart value watchNamespaces) it watches that namespace only.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from devcluster import DevCluster, wait_for
from kubernetes import client

from batchai_operator.kube import Kube
from batchai_operator.reconcile.trainingjob import FAILED_MOUNT_EVENTS

pytestmark = pytest.mark.integration


class Relay:
    """127.0.0.1:<port> -> the apiserver, byte for byte (TLS passes through); `frozen` holds every byte."""

    def __init__(self, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [conn, upstream]
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                while self.frozen.is_set() and not self.closed.is_set():
                    time.sleep(0.05)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.closed.set()
        self.server.close()
        for s in self.sockets:
            s.close()


@pytest.fixture
def relay(devcluster: DevCluster) -> Iterator[Relay]:
    port = int(client.Configuration.get_default_copy().host.rsplit(":", 1)[1])
    r = Relay(port)
    yield r
    r.close()


def kube_via(relay: Relay) -> Kube:
    cfg = client.Configuration.get_default_copy()
    cfg.host = f"https://127.0.0.1:{relay.port}"
    return Kube(client.ApiClient(cfg))


def post_failed_mount(namespace: str, name: str) -> None:
    client.CoreV1Api().create_namespaced_event(
        namespace,
        {
            "metadata": {"generateName": f"{name}-"},
            "involvedObject": {"kind": "Pod", "namespace": namespace, "name": name, "uid": str(uuid.uuid4())},
            "reason": "FailedMount",
            "type": "Warning",
            "message": f"MountVolume.SetUp failed ({name})",
            "source": {"component": "kubelet"},
        },
    )


class Watch:
    def __init__(self, kube: Kube, namespace: str | None, **timeouts: Any) -> None:
        self.seen: list[str] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=kube.watch_events,
            args=(
                FAILED_MOUNT_EVENTS,
                lambda e: self.seen.append(e["involvedObject"]["name"]),
                self.stop,
                namespace,
            ),
            kwargs=timeouts,
            daemon=True,
        )
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


def test_a_new_watch_does_not_replay_old_events_and_sees_new_ones(namespace: str, relay: Relay) -> None:
    post_failed_mount(namespace, "old")
    other = f"{namespace}-other"
    client.CoreV1Api().create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=other)))
    watch = Watch(kube_via(relay), namespace, client_timeout=10.0)
    try:
        time.sleep(2)  # started, and listed
        post_failed_mount(other, "elsewhere")  # another namespace: not watched
        post_failed_mount(namespace, "new")
        wait_for(lambda: "new" in watch.seen, timeout=15, what="the new Event")
        assert watch.seen == ["new"]
    finally:
        watch.close()
        client.CoreV1Api().delete_namespace(other)


def test_a_silent_connection_times_out_and_the_watch_recovers(
    namespace: str, relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="batchai_operator.kube")
    watch = Watch(kube_via(relay), namespace, client_timeout=3.0, retry_seconds=0.5)
    try:
        time.sleep(2)
        post_failed_mount(namespace, "before")
        wait_for(lambda: "before" in watch.seen, timeout=15, what="the first Event")
        relay.frozen.set()  # half-open: the server's bytes no longer arrive
        post_failed_mount(namespace, "during")
        wait_for(
            lambda: any("watch of Events" in r.getMessage() for r in caplog.records),
            timeout=15,
            what="the client timeout",
        )
        assert "during" not in watch.seen
        relay.frozen.clear()
        wait_for(lambda: "during" in watch.seen, timeout=20, what="the Event posted while silent")
        assert watch.seen.count("before") == 1
    finally:
        watch.close()
