"""Kubeflow training-operator (the peer) run out of cluster against the local control plane.

Built by hack/build-peer.sh. It starts no controller until its webhook certificates are ready, which in
a pod the kubelet provides by mounting a Secret. Out of cluster the bench does that part
(docs/performance.md): namespace `kubeflow`, an empty Secret `training-operator-webhook-cert`, a
ValidatingWebhookConfiguration `validator.training-operator.kubeflow.org` with no webhooks (so the
apiserver never calls one), and, once the operator's cert rotator has filled the Secret, its tls.crt,
tls.key and ca.crt written to the directory the rotator waits on. Its PyTorch controller runs with the
flags it ships with (one worker thread, controller-runtime's default client rate limits).
"""

from __future__ import annotations

import base64
import contextlib
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from kubernetes import client

NAMESPACE = "kubeflow"
SECRET = "training-operator-webhook-cert"
WEBHOOK_CONFIG = "validator.training-operator.kubeflow.org"
# Fixed in training-operator v1.8.1 (pkg/cert/cert.go: certDir); the webhook server reads the same place.
CERT_DIR = Path("/tmp/k8s-webhook-server/serving-certs")
READY_LOG = '"controller": "pytorchjob-controller"'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PeerProcess:
    def __init__(self, binary: Path, kubeconfig: str, log_path: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, api: client.ApiClient, timeout: float = 120) -> None:
        core = client.CoreV1Api(api)
        _prepare(core, client.AdmissionregistrationV1Api(api))
        health = free_port()
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                str(self.binary),
                f"-kubeconfig={self.kubeconfig}",
                "-enable-scheme=pytorchjob",
                f"-metrics-bind-address=127.0.0.1:{free_port()}",
                f"-health-probe-bind-address=127.0.0.1:{health}",
                f"-webhook-server-port={free_port()}",
                "-zap-log-level=info",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"training-operator exited {self.proc.returncode}: {self.log_tail()}")
            # Until the controller starts: the rotator may (re)generate the certs at any point.
            if _write_certs(core) and _started(self.log_text()):
                return
            time.sleep(0.5)
        raise RuntimeError(f"training-operator did not start its controller in {timeout}s: {self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self) -> str:
        return self.log_text()[-3000:]


def _started(log: str) -> bool:
    return any(READY_LOG in line and "Starting workers" in line for line in log.splitlines())


def cleanup(api: client.ApiClient) -> None:
    """Remove what _prepare made (nothing else on the control plane refers to it)."""
    with contextlib.suppress(client.ApiException):
        client.AdmissionregistrationV1Api(api).delete_validating_webhook_configuration(WEBHOOK_CONFIG)
    with contextlib.suppress(client.ApiException):
        client.CoreV1Api(api).delete_namespace(NAMESPACE)


def _prepare(core: client.CoreV1Api, admission: client.AdmissionregistrationV1Api) -> None:
    """What the in-cluster install provides: its namespace, the (empty) cert Secret, the webhook config."""
    for create in (
        lambda: core.create_namespace({"metadata": {"name": NAMESPACE}}),
        lambda: core.create_namespaced_secret(NAMESPACE, {"metadata": {"name": SECRET}}),
        lambda: admission.create_validating_webhook_configuration({"metadata": {"name": WEBHOOK_CONFIG}}),
    ):
        try:
            create()
        except client.ApiException as e:
            if e.status != 409:
                raise


def _write_certs(core: client.CoreV1Api) -> bool:
    """Copy the Secret the rotator filled to the cert dir (a kubelet would mount it); False until filled."""
    data: dict[str, Any] = core.read_namespaced_secret(SECRET, NAMESPACE).data or {}
    if not all(k in data for k in ("tls.crt", "tls.key", "ca.crt")):
        return False
    CERT_DIR.mkdir(parents=True, exist_ok=True)
    for key in ("tls.crt", "tls.key", "ca.crt"):
        path = CERT_DIR / key
        content = base64.b64decode(data[key])
        if path.exists() and path.read_bytes() == content:
            continue
        path.write_bytes(content)
        with contextlib.suppress(OSError):
            path.chmod(0o600)
    return True
