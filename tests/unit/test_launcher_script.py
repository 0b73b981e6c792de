"""Run the real launcher.sh on this machine, with real processes and stand-in toolkit programs
(tests/launcher_pod.py). The real sshd runs in tests/e2e/test_launcher_sshd.py: this tier needs no sshd.
"""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from launcher_pod import SCRIPT, Pod
from samples import launcher_spec as make_spec


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
    """Open MPI's mpirun (the stand-in's --version), with the hostfile the launcher writes in job temp."""
    return ("mpirun", ["--allow-run-as-root", "--hostfile", "{hostfile}", "-np", np, *program])


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
        # Batch AI's BrainScript recipes set no languageType: configFilePath alone means BrainScript.
        "cntk-brainscript-without-language-type",
        {
            "cntkSettings": {
                "configFilePath": "$AZ_BATCHAI_INPUT_SCRIPTS/ConvNet_MNIST.cntk",
                "commandLineArgs": "rootDir=. outputDir=$AZ_BATCHAI_OUTPUT_MODEL",
            }
        },
        [("cntk", ["configFile={scripts}/ConvNet_MNIST.cntk", "rootDir=.", "outputDir={model}"])],
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
        "hostfile": str(pod.job_temp / "hostfile"),
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
    # Batch AI's place for the hostfile: <AZ_BATCHAI_JOB_TEMP>/hostfile (writable, unlike the ConfigMap).
    assert mpirun["env"]["AZ_BATCHAI_MPI_HOST_FILE"] == str(pod.job_temp / "hostfile")
    assert mpirun["env"]["BATCHAI_MPI_FLAVOUR"] == "openmpi"


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


# ---- multi-node MPI: workers only serve ssh, node 0 waits for them ----------------------------------


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
    # Node 0 serves ssh too (every node does), then runs mpirun once the workers serve it.
    assert [r["prog"] for r in pod.records()] == ["sshd", "mpirun", "python"]
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
    assert [r["prog"] for r in pod.records()] == ["sshd"]  # no toolkit process


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


# ---- every multi-node job: password-less ssh on every node, whatever the toolkit --------------------


# Each task first waits until this node's sshd stand-in has started (its argv holds "-D").
WAIT_SSHD = "after=-D"


@pytest.mark.parametrize(
    "settings",
    [
        {
            "tensorFlowSettings": {
                "pythonScriptFilePath": SCRIPT,
                "workerCount": 2,
                "masterCommandLineArgs": WAIT_SSHD,
                "workerCommandLineArgs": WAIT_SSHD,
                "parameterServerCommandLineArgs": f"{WAIT_SSHD} sleep=30",
            }
        },
        {"pyTorchSettings": {"pythonScriptFilePath": SCRIPT, "commandLineArgs": WAIT_SSHD}},
        {"caffe2Settings": {"pythonScriptFilePath": SCRIPT, "commandLineArgs": WAIT_SSHD}},
    ],
    ids=["tensorflow", "pytorch-gloo", "caffe2"],
)
def test_every_node_of_a_non_mpi_job_serves_ssh_while_it_runs(pod: Pod, settings: dict[str, Any]) -> None:
    pod.configure(make_spec(2, **settings))
    extra = {"BATCHAI_SSH_DIR": str(pod.ssh_dir()), "BATCHAI_SSH_PORT": "2222", "STANDIN_SSHD_SLEEP": "30"}
    for index in (0, 1):
        pod.record.unlink(missing_ok=True)
        start = time.monotonic()
        result = pod.run(index, **extra)
        assert result.returncode == 0, result.stderr
        # sshd ran beside the tasks and was stopped when they ended (it would have served for 30 s).
        assert time.monotonic() - start < 8
        (sshd,) = pod.records("sshd")
        assert "Port 2222" in sshd["config"].splitlines()
        assert not running(sshd["pid"])
        tasks = pod.records("python")
        assert tasks and {r["env"]["JOB_COMPLETION_INDEX"] for r in tasks} == {str(index)}
    # The job's key and client config are installed on every node: jobs (and jobPreparation) ssh to peers.
    assert "IdentityFile" in (pod.home / ".ssh" / "config").read_text()
    assert "batchai-job" in (pod.home / ".ssh" / "authorized_keys").read_text()


def no_sshd(pod: Pod) -> None:
    """An image without sshd: the stand-in shadows any sshd of this machine but is not executable."""
    (pod.bin / "sshd").chmod(0o644)


def test_a_non_mpi_image_without_sshd_still_runs(pod: Pod) -> None:
    pod.configure(make_spec(2, caffe2Settings={"pythonScriptFilePath": SCRIPT}))
    no_sshd(pod)
    result = pod.run(1, BATCHAI_SSH_DIR=str(pod.ssh_dir()))
    assert result.returncode == 0, result.stderr
    assert "no sshd in the image" in result.stderr
    assert [r["prog"] for r in pod.records()] == ["python"]


def test_an_mpi_worker_without_sshd_fails_clearly(pod: Pod) -> None:
    extra = mpi_pod(pod, "2222")
    no_sshd(pod)
    result = pod.run(1, **extra)
    assert result.returncode == 1
    assert pod.termination_message(1) == (
        "LauncherFailed: sshd not found on PATH or at /usr/sbin/sshd (install openssh-server in the image)"
    )


# ---- the task shell reads ~/.bashrc (Batch AI's InfiniBand recipes rely on it) ----------------------

UBUNTU_BASHRC = """# ~/.bashrc: executed by bash(1) for non-login shells.
# If not running interactively, don't do anything
[ -z "$PS1" ] && return
case $- in *i*) ;; *) return ;; esac
"""


def test_task_shell_reads_bashrc_like_batchai(pod: Pod) -> None:
    # Ubuntu's ~/.bashrc returns unless the shell is interactive; lines appended after that still count.
    (pod.home / ".bashrc").write_text(UBUNTU_BASHRC + "export USER_FROM_BASHRC=yes\necho bashrc-banner\n")
    pod.configure(make_spec(1, customToolkitSettings={"commandLine": "python a.py; exit 0"}))
    result = pod.run(BATCHAI_JOB_PREPARATION="echo prep $USER_FROM_BASHRC")
    assert result.returncode == 0, result.stderr
    assert pod.records("python")[0]["env"]["USER_FROM_BASHRC"] == "yes"
    assert pod.out("stdout-job_prep.txt") == "bashrc-banner\nprep yes\n"
    # The command itself runs as in a plain shell: nothing from bash's interactive mode on stderr.
    assert pod.out("stdout.txt") == "bashrc-banner\npython out a.py\n"
    assert pod.out("stderr.txt") == "python err\n"
    assert pod.out("stderr-job_prep.txt") == ""


def test_bashrc_errors_are_shown_and_plain_shell_skips_it(pod: Pod) -> None:
    (pod.home / ".bashrc").write_text("echo from-bashrc >&2\nexport USER_FROM_BASHRC=yes\n")
    pod.configure(make_spec(1, customToolkitSettings={"commandLine": "python a.py"}))
    assert pod.run().returncode == 0
    assert pod.out("stderr.txt") == "from-bashrc\npython err\n"
    pod.run(BATCHAI_TASK_SHELL="plain")
    assert "USER_FROM_BASHRC" not in pod.records("python")[-1]["env"]


def test_syntax_errors_in_a_command_line_reach_stderr(pod: Pod) -> None:
    pod.configure(make_spec(1, customToolkitSettings={"commandLine": "python a.py ("}))
    result = pod.run()
    assert result.returncode == 2
    assert "syntax error" in pod.out("stderr.txt")


# ---- MPI flavour: Intel MPI installed by jobPreparation, as the InfiniBand recipes do ----------------


def intel_mpi(pod: Pod, banner: str = "Intel(R) MPI Library for Linux* OS, Version 2017 Update 3") -> Path:
    """A stand-in Intel MPI under /opt-like folder off PATH, with an mpivars.sh that puts it on PATH."""
    root = pod.tmp / "opt" / "intel" / "mpi"
    (root / "bin").mkdir(parents=True)
    exe = root / "bin" / "mpirun"
    exe.write_text((pod.bin / "mpirun").read_text())
    exe.chmod(0o755)
    (root / "bin" / "mpi-version").write_text(banner)
    (root / "bin" / "mpivars.sh").write_text(f"export PATH={root / 'bin'}:$PATH\nexport I_MPI_ROOT={root}\n")
    return root / "bin" / "mpivars.sh"


def test_intel_mpi_from_job_preparation_gets_intel_flags_and_hostfile(
    pod: Pod, closed_port: socket.socket
) -> None:
    closed_port.listen()
    mpivars = intel_mpi(pod)
    (pod.home / ".bashrc").write_text(UBUNTU_BASHRC)
    # The CNTK/Chainer/Horovod InfiniBand recipes' jobPreparation, reduced to its last line.
    prep = f'echo "source {mpivars}" >> ~/.bashrc'
    spec = make_spec(2, chainerSettings={"pythonScriptFilePath": SCRIPT, "processCount": 8})
    pod.configure(spec, hosts=["node0.job", "127.0.0.1"])
    result = pod.run(
        0,
        BATCHAI_JOB_PREPARATION=prep,
        BATCHAI_SSH_DIR=str(pod.ssh_dir()),
        BATCHAI_SSH_PORT=port_of(closed_port),
    )
    assert result.returncode == 0, result.stderr
    mpirun = pod.records("mpirun")[0]
    assert mpirun["argv"][:4] == ["-machinefile", str(pod.job_temp / "hostfile"), "-n", "8"]
    assert mpirun["argv"][4:] == ["python", str(pod.tmp / "mounts/afs/scripts/train.py")]
    assert mpirun["hostfile_text"] == "node0.job:4\n127.0.0.1:4\n"
    assert mpirun["env"]["BATCHAI_MPI_FLAVOUR"] == "intelmpi"
    assert mpirun["env"]["I_MPI_ROOT"] == str(mpivars.parent.parent)
    assert "MPI: intelmpi" in pod.out("execution-tvm-node-0.log")
    # Before jobPreparation the image had only Open MPI: the hostfile was first written for it.
    assert "MPI: openmpi" in pod.out("execution-tvm-node-0.log")


@pytest.mark.parametrize(
    ("banner", "flavour", "flags"),
    [
        (
            "mpirun (Open MPI) 1.10.7",
            "openmpi",
            ["--allow-run-as-root", "--hostfile", "{hostfile}", "-np", "2"],
        ),
        ("HYDRA build details:\n    Version: 3.3a2", "mpich", ["-machinefile", "{hostfile}", "-n", "2"]),
    ],
)
def test_mpi_flavour_detected_from_the_image(pod: Pod, banner: str, flavour: str, flags: list[str]) -> None:
    (pod.bin / "mpi-version").write_text(banner)
    pod.configure(make_spec(1, customMpiSettings={"commandLine": "python a.py", "processCount": 2}))
    assert pod.run().returncode == 0
    mpirun = pod.records("mpirun")[0]
    hostfile = str(pod.job_temp / "hostfile")
    assert mpirun["argv"][:-2] == [f.format(hostfile=hostfile) for f in flags]
    assert mpirun["env"]["BATCHAI_MPI_FLAVOUR"] == flavour


def test_mpi_flavour_set_by_the_job_wins(pod: Pod) -> None:
    pod.configure(make_spec(1, customMpiSettings={"commandLine": "python a.py", "processCount": 2}))
    assert pod.run(BATCHAI_MPI_FLAVOUR="intelmpi").returncode == 0
    assert pod.records("mpirun")[0]["argv"][:1] == ["-machinefile"]
    bad = pod.run(BATCHAI_MPI_FLAVOUR="lam")
    assert bad.returncode == 1
    assert pod.termination_message() == (
        "LauncherFailed: BATCHAI_MPI_FLAVOUR must be openmpi, intelmpi or mpich, not 'lam'"
    )


def test_custom_toolkit_sees_the_hostfile_of_its_mpi(pod: Pod) -> None:
    """Users ran mpirun themselves in customToolkit jobs, e.g. `mpirun -f $AZ_BATCHAI_MPI_HOST_FILE`."""
    intel_mpi(pod)
    (pod.home / ".bashrc").write_text(f"source {pod.tmp / 'opt/intel/mpi/bin/mpivars.sh'}\n")
    cmd = "mpirun -machinefile $AZ_BATCHAI_MPI_HOST_FILE -n 2 python a.py"
    pod.configure(make_spec(2, customToolkitSettings={"commandLine": cmd}), hosts=["node0.job", "127.0.0.1"])
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    closed.listen()
    try:
        result = pod.run(0, BATCHAI_SSH_DIR=str(pod.ssh_dir()), BATCHAI_SSH_PORT=port_of(closed))
    finally:
        closed.close()
    assert result.returncode == 0, result.stderr
    assert pod.records("mpirun")[0]["hostfile_text"] == "node0.job:1\n127.0.0.1:1\n"  # 1 GPU per node


# ---- shared job temp on multi-node jobs (the volume is the operator's; the launcher makes the folder) --


def test_shared_job_temp_on_a_multi_node_job(pod: Pod) -> None:
    """Caffe2's distributed recipe passes --file_store_path $AZ_BATCHAI_SHARED_JOB_TEMP; PyTorch's Gloo
    recipe rendezvouses on a file there. Both nodes see the same folder (here: one folder of this machine)."""
    shared = pod.tmp / "shared-volume" / "job-uid"
    args = "--num_shards 2 --shard_id $AZ_BATCHAI_TASK_INDEX --file_store_path $AZ_BATCHAI_SHARED_JOB_TEMP"
    pod.configure(make_spec(2, caffe2Settings={"pythonScriptFilePath": SCRIPT, "commandLineArgs": args}))
    for index in (0, 1):
        assert pod.run(index, AZ_BATCHAI_SHARED_JOB_TEMP=f"{shared}").returncode == 0
    assert shared.is_dir()
    stores = {r["argv"][r["argv"].index("--file_store_path") + 1] for r in pod.records("python")}
    assert stores == {str(shared)}

    pod.record.unlink()
    settings = {"pythonScriptFilePath": SCRIPT, "communicationBackend": "gloo"}
    pod.configure(make_spec(2, pyTorchSettings=settings), shared_job_temp=True)
    for index in (0, 1):
        result = pod.run(index, AZ_BATCHAI_SHARED_JOB_TEMP="$AZ_BATCHAI_JOB_MOUNT_ROOT/shared")
        assert result.returncode == 0, result.stderr
    inits = {r["env"]["AZ_BATCHAI_PYTORCH_INIT_METHOD"] for r in pod.records("python")}
    assert inits == {f"file://{pod.job_mount_root}/shared/pytorch_init"}
    assert (pod.job_mount_root / "shared").is_dir()


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (None, "{job_temp}/hostfile"),  # unset: Batch AI's place, <AZ_BATCHAI_JOB_TEMP>/hostfile
        ("{config}/hostfile", "{job_temp}/hostfile"),  # the read-only ConfigMap copy: rewritten there
        ("$AZ_BATCHAI_JOB_TEMP/hostfile", "{job_temp}/hostfile"),  # as the pod builder may set it
        ("{tmp}/elsewhere/hosts", "{tmp}/elsewhere/hosts"),
    ],
)
def test_hostfile_location(pod: Pod, given: str | None, expected: str) -> None:
    paths = {"job_temp": str(pod.job_temp), "config": str(pod.config), "tmp": str(pod.tmp)}
    pod.configure(make_spec(1, customMpiSettings={"commandLine": "python a.py", "processCount": 2}))
    extra = {} if given is None else {"AZ_BATCHAI_MPI_HOST_FILE": given.format(**paths)}
    assert pod.run(**extra).returncode == 0
    mpirun = pod.records("mpirun")[0]
    assert mpirun["env"]["AZ_BATCHAI_MPI_HOST_FILE"] == expected.format(**paths)
    assert mpirun["hostfile_text"] == "localhost slots=2\n"
    assert (pod.config / "hostfile").read_text() == "localhost slots=2\n"  # the ConfigMap is untouched
