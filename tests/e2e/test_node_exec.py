"""`job node exec` and `cluster node exec` on a real node: `--exec` runs in the job's container through the
API server (the kubelet's exec stream; its exit code is the command's) and `-L` forwards a local port to
a port of the container (the kubelet's port-forward stream), as az batchai did over SSH for TensorBoard
and Jupyter; no key is involved.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from devcluster import wait_for
from jobs import create_trainingjob, trainingjob_pods
from kubernetes import client

from .realnodes import cluster_body, job_spec

pytestmark = pytest.mark.e2e

BIN = str(Path(sys.executable).parent)  # where pip put kubectl-batchai
SERVE = "mkdir -p /tmp/www && cd /tmp/www && echo served-from-the-job > index.html && "
SERVE += "exec python -m http.server 8088"


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "batchai", *args],
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_exec_and_port_forward_into_a_running_job(module_namespace: str) -> None:
    ns = module_namespace
    client.CustomObjectsApi().create_namespaced_custom_object(
        "batchai.io", "v1alpha1", ns, "batchaiclusters", cluster_body(ns, "execpool", gpus=False)
    )
    create_trainingjob(ns, "serve", job_spec("execpool", customToolkitSettings={"commandLine": SERVE}))
    pod = wait_for(
        lambda: next((p for p in trainingjob_pods(ns, "serve") if p.status.phase == "Running"), None),
        timeout=180,
        what="the job's pod running",
    )

    ran = cli(
        "job",
        "node",
        "exec",
        "-j",
        "serve",
        "-w",
        ns,
        "--exec",
        "cat /tmp/www/index.html; echo oops >&2; exit 3",
    )
    assert ran.returncode == 3, ran.stderr
    assert (ran.stdout, ran.stderr) == ("served-from-the-job\n", "oops\n")  # the job container's own files

    # The same container, reached from the cluster's side (its node; the job's main container there).
    node = pod.spec.node_name
    on_node = cli(
        "cluster", "node", "exec", "-c", "execpool", "-w", ns, "-n", node, "--exec", "cat /tmp/www/index.html"
    )
    assert (on_node.returncode, on_node.stdout.strip()) == (0, "served-from-the-job"), on_node.stderr
    assert f"Node {node}: container main of pod {pod.metadata.name}" in on_node.stderr

    # -L while a command runs: the forward lives as long as the command.
    port = free_port()
    fetch = "sleep 15; echo done"
    forwarding = subprocess.Popen(
        ["kubectl", "batchai", "job", "node", "exec", "-j", "serve", "-w", ns, "-L", f"{port}:localhost:8088",
         "--exec", fetch],
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:

        def page() -> str | None:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/index.html", timeout=5) as r:
                return r.read().decode()

        assert (
            wait_for(page, timeout=12, what="the job's web server through -L").strip()
            == "served-from-the-job"
        )
        out, err = forwarding.communicate(timeout=30)
        assert forwarding.returncode == 0, err
        assert out.strip() == "done" and f"Forwarding 127.0.0.1:{port} -> {pod.metadata.name}:8088" in err
    finally:
        forwarding.kill()
    time.sleep(0.5)
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)

    absent = cli("job", "node", "exec", "-j", "serve", "-w", ns, "-n", "no-such-node", "--exec", "true")
    assert absent.returncode == 3 and "no node 'no-such-node'" in absent.stderr
    client.CustomObjectsApi().patch_namespaced_custom_object(
        "batchai.io", "v1alpha1", ns, "trainingjobs", "serve", {"spec": {"terminate": True}}
    )
