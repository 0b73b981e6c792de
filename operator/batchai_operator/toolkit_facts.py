"""What each Batch AI toolkit means for running a job, read from its spec: which node runs the job's
program, whether the nodes need ssh, how many processes it has, whose exit code decides the job. Pure.

One module for the three places that act on these facts: the launcher's task files (launcher/commands.py),
the children's manifests (manifests/: the Job's successPolicy, the SSH Secret) and the decision on the
job's outcome (decide/).
"""

from __future__ import annotations

from .api.trainingjob import TrainingJobSpec

# toolType values whose command runs under mpirun from node 0 (processCount ranks over the hostfile).
MPI_TOOLS = frozenset({"cntk", "horovod", "chainer", "caffe", "mpi"})
# toolType values with a processCount setting (it sizes the hostfile's slots).
PROCESS_COUNT_TOOLS = MPI_TOOLS | {"pytorch"}


def is_pytorch_mpi(spec: TrainingJobSpec) -> bool:
    s = spec.py_torch_settings
    return s is not None and (s.communication_backend or "").lower() == "mpi"


def runs_from_node_zero(spec: TrainingJobSpec) -> bool:
    """Node 0 runs the job's one process (mpirun or the custom command line); other nodes serve ssh."""
    return spec.tool_type in MPI_TOOLS or spec.tool_type == "custom" or is_pytorch_mpi(spec)


def needs_ssh(spec: TrainingJobSpec) -> bool:
    """Every multi-node job: Batch AI set up password-less ssh between the nodes of every job, whatever
    the toolkit (jobs and jobPreparation ssh to their peers). The builder then mounts the SSH key Secret
    and sets BATCHAI_SSH_DIR; the launcher runs sshd on every node."""
    return spec.node_count > 1


def waits_for_nodes(spec: TrainingJobSpec) -> bool:
    """Multi-node job whose node 0 reaches the others over ssh (mpirun; customToolkit users ran mpirun
    themselves): node 0 starts only when every other node serves ssh, that is, when every node's
    jobPreparation has finished; the other nodes only serve ssh."""
    return spec.node_count > 1 and runs_from_node_zero(spec)


def decided_by_node_zero(spec: TrainingJobSpec) -> bool:
    """Only node 0's exit decides the job (MPI-style, custom, TensorFlow master): the builder sets a Job
    successPolicy on index 0, and decide/ reads node 0's exit code. PyTorch (non-MPI) and Caffe2 need
    every node to succeed (the first to fail decides)."""
    return spec.node_count == 1 or runs_from_node_zero(spec) or spec.tool_type == "tensorflow"


def process_count(spec: TrainingJobSpec) -> int:
    """processCount, defaulting to nodeCount (1 per node for toolkits without the setting)."""
    for s in (
        spec.cntk_settings,
        spec.horovod_settings,
        spec.chainer_settings,
        spec.caffe_settings,
        spec.custom_mpi_settings,
        spec.py_torch_settings,
    ):
        if s is not None and s.process_count is not None:
            return s.process_count
    return spec.node_count


def tensorflow_counts(spec: TrainingJobSpec) -> tuple[int, int]:
    """(parameter servers, workers): workers default to nodeCount; 1 PS when distributed, else 0."""
    s = spec.tensor_flow_settings
    if s is None:
        raise ValueError("not a TensorFlow job")
    workers = s.worker_count or spec.node_count
    if s.parameter_server_count is not None:
        return s.parameter_server_count, workers
    distributed = spec.node_count > 1 or workers > 1
    return (1 if distributed else 0), workers
