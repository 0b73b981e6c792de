"""A real Kueue (sigs.k8s.io/kueue, built by hack/build-kueue.sh) against the local control plane.

Kueue runs as a local process with the admin kubeconfig, as the other control-plane components do. Its
webhooks must be reachable from the apiserver, which here runs on the same host: the upstream webhook
configurations (copied next to the binary) are applied with `clientConfig.url` pointing at Kueue's
webhook server on 127.0.0.1, whose serving certificate is signed by a CA made for this run and given as
`caBundle` (Kueue's internal cert management would issue a certificate for its in-cluster Service name,
which the apiserver cannot reach here). Only the webhooks for Kueue's own kinds and batch/v1 Jobs are
kept (the only integration enabled), the Job ones limited to namespaces labelled KUEUE_NAMESPACE_LABEL so
no other test's Jobs are intercepted; they are deleted again before Kueue stops.

Kueue v0.17 reads its metrics-server certificate from the fixed path /etc/kueue/metrics/certs (when its
internal cert management is off) and exits if it is missing: the fixture writes a self-signed pair
there when none exists (the metrics endpoint itself is disabled).
"""

from __future__ import annotations

import base64
import os
import signal
import socket
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from devcluster import wait_for
from kubernetes import client

REPO = Path(__file__).resolve().parents[2]
KUEUE_NAMESPACE_LABEL = "batchai.io/kueue-test"
METRICS_CERTS = Path("/etc/kueue/metrics/certs")
WEBHOOK_NAMES = ("batchai-test-kueue-mutating", "batchai-test-kueue-validating")
KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_VERSION_API = "v1beta2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(*cmd: str, input: str | None = None) -> str:
    out = subprocess.run(list(cmd), capture_output=True, text=True, input=input, timeout=120)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
    return out.stdout


def build() -> Path:
    """hack/build-kueue.sh: a no-op when this version is cached (`make test` and .ci/run build it first)."""
    out = _run(str(REPO / "hack" / "build-kueue.sh"))
    return Path(out.strip().splitlines()[-1])


def make_certs(d: Path) -> None:
    """A CA, and a serving certificate for 127.0.0.1 signed by it (tls.crt, tls.key)."""
    d.mkdir(parents=True, exist_ok=True)
    _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=kueue-test-ca", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"))  # fmt: skip
    _run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", str(d / "tls.key"), "-out", str(d / "tls.csr"))  # fmt: skip
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _run("openssl", "x509", "-req", "-in", str(d / "tls.csr"), "-CA", str(d / "ca.crt"), "-CAkey",
         str(d / "ca.key"), "-CAcreateserial", "-days", "2", "-out", str(d / "tls.crt"),
         "-extfile", str(ext))  # fmt: skip


def ensure_metrics_certs(source: Path) -> None:
    if (METRICS_CERTS / "tls.crt").exists() and (METRICS_CERTS / "tls.key").exists():
        return
    try:
        METRICS_CERTS.mkdir(parents=True, exist_ok=True)
        for name in ("tls.crt", "tls.key"):
            tmp = METRICS_CERTS / f".{name}.{os.getpid()}"
            tmp.write_bytes((source / name).read_bytes())
            tmp.chmod(0o600)
            tmp.rename(METRICS_CERTS / name)
    except PermissionError as e:
        raise RuntimeError(
            f"Kueue v0.17 needs a certificate at {METRICS_CERTS} (a fixed path) and this user cannot "
            f"create it: {e}. Create it once as root: "
            f"mkdir -p {METRICS_CERTS} && cp {source}/tls.* {METRICS_CERTS}/"
        ) from e


def webhook_configurations(upstream: Path, port: int, ca_bundle: str) -> list[dict[str, Any]]:
    """Upstream's webhook configurations, narrowed (Kueue's kinds and batch/v1 Jobs) and pointed at
    https://127.0.0.1:<port> with our CA."""
    out = []
    for doc, name in zip(
        [d for d in yaml.safe_load_all(upstream.read_text()) if d], WEBHOOK_NAMES, strict=True
    ):
        kept = []
        for hook in doc["webhooks"]:
            groups = {g for r in hook["rules"] for g in r["apiGroups"]}
            if groups not in ({KUEUE_GROUP}, {"batch"}):
                continue
            path = hook["clientConfig"]["service"]["path"]
            hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca_bundle}
            hook["timeoutSeconds"] = 10
            if groups == {"batch"}:
                hook["namespaceSelector"] = {"matchLabels": {KUEUE_NAMESPACE_LABEL: "true"}}
            kept.append(hook)
        doc["metadata"] = {"name": name}
        doc["webhooks"] = kept
        out.append(doc)
    return out


class KueueProcess:
    def __init__(self, bin_dir: Path, workdir: Path) -> None:
        self.bin_dir = bin_dir
        self.workdir = workdir
        self.certs = workdir / "certs"
        self.webhook_port = free_port()
        self.health_port = free_port()
        self.log_path = workdir / "kueue.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def install(self) -> None:
        _run("kubectl", "apply", "--server-side", "--force-conflicts", "--field-manager=batchai-kueue-tests",
             "-f", str(self.bin_dir / "crds"))  # fmt: skip
        crds = [
            f"crd/{p}.{KUEUE_GROUP}" for p in ("workloads", "clusterqueues", "localqueues", "resourceflavors")
        ]
        # `kubectl wait` fails at once while a new CRD has no status.conditions yet: retry briefly.
        deadline = time.monotonic() + 60
        while True:
            try:
                _run("kubectl", "wait", "--for=condition=Established", "--timeout=60s", *crds)
                break
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        ns = _run("kubectl", "create", "namespace", "kueue-system", "--dry-run=client", "-o", "yaml")
        _run("kubectl", "apply", "-f", "-", input=ns)

    def start(self) -> None:
        make_certs(self.certs)
        ensure_metrics_certs(self.certs)
        config = {
            "apiVersion": "config.kueue.x-k8s.io/v1beta2",
            "kind": "Configuration",
            "namespace": "kueue-system",
            "health": {"healthProbeBindAddress": f"127.0.0.1:{self.health_port}"},
            "metrics": {"bindAddress": "0"},
            "webhook": {"port": self.webhook_port, "host": "127.0.0.1", "certDir": str(self.certs)},
            "leaderElection": {"leaderElect": False},
            "internalCertManagement": {"enable": False},
            "integrations": {"frameworks": ["batch/job"]},
        }
        config_path = self.workdir / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [str(self.bin_dir / "kueue"), f"--config={config_path}",
                 "--feature-gates=VisibilityOnDemand=false", "--zap-log-level=info"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kueue exited {self.proc.returncode}:\n{self.log_text()[-4000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/readyz", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("kueue not ready in 90 s:\n" + self.log_text()[-4000:])
        ca = (self.certs / "ca.crt").read_bytes()
        hooks = webhook_configurations(
            self.bin_dir / "webhook" / "manifests.yaml", self.webhook_port, base64.b64encode(ca).decode()
        )
        _run("kubectl", "apply", "-f", "-", input=yaml.safe_dump_all(hooks))

    def stop(self) -> None:
        for kind, name in zip(
            ("mutatingwebhookconfiguration", "validatingwebhookconfiguration"), WEBHOOK_NAMES, strict=True
        ):
            subprocess.run(
                ["kubectl", "delete", kind, name, "--ignore-not-found"], capture_output=True, timeout=60
            )
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


@pytest.fixture(scope="module")
def kueue(devcluster: object, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KueueProcess]:
    proc = KueueProcess(build(), tmp_path_factory.mktemp("kueue"))
    proc.install()
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def kueue_object(plural: str, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
    body = {"apiVersion": f"{KUEUE_GROUP}/{KUEUE_VERSION_API}", **body}
    api = client.CustomObjectsApi()
    if namespace:
        return dict(
            api.create_namespaced_custom_object(KUEUE_GROUP, KUEUE_VERSION_API, namespace, plural, body)
        )
    return dict(api.create_cluster_custom_object(KUEUE_GROUP, KUEUE_VERSION_API, plural, body))


@contextmanager
def gpu_cluster_queue(namespace: str, gpus: int) -> Iterator[str]:
    """A ResourceFlavor, a ClusterQueue with `gpus` GPUs for the namespace (labelled for Kueue's
    webhooks), and LocalQueue `gpu` in it; the cluster-scoped ones are deleted afterwards."""
    client.CoreV1Api().patch_namespace(namespace, {"metadata": {"labels": {KUEUE_NAMESPACE_LABEL: "true"}}})
    suffix = uuid.uuid4().hex[:6]
    flavor, cq = f"gpu-{suffix}", f"batchai-gpu-{suffix}"
    kueue_object("resourceflavors", {"kind": "ResourceFlavor", "metadata": {"name": flavor}})
    kueue_object(
        "clusterqueues",
        {
            "kind": "ClusterQueue",
            "metadata": {"name": cq},
            "spec": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                # Every resource job pods request must be covered, or Kueue never admits them: the
                # GPUs, and the cpu and memory requests every job pod carries (chart value jobs.resources).
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu", "memory", "nvidia.com/gpu"],
                        "flavors": [
                            {
                                "name": flavor,
                                "resources": [
                                    {"name": "cpu", "nominalQuota": 64},
                                    {"name": "memory", "nominalQuota": "256Gi"},
                                    {"name": "nvidia.com/gpu", "nominalQuota": gpus},
                                ],
                            }
                        ],
                    }
                ],
            },
        },
    )
    kueue_object(
        "localqueues",
        {"kind": "LocalQueue", "metadata": {"name": "gpu"}, "spec": {"clusterQueue": cq}},
        namespace,
    )

    def active() -> bool:
        obj = client.CustomObjectsApi().get_cluster_custom_object(
            KUEUE_GROUP, KUEUE_VERSION_API, "clusterqueues", cq
        )
        return any(
            c["type"] == "Active" and c["status"] == "True"
            for c in obj.get("status", {}).get("conditions", [])
        )

    wait_for(active, timeout=30, what=f"ClusterQueue {cq} Active")
    yield cq
    for plural, name in (("clusterqueues", cq), ("resourceflavors", flavor)):
        try:
            client.CustomObjectsApi().delete_cluster_custom_object(
                KUEUE_GROUP, KUEUE_VERSION_API, plural, name
            )
        except client.ApiException as e:
            if e.status != 404:
                raise
