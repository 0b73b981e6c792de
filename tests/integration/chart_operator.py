"""The operator as the chart deploys it, run here: `kopf run` with a release Deployment's args and env,
authenticated with a token of the release's ServiceAccount (not admin), so what it may do is exactly what
the chart's RBAC grants. kwok only pretends to run the Deployment's pod; this process does the work.

Used by test_chart.py (the RBAC proof) and test_aks_guide.py (docs/aks.md run as written).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, cast

import secret_scan
import yaml
from kubernetes import client

PERMISSION_PROBLEM = re.compile(
    r"(?<![,.:\d])\b403\b|forbidden|not enough permissions|unauthorized",
    re.IGNORECASE,
)
NAMESPACE_TERMINATING = (
    "is being terminated"  # "namespace x is being terminated", "... because it is being terminated"
)
LOG_RECORD_START = re.compile(r"^\[\d{4}-\d\d-\d\d ", re.MULTILINE)


def permission_problems(log: str) -> list[str]:
    """Log records (a "[date time] logger [LEVEL] ..." line and its continuation lines, e.g. a
    traceback) about a refused request: a 403 (not the milliseconds of a timestamp), 401, or a kopf
    permission warning. A 403 for writing into a terminating namespace (another test's, being deleted;
    the operator watches all namespaces) comes from admission, not RBAC, and is not counted."""
    starts = [m.start() for m in LOG_RECORD_START.finditer(log)]
    if not starts or starts[0] != 0:
        starts.insert(0, 0)
    records = [log[a:b].rstrip("\n") for a, b in zip(starts, [*starts[1:], len(log)], strict=True)]
    return [r for r in records if r and PERMISSION_PROBLEM.search(r) and NAMESPACE_TERMINATING not in r]


def as_dict(obj: object) -> dict[str, Any]:
    """A kubernetes client model as the API's JSON (camelCase keys), so tests index it freely."""
    return cast(dict[str, Any], client.ApiClient().sanitize_for_serialization(obj))  # type: ignore[no-untyped-call]


class ChartOperator:
    """`kopf run` with a Deployment's args and env (plus `extra_env`), as its ServiceAccount."""

    def __init__(
        self,
        namespace: str,
        service_account: str,
        deployment: str,
        workdir: Path,
        port: int,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        token = subprocess.run(
            ["kubectl", "create", "token", service_account, "-n", namespace, "--duration=1h"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout.strip()  # fmt: skip
        admin = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
        context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])["context"]
        cluster = next(c for c in admin["clusters"] if c["name"] == context["cluster"])["cluster"]
        kubeconfig = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "dev", "cluster": cluster}],  # server + the apiserver's CA
            "users": [{"name": "sa", "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "dev", "user": "sa"}}],
            "current-context": "sa",
        }
        self.kubeconfig = workdir / "sa-kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(kubeconfig))
        self.kubeconfig.chmod(0o600)
        self.log_path = workdir / "operator.log"
        secret_scan.register_log(self.log_path)  # it may run with --debug (the release's logLevel)
        self.port = port

        deploy = as_dict(client.AppsV1Api().read_namespaced_deployment(deployment, namespace))
        container = deploy["spec"]["template"]["spec"]["containers"][0]
        # The chart's args (--all-namespaces by default), with a local liveness endpoint.
        self.args = [
            f"--liveness=http://127.0.0.1:{self.port}/healthz" if a.startswith("--liveness") else a
            for a in container["args"]
        ]
        self.env: dict[str, str] = {e["name"]: e["value"] for e in container["env"]}
        self.env.update(extra_env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, **self.env, "KUBECONFIG": str(self.kubeconfig)}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kopf", *self.args], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"SA operator exited {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("SA operator did not become live in 30 s:\n" + self.log_text()[-3000:])

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

    def permission_problems(self) -> list[str]:
        return permission_problems(self.log_text())
