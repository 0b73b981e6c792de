"""Toolkit command lines and per-node task lists, as Batch AI ran them (docs/migration.md).

`render_config` gives the job's ConfigMap data: `launcher.sh`, `lib.sh` and `user-shell.bashrc` (the
same for every job), `hostfile` and one `tasks-<index>.sh` per node. The pod runs
`bash <config dir>/launcher.sh`, which sources lib.sh and its node's tasks file. Each line there is one of

    run_task primary|background STDOUT_FILE STDERR_FILE [NAME=VALUE ...] -- COMMAND
    wait_for_nodes      (node 0 of a job that reaches the other nodes over ssh: wait for their sshd)
    serve_ssh           (a node with nothing to run: serve ssh until the Job ends the pod)

COMMAND is a shell command line, run by an interactive (non-login) bash that reads ~/.bashrc as Batch AI's
task shell did (recipes install Intel MPI in jobPreparation and add it to ~/.bashrc); $VARS in user
arguments expand in the pod. NAME=VALUE are per-task variables (AZ_BATCHAI_TASK_INDEX, TF_CONFIG). All
tasks of a node run concurrently; the node's exit code is the first non-zero exit code of its primary
tasks in file order, else 0; background tasks (TensorFlow parameter servers) are stopped when the
primary tasks end. A node with background tasks only waits for them (the Job ends it).

Files in the stdouterr directory, per toolkit:
  cntk, horovod, chainer, caffe, customMpi, customToolkit, pytorch with MPI backend:
      stdout.txt / stderr.txt, from node 0 only (ranks merged by mpirun)
  tensorflow: stdout-wk-<i>.txt / stderr-wk-<i>.txt and stdout-ps-<i>.txt / stderr-ps-<i>.txt
  pytorch:    stdout-<rank>.txt / stderr-<rank>.txt
  caffe2:     stdout.txt / stderr.txt on one node, stdout-<node index>.txt / stderr-<node index>.txt on more
  every job:  stdout-job_prep.txt / stderr-job_prep.txt and execution.log (the launcher's own log);
              on multi-node jobs stdout-job_prep-<nodeId>.txt, stderr-job_prep-<nodeId>.txt,
              execution-<nodeId>.log

Hosts are the nodes' DNS names in index order; a single-node job uses `localhost` everywhere (its pod
has no Service, so its own DNS name may not resolve). Every multi-node job gets password-less ssh between
its nodes (Batch AI set it up on every node, whatever the toolkit).

MPI: the MPI-style toolkits run `batchai_mpirun N PROGRAM...` when processCount > 1 or nodeCount > 1 (a
single process runs without it, so images need no MPI for that). `batchai_mpirun` is a launcher function:
it runs the image's `mpirun` with the flags of the MPI the image has, which the launcher detects after
jobPreparation (`mpirun --version` in the task shell; BATCHAI_MPI_FLAVOUR=openmpi|intelmpi|mpich in the
job's environmentVariables overrides it):
  Open MPI:               mpirun --allow-run-as-root --hostfile $AZ_BATCHAI_MPI_HOST_FILE -np N
  Intel MPI, MPICH (hydra): mpirun -machinefile $AZ_BATCHAI_MPI_HOST_FILE -n N
and writes $AZ_BATCHAI_MPI_HOST_FILE in that MPI's format (`host slots=N`, or `host:N` for hydra) from
the ConfigMap's `hostfile` (Open MPI format).
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from typing import Literal

from ..api.trainingjob import TrainingJobSpec
from ..toolkit_facts import (
    PROCESS_COUNT_TOOLS,
    process_count,
    runs_from_node_zero,
    tensorflow_counts,
    waits_for_nodes,
)

LAUNCHER_KEY = "launcher.sh"
LIBRARY_KEY = "lib.sh"
HOSTFILE_KEY = "hostfile"
SHELL_RC_KEY = "user-shell.bashrc"
# The rc file of the interactive shell that reads ~/.bashrc before each command line (launcher.sh
# user_shell): stderr back from fd 4 (bash's no-terminal complaints went to /dev/null), no history file.
# (Debian and Ubuntu's bash reads /etc/bash.bashrc itself first, as for any interactive shell.)
SHELL_RC = """# Read by the interactive bash that runs before each job command line (launcher.sh: user_shell).
exec 2>&4 4>&-
unset HISTFILE
if [ -f ~/.bashrc ]; then . ~/.bashrc; fi
"""
TF_BASE_PORT = 2222
PYTORCH_PORT = 29500
DEFAULT_PYTHON = "python"
# The launcher's mpirun wrapper (launcher.sh): `batchai_mpirun N PROGRAM [ARGS...]`.
MPIRUN = "batchai_mpirun"
# Tasks-file directives (launcher.sh functions).
WAIT_FOR_NODES = "wait_for_nodes"
SERVE_SSH = "serve_ssh"

Role = Literal["primary", "background"]


@dataclass(frozen=True)
class Task:
    """One process tree the launcher starts on a node."""

    role: Role
    stdout: str
    stderr: str
    command: str
    env: dict[str, str] = field(default_factory=dict)


def tasks_key(index: int) -> str:
    """ConfigMap key (and file name) of node `index`'s tasks file."""
    return f"tasks-{index}.sh"


@cache
def _package_file(name: str) -> str:
    return resources.files("batchai_operator.launcher").joinpath(name).read_text(encoding="utf-8")


def launcher_script() -> str:
    """launcher.sh, shipped as package data (it sources lib.sh from its own folder)."""
    return _package_file(LAUNCHER_KEY)


def shell_library() -> str:
    """lib.sh: the shell functions launcher.sh and setup.sh share."""
    return _package_file(LIBRARY_KEY)


def setup_script() -> str:
    """The setup task's whole script: lib.sh, then setup.sh (it runs with `bash -c`, from no file)."""
    return shell_library() + "\n" + _package_file("setup.sh")


# ---- PyTorch: backend and rendezvous ---------------------------------------------------------------


def pytorch_backend(spec: TrainingJobSpec) -> str:
    """AZ_BATCHAI_PYTORCH_BACKEND: communicationBackend as written, gloo when unset."""
    s = spec.py_torch_settings
    return (s.communication_backend if s else None) or "gloo"


def pytorch_init_method(spec: TrainingJobSpec, hosts: list[str], shared_job_temp: bool = False) -> str:
    """Batch AI's shared-file-system init: a file on the shared job temp, when the job has one
    (`shared_job_temp`: AZ_BATCHAI_SHARED_JOB_TEMP is on storage every node sees, and unique to the job,
    so no stale file is left from an earlier run). Single node: the pod's local job temp is shared by
    its ranks. Multi-node without a shared temp: TCP rendezvous on node 0. The launcher expands the
    variable."""
    if spec.node_count == 1:
        return "file://$AZ_BATCHAI_JOB_TEMP/pytorch_init"
    if shared_job_temp:
        return "file://$AZ_BATCHAI_SHARED_JOB_TEMP/pytorch_init"
    return f"tcp://{hosts[0]}:{PYTORCH_PORT}"


# ---- command lines ---------------------------------------------------------------------------------


def _join(*parts: str | None) -> str:
    """Batch AI built command lines by concatenation: arguments stay shell syntax, not quoted."""
    return " ".join(p.strip() for p in parts if p and p.strip())


def _python(interpreter: str | None, script: str | None, args: str | None) -> str:
    return _join(interpreter or DEFAULT_PYTHON, script, args)


def _mpirun(spec: TrainingJobSpec, program: str) -> str:
    n = process_count(spec)
    if n > 1 or spec.node_count > 1:
        return _join(MPIRUN, str(n), program)
    return program


def mpi_program(spec: TrainingJobSpec) -> str:
    """The program each MPI rank runs (before the mpirun wrapper)."""
    if (c := spec.cntk_settings) is not None:
        if c.is_brainscript:
            return _join("cntk", f"configFile={c.config_file_path}", c.command_line_args)
        return _python(c.python_interpreter_path, c.python_script_file_path, c.command_line_args)
    if (cf := spec.caffe_settings) is not None:
        if cf.config_file_path:
            return _join("caffe train", f"--solver={cf.config_file_path}", cf.command_line_args)
        return _python(cf.python_interpreter_path, cf.python_script_file_path, cf.command_line_args)
    if (h := spec.horovod_settings) is not None:
        return _python(h.python_interpreter_path, h.python_script_file_path, h.command_line_args)
    if (ch := spec.chainer_settings) is not None:
        return _python(ch.python_interpreter_path, ch.python_script_file_path, ch.command_line_args)
    if (m := spec.custom_mpi_settings) is not None:
        return m.command_line
    if (p := spec.py_torch_settings) is not None:
        return _python(p.python_interpreter_path, p.python_script_file_path, p.command_line_args)
    raise ValueError(f"{spec.tool_type} does not run under MPI")


# ---- TensorFlow ------------------------------------------------------------------------------------


def tensorflow_layout(
    node_count: int, ps_count: int, worker_count: int
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(node, port) of each PS and each worker. Each role goes round-robin over the nodes from node 0,
    PS first; ports start at 2222 on every node, +1 per further task on that node (Batch AI, BatchAI#15)."""
    next_port = [TF_BASE_PORT] * node_count

    def place(count: int) -> list[tuple[int, int]]:
        out = []
        for i in range(count):
            node = i % node_count
            out.append((node, next_port[node]))
            next_port[node] += 1
        return out

    ps = place(ps_count)
    return ps, place(worker_count)


def _tensorflow_hosts(spec: TrainingJobSpec, hosts: list[str]) -> tuple[list[str], list[str]]:
    ps, workers = tensorflow_layout(spec.node_count, *tensorflow_counts(spec))
    return [f"{hosts[n]}:{p}" for n, p in ps], [f"{hosts[n]}:{p}" for n, p in workers]


def tf_config(ps_hosts: list[str], worker_hosts: list[str], role: str, index: int, use_chief: bool) -> str:
    """TF_CONFIG as Batch AI wrote it; with use_chief, worker 0 is cluster.chief[0] (task type chief) and
    the other workers are re-indexed from 0, which tf.estimator needs. Empty roles are then left out."""
    cluster: dict[str, list[str]]
    if use_chief:
        cluster = {"chief": worker_hosts[:1]}
        if ps_hosts:
            cluster["ps"] = ps_hosts
        if len(worker_hosts) > 1:
            cluster["worker"] = worker_hosts[1:]
        if role == "worker":
            role, index = ("chief", 0) if index == 0 else ("worker", index - 1)
    else:
        cluster = {"ps": ps_hosts, "worker": worker_hosts}
    config = {"cluster": cluster, "task": {"type": role, "index": index}, "environment": "cloud"}
    return json.dumps(config, separators=(",", ":"))


def _tensorflow_tasks(spec: TrainingJobSpec, hosts: list[str]) -> list[list[Task]]:
    s = spec.tensor_flow_settings
    assert s is not None
    ps, workers = tensorflow_layout(spec.node_count, *tensorflow_counts(spec))
    ps_hosts, worker_hosts = _tensorflow_hosts(spec, hosts)
    nodes: list[list[Task]] = [[] for _ in range(spec.node_count)]
    for i, (node, _port) in enumerate(ps):
        config = tf_config(ps_hosts, worker_hosts, "ps", i, bool(s.use_chief))
        env = {"AZ_BATCHAI_TASK_INDEX": str(i), "TF_CONFIG": config}
        args = s.parameter_server_command_line_args
        command = _python(s.python_interpreter_path, s.python_script_file_path, args)
        nodes[node].append(Task("background", f"stdout-ps-{i}.txt", f"stderr-ps-{i}.txt", command, env))
    for i, (node, _port) in enumerate(workers):
        config = tf_config(ps_hosts, worker_hosts, "worker", i, bool(s.use_chief))
        env = {"AZ_BATCHAI_TASK_INDEX": str(i), "TF_CONFIG": config}
        args = s.master_command_line_args if i == 0 else s.worker_command_line_args
        command = _python(s.python_interpreter_path, s.python_script_file_path, args)
        nodes[node].append(Task("primary", f"stdout-wk-{i}.txt", f"stderr-wk-{i}.txt", command, env))
    return nodes


# ---- tasks per node --------------------------------------------------------------------------------


def node_tasks(spec: TrainingJobSpec, hosts: list[str]) -> list[list[Task]]:
    """The tasks of every node, index order."""
    hosts = _hosts(spec, hosts)
    n = spec.node_count
    nodes: list[list[Task]] = [[] for _ in range(n)]
    if spec.tensor_flow_settings is not None:
        return _tensorflow_tasks(spec, hosts)
    if (custom := spec.custom_toolkit_settings) is not None:
        if custom.command_line:
            nodes[0].append(Task("primary", "stdout.txt", "stderr.txt", custom.command_line))
        return nodes
    if runs_from_node_zero(spec):
        nodes[0].append(Task("primary", "stdout.txt", "stderr.txt", _mpirun(spec, mpi_program(spec))))
        return nodes
    if (p := spec.py_torch_settings) is not None:
        command = _python(p.python_interpreter_path, p.python_script_file_path, p.command_line_args)
        for rank in range(process_count(spec)):
            env = {"AZ_BATCHAI_TASK_INDEX": str(rank)}
            nodes[rank % n].append(Task("primary", f"stdout-{rank}.txt", f"stderr-{rank}.txt", command, env))
        return nodes
    if (c2 := spec.caffe2_settings) is not None:
        command = _python(c2.python_interpreter_path, c2.python_script_file_path, c2.command_line_args)
        for i in range(n):
            suffix = "" if n == 1 else f"-{i}"
            env = {"AZ_BATCHAI_TASK_INDEX": str(i)}
            nodes[i].append(Task("primary", f"stdout{suffix}.txt", f"stderr{suffix}.txt", command, env))
        return nodes
    raise ValueError(f"unknown toolkit {spec.tool_type}")


def render_tasks_file(spec: TrainingJobSpec, index: int, tasks: list[Task]) -> str:
    lines = [
        f"# Tasks of node {index} of {spec.node_count} ({spec.tool_type}), sourced by launcher.sh:",
        "# run_task primary|background STDOUT_FILE STDERR_FILE [NAME=VALUE ...] -- COMMAND",
    ]
    if waits_for_nodes(spec):
        lines.append(WAIT_FOR_NODES if index == 0 else SERVE_SSH)
    for t in tasks:
        words = [t.role, t.stdout, t.stderr, *(f"{k}={v}" for k, v in t.env.items()), "--", t.command]
        lines.append("run_task " + " ".join(shlex.quote(w) for w in words))
    if not tasks:
        lines.append("# (no tasks on this node)")
    return "\n".join(lines) + "\n"


def hostfile(spec: TrainingJobSpec, hosts: list[str], gpus_per_node: int) -> str:
    """Open MPI hostfile, one `<host> slots=<n>` line per node (the launcher rewrites it for the MPI the
    image has). With processCount, slots = processes per
    node (rounded up) so mpirun's by-slot mapping spreads ranks evenly; otherwise the node's GPU count
    (at least 1), for users who run mpirun themselves (customToolkit)."""
    hosts = _hosts(spec, hosts)
    if spec.tool_type in PROCESS_COUNT_TOOLS:
        slots = math.ceil(process_count(spec) / spec.node_count)
    else:
        slots = max(gpus_per_node, 1)
    return "".join(f"{h} slots={slots}\n" for h in hosts)


def toolkit_env(
    spec: TrainingJobSpec, hosts: list[str], gpus_per_node: int, shared_job_temp: bool = False
) -> dict[str, str]:
    """Job-wide toolkit variables for every pod (values may hold $VARS: the launcher expands
    AZ_BATCHAI_* values). gpus_per_node is accepted for symmetry with render_config; shared_job_temp:
    the job's AZ_BATCHAI_SHARED_JOB_TEMP is on storage all its nodes see (PyTorch rendezvous there)."""
    hosts = _hosts(spec, hosts)
    env = {"AZ_BATCH_HOST_LIST": ",".join(hosts)}
    if spec.tensor_flow_settings is not None:
        ps_hosts, worker_hosts = _tensorflow_hosts(spec, hosts)
        env["AZ_BATCHAI_PS_HOSTS"] = ",".join(ps_hosts)
        env["AZ_BATCHAI_WORKER_HOSTS"] = ",".join(worker_hosts)
    if spec.py_torch_settings is not None:
        env["AZ_BATCHAI_PYTORCH_BACKEND"] = pytorch_backend(spec)
        env["AZ_BATCHAI_PYTORCH_INIT_METHOD"] = pytorch_init_method(spec, hosts, shared_job_temp)
    return env


def launcher_files() -> dict[str, str]:
    """The files every job's pods run, whatever the job: launcher.sh, lib.sh, user-shell.bashrc."""
    return {LAUNCHER_KEY: launcher_script(), LIBRARY_KEY: shell_library(), SHELL_RC_KEY: SHELL_RC}


def job_files(spec: TrainingJobSpec, hosts: list[str], gpus_per_node: int) -> dict[str, str]:
    """The files of one job: its hostfile and tasks-<index>.sh for every node."""
    data = {HOSTFILE_KEY: hostfile(spec, hosts, gpus_per_node)}
    for i, tasks in enumerate(node_tasks(spec, hosts)):
        data[tasks_key(i)] = render_tasks_file(spec, i, tasks)
    return data


def render_config(spec: TrainingJobSpec, hosts: list[str], gpus_per_node: int) -> dict[str, str]:
    """ConfigMap data: launcher.sh, lib.sh, user-shell.bashrc, hostfile and tasks-<index>.sh for every
    node."""
    return {**launcher_files(), **job_files(spec, hosts, gpus_per_node)}


def _hosts(spec: TrainingJobSpec, hosts: list[str]) -> list[str]:
    """The names processes use to reach each node. A single-node job's pod has no Service or subdomain,
    so its own DNS name may not resolve: it is `localhost` there."""
    if len(hosts) != spec.node_count:
        raise ValueError(f"{len(hosts)} hosts given for nodeCount {spec.node_count}")
    for h in hosts:
        if not h or any(c in h for c in ", \t\n:"):
            raise ValueError(f"invalid host name {h!r}")
    return ["localhost"] if spec.node_count == 1 else list(hosts)
