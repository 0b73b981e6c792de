"""Size limits a job's children must fit, checked before they are built or created.

The apiserver refuses a ConfigMap whose data exceeds 1 MiB, and rendering a job whose tasks each carry
the whole cluster (TensorFlow's TF_CONFIG lists every task) costs time and memory quadratic in the task
count. So the size is estimated first, from the counts alone (linear), and a job that cannot fit fails
with a clear error before anything is rendered; the rendered ConfigMap is then checked exactly.
"""

from __future__ import annotations

from collections.abc import Mapping

from .. import toolkit_facts
from ..api.toolkits import TOOLKIT_FIELDS
from ..api.trainingjob import TrainingJobSpec
from ..launcher import commands
from ..names import ERR_JOB_TOO_LARGE
from .errors import BuildError

# The apiserver's limit on a ConfigMap's data, less room for its metadata.
CONFIG_MAP_MAX_BYTES = 1024 * 1024 - 16 * 1024
# Per task line of a tasks file besides the command and its variables: role, file names, quoting.
_TASK_OVERHEAD = 200


def task_count(spec: TrainingJobSpec) -> int:
    """How many tasks the job's nodes run (TensorFlow: PS + workers; PyTorch: one per rank)."""
    if spec.tensor_flow_settings is not None:
        ps, workers = toolkit_facts.tensorflow_counts(spec)
        return ps + workers
    if spec.py_torch_settings is not None and not toolkit_facts.is_pytorch_mpi(spec):
        return toolkit_facts.process_count(spec)
    return spec.node_count


def _longest_command(spec: TrainingJobSpec) -> int:
    """An upper bound of one task's command line: every string of the toolkit settings, quoted."""
    settings = next(getattr(spec, f) for f in TOOLKIT_FIELDS if getattr(spec, f) is not None)
    strings = [v for v in settings.wire().values() if isinstance(v, str)]
    return 2 * sum(len(s) for s in strings) + 100  # shell quoting at most doubles a string


def estimated_config_bytes(spec: TrainingJobSpec, hosts: list[str]) -> int:
    """An upper bound of the ConfigMap's data, computed in time linear in the task count."""
    tasks = task_count(spec)
    per_task = _longest_command(spec) + _TASK_OVERHEAD
    if spec.tensor_flow_settings is not None:
        # TF_CONFIG of every task lists every task's host:port.
        longest_host = max((len(h) for h in hosts), default=9)
        per_task += tasks * (longest_host + 10) + 100
    fixed = len(commands.launcher_script()) + len(commands.shell_library())
    hostfile = sum(len(h) + 16 for h in hosts)
    return fixed + hostfile + tasks * per_task


def check_config_estimate(spec: TrainingJobSpec, hosts: list[str]) -> None:
    estimate = estimated_config_bytes(spec, hosts)
    if estimate > CONFIG_MAP_MAX_BYTES:
        raise BuildError(
            ERR_JOB_TOO_LARGE,
            f"The job's launcher configuration would take about {estimate // 1024} KiB for its "
            f"{task_count(spec)} task(s) on {spec.node_count} node(s); at most "
            f"{CONFIG_MAP_MAX_BYTES // 1024} KiB fit in a ConfigMap. Use fewer tasks (workerCount, "
            "parameterServerCount, processCount) or shorter command line arguments.",
        )


def check_config_size(data: Mapping[str, str]) -> None:
    size = sum(len(k) + len(v.encode()) for k, v in data.items())
    if size > CONFIG_MAP_MAX_BYTES:
        raise BuildError(
            ERR_JOB_TOO_LARGE,
            f"The job's launcher configuration takes {size // 1024} KiB; at most "
            f"{CONFIG_MAP_MAX_BYTES // 1024} KiB fit in a ConfigMap. Use fewer tasks or shorter arguments.",
        )
