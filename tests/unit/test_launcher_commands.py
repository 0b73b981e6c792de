"""Toolkit command lines, per-node tasks, TensorFlow placement, hostfile and the ConfigMap data."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest

from batchai_operator import toolkit_facts
from batchai_operator.api.trainingjob import TrainingJobSpec
from batchai_operator.launcher import commands
from batchai_operator.launcher.commands import Role, Task
from samples import launcher_spec as make_spec

MPIRUN = "batchai_mpirun"  # the launcher's wrapper: the image's mpirun with its MPI's flags
SCRIPT = "$AZ_BATCHAI_INPUT_SCRIPTS/train.py"


def hosts(n: int) -> list[str]:
    return [f"h{i}" for i in range(n)]


def tasks(spec: TrainingJobSpec) -> list[list[Task]]:
    return commands.node_tasks(spec, hosts(spec.node_count))


def only_task(spec: TrainingJobSpec) -> Task:
    """The single task of node 0; every other node has none."""
    per_node = tasks(spec)
    assert len(per_node[0]) == 1
    assert all(t == [] for t in per_node[1:])
    return per_node[0][0]


# ---- single-command toolkits ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("node_count", "settings", "command"),
    [
        (
            1,
            {"cntkSettings": {"pythonScriptFilePath": SCRIPT, "commandLineArgs": "--epochs 2"}},
            f"python {SCRIPT} --epochs 2",
        ),
        (
            1,
            {
                "cntkSettings": {
                    "pythonScriptFilePath": SCRIPT,
                    "pythonInterpreterPath": "/opt/py3/bin/python",
                }
            },
            f"/opt/py3/bin/python {SCRIPT}",
        ),
        (
            1,
            {
                "cntkSettings": {
                    "languageType": "BrainScript",
                    "configFilePath": "$D/cfg.cntk",
                    "commandLineArgs": "parallelTrain=false",
                }
            },
            "cntk configFile=$D/cfg.cntk parallelTrain=false",
        ),
        (
            1,
            {"cntkSettings": {"pythonScriptFilePath": SCRIPT, "processCount": 2}},
            f"{MPIRUN} 2 python {SCRIPT}",
        ),
        (
            2,
            {
                "cntkSettings": {
                    "languageType": "BrainScript",
                    "configFilePath": "cfg.cntk",
                    "commandLineArgs": "parallelTrain=true",
                    "processCount": 4,
                }
            },
            f"{MPIRUN} 4 cntk configFile=cfg.cntk parallelTrain=true",
        ),
        (
            # Batch AI's CNTK-GPU-BrainScript-Distributed recipe: no languageType, no processCount.
            2,
            {
                "cntkSettings": {
                    "configFilePath": "$AZ_BATCHAI_INPUT_CONFIG/DistributedConvNet_MNIST.cntk",
                    "commandLineArgs": "rootDir=. parallelTrain=true",
                }
            },
            f"{MPIRUN} 2 cntk configFile=$AZ_BATCHAI_INPUT_CONFIG/DistributedConvNet_MNIST.cntk "
            "rootDir=. parallelTrain=true",
        ),
        (
            2,
            {"horovodSettings": {"pythonScriptFilePath": SCRIPT, "commandLineArgs": "--lr 0.1"}},
            f"{MPIRUN} 2 python {SCRIPT} --lr 0.1",
        ),
        (1, {"horovodSettings": {"pythonScriptFilePath": SCRIPT}}, f"python {SCRIPT}"),
        (
            3,
            {"chainerSettings": {"pythonScriptFilePath": SCRIPT, "processCount": 6}},
            f"{MPIRUN} 6 python {SCRIPT}",
        ),
        (
            2,
            {"customMpiSettings": {"commandLine": "my_app --in $AZ_BATCHAI_INPUT_DATA"}},
            f"{MPIRUN} 2 my_app --in $AZ_BATCHAI_INPUT_DATA",
        ),
        (1, {"customMpiSettings": {"commandLine": "my_app", "processCount": 1}}, "my_app"),
        (
            1,
            {"caffeSettings": {"configFilePath": "$D/solver.prototxt", "commandLineArgs": "-gpu all"}},
            "caffe train --solver=$D/solver.prototxt -gpu all",
        ),
        (
            2,
            {"caffeSettings": {"pythonScriptFilePath": SCRIPT, "pythonInterpreterPath": "python2"}},
            f"{MPIRUN} 2 python2 {SCRIPT}",
        ),
        (
            2,
            {
                "customToolkitSettings": {
                    "commandLine": "mpirun -np 2 --hostfile $AZ_BATCHAI_MPI_HOST_FILE a.out"
                }
            },
            "mpirun -np 2 --hostfile $AZ_BATCHAI_MPI_HOST_FILE a.out",
        ),
        (
            2,
            {
                "pyTorchSettings": {
                    "pythonScriptFilePath": SCRIPT,
                    "communicationBackend": "MPI",
                    "processCount": 4,
                }
            },
            f"{MPIRUN} 4 python {SCRIPT}",
        ),
    ],
)
def test_node_zero_runs_one_command(node_count: int, settings: dict[str, Any], command: str) -> None:
    task = only_task(make_spec(node_count, **settings))
    assert task == Task("primary", "stdout.txt", "stderr.txt", command)


def test_custom_toolkit_without_command_line_runs_nothing() -> None:
    assert tasks(make_spec(2, customToolkitSettings={})) == [[], []]


# ---- TensorFlow ----------------------------------------------------------------------------------


def test_tensorflow_layout_matches_batch_ai_examples() -> None:
    # 3 nodes, 1 ps, 3 workers: ps h0:2222, workers h0:2223, h1:2222, h2:2222 (BatchAI#15).
    assert commands.tensorflow_layout(3, 1, 3) == ([(0, 2222)], [(0, 2223), (1, 2222), (2, 2222)])
    # 2 nodes, 1 ps, 3 workers: the third worker wraps round to node 0.
    assert commands.tensorflow_layout(2, 1, 3) == ([(0, 2222)], [(0, 2223), (1, 2222), (0, 2224)])
    # PS are placed first, each role round-robin from node 0.
    assert commands.tensorflow_layout(2, 2, 2) == ([(0, 2222), (1, 2222)], [(0, 2223), (1, 2223)])


@pytest.mark.parametrize(
    ("node_count", "workers", "ps_hosts", "worker_hosts"),
    [
        (3, 3, "h0:2222", "h0:2223,h1:2222,h2:2222"),
        (2, 3, "h0:2222", "h0:2223,h1:2222,h0:2224"),
    ],
)
def test_tensorflow_host_variables(node_count: int, workers: int, ps_hosts: str, worker_hosts: str) -> None:
    spec = make_spec(
        node_count,
        tensorFlowSettings={
            "pythonScriptFilePath": SCRIPT,
            "workerCount": workers,
            "parameterServerCount": 1,
        },
    )
    env = commands.toolkit_env(spec, hosts(node_count), 4)
    assert env == {
        "AZ_BATCH_HOST_LIST": ",".join(hosts(node_count)),
        "AZ_BATCHAI_PS_HOSTS": ps_hosts,
        "AZ_BATCHAI_WORKER_HOSTS": worker_hosts,
    }


TF = {
    "pythonScriptFilePath": SCRIPT,
    "masterCommandLineArgs": "--role master",
    "workerCommandLineArgs": "--role worker",
    "parameterServerCommandLineArgs": "--role ps",
}


def tf_config(ps: list[str], workers: list[str], role: str, index: int) -> str:
    return json.dumps(
        {
            "cluster": {"ps": ps, "worker": workers},
            "task": {"type": role, "index": index},
            "environment": "cloud",
        },
        separators=(",", ":"),
    )


def test_tensorflow_tasks_two_nodes_three_workers() -> None:
    # Defaults: workerCount = nodeCount would be 2; ask for 3, parameterServerCount defaults to 1.
    per_node = tasks(make_spec(2, tensorFlowSettings={**TF, "workerCount": 3}))
    ps, workers = ["h0:2222"], ["h0:2223", "h1:2222", "h0:2224"]

    def task(role: str, i: int, args: str) -> Task:
        kind: Role = "primary" if role == "worker" else "background"
        short = "wk" if role == "worker" else "ps"
        env = {"AZ_BATCHAI_TASK_INDEX": str(i), "TF_CONFIG": tf_config(ps, workers, role, i)}
        return Task(
            kind, f"stdout-{short}-{i}.txt", f"stderr-{short}-{i}.txt", f"python {SCRIPT} {args}", env
        )

    assert per_node == [
        [task("ps", 0, "--role ps"), task("worker", 0, "--role master"), task("worker", 2, "--role worker")],
        [task("worker", 1, "--role worker")],
    ]


def test_tensorflow_tf_config_text() -> None:
    per_node = tasks(make_spec(3, tensorFlowSettings={"pythonScriptFilePath": SCRIPT}))
    assert per_node[1][0].env["TF_CONFIG"] == (
        '{"cluster":{"ps":["h0:2222"],"worker":["h0:2223","h1:2222","h2:2222"]},'
        '"task":{"type":"worker","index":1},"environment":"cloud"}'
    )


def test_tensorflow_single_node_is_one_master_process() -> None:
    spec = make_spec(1, tensorFlowSettings=TF)
    task = only_task(spec)
    assert task == Task(
        "primary",
        "stdout-wk-0.txt",
        "stderr-wk-0.txt",
        f"python {SCRIPT} --role master",
        {"AZ_BATCHAI_TASK_INDEX": "0", "TF_CONFIG": tf_config([], ["localhost:2222"], "worker", 0)},
    )
    env = commands.toolkit_env(spec, ["job-0.job"], 1)
    assert env["AZ_BATCHAI_PS_HOSTS"] == ""
    assert env["AZ_BATCHAI_WORKER_HOSTS"] == "localhost:2222"


@pytest.mark.parametrize(
    ("node_count", "settings", "expected"),
    [
        (1, {}, (0, 1)),
        (1, {"workerCount": 2}, (1, 2)),  # two processes are distributed: one PS by default
        (4, {}, (1, 4)),
        (4, {"parameterServerCount": 0}, (0, 4)),
        (4, {"parameterServerCount": 2, "workerCount": 8}, (2, 8)),
    ],
)
def test_tensorflow_counts(node_count: int, settings: dict[str, Any], expected: tuple[int, int]) -> None:
    spec = make_spec(node_count, tensorFlowSettings={"pythonScriptFilePath": SCRIPT, **settings})
    assert toolkit_facts.tensorflow_counts(spec) == expected


def test_tensorflow_use_chief() -> None:
    spec = make_spec(3, tensorFlowSettings={**TF, "useChief": True})
    per_node = tasks(spec)
    configs = {(t.stdout, json.loads(t.env["TF_CONFIG"])["task"]["type"]): t.env for n in per_node for t in n}
    cluster = {"chief": ["h0:2223"], "ps": ["h0:2222"], "worker": ["h1:2222", "h2:2222"]}
    for (_name, _role), env in configs.items():
        assert json.loads(env["TF_CONFIG"])["cluster"] == cluster
    by_file = {t.stdout: t for n in per_node for t in n}
    assert json.loads(by_file["stdout-wk-0.txt"].env["TF_CONFIG"])["task"] == {"type": "chief", "index": 0}
    assert json.loads(by_file["stdout-wk-1.txt"].env["TF_CONFIG"])["task"] == {"type": "worker", "index": 0}
    assert json.loads(by_file["stdout-wk-2.txt"].env["TF_CONFIG"])["task"] == {"type": "worker", "index": 1}
    assert json.loads(by_file["stdout-ps-0.txt"].env["TF_CONFIG"])["task"] == {"type": "ps", "index": 0}
    # AZ_BATCHAI_TASK_INDEX and the host variables keep Batch AI's numbering.
    assert by_file["stdout-wk-2.txt"].env["AZ_BATCHAI_TASK_INDEX"] == "2"
    assert commands.toolkit_env(spec, hosts(3), 1)["AZ_BATCHAI_WORKER_HOSTS"] == "h0:2223,h1:2222,h2:2222"


def test_tensorflow_use_chief_single_node_leaves_out_empty_roles() -> None:
    task = only_task(make_spec(1, tensorFlowSettings={**TF, "useChief": True}))
    assert json.loads(task.env["TF_CONFIG"]) == {
        "cluster": {"chief": ["localhost:2222"]},
        "task": {"type": "chief", "index": 0},
        "environment": "cloud",
    }


# ---- PyTorch and Caffe2 --------------------------------------------------------------------------


def test_pytorch_ranks_round_robin() -> None:
    spec = make_spec(
        2,
        pyTorchSettings={
            "pythonScriptFilePath": SCRIPT,
            "commandLineArgs": "--rank $AZ_BATCHAI_TASK_INDEX",
            "processCount": 5,
            "communicationBackend": "gloo",
        },
    )
    per_node = tasks(spec)

    def rank(r: int) -> Task:
        cmd = f"python {SCRIPT} --rank $AZ_BATCHAI_TASK_INDEX"
        return Task("primary", f"stdout-{r}.txt", f"stderr-{r}.txt", cmd, {"AZ_BATCHAI_TASK_INDEX": str(r)})

    assert per_node == [[rank(0), rank(2), rank(4)], [rank(1), rank(3)]]
    assert commands.toolkit_env(spec, hosts(2), 1) == {
        "AZ_BATCH_HOST_LIST": "h0,h1",
        "AZ_BATCHAI_PYTORCH_BACKEND": "gloo",
        "AZ_BATCHAI_PYTORCH_INIT_METHOD": "tcp://h0:29500",
    }
    # With a shared job temp (a volume every node sees): Batch AI's shared-file-system rendezvous.
    shared = commands.toolkit_env(spec, hosts(2), 1, shared_job_temp=True)
    assert shared["AZ_BATCHAI_PYTORCH_INIT_METHOD"] == "file://$AZ_BATCHAI_SHARED_JOB_TEMP/pytorch_init"


def test_pytorch_defaults() -> None:
    spec = make_spec(1, pyTorchSettings={"pythonScriptFilePath": SCRIPT})
    assert only_task(spec).stdout == "stdout-0.txt"
    env = commands.toolkit_env(spec, ["job-0.job"], 1)
    assert env["AZ_BATCHAI_PYTORCH_BACKEND"] == "gloo"
    assert env["AZ_BATCHAI_PYTORCH_INIT_METHOD"] == "file://$AZ_BATCHAI_JOB_TEMP/pytorch_init"
    # processCount defaults to nodeCount: one rank per node.
    assert [
        [t.stdout for t in n] for n in tasks(make_spec(3, pyTorchSettings={"pythonScriptFilePath": SCRIPT}))
    ] == [
        ["stdout-0.txt"],
        ["stdout-1.txt"],
        ["stdout-2.txt"],
    ]


def test_caffe2_one_task_per_node() -> None:
    settings = {"pythonScriptFilePath": SCRIPT, "commandLineArgs": "--shard_id $AZ_BATCHAI_TASK_INDEX"}
    cmd = f"python {SCRIPT} --shard_id $AZ_BATCHAI_TASK_INDEX"
    assert tasks(make_spec(2, caffe2Settings=settings)) == [
        [Task("primary", "stdout-0.txt", "stderr-0.txt", cmd, {"AZ_BATCHAI_TASK_INDEX": "0"})],
        [Task("primary", "stdout-1.txt", "stderr-1.txt", cmd, {"AZ_BATCHAI_TASK_INDEX": "1"})],
    ]
    single = only_task(make_spec(1, caffe2Settings=settings))
    assert (single.stdout, single.stderr, single.env) == (
        "stdout.txt",
        "stderr.txt",
        {"AZ_BATCHAI_TASK_INDEX": "0"},
    )


# ---- hostfile, ssh and success rules -------------------------------------------------------------


@pytest.mark.parametrize(
    ("node_count", "settings", "gpus", "expected"),
    [
        (
            2,
            {"horovodSettings": {"pythonScriptFilePath": SCRIPT, "processCount": 8}},
            4,
            "h0 slots=4\nh1 slots=4\n",
        ),
        (2, {"horovodSettings": {"pythonScriptFilePath": SCRIPT}}, 4, "h0 slots=1\nh1 slots=1\n"),
        (
            3,
            {"customMpiSettings": {"commandLine": "a", "processCount": 4}},
            0,
            "h0 slots=2\nh1 slots=2\nh2 slots=2\n",
        ),
        (2, {"customToolkitSettings": {"commandLine": "a"}}, 4, "h0 slots=4\nh1 slots=4\n"),
        (2, {"tensorFlowSettings": {"pythonScriptFilePath": SCRIPT}}, 0, "h0 slots=1\nh1 slots=1\n"),
        (1, {"cntkSettings": {"pythonScriptFilePath": SCRIPT, "processCount": 2}}, 1, "localhost slots=2\n"),
    ],
)
def test_hostfile(node_count: int, settings: dict[str, Any], gpus: int, expected: str) -> None:
    assert commands.hostfile(make_spec(node_count, **settings), hosts(node_count), gpus) == expected


SSH_CASES: list[tuple[dict[str, Any], bool, bool]] = [
    # settings, waits_for_nodes (multi-node), decided_by_node_zero (multi-node)
    ({"cntkSettings": {"pythonScriptFilePath": SCRIPT}}, True, True),
    ({"cntkSettings": {"configFilePath": "c.cntk"}}, True, True),
    ({"horovodSettings": {"pythonScriptFilePath": SCRIPT}}, True, True),
    ({"chainerSettings": {"pythonScriptFilePath": SCRIPT}}, True, True),
    ({"caffeSettings": {"configFilePath": "s.prototxt"}}, True, True),
    ({"customMpiSettings": {"commandLine": "a"}}, True, True),
    ({"customToolkitSettings": {"commandLine": "a"}}, True, True),
    ({"pyTorchSettings": {"pythonScriptFilePath": SCRIPT, "communicationBackend": "mpi"}}, True, True),
    ({"pyTorchSettings": {"pythonScriptFilePath": SCRIPT, "communicationBackend": "Gloo"}}, False, False),
    ({"pyTorchSettings": {"pythonScriptFilePath": SCRIPT}}, False, False),
    ({"caffe2Settings": {"pythonScriptFilePath": SCRIPT}}, False, False),
    ({"tensorFlowSettings": {"pythonScriptFilePath": SCRIPT}}, False, True),
]


@pytest.mark.parametrize(("settings", "waits", "node_zero"), SSH_CASES)
def test_ssh_and_decided_by_node_zero(settings: dict[str, Any], waits: bool, node_zero: bool) -> None:
    multi = make_spec(3, **settings)
    # Batch AI set up password-less ssh between the nodes of every multi-node job, whatever the toolkit.
    assert toolkit_facts.needs_ssh(multi) is True
    assert toolkit_facts.waits_for_nodes(multi) is waits
    assert toolkit_facts.decided_by_node_zero(multi) is node_zero
    directives = [
        [line for line in text.splitlines() if line in ("wait_for_nodes", "serve_ssh")]
        for key, text in sorted(commands.render_config(multi, hosts(3), 1).items())
        if key.startswith("tasks-")
    ]
    assert directives == ([["wait_for_nodes"], ["serve_ssh"], ["serve_ssh"]] if waits else [[], [], []])
    single = make_spec(1, **settings)
    assert toolkit_facts.needs_ssh(single) is False
    assert toolkit_facts.waits_for_nodes(single) is False
    assert toolkit_facts.decided_by_node_zero(single) is True


# ---- ConfigMap data ------------------------------------------------------------------------------


def test_render_config_keys_and_launcher() -> None:
    spec = make_spec(3, customMpiSettings={"commandLine": "a.out"})
    data = commands.render_config(spec, hosts(3), 4)
    assert sorted(data) == [
        "hostfile",
        "launcher.sh",
        "lib.sh",
        "tasks-0.sh",
        "tasks-1.sh",
        "tasks-2.sh",
        "user-shell.bashrc",
    ]
    script = Path(commands.__file__).with_name("launcher.sh").read_text()
    assert data["launcher.sh"] == script
    assert data["lib.sh"] == Path(commands.__file__).with_name("lib.sh").read_text()
    assert data["hostfile"] == "h0 slots=1\nh1 slots=1\nh2 slots=1\n"
    assert "run_task" not in data["tasks-1.sh"].replace("# run_task", "")
    assert data["tasks-0.sh"].splitlines()[2:] == [
        "wait_for_nodes",
        "run_task primary stdout.txt stderr.txt -- 'batchai_mpirun 3 a.out'",
    ]


def test_tasks_file_quotes_every_word() -> None:
    command = """python "$AZ_BATCHAI_INPUT_X/a b.py" --name 'it'"'"'s' --x=$((1+2)) ; echo `date`"""
    spec = make_spec(1, customToolkitSettings={"commandLine": command})
    text = commands.render_config(spec, ["h0"], 1)["tasks-0.sh"]
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert len(lines) == 1
    assert shlex.split(lines[0]) == ["run_task", "primary", "stdout.txt", "stderr.txt", "--", command]
    tf = make_spec(1, tensorFlowSettings={"pythonScriptFilePath": SCRIPT})
    words = shlex.split(commands.render_config(tf, ["h0"], 1)["tasks-0.sh"].splitlines()[-1])
    assert words[4] == "AZ_BATCHAI_TASK_INDEX=0"
    assert words[5] == "TF_CONFIG=" + tf_config([], ["localhost:2222"], "worker", 0)
    assert words[6:] == ["--", f"python {SCRIPT}"]


def test_hosts_must_match_node_count() -> None:
    spec = make_spec(2, customMpiSettings={"commandLine": "a"})
    with pytest.raises(ValueError, match="1 hosts given for nodeCount 2"):
        commands.render_config(spec, ["h0"], 1)
    with pytest.raises(ValueError, match="invalid host name"):
        commands.toolkit_env(spec, ["h0", "h1,h2"], 1)
