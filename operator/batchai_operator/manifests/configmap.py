"""The ConfigMaps job pods mount at CONFIG_DIR.

A multi-node job has one of its own: the launcher's files, the hostfile and every node's tasks. Single-node
jobs, the many, share one per namespace holding only the launcher's files (named after their content, so a
new operator version brings a new one), and carry their tasks and hostfile in the pod's environment: one
object fewer to create per job (performance target: at most 6 API writes per single-node job).
"""

from __future__ import annotations

import hashlib
from functools import cache
from typing import Any

from ..launcher import commands
from ..names import LABEL_MANAGED_BY, LABEL_ROLE, MANAGED_BY
from .context import TrainingJobContext

LAUNCHER_ROLE = "launcher"


def build_config_map(ctx: TrainingJobContext) -> dict[str, Any]:
    data = commands.render_config(ctx.spec, ctx.hosts, ctx.gpus)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.metadata(), "data": data}


@cache  # the launcher's files are the package's, fixed for the life of the process
def launcher_config_map_name() -> str:
    digest = hashlib.sha256(repr(sorted(commands.launcher_files().items())).encode()).hexdigest()[:10]
    return f"batchai-launcher-{digest}"


def build_launcher_config_map(namespace: str) -> dict[str, Any]:
    """The launcher's files, shared by the single-node jobs of a namespace (owned by none of them)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": launcher_config_map_name(),
            "namespace": namespace,
            "labels": {LABEL_MANAGED_BY: MANAGED_BY, LABEL_ROLE: LAUNCHER_ROLE},
        },
        "data": commands.launcher_files(),
    }
