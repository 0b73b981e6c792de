"""Run the real launcher.sh on this machine, with real processes.

Stand-in `python`, `cntk`, `caffe`, `mpirun` and `sshd` executables on PATH record how they were called
(argv, selected environment, pid) as JSON lines, print a line to stdout and stderr, and exit as their
arguments say: `exit=N`, `kill=SIGNAL`, `sleep=SECONDS`, `after=WORD` (first wait until a stand-in whose
argv holds WORD has started; exit 99 if none does within 5 s). The stand-in mpirun runs its program once and
exits with its code. Mount roots, stdouterr, HOME and the termination log all live under tmp_path.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
    "env": {k: v for k, v in os.environ.items() if k.startswith(("AZ_BATCH", "TF_CONFIG", "JOB_", "USER_"))},
}
program = []
if prog == "mpirun":
    rest = list(args)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag in ("--hostfile", "-np"):
            record[flag.lstrip("-")] = rest.pop(0)
    record["hostfile_text"] = open(record["hostfile"]).read()
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

    def configure(self, spec: TrainingJobSpec, hosts: list[str] | None = None) -> None:
        """Write the ConfigMap data as the pod would see it."""
        self.spec = spec
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
            **commands.toolkit_env(self.spec, self.hosts, 1),
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


@pytest.fixture
def pod(tmp_path: Path) -> Pod:
    return Pod(tmp_path)


@pytest.fixture
def closed_port() -> Iterator[socket.socket]:
    """A bound socket that is not listening yet: connections to its port are refused until listen()."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    yield s
    s.close()


def port_of(s: socket.socket) -> str:
    return str(s.getsockname()[1])


# ---- every toolkit, single node ------------------------------------------------------------------


def mpirun(np: str, *program: str) -> tuple[str, list[str]]:
    return ("mpirun", ["--allow-run-as-root", "--hostfile", "{config}/hostfile", "-np", np, *program])


BRAINSCRIPT = {"languageType": "BrainScript", "configFilePath": "$AZ_BATCHAI_INPUT_SCRIPTS/cfg.cntk"}
SINGLE_NODE_CASES: list[tuple[str, dict[str, Any], list[tuple[str, list[str]]], str]] = [
    # id, settings, expected (program, argv) calls in order ({scripts}: expanded paths), stdout file
    (
        "cntk-python",
        {
            "cntkSettings": {
                "pythonScriptFilePath": SCRIPT,
                "commandLineArgs": "$AZ_BATCHAI_OUTPUT_MODEL -n 2",
            }
        },
        [("python", ["{scripts}/train.py", "{model}", "-n", "2"])],
        "stdout.txt",
    ),
    (
        "cntk-brainscript-mpi",
        {"cntkSettings": {**BRAINSCRIPT, "commandLineArgs": "parallelTrain=true", "processCount": 2}},
        [
            mpirun("2", "cntk", "configFile={scripts}/cfg.cntk", "parallelTrain=true"),
            ("cntk", ["configFile={scripts}/cfg.cntk", "parallelTrain=true"]),
        ],
        "stdout.txt",
    ),
    (
        "horovod",
        {
            "horovodSettings": {
                "pythonScriptFilePath": SCRIPT,
                "commandLineArgs": "--lr 0.1",
                "processCount": 2,
            }
        },
        [
            mpirun("2", "python", "{scripts}/train.py", "--lr", "0.1"),
            ("python", ["{scripts}/train.py", "--lr", "0.1"]),
        ],
        "stdout.txt",
    ),
    (
        "chainer",
        {
            "chainerSettings": {
                "pythonScriptFilePath": SCRIPT,
                "pythonInterpreterPath": "python",
                "commandLineArgs": "-g",
            }
        },
        [("python", ["{scripts}/train.py", "-g"])],
        "stdout.txt",
    ),
    (
        "custom-mpi",
        {
            "customMpiSettings": {
                "commandLine": "python $AZ_BATCHAI_INPUT_SCRIPTS/score.py",
                "processCount": 3,
            }
        },
        [mpirun("3", "python", "{scripts}/score.py"), ("python", ["{scripts}/score.py"])],
        "stdout.txt",
    ),
    (
        "caffe-solver",
        {
            "caffeSettings": {
                "configFilePath": "$AZ_BATCHAI_INPUT_SCRIPTS/solver.prototxt",
                "commandLineArgs": "-gpu all",
            }
        },
        [("caffe", ["train", "--solver={scripts}/solver.prototxt", "-gpu", "all"])],
        "stdout.txt",
    ),
    (
        "caffe-python",
        {"caffeSettings": {"pythonScriptFilePath": SCRIPT}},
        [("python", ["{scripts}/train.py"])],
        "stdout.txt",
    ),
    (
        "caffe2",
        {
            "caffe2Settings": {
                "pythonScriptFilePath": SCRIPT,
                "commandLineArgs": "--shard_id $AZ_BATCHAI_TASK_INDEX",
            }
        },
        [("python", ["{scripts}/train.py", "--shard_id", "0"])],
        "stdout.txt",
    ),
    (
        "custom-toolkit",
        {
            "customToolkitSettings": {
                "commandLine": "python $AZ_BATCHAI_INPUT_SCRIPTS/a.py --name 'a b' && true"
            }
        },
        [("python", ["{scripts}/a.py", "--name", "a b"])],
        "stdout.txt",
    ),
    (
        "tensorflow",
        {"tensorFlowSettings": {"pythonScriptFilePath": SCRIPT, "masterCommandLineArgs": "--master"}},
        [("python", ["{scripts}/train.py", "--master"])],
        "stdout-wk-0.txt",
    ),
    (
        "pytorch",
        {
            "pyTorchSettings": {
                "pythonScriptFilePath": SCRIPT,
                "commandLineArgs": "--rank $AZ_BATCHAI_TASK_INDEX",
            }
        },
        [("python", ["{scripts}/train.py", "--rank", "0"])],
        "stdout-0.txt",
    ),
]


@pytest.mark.parametrize(
    ("settings", "calls", "stdout_file"),
    [c[1:] for c in SINGLE_NODE_CASES],
    ids=[c[0] for c in SINGLE_NODE_CASES],
)
def test_single_node_toolkit(
    pod: Pod, settings: dict[str, Any], calls: list[tuple[str, list[str]]], stdout_file: str
) -> None:
    pod.configure(make_spec(1, **settings))
    result = pod.run()
    assert result.returncode == 0, result.stderr

    paths = {
        "scripts": str(pod.tmp / "mounts/afs/scripts"),
        "model": str(pod.model_dir),
        "config": str(pod.config),
    }
    got = [(r["prog"], r["argv"]) for r in pod.records()]
    assert got == [(prog, [a.format(**paths) for a in argv]) for prog, argv in calls]

    last = pod.records()[-1]
    assert pod.out(stdout_file) == "".join(f"{r['prog']} out {' '.join(r['argv'])}\n" for r in pod.records())
    assert pod.out(stdout_file.replace("stdout", "stderr")) == "".join(
        f"{r['prog']} err\n" for r in pod.records()
    )
    assert pod.files() == {stdout_file, stdout_file.replace("stdout", "stderr"), "execution.log"}
    # The task's output also reaches the container's own stdout/stderr (kubectl logs).
    assert f"{last['prog']} out" in result.stdout
    assert f"{last['prog']} err" in result.stderr
    # Expanded AZ_BATCHAI_* values reach the task; the user's variables pass through untouched.
    assert last["env"]["AZ_BATCHAI_STDOUTERR_DIR"] == str(pod.stdouterr)
    assert last["env"]["AZ_BATCHAI_OUTPUT_MODEL"] == str(pod.model_dir)
    assert last["env"]["USER_SETTING"] == "from-spec"
    assert pod.model_dir.is_dir()
    assert not pod.termination_log().exists()


def test_mpirun_gets_the_hostfile_and_task_env(pod: Pod) -> None:
    pod.configure(make_spec(1, horovodSettings={"pythonScriptFilePath": SCRIPT, "processCount": 2}))
    assert pod.run().returncode == 0
    mpirun = pod.records("mpirun")[0]
    assert mpirun["hostfile_text"] == "localhost slots=2\n"
    assert mpirun["env"]["AZ_BATCHAI_MPI_HOST_FILE"] == str(pod.config / "hostfile")


def test_tensorflow_single_node_env(pod: Pod) -> None:
    pod.configure(make_spec(1, tensorFlowSettings={"pythonScriptFilePath": SCRIPT}))
    assert pod.run().returncode == 0
    env = pod.records("python")[0]["env"]
    assert env["AZ_BATCHAI_TASK_INDEX"] == "0"
    assert json.loads(env["TF_CONFIG"]) == {
        "cluster": {"ps": [], "worker": ["localhost:2222"]},
        "task": {"type": "worker", "index": 0},
        "environment": "cloud",
    }
    assert env["AZ_BATCHAI_WORKER_HOSTS"] == "localhost:2222"


def test_pytorch_single_node_init_method_is_expanded(pod: Pod) -> None:
    pod.configure(make_spec(1, pyTorchSettings={"pythonScriptFilePath": SCRIPT}))
    assert pod.run().returncode == 0
    env = pod.records("python")[0]["env"]
    assert env["AZ_BATCHAI_PYTORCH_INIT_METHOD"] == f"file://{pod.job_temp}/pytorch_init"
    assert env["AZ_BATCHAI_PYTORCH_BACKEND"] == "gloo"
    assert pod.job_temp.is_dir()


# ---- multi-node toolkits without ssh: each node's launcher runs its own tasks -----------------------


def test_tensorflow_two_nodes(pod: Pod) -> None:
    settings = {
        "pythonScriptFilePath": SCRIPT,
        "masterCommandLineArgs": "--master after=--ps",
        "workerCommandLineArgs": "--worker",
        "parameterServerCommandLineArgs": "--ps sleep=30",  # serves until the node's workers finish
        "workerCount": 3,
    }
    pod.configure(make_spec(2, tensorFlowSettings=settings))
    start = time.monotonic()
    node0 = pod.run(0)
    assert node0.returncode == 0, node0.stderr
    assert time.monotonic() - start < 5, "the parameter server must be stopped when the workers end"
    assert pod.run(1).returncode == 0

    calls = {(r["env"]["JOB_COMPLETION_INDEX"], r["argv"][1]): r["env"] for r in pod.records("python")}
    assert sorted(calls) == [("0", "--master"), ("0", "--ps"), ("0", "--worker"), ("1", "--worker")]
    ps_env = calls[("0", "--ps")]
    assert ps_env["AZ_BATCHAI_PS_HOSTS"] == "h0:2222"
    assert ps_env["AZ_BATCHAI_WORKER_HOSTS"] == "h0:2223,h1:2222,h0:2224"
    assert json.loads(ps_env["TF_CONFIG"])["task"] == {"type": "ps", "index": 0}
    assert json.loads(calls[("1", "--worker")]["TF_CONFIG"])["task"] == {"type": "worker", "index": 1}
    assert pod.files() == {
        "stdout-ps-0.txt", "stderr-ps-0.txt",
        "stdout-wk-0.txt", "stderr-wk-0.txt",
        "stdout-wk-1.txt", "stderr-wk-1.txt",
        "stdout-wk-2.txt", "stderr-wk-2.txt",
        "execution-tvm-node-0.log", "execution-tvm-node-1.log",
    }  # fmt: skip
    assert pod.out("stdout-ps-0.txt").startswith("python out")
    assert "stopping background tasks" in pod.out("execution-tvm-node-0.log")


def test_tensorflow_parameter_server_only_node_waits_for_it(pod: Pod) -> None:
    settings = {
        "pythonScriptFilePath": SCRIPT,
        "parameterServerCommandLineArgs": "--ps exit=0",
        "workerCount": 1,
    }
    pod.configure(make_spec(2, tensorFlowSettings={**settings, "parameterServerCount": 2}))
    result = pod.run(1)
    assert result.returncode == 0, result.stderr
    assert [r["argv"][1:] for r in pod.records("python")] == [["--ps", "exit=0"]]
    assert "task stdout-ps-1.txt exited with code 0" in result.stderr


def test_pytorch_ranks_run_concurrently(pod: Pod) -> None:
    # Each rank waits for the other rank on its node to start: run one after the other, they would exit 99.
    args = "--rank=$AZ_BATCHAI_TASK_INDEX after=--rank=$(((AZ_BATCHAI_TASK_INDEX + 2) % 4))"
    settings = {"pythonScriptFilePath": SCRIPT, "commandLineArgs": args}
    pod.configure(
        make_spec(2, pyTorchSettings={**settings, "processCount": 4, "communicationBackend": "gloo"})
    )
    assert pod.run(0).returncode == 0
    assert pod.run(1).returncode == 0
    ranks = {r["argv"][1].removeprefix("--rank="): r for r in pod.records("python")}
    assert {rank: r["env"]["JOB_COMPLETION_INDEX"] for rank, r in ranks.items()} == {
        "0": "0",
        "1": "1",
        "2": "0",
        "3": "1",
    }
    assert ranks["1"]["env"]["AZ_BATCHAI_PYTORCH_INIT_METHOD"] == "tcp://h0:29500"
    assert {f"stdout-{r}.txt" for r in "0123"} <= pod.files()


def test_caffe2_two_nodes(pod: Pod) -> None:
    pod.configure(
        make_spec(2, caffe2Settings={"pythonScriptFilePath": SCRIPT, "commandLineArgs": "--num_shards 2"})
    )
    assert pod.run(0).returncode == 0
    assert pod.run(1).returncode == 0
    assert sorted(r["env"]["AZ_BATCHAI_TASK_INDEX"] for r in pod.records("python")) == ["0", "1"]
    assert {"stdout-0.txt", "stderr-0.txt", "stdout-1.txt", "stderr-1.txt"} <= pod.files()


# ---- exit codes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "code"), [("exit=0", 0), ("exit=3", 3), ("kill=9", 137)])
def test_exit_code_passes_through(pod: Pod, args: str, code: int) -> None:
    pod.configure(make_spec(1, customToolkitSettings={"commandLine": f"python a.py {args}"}))
    result = pod.run()
    assert result.returncode == code
    if code:
        assert pod.termination_message() == f"JobFailed: exit code {code}"
    else:
        assert not pod.termination_log().exists()


def test_exit_code_passes_through_mpirun(pod: Pod) -> None:
    settings = {"pythonScriptFilePath": SCRIPT, "commandLineArgs": "exit=3", "processCount": 2}
    pod.configure(make_spec(1, horovodSettings=settings))
    assert pod.run().returncode == 3
    assert [r["prog"] for r in pod.records()] == ["mpirun", "python"]


def test_node_exit_code_is_first_failure_in_task_order(pod: Pod) -> None:
    # Rank 0 fails with 4 after rank 1 already failed with 5: task order decides, not time.
    args = "exit=$((AZ_BATCHAI_TASK_INDEX + 4)) sleep=$((1 - AZ_BATCHAI_TASK_INDEX))e-1"
    settings = {"pythonScriptFilePath": SCRIPT, "commandLineArgs": args, "processCount": 2}
    pod.configure(make_spec(1, pyTorchSettings=settings))
    assert pod.run().returncode == 4


def test_sigterm_stops_tasks(pod: Pod) -> None:
    pod.configure(make_spec(1, customToolkitSettings={"commandLine": "python a.py sleep=30"}))
    proc = pod.popen()
    deadline = time.monotonic() + 5
    while not pod.records() and time.monotonic() < deadline:
        time.sleep(0.02)
    task_pid = pod.records()[0]["pid"]
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=5)
    assert proc.returncode == 143
    assert "received SIGTERM: stopping tasks" in stderr
    assert not running(task_pid)


def running(pid: int) -> bool:
    """Whether pid is a live process (zombies waiting to be reaped count as ended)."""
    try:
        return ") Z " not in Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False


# ---- variables and directories -------------------------------------------------------------------


def test_expansion_of_output_and_stdouterr_dirs(pod: Pod) -> None:
    pod.configure(make_spec(1, customToolkitSettings={"commandLine": "python a.py"}))
    result = pod.run(
        AZ_BATCHAI_OUTPUT_LOGS="${AZ_BATCHAI_JOB_MOUNT_ROOT}/x/$AZ_BATCHAI_INPUT_NAME/$UNSET_VAR/end",
        AZ_BATCHAI_INPUT_NAME="m1",
        AZ_BATCHAI_INPUT_PRICE="costs $5 and $$",
        USER_PATH="$AZ_BATCHAI_JOB_MOUNT_ROOT/not-expanded",
    )
    assert result.returncode == 0, result.stderr
    env = pod.records()[0]["env"]
    assert env["AZ_BATCHAI_OUTPUT_LOGS"] == f"{pod.job_mount_root}/x/m1//end"
    assert env["AZ_BATCHAI_INPUT_PRICE"] == "costs $5 and $$"
    assert env["USER_PATH"] == "$AZ_BATCHAI_JOB_MOUNT_ROOT/not-expanded"
    assert (pod.job_mount_root / "x/m1/end").is_dir()
    assert pod.stdouterr.is_dir()
    assert pod.model_dir.is_dir()


def test_extra_variables_are_expanded_on_request(pod: Pod) -> None:
    pod.configure(make_spec(1, customToolkitSettings={"commandLine": "python a.py"}))
    result = pod.run(USER_PATH="$AZ_BATCHAI_JOB_MOUNT_ROOT/data", BATCHAI_EXPAND_VARS="USER_PATH")
    assert result.returncode == 0
    assert pod.records()[0]["env"]["USER_PATH"] == f"{pod.job_mount_root}/data"


def test_unmanaged_mounts_run_with_the_path_appended(pod: Pod) -> None:
    pod.configure(make_spec(1, customToolkitSettings={"commandLine": "python a.py"}))
    source = pod.tmp / "source.txt"
    source.write_text("data")
    mount = pod.job_mount_root / "gluster"
    result = pod.run(BATCHAI_UNMANAGED_MOUNTS=f"cp {source}\t{mount}")
    assert result.returncode == 0, result.stderr
    assert (mount / "source.txt").read_text() == "data"

    failed = pod.run(BATCHAI_UNMANAGED_MOUNTS=f"exit 32; true\t{mount}")
    assert failed.returncode == 32
    assert pod.termination_message() == f"MountFailed: {mount}: exit code 32"


def test_missing_tasks_file_is_a_launcher_error(pod: Pod) -> None:
    result = pod.run(BATCHAI_CONFIG_DIR=str(pod.tmp / "nowhere"))
    assert result.returncode == 1
    assert pod.termination_message().startswith("LauncherFailed: tasks file")


# ---- job preparation -----------------------------------------------------------------------------


def test_job_preparation_runs_first(pod: Pod) -> None:
    pod.configure(make_spec(1, customToolkitSettings={"commandLine": "python a.py"}))
    prep = "echo prep-out $USER_SETTING; echo prep-err >&2; touch $AZ_BATCHAI_JOB_TEMP/prepared"
    result = pod.run(BATCHAI_JOB_PREPARATION=prep)
    assert result.returncode == 0, result.stderr
    assert pod.out("stdout-job_prep.txt") == "prep-out from-spec\n"
    assert pod.out("stderr-job_prep.txt") == "prep-err\n"
    assert "prep-out from-spec" in result.stdout
    assert "prep-err" in result.stderr
    assert (pod.job_temp / "prepared").exists()
    assert len(pod.records()) == 1


def test_job_preparation_failure(pod: Pod) -> None:
    pod.configure(make_spec(1, customToolkitSettings={"commandLine": "python a.py"}))
    result = pod.run(BATCHAI_JOB_PREPARATION="echo broken >&2; exit 7")
    assert result.returncode == 7
    assert pod.termination_message() == "JobPreparationFailed: exit code 7"
    assert pod.out("stderr-job_prep.txt") == "broken\n"
    assert pod.records() == []  # the toolkit never started
    assert "JobPreparationFailed: exit code 7" in result.stderr


def test_job_preparation_file_names_on_multi_node_jobs(pod: Pod) -> None:
    pod.configure(make_spec(2, caffe2Settings={"pythonScriptFilePath": SCRIPT}))
    result = pod.run(1, BATCHAI_JOB_PREPARATION="echo node $JOB_COMPLETION_INDEX")
    assert result.returncode == 0, result.stderr
    assert pod.out("stdout-job_prep-tvm-node-1.txt") == "node 1\n"
    assert "stderr-job_prep-tvm-node-1.txt" in pod.files()


# ---- multi-node MPI: workers serve ssh, node 0 waits for them ---------------------------------------


def mpi_pod(pod: Pod, port: str, **extra: str) -> dict[str, str]:
    spec = make_spec(2, customMpiSettings={"commandLine": "python $AZ_BATCHAI_INPUT_SCRIPTS/score.py"})
    pod.configure(spec, hosts=["node0.job", "127.0.0.1"])
    return {"BATCHAI_SSH_DIR": str(pod.ssh_dir()), "BATCHAI_SSH_PORT": port, **extra}


def test_node_zero_waits_for_workers_sshd(pod: Pod, closed_port: socket.socket) -> None:
    extra = mpi_pod(pod, port_of(closed_port), BATCHAI_WAIT_TIMEOUT="10")
    threading.Timer(0.5, closed_port.listen).start()
    start = time.monotonic()
    result = pod.run(0, **extra)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - start >= 0.5
    assert f"waiting for sshd on 127.0.0.1:{port_of(closed_port)} (node 1)" in result.stderr
    mpirun = pod.records("mpirun")[0]
    assert mpirun["np"] == "2"
    assert mpirun["hostfile_text"] == "node0.job slots=1\n127.0.0.1 slots=1\n"
    assert [r["prog"] for r in pod.records()] == ["mpirun", "python"]
    # Node 0's ssh client reaches the workers with the job key on the job's port.
    ssh = pod.home / ".ssh"
    assert f"Port {port_of(closed_port)}" in (ssh / "config").read_text()
    assert (ssh / "batchai_id").stat().st_mode & 0o777 == 0o600
    assert {"execution-tvm-node-0.log", "stdout.txt", "stderr.txt"} == pod.files()


def test_node_zero_wait_times_out(pod: Pod, closed_port: socket.socket) -> None:
    port = port_of(closed_port)
    result = pod.run(0, **mpi_pod(pod, port, BATCHAI_WAIT_TIMEOUT="1"))
    assert result.returncode == 1
    message = f"LauncherFailed: timed out after 1s waiting for sshd on 127.0.0.1:{port} (node 1 of 2)"
    assert pod.termination_message() == message
    assert message in result.stderr
    assert pod.records() == []


def test_worker_execs_sshd(pod: Pod) -> None:
    extra = mpi_pod(
        pod, "2222", BATCHAI_JOB_PREPARATION="echo prepared", BATCHAI_SSHD_RUN_DIR=str(pod.tmp / "run")
    )
    proc = pod.popen(1, **extra)
    stdout, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 0, stderr
    [sshd] = pod.records()  # no toolkit process on workers
    assert sshd["prog"] == "sshd"
    assert sshd["pid"] == proc.pid  # exec: sshd replaced the launcher
    ssh = pod.home / ".ssh"
    assert sshd["argv"] == ["-D", "-e", "-f", str(ssh / "batchai_sshd_config")]
    config = sshd["config"].splitlines()
    assert "Port 2222" in config
    assert f"AuthorizedKeysFile {ssh}/authorized_keys" in config
    assert f"HostKey {ssh}/batchai_host_key" in config
    assert "PermitUserEnvironment yes" in config
    assert (ssh / "batchai_host_key").exists()
    assert "batchai-job" in (ssh / "authorized_keys").read_text()
    # Remote ranks get the pod's (expanded) environment through ~/.ssh/environment.
    environment = (ssh / "environment").read_text().splitlines()
    assert f"AZ_BATCHAI_STDOUTERR_DIR={pod.stdouterr}" in environment
    assert "USER_SETTING=from-spec" in environment
    assert (pod.tmp / "run").is_dir()
    assert pod.out("stdout-job_prep-tvm-node-1.txt") == "prepared\n"
    assert "prepared" in stdout


def test_multi_node_horovod_node_zero(pod: Pod, closed_port: socket.socket) -> None:
    closed_port.listen()
    spec = make_spec(2, horovodSettings={"pythonScriptFilePath": SCRIPT, "processCount": 4})
    pod.configure(spec, hosts=["node0.job", "127.0.0.1"])
    result = pod.run(0, BATCHAI_SSH_DIR=str(pod.ssh_dir()), BATCHAI_SSH_PORT=port_of(closed_port))
    assert result.returncode == 0, result.stderr
    mpirun = pod.records("mpirun")[0]
    assert (mpirun["np"], mpirun["hostfile_text"]) == ("4", "node0.job slots=2\n127.0.0.1 slots=2\n")


# ---- the real sshd and ssh: key login only, host key pinned to the job's key ------------------------

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
    assert SSHD.exists(), "openssh-server is needed (.ci/run installs it)"
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
        # Node 0 waits for the worker's sshd, then runs (a stand-in) mpirun; its ssh config stays.
        result = pod.run(0, BATCHAI_WAIT_TIMEOUT="10", **common)
        assert result.returncode == 0, result.stderr + (worker.stderr.read() if worker.poll() else "")
        config = pod.home / ".ssh" / "config"
        text = config.read_text()
        assert "StrictHostKeyChecking yes" in text and "PasswordAuthentication no" in text

        ok = ssh(config, "127.0.0.1", "echo connected")
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
