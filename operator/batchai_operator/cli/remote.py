"""`job node exec` and `cluster node exec`: a command in a container on a node, and ports forwarded to it,
through the API server (the kubernetes client's exec and port-forward streams). Batch AI did both over
SSH with the cluster's admin key; here no key is handed out: the caller's RBAC (pods/exec,
pods/portforward) decides.
"""

from __future__ import annotations

import os
import select
import socket
import sys
import threading
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.stream import portforward, stream

from .errors import EXIT_USAGE, CliError
from .k8s import CliKube

# Batch AI ran `bash -ilc "<cmd>"` on the node; images without bash get sh.
SHELL_WRAPPER = 'if command -v bash >/dev/null 2>&1; then exec bash -lc "$0"; else exec sh -c "$0"; fi'
LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1")


@dataclass(frozen=True)
class Forward:
    """-L local:host:remote."""

    local: int
    remote: int


def parse_forward(text: str) -> Forward:
    """az's -L LOCAL:HOST:REMOTE; HOST must be the node itself (localhost): the container's ports are
    what the API server forwards to."""
    parts = text.split(":")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[2].isdigit():
        raise CliError(
            f"-L {text!r}: expected LOCAL_PORT:HOST:REMOTE_PORT, e.g. 6006:localhost:6006", EXIT_USAGE
        )
    if parts[1] not in LOCAL_HOSTS:
        raise CliError(
            f"-L {text!r}: only ports of the container itself (localhost) can be forwarded through the API "
            "server; Batch AI's SSH tunnel could reach other hosts",
            EXIT_USAGE,
        )
    return Forward(int(parts[0]), int(parts[2]))


def run_command(kube: CliKube, ns: str, pod: str, container: str, command: str) -> int:
    """Run `command` in the container, its stdout and stderr copied to ours; its exit code."""
    resp: Any = kube.call(
        f"exec in pod {pod} of namespace {ns}",
        lambda: stream(
            kube.core.connect_get_namespaced_pod_exec,
            pod,
            ns,
            container=container,
            command=["sh", "-c", SHELL_WRAPPER, command],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
            _preload_content=False,
        ),
        verb="exec into",
    )
    while resp.is_open():
        resp.update(timeout=1)
        if resp.peek_stdout():
            sys.stdout.write(resp.read_stdout())
            sys.stdout.flush()
        if resp.peek_stderr():
            sys.stderr.write(resp.read_stderr())
            sys.stderr.flush()
    sys.stdout.write(resp.read_stdout() or "")
    sys.stderr.write(resp.read_stderr() or "")
    try:
        code = resp.returncode
    except (TypeError, KeyError, IndexError, ValueError):  # no status on the error channel
        code = None
    return int(code) if code is not None else 1


def _relay(a: socket.socket, b: Any) -> None:
    """Copy bytes both ways until either side closes."""
    try:
        while True:
            readable, _, _ = select.select([a, b], [], [], 1)
            for s in readable:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
    except OSError:
        return
    finally:
        a.close()


class Forwarder:
    """Listens on 127.0.0.1:local; each connection gets its own port-forward stream to the pod."""

    def __init__(self, kube: CliKube, ns: str, pod: str, forward: Forward) -> None:
        self.kube, self.ns, self.pod, self.forward = kube, ns, pod, forward
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.server.bind(("127.0.0.1", forward.local))
        except OSError as exc:
            raise CliError(f"-L: cannot listen on 127.0.0.1:{forward.local}: {exc.strerror}") from None
        self.server.listen(16)
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> Forwarder:
        self.thread.start()
        return self

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._connect, args=(conn,), daemon=True).start()

    def _connect(self, conn: socket.socket) -> None:
        try:
            # A client of its own: the stream helpers swap the client's request method while they connect,
            # which must not race the exec stream's client.
            core: Any = client.CoreV1Api(client.ApiClient(self.kube.api.configuration))
            pf = portforward(
                core.connect_get_namespaced_pod_portforward,
                self.pod,
                self.ns,
                ports=str(self.forward.remote),
            )
            remote = pf.socket(self.forward.remote)
            remote.setblocking(True)
        except Exception as exc:  # the stream could not open: tell the user, drop this connection
            print(f"error: port forward to {self.pod}:{self.forward.remote}: {exc}", file=sys.stderr)
            conn.close()
            return
        _relay(conn, remote)
        remote.close()

    def close(self) -> None:
        self.server.close()


def interactive_shell(context: str | None, ns: str, pod: str, container: str) -> None:
    """No --exec and no -L: an interactive shell, as az's SSH session was: `kubectl exec -it` (this is a
    kubectl plugin, so kubectl is there), replacing this process."""
    argv = ["kubectl", "exec", "-it", "-n", ns, pod, "-c", container]
    if context:
        argv += ["--context", context]
    argv += ["--", "sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash -il; else exec sh -l; fi"]
    print(f"$ {' '.join(argv[:8])} -- <login shell>", file=sys.stderr)
    os.execvp("kubectl", argv)
