"""The launcher with the machine's real sshd and ssh (openssh-server, openssh-client; hack/prereqs.txt
group ssh): key login only, and node 0 pins the job's key as the worker's host key. Here, not in the unit
tier, because it needs /usr/sbin/sshd and root; it needs no dev cluster.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

import pytest

from launcher_pod import Pod
from samples import launcher_spec as make_spec


@pytest.fixture
def pod(tmp_path: Path) -> Pod:
    return Pod(tmp_path)


SSHD = Path("/usr/sbin/sshd")


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def real_ssh_dir(pod: Pod) -> Path:
    from batchai_operator.manifests.ssh import generate_ssh_keypair

    d = pod.tmp / "ssh-secret"
    d.mkdir()
    private, public = generate_ssh_keypair()
    (d / "ssh-privatekey").write_text(private)
    (d / "ssh-publickey").write_text(public)
    return d


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def ssh(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ssh", "-F", str(config), "-o", "BatchMode=yes", "-o", "ConnectTimeout=5", *args],
        capture_output=True,
        text=True,
        timeout=20,
    )


def test_real_sshd_takes_the_job_key_only_and_node_zero_pins_its_host_key(pod: Pod) -> None:
    """Node 1's launcher execs the real sshd; node 0's ssh config (written by its launcher) logs in with
    the job's key and accepts only a host that holds it; passwords are refused."""
    assert SSHD.exists(), "openssh-server is needed (hack/install-prereqs.sh e2e installs it)"
    port = free_port()
    secret = real_ssh_dir(pod)
    spec = make_spec(2, customMpiSettings={"commandLine": "python $AZ_BATCHAI_INPUT_SCRIPTS/score.py"})
    pod.configure(spec, hosts=["node0.job", "127.0.0.1"])
    (pod.bin / "sshd").unlink()  # the real one, from /usr/sbin
    worker_home = pod.tmp / "worker-home"
    worker_home.mkdir()
    common = {"BATCHAI_SSH_DIR": str(secret), "BATCHAI_SSH_PORT": port}
    worker = pod.popen(1, HOME=str(worker_home), BATCHAI_SSHD_RUN_DIR="/run/sshd", **common)
    try:
        # On one machine both "nodes" share the port: the worker's sshd must hold it before node 0 starts
        # (node 0 serves ssh too, in the background; its sshd then cannot bind, which it tolerates).
        deadline = time.monotonic() + 20
        while not port_open(int(port)):
            assert worker.poll() is None and time.monotonic() < deadline, worker.stderr.read()  # type: ignore[union-attr]
            time.sleep(0.1)
        # Node 0 waits for the worker's sshd, then runs (a stand-in) mpirun; its ssh config stays.
        result = pod.run(0, BATCHAI_WAIT_TIMEOUT="10", **common)
        assert result.returncode == 0, result.stderr + (worker.stderr.read() if worker.poll() else "")
        config = pod.home / ".ssh" / "config"
        text = config.read_text()
        assert "StrictHostKeyChecking yes" in text and "PasswordAuthentication no" in text

        ok = ssh(config, "127.0.0.1", "echo connected")
        if ok.returncode != 0 and worker.poll() is not None:
            raise AssertionError(f"the worker exited {worker.returncode}: {worker.stderr.read()}")  # type: ignore[union-attr]
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == "connected"

        sshd_config = (worker_home / ".ssh" / "batchai_sshd_config").read_text().splitlines()
        assert {"PermitRootLogin prohibit-password", "PasswordAuthentication no"} <= set(sshd_config)
        password = ssh(config, "-o", "PreferredAuthentications=password,keyboard-interactive", "127.0.0.1")
        assert password.returncode != 0 and "Permission denied" in password.stderr

        # A host without the job's key is refused: another key pinned in known_hosts.
        from batchai_operator.manifests.ssh import generate_ssh_keypair

        other = pod.tmp / "other_known_hosts"
        key_type, key = generate_ssh_keypair()[1].split()[:2]
        other.write_text(f"* {key_type} {key}\n")
        spoofed = ssh(config, "-o", f"UserKnownHostsFile={other}", "127.0.0.1", "true")
        assert spoofed.returncode != 0 and "Host key verification failed" in spoofed.stderr
    finally:
        worker.terminate()
        worker.wait(10)
