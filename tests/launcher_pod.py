"""One job's pods on this machine, for tests that run the real launcher.sh with real processes.

Stand-in `python`, `cntk`, `caffe`, `mpirun` and `sshd` executables on PATH record how they were called
(argv, selected environment, pid) as JSON lines, print a line to stdout and stderr, and exit as their
arguments say: `exit=N`, `kill=SIGNAL`, `sleep=SECONDS`, `after=WORD` (first wait until a stand-in whose
argv holds WORD has started; exit 99 if none does within 5 s). The stand-in mpirun runs its program once and
exits with its code; `mpirun --version` prints the `mpi-version` file next to it (Open MPI's banner when
there is none) and records nothing. The stand-in sshd stays up STANDIN_SSHD_SLEEP seconds (default 0).
Mount roots, stdouterr, HOME and the termination log all live under the test's tmp_path.
Used by tests/unit/test_launcher_script.py and tests/e2e/test_launcher_sshd.py (the real sshd).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from batchai_operator.api.trainingjob import TrainingJobSpec
from batchai_operator.launcher import commands
from samples import launcher_spec as make_spec

STANDIN = r"""#!{python}
import json, os, signal, subprocess, sys, time

prog = os.path.basename(sys.argv[0])
args = sys.argv[1:]
record = {
    "prog": prog,
    "argv": args,
    "pid": os.getpid(),
    "env": {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("AZ_BATCH", "TF_CONFIG", "JOB_", "USER_", "BATCHAI_MPI", "I_MPI"))
    },
}
program = []
if prog == "mpirun":
    if args == ["--version"]:
        banner = os.path.join(os.path.dirname(os.path.abspath(sys.argv[0])), "mpi-version")
        print(open(banner).read() if os.path.exists(banner) else "mpirun (Open MPI) 4.1.2")
        sys.exit(0)
    rest = list(args)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag in ("--hostfile", "-machinefile", "-np", "-n"):
            record[flag.lstrip("-")] = rest.pop(0)
    record["hostfile_text"] = open(record.get("hostfile") or record["machinefile"]).read()
    program = rest
if prog == "sshd":
    record["config"] = open(args[args.index("-f") + 1]).read()


def save(rec):
    with open(os.environ["STANDIN_RECORD"], "a") as f:
        f.write(json.dumps(rec) + "\n")


save(record)
print(prog, "out", *args, flush=True)
print(prog, "err", file=sys.stderr, flush=True)
if program:
    sys.exit(subprocess.call(program))
opts = dict(a.split("=", 1) for a in args if a.split("=", 1)[0] in ("exit", "kill", "sleep", "after"))
if "after" in opts:
    deadline = time.time() + 5
    while json.dumps(opts["after"]) not in open(os.environ["STANDIN_RECORD"]).read():
        if time.time() > deadline:
            sys.exit(99)
        time.sleep(0.01)
if prog == "sshd":
    time.sleep(float(os.environ.get("STANDIN_SSHD_SLEEP", "0")))
if "sleep" in opts:
    time.sleep(float(opts["sleep"]))
if "kill" in opts:
    os.kill(os.getpid(), int(opts["kill"]))
sys.exit(int(opts.get("exit", "0")))
"""

LAUNCHER = Path(commands.__file__).with_name("launcher.sh")
SCRIPT = "$AZ_BATCHAI_INPUT_SCRIPTS/train.py"
SEGMENT = "ns/default/job/uid-1"


class Pod:
    """One job's pods on this machine: the ConfigMap folder, stand-ins and the pod environment."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.config = tmp / "config"
        self.home = tmp / "home"
        self.record = tmp / "record.jsonl"
        self.job_mount_root = tmp / "jobs" / "ns" / "default" / "job" / "mounts"
        self.stdouterr = self.job_mount_root / "logs" / SEGMENT / "stdouterr"
        self.model_dir = self.job_mount_root / "out" / SEGMENT / "outputs" / "model"
        self.job_temp = tmp / "jobs" / "ns" / "default" / "job" / "temp"
        for d in (self.bin, self.config, self.home):
            d.mkdir()
        for name in ("python", "cntk", "caffe", "mpirun", "sshd"):
            exe = self.bin / name
            exe.write_text(STANDIN.replace("{python}", sys.executable))
            exe.chmod(0o755)
        self.spec = make_spec(1, customToolkitSettings={"commandLine": "true"})
        self.hosts = ["h0"]
        self.shared_job_temp = False

    def configure(
        self, spec: TrainingJobSpec, hosts: list[str] | None = None, shared_job_temp: bool = False
    ) -> None:
        """Write the ConfigMap data as the pod would see it."""
        self.spec = spec
        self.shared_job_temp = shared_job_temp
        self.hosts = hosts or [f"h{i}" for i in range(spec.node_count)]
        for key, text in commands.render_config(spec, self.hosts, 1).items():
            (self.config / key).write_text(text)

    def env(self, index: int = 0, **extra: str) -> dict[str, str]:
        env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            # Spec values arrive unexpanded, as the pod builder writes them.
            "AZ_BATCHAI_MOUNT_ROOT": str(self.tmp / "mounts"),
            "AZ_BATCHAI_JOB_MOUNT_ROOT": str(self.job_mount_root),
            "AZ_BATCHAI_JOB_TEMP": str(self.job_temp),
            "AZ_BATCHAI_STDOUTERR_DIR": f"$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/{SEGMENT}/stdouterr",
            "AZ_BATCHAI_OUTPUT_MODEL": f"${{AZ_BATCHAI_JOB_MOUNT_ROOT}}/out/{SEGMENT}/outputs/model",
            "AZ_BATCHAI_INPUT_SCRIPTS": "$AZ_BATCHAI_MOUNT_ROOT/afs/scripts",
            "AZ_BATCHAI_NUM_GPUS": "1",
            "BATCHAI_CONFIG_DIR": str(self.config),
            "BATCHAI_NODE_COUNT": str(self.spec.node_count),
            "BATCHAI_NODE_ID": f"tvm-node-{index}",
            "BATCHAI_TERMINATION_LOG": str(self.termination_log(index)),
            "JOB_COMPLETION_INDEX": str(index),
            "USER_SETTING": "from-spec",
            "STANDIN_RECORD": str(self.record),
            **commands.toolkit_env(self.spec, self.hosts, 1, self.shared_job_temp),
        }
        if self.spec.node_count > 1:
            env["BATCHAI_HOSTS"] = ",".join(self.hosts)
        env.update(extra)
        return env

    def run(self, index: int = 0, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(LAUNCHER)],
            env=self.env(index, **extra),
            cwd=self.tmp,
            capture_output=True,
            text=True,
            timeout=10,
        )

    def popen(self, index: int = 0, **extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            ["bash", str(LAUNCHER)],
            env=self.env(index, **extra),
            cwd=self.tmp,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def records(self, prog: str | None = None) -> list[dict[str, Any]]:
        """How the stand-ins were started, in order."""
        if not self.record.exists():
            return []
        out = [json.loads(line) for line in self.record.read_text().splitlines()]
        return [r for r in out if prog is None or r["prog"] == prog]

    def out(self, name: str) -> str:
        return (self.stdouterr / name).read_text()

    def files(self) -> set[str]:
        return {p.name for p in self.stdouterr.iterdir()}

    def termination_log(self, index: int = 0) -> Path:
        return self.tmp / f"termination-log-{index}"

    def termination_message(self, index: int = 0) -> str:
        return self.termination_log(index).read_text().strip()

    def ssh_dir(self) -> Path:
        d = self.tmp / "ssh-secret"
        if not d.exists():
            d.mkdir()
            (d / "ssh-privatekey").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nfake\n")
            (d / "ssh-publickey").write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake batchai-job\n")
        return d
