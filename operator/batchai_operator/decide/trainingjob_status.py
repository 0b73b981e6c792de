"""A TrainingJob's status from the state machine's outcome (decide/trainingjob.py): executionState and
executionInfo, node counts, resolved paths, the conditions in their fixed order, and the Events. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..api.trainingjob import (
    BatchAIError,
    Condition,
    DirectoryPath,
    ExecutionInfo,
    GangStatus,
    StoragePath,
    TrainingJobSpec,
    TrainingJobStatus,
)
from ..manifests.batch_job import spec_hash
from ..manifests.paths import stdouterr_dir
from ..names import (
    ANNOTATION_SPEC_HASH,
    CONDITION_FOR_STATE,
    CONDITION_SPEC_APPLIED,
    CONDITION_SUSPENDED,
    FAILED,
    RUNNING,
    TERMINAL_STATES,
    TERMINATING,
    TRAININGJOB_CONDITION_TYPES,
    WAIT_FOR_NODES,
)
from ..observe.trainingjob import TrainingJobWorld
from ..storage.locations import storage_status
from . import pods as pod_readers
from .common import Event, find_condition, fmt_time, set_condition
from .failures import Failure


@dataclass
class Outcome:
    """What the state machine concluded: the execution state and why, plus what to do about it."""

    state: str
    reason: str
    message: str
    exit_code: int | None = None
    errors: list[BatchAIError] = field(default_factory=list)
    suspended: bool = False
    requeue_after: float | None = None
    # Worth an Event when the state changes. Not news: a job being created, and a job that starts running
    # (its status and Running condition say so; Events mark ends and setbacks), one write fewer per job each.
    news: bool = True
    gang: GangStatus | None = None  # a multi-node job's gang, when this outcome says more than its mechanism

    @staticmethod
    def failed(f: Failure) -> Outcome:
        return Outcome(FAILED, f.code, f.message, exit_code=f.exit_code, errors=[f.error])


def finished_status(world: TrainingJobWorld) -> TrainingJobStatus:
    """Batch AI: a completed job stays completed; only the node counts move on (pods being cleaned up)."""
    status = world.status.model_copy(update={"observed_generation": world.view["metadata"]["generation"]})
    if world.pods:
        status.nodes = pod_readers.node_counts(world.pods)
    return status


def new_status(world: TrainingJobWorld, out: Outcome, now: datetime) -> TrainingJobStatus:
    old = world.status
    stamp = fmt_time(now)
    info = (old.execution_info or ExecutionInfo()).model_copy()
    if out.state in (RUNNING, TERMINATING) or (out.state in TERMINAL_STATES and world.batch_job is not None):
        info.start_time = info.start_time or pod_readers.first_start(world.pods) or stamp
    if out.state in TERMINAL_STATES:
        info.end_time = stamp
        if out.exit_code is not None:
            info.exit_code = out.exit_code
        if out.errors:
            info.errors = out.errors
    counts = pod_readers.node_counts(world.pods)
    generation = world.view["metadata"]["generation"]
    status = TrainingJobStatus(
        execution_state=out.state,
        execution_state_transition_time=old.execution_state_transition_time
        if old.execution_state == out.state
        else stamp,
        execution_info=info,
        cluster=world.view["cluster"],
        nodes=counts,
        conditions=_conditions(world, out, now),
        observed_generation=generation,
    )
    spec = world.spec
    if spec is not None:
        ident = world.ident
        status.job_output_directory_path_segment = ident.segment
        status.std_out_err_directory = stdouterr_dir(spec, ident)
        # Where outputs and stdout/stderr are in Azure Storage, when they lie on a share or container.
        cluster = world.cluster_spec
        cluster_mounts = cluster.node_setup.mount_volumes if cluster and cluster.node_setup else None
        storage = storage_status(spec, cluster_mounts, ident)
        status.output_directories = [DirectoryPath.model_validate(d) for d in storage["outputDirectories"]]
        if "stdOutErrStorage" in storage:
            status.std_out_err_storage = StoragePath.model_validate(storage["stdOutErrStorage"])
        status.tool_type = spec.tool_type
        status.nodes_summary = f"{counts.running + counts.succeeded + counts.failed}/{spec.node_count}"
    if world.gang is not None:
        gang = world.gang
        status.gang = out.gang or GangStatus(mechanism=gang.mechanism.value, needed=gang.verdict.needed)
    return status


def _conditions(world: TrainingJobWorld, out: Outcome, now: datetime) -> list[Condition]:
    active = CONDITION_FOR_STATE[out.state]
    generation = world.view["metadata"]["generation"]
    conditions = list(world.status.conditions or [])
    for ctype in TRAININGJOB_CONDITION_TYPES:
        is_true = ctype == active or (ctype == CONDITION_SUSPENDED and out.suspended)
        prev = find_condition(conditions, ctype)
        reason = out.reason if is_true else (prev.reason if prev and prev.reason else "NotActive")
        conditions = set_condition(
            conditions, ctype, is_true, reason, out.message if is_true else "", generation, now
        )
    if world.spec is not None:
        conditions = _spec_applied(world, world.spec, conditions, now)
    # The job's own condition types first, in their fixed order, then any others.
    order = {t: i for i, t in enumerate((*TRAININGJOB_CONDITION_TYPES, CONDITION_SPEC_APPLIED))}
    return sorted(conditions, key=lambda c: order.get(c.type, len(order)))


def _spec_applied(
    world: TrainingJobWorld, spec: TrainingJobSpec, conditions: list[Condition], now: datetime
) -> list[Condition]:
    """Whether the running batch Job was built from the current spec: edits after the start are not
    applied."""
    generation = world.view["metadata"]["generation"]
    annotations = ((world.batch_job or {}).get("metadata") or {}).get("annotations", {})
    built_from = annotations.get(ANNOTATION_SPEC_HASH)
    if built_from is None or built_from == spec_hash(spec):
        return set_condition(conditions, CONDITION_SPEC_APPLIED, True, "Applied", "", generation, now)
    message = (
        "The spec changed after the job's pods were created; only suspend, terminate and "
        "ttlSecondsAfterFinished apply to a started job. Delete and re-create it to run the new spec."
    )
    return set_condition(
        conditions, CONDITION_SPEC_APPLIED, False, "ImmutableAfterStart", message, generation, now
    )


def events(old: TrainingJobStatus, out: Outcome) -> list[Event]:
    """An Event per change of state that is news (see Outcome.news); and one when a multi-node job starts
    waiting for its gang (its status.gang.message says why), once until it stops waiting."""
    out_events: list[Event] = []
    if out.state != old.execution_state and out.news:
        out_events.append(
            Event("Warning" if out.state == FAILED else "Normal", out.state.capitalize(), out.message)
        )
    if out.gang is not None and out.gang.message and not (old.gang is not None and old.gang.message):
        out_events.append(Event("Normal", WAIT_FOR_NODES, out.gang.message))
    return out_events
