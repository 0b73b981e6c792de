"""The ConfigMap every pod of a TrainingJob mounts: the launcher, the hostfile and each node's tasks."""

from __future__ import annotations

from typing import Any

from ..launcher import commands
from .context import JobContext


def build_config_map(ctx: JobContext) -> dict[str, Any]:
    data = commands.render_config(ctx.spec, ctx.hosts, ctx.gpus)
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": ctx.metadata(), "data": data}
