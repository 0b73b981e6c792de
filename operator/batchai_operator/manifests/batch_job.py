"""The Indexed batch/v1 Job of a TrainingJob: completions = parallelism = nodeCount (docs/design.md)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .. import toolkit_facts
from ..api.trainingjob import TrainingJobSpec
from ..decide.gang import Mechanism
from ..names import ANNOTATION_SPEC_HASH
from .context import TrainingJobContext
from .gang import join_pod_group
from .pod import build_pod_template

# Fields that may change on a running job: they steer the Job instead of rebuilding it.
MUTABLE_FIELDS = {"suspend", "terminate", "ttlSecondsAfterFinished"}


def spec_hash(spec: TrainingJobSpec) -> str:
    """Hash of the spec without its mutable fields."""
    fixed = {k: v for k, v in spec.wire().items() if k not in MUTABLE_FIELDS}
    return hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()[:16]


def build_batch_job(ctx: TrainingJobContext) -> dict[str, Any]:
    spec = ctx.spec
    constraints = spec.effective_constraints
    job_spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": spec.node_count,
        "parallelism": spec.node_count,
        "backoffLimit": constraints.max_retry_count or 0,
        "activeDeadlineSeconds": constraints.max_wall_clock_seconds,
        # Under the operator's own admission the Job waits suspended until the job's nodes are free.
        "suspend": bool(spec.suspend) or ctx.gang is Mechanism.ADMISSION,
        "template": build_pod_template(ctx),
    }
    if ctx.gang is Mechanism.WORKLOAD:  # its pods join the job's PodGroup (manifests/gang.py)
        job_spec["template"]["spec"] = join_pod_group(job_spec["template"]["spec"], ctx.child)
    if toolkit_facts.decided_by_node_zero(spec) and ctx.multi_node:
        # Batch AI: where only node 0 runs the toolkit, node 0's exit decides the job.
        job_spec["successPolicy"] = {"rules": [{"succeededIndexes": "0"}]}
    metadata = ctx.metadata()
    metadata["annotations"] = {ANNOTATION_SPEC_HASH: spec_hash(spec)}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": metadata, "spec": job_spec}
