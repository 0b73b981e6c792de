"""The headless Service of a multi-node TrainingJob: stable DNS names '<job>-<index>.<job>' for its pods."""

from __future__ import annotations

from typing import Any

from ..names import LABEL_TRAININGJOB_UID
from .context import TrainingJobContext


def build_service(ctx: TrainingJobContext) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": ctx.metadata(),
        "spec": {
            "clusterIP": "None",
            # Workers must be resolvable before they are Ready: node 0 waits for their sshd itself.
            "publishNotReadyAddresses": True,
            "selector": {LABEL_TRAININGJOB_UID: ctx.ident.uid},
        },
    }
