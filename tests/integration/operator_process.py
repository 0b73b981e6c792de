"""The operator as a real subprocess (`kopf run`), so tests can kill and restart it like a pod."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import secret_scan

# Fixed per checkout (a second operator on the same control plane would fight this one); another
# checkout running its own control plane in parallel sets BATCHAI_TEST_LIVENESS_PORT.
LIVENESS_PORT = int(os.environ.get("BATCHAI_TEST_LIVENESS_PORT", "18080"))
# The operator's Prometheus metrics (tests/integration/test_metrics_scrape.py scrapes them).
METRICS_PORT = LIVENESS_PORT + 7

# What the session's operator grants (chart values allow.*, env BATCHAI_ALLOW): the integration tests'
# own namespaces (it-*) may run setup tasks and set placement; privileged mounts and agent pools are
# granted to nobody (test_cluster.py adds its ARM double's pools). Tenant namespaces (tenant-*,
# tests/integration/test_security.py) get nothing.
TEST_ALLOW: dict[str, Any] = {"setupTasks": ["it-*"], "placement": ["it-*"]}
# The namespace the session's operator "runs in" (its ServiceAccount batchai-operator there), so that
# test_security.py can show that no job runs as it. One per session.
OPERATOR_HOME = f"tenant-home-{uuid.uuid4().hex[:6]}"
OPERATOR_SA = "batchai-operator"


def operator_env(allow: dict[str, Any] | None = None) -> dict[str, str]:
    """The environment the chart would give the operator, for the test's grants."""
    return {
        "BATCHAI_ALLOW": json.dumps(allow if allow is not None else TEST_ALLOW),
        "BATCHAI_OPERATOR_SERVICE_ACCOUNT": f"{OPERATOR_HOME}/{OPERATOR_SA}",
        # Multi-node jobs get their shared temp from azurefile-csi, as the chart sets it (on the dev cluster
        # the provisioner is a double, run by hack/devcluster).
        "BATCHAI_SHARED_TEMP_STORAGE_CLASS": "azurefile-csi",
        "BATCHAI_METRICS_PORT": str(METRICS_PORT),
    }


class OperatorProcess:
    """One `kopf run` of batchai_operator.main against the local control plane."""

    def __init__(
        self,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        command_prefix: list[str] | None = None,
        scope_args: list[str] | None = None,
    ) -> None:
        self.log_path = log_path
        secret_scan.register_log(log_path)
        self.extra_env = extra_env or {}
        # e.g. a profiler that runs the operator as its child (bench/run.py with BENCH_PROFILE=py-spy)
        self.command_prefix = command_prefix or []
        # Which namespaces it serves: all by default; the e2e tier's serves only its own (kopf globs).
        self.scope_args = scope_args or ["--all-namespaces"]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, **operator_env(), **self.extra_env}
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                *self.command_prefix,
                sys.executable,
                "-m",
                "kopf",
                "run",
                "--standalone",
                *self.scope_args,
                f"--liveness=http://127.0.0.1:{LIVENESS_PORT}/healthz",
                "-m",
                "batchai_operator.main",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"operator exited with {self.proc.returncode}:\n{self.log_text()[-3000:]}")
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{LIVENESS_PORT}/healthz", timeout=1)
                # The port is fixed on purpose: a second operator on the same control plane would fight
                # this one, and its port answering here while ours died is caught by this check.
                time.sleep(0.5)
                if self.proc.poll() is not None:
                    raise RuntimeError(
                        "another operator answers on the liveness port; ours exited:\n"
                        + self.log_text()[-3000:]
                    )
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("operator did not become live in 60 s:\n" + self.log_text()[-3000:])

    def kill(self) -> None:
        """SIGKILL, as when a node dies: no cleanup runs."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self) -> None:
        self.kill()
        self.start()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def crds_installed(devcluster: object) -> None:
    """The committed CRDs, applied to the local apiserver and Established."""
    subprocess.run(
        ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds")],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [
            "kubectl",
            "wait",
            "--for=condition=Established",
            "--timeout=60s",
            "crd/trainingjobs.batchai.io",
            "crd/batchaiclusters.batchai.io",
        ],
        check=True,
        capture_output=True,
    )


@pytest.fixture(scope="session")
def operator(
    devcluster: object, crds_installed: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The operator, started once per session (after the CRDs are installed)."""
    op = OperatorProcess(tmp_path_factory.mktemp("operator") / "operator.log")
    op.start()
    yield op
    op.stop()
