"""The TrainingJob decision: what the operator saw of a job's world -> its status, Events and actions.

Level-based and pure: given the spec, the last status and the observed Job and pods, `decide` returns the
whole status again plus what to do (create the children, stop or (un)suspend the Job, delete the
TrainingJob when its TTL is over) and when to look again. reconcile/trainingjob.py observes and applies.

Batch AI's rules it follows: a finished job stays finished (terminate is then a no-op); the node that
decides the outcome is node 0 where only node 0 runs the toolkit, else the first to fail; errors carry
Batch AI's codes (JobFailed, JobPreparationFailed, FailedStartingContainer, AZFMountError, ...).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .. import toolkit_facts
from ..api.common import MountVolumes
from ..api.trainingjob import (
    BatchAIError,
    Condition,
    DirectoryPath,
    ExecutionInfo,
    NameValuePair,
    NodeCounts,
    StoragePath,
    TrainingJobSpec,
    TrainingJobStatus,
)
from ..manifests.batch_job import spec_hash
from ..manifests.paths import TrainingJobIdentity, stdouterr_dir
from ..names import (
    ANNOTATION_SPEC_HASH,
    CONDITION_FOR_STATE,
    CONDITION_SPEC_APPLIED,
    CONDITION_SUSPENDED,
    ERR_AZF_MOUNT,
    ERR_BFS_MOUNT,
    ERR_FAILED_STARTING_CONTAINER,
    ERR_INVALID_SPEC,
    ERR_JOB_FAILED,
    ERR_JOB_PREPARATION_FAILED,
    ERR_JOB_TERMINATED,
    ERR_MAX_WALL_CLOCK,
    ERR_NFS_MOUNT,
    ERR_UNMANAGED_MOUNT,
    ERR_VOLUME_MOUNT,
    FAILED,
    LABEL_KUEUE_QUEUE,
    MAIN_CONTAINER,
    PULL_FAILURES,
    QUEUED,
    RUNNING,
    RUNNING_FINISHING,
    START_FAILURES,
    SUCCEEDED,
    TERMINAL_STATES,
    TERMINATING,
    TRAININGJOB_CONDITION_TYPES,
    WAIT_CLUSTER_INVALID,
    WAIT_CLUSTER_NOT_FOUND,
    WAIT_CREATION_REJECTED,
    WAIT_FOR_NODES,
    WAIT_PODS_REJECTED,
    WAIT_SECRET_NOT_FOUND,
    WAIT_SUSPENDED,
)
from ..storage.locations import storage_status
from .common import Event, find_condition, fmt_time, parse_time, set_condition
from .kueue import kueue_hold
from .views import pod_index

# How long a job waits before its children are created again after the apiserver refused them
# (a ResourceQuota, a policy), and before it looks again for Secrets that do not exist yet.
CREATE_RETRY_SECONDS = 10.0
SECRET_RETRY_SECONDS = 10.0
# The Job's and the pods' watches are separate streams: the Job can say Failed before its failed pod's
# exit code reaches the pods index. The job waits this long for the code before failing without one.
EXIT_CODE_GRACE_SECONDS = 30.0
EXIT_CODE_RECHECK_SECONDS = 2.0


# Batch AI's error texts (reviews/batchai-fidelity.md M3, M10): the code per file system, the message
# Batch AI wrote, and the exit code it reported. NFS and unmanaged mounts had no published code.
JOB_FAILED_TEXT = "Job failed with non-zero exit code"
UNMANAGED_MOUNT_TEXT = "Unable to mount unmanaged file system"
MOUNT_ERRORS: dict[str, tuple[str, str, int]] = {
    "afs": (ERR_AZF_MOUNT, "Unable to mount Azure File", -1),
    "bfs": (ERR_BFS_MOUNT, "unable to mount blob fuse file system", 1),
    "nfs": (ERR_NFS_MOUNT, "Unable to mount NFS file server", -1),
    "": (ERR_VOLUME_MOUNT, "Unable to mount a volume of the job", -1),
}
_VOLUME_KIND = re.compile(r"\b(?:job|cluster)-(afs|bfs|nfs)-[0-9a-f]{10}\b")


def mount_kind(event_message: str) -> str:
    """Which kind of Batch AI mount a kubelet's FailedMount message is about ('afs', 'bfs', 'nfs'), from the
    pod volume name the builders give it; '' for any other volume."""
    m = _VOLUME_KIND.search(event_message)
    return m.group(1) if m else ""


# Failures the job's own pods and Job decide (and end): nothing to stop.
JOB_DECIDED = frozenset(
    {ERR_JOB_FAILED, ERR_JOB_PREPARATION_FAILED, ERR_UNMANAGED_MOUNT, ERR_MAX_WALL_CLOCK, ERR_JOB_TERMINATED}
)


# ---- what decide sees and returns ------------------------------------------------------------------


@dataclass(frozen=True)
class TrainingJobObserved:
    """What the operator saw of one TrainingJob's world: its indexes plus what it remembers doing."""

    ident: TrainingJobIdentity
    generation: int
    spec: TrainingJobSpec | None  # None when the spec cannot be parsed (spec_error says why)
    status: TrainingJobStatus  # the status last written
    cluster: str  # the BatchAICluster name spec.cluster names
    cluster_found: bool
    labels: Mapping[str, str] = field(default_factory=dict)
    spec_error: str | None = None
    cluster_error: str | None = None  # the cluster exists but its spec cannot be used
    job: Mapping[str, Any] | None = None  # our Job (controlled by this TrainingJob), slim
    pods: Sequence[Mapping[str, Any]] = ()  # the Job's pods, slim
    missing_secrets: Sequence[str] = ()  # referenced Secrets that do not exist (checked before a start)
    start_error: tuple[str, str] | None = None  # (code, message): the spec cannot become manifests here
    create_refused: tuple[str, datetime] | None = None  # the apiserver's message, when it refused
    creating: bool = False  # children were just created; the Job is not in the index yet
    mount_failure: tuple[int, str] | None = None  # (node index, message): a volume that will not mount
    mount_failure_kind: str = "afs"  # of that volume: afs, bfs, nfs, or '' (see mount_kind)
    pods_refused: str | None = None  # the Job controller's message: it cannot create the job's pods
    cluster_mounts: MountVolumes | None = None  # the cluster's mounts (where outputs may be in storage)


@dataclass(frozen=True)
class CreateChildren:
    """Build the children (Job, ConfigMap, Service, SSH Secret) and create them."""


@dataclass(frozen=True)
class DeleteBatchJob:
    """Stop the job's pods by deleting its Job."""

    name: str


@dataclass(frozen=True)
class SetBatchJobSuspend:
    """Pass spec.suspend to the Job (when Kueue does not own it)."""

    name: str
    suspend: bool  # the Job's spec.suspend from now on


@dataclass(frozen=True)
class DeleteTrainingJob:
    """ttlSecondsAfterFinished is over: delete the TrainingJob (its children go with it)."""


TrainingJobAction = CreateChildren | DeleteBatchJob | SetBatchJobSuspend | DeleteTrainingJob


@dataclass(frozen=True)
class TrainingJobDecision:
    status: TrainingJobStatus
    events: list[Event]
    actions: list[TrainingJobAction]
    requeue_after: float | None = None  # seconds until the job must be looked at again, whatever happens


# ---- the decision ----------------------------------------------------------------------------------


@dataclass
class _Outcome:
    """The execution state and why, plus what to do about it."""

    state: str
    reason: str
    message: str
    exit_code: int | None = None
    errors: list[BatchAIError] = field(default_factory=list)
    suspended: bool = False
    actions: list[TrainingJobAction] = field(default_factory=list)
    requeue_after: float | None = None
    # Worth an Event when the state changes. Not news: a job being created, and a job that starts running
    # (its status and Running condition say so; Events mark ends and setbacks), one write fewer per job each.
    news: bool = True


def decide(obs: TrainingJobObserved, now: datetime) -> TrainingJobDecision:
    """The TrainingJob's status, Events and actions for what was observed, at time `now`."""
    old = obs.status
    if old.execution_state in TERMINAL_STATES:
        status = _finished_status(obs)
        # The operator decided some failures while the Job ran on (a container that cannot start, a volume
        # that will not mount): its Job is stopped, also when a crash came between the status and the stop.
        errors = old.execution_info.errors if old.execution_info else None
        decided_here = (
            old.execution_state == FAILED and errors is not None and errors[0].code not in JOB_DECIDED
        )
        return _with_ttl(obs, status, [], _stop_if_running(obs.job) if decided_here else [], now)
    if obs.spec is None:
        out = _failed(ERR_INVALID_SPEC, f"The spec cannot be parsed: {obs.spec_error}")
        status = _new_status(obs, out, now)
        return TrainingJobDecision(status, _events(old, out), [])
    out = _outcome(obs, obs.spec, now)
    status = _new_status(obs, out, now)
    return _with_ttl(obs, status, _events(old, out), out.actions, now, out.requeue_after)


def _outcome(obs: TrainingJobObserved, spec: TrainingJobSpec, now: datetime) -> _Outcome:
    job = obs.job
    if obs.start_error:
        out = _failed(*obs.start_error)
        out.actions = _stop_if_running(job)
        return out
    if spec.terminate:
        if job is not None and not _job_finished(job):
            out = _Outcome(TERMINATING, "Terminating", "Termination requested: stopping the job's pods")
            if not (job.get("metadata") or {}).get("deletionTimestamp"):
                out.actions = [DeleteBatchJob(_name(job))]
            return out
        return _failed(ERR_JOB_TERMINATED, "The job was terminated by the user (spec.terminate)")
    if not obs.cluster_found:
        return _Outcome(
            QUEUED,
            WAIT_CLUSTER_NOT_FOUND,
            f"BatchAICluster {obs.cluster!r} does not exist in this namespace yet",
        )
    if obs.cluster_error:
        return _Outcome(
            QUEUED, WAIT_CLUSTER_INVALID, f"BatchAICluster {obs.cluster} is invalid: {obs.cluster_error}"
        )
    if job is None:
        return _start(obs, spec, now)

    suspend = bool((job.get("spec") or {}).get("suspend"))
    actions: list[TrainingJobAction] = []
    # Kueue owns suspend on the Jobs it queues; without Kueue, the TrainingJob's suspend is passed through.
    if LABEL_KUEUE_QUEUE not in obs.labels and suspend != bool(spec.suspend):
        suspend = bool(spec.suspend)
        actions.append(SetBatchJobSuspend(_name(job), suspend))
    out = _running_outcome(obs, spec, job, suspend, now)
    out.actions = actions + out.actions
    return out


def _start(obs: TrainingJobObserved, spec: TrainingJobSpec, now: datetime) -> _Outcome:
    """No Job yet: create the children, unless something they need is missing. A job whose children
    are being created already waits for its nodes: saying so at once spares a status write per job."""
    # A new job being created is not news; one whose Job is gone again is.
    news = obs.status.execution_state is not None
    if obs.creating:
        return _Outcome(QUEUED, WAIT_FOR_NODES, _waiting_message(obs, spec), news=news)
    if obs.missing_secrets:
        names = ", ".join(sorted(obs.missing_secrets))
        message = f"Waiting for Secret(s) {names} in namespace {obs.ident.namespace}"
        return _Outcome(QUEUED, WAIT_SECRET_NOT_FOUND, message, requeue_after=SECRET_RETRY_SECONDS)
    if obs.create_refused:
        reason, when = obs.create_refused
        out = _Outcome(QUEUED, WAIT_CREATION_REJECTED, f"The job's pods could not be created: {reason}")
        wait = (when + timedelta(seconds=CREATE_RETRY_SECONDS) - now).total_seconds()
        if wait > 0:
            out.requeue_after = wait
        else:
            out.actions = [CreateChildren()]
        return out
    return _Outcome(
        QUEUED, WAIT_FOR_NODES, _waiting_message(obs, spec), actions=[CreateChildren()], news=news
    )


def _running_outcome(
    obs: TrainingJobObserved, spec: TrainingJobSpec, job: Mapping[str, Any], suspend: bool, now: datetime
) -> _Outcome:
    """The job's children exist: what they say."""
    conds = {
        c["type"]: c for c in (job.get("status") or {}).get("conditions") or [] if c.get("status") == "True"
    }
    # The pods decide as soon as they end, as Batch AI's nodes did; the Job's conditions follow later
    # (the Job controller works through its queue at its own pace) and say the same.
    if "Complete" in conds or "SuccessCriteriaMet" in conds or _pods_succeeded(obs.pods, spec):
        return _Outcome(
            SUCCEEDED, "Succeeded", "The job completed successfully", exit_code=_success_exit(obs.pods)
        )
    failed = conds.get("Failed") or conds.get("FailureTarget")
    if failed:
        if _exit_code_on_its_way(obs, failed, now):
            return _Outcome(
                RUNNING,
                RUNNING_FINISHING,
                "The job failed; waiting for its pods' exit codes",
                requeue_after=EXIT_CODE_RECHECK_SECONDS,
            )
        return _job_failure(obs, spec, failed)
    if _pods_failed(obs.pods, spec):
        return _job_failure(obs, spec, {})
    pod_failure = _pod_start_failure(obs.pods)
    if pod_failure:
        pod_failure.actions = _stop_if_running(job)
        return pod_failure
    if obs.mount_failure:
        index, message = obs.mount_failure
        code, batchai_text, exit_code = MOUNT_ERRORS.get(obs.mount_failure_kind, MOUNT_ERRORS[""])
        out = _failed(
            code,
            f"A volume of node {index} will not mount: {message}",
            exit_code,
            error_message=batchai_text,
            info=f"Could not mount on node {index}: {message}",
        )
        out.actions = _stop_if_running(job)
        return out
    if suspend:
        held = kueue_hold(obs.labels, job)
        if held is not None:
            return _Outcome(QUEUED, *held)
        return _Outcome(QUEUED, WAIT_SUSPENDED, "The job is suspended", suspended=True)
    if obs.pods_refused and len(obs.pods) < spec.node_count:
        return _Outcome(
            QUEUED, WAIT_PODS_REJECTED, f"The job's pods could not be created: {obs.pods_refused}"
        )
    scheduled = [p for p in obs.pods if (p.get("spec") or {}).get("nodeName")]
    if len(scheduled) >= spec.node_count:
        message = f"All {spec.node_count} node(s) allocated; the job is running"
        return _Outcome(RUNNING, "Running", message, news=False)
    return _Outcome(QUEUED, WAIT_FOR_NODES, _waiting_message(obs, spec))


def _failed(
    code: str,
    message: str,
    exit_code: int | None = None,
    error_message: str | None = None,
    info: str | None = None,
) -> _Outcome:
    """A failure: `message` for the Failed condition and Event; the error in executionInfo carries
    `error_message` (the text Batch AI wrote for that code, where it had one) with `info` as its only
    detail, as Batch AI did, or else `message` with the exit code as a detail."""
    if error_message is not None:
        details = [NameValuePair(name="Info", value=info)] if info else None
        error = BatchAIError(code=code, message=error_message, details=details)
    else:
        exit_detail = (
            [NameValuePair(name="exitCode", value=str(exit_code))] if exit_code is not None else None
        )
        error = BatchAIError(code=code, message=message, details=exit_detail)
    return _Outcome(FAILED, code, message, exit_code=exit_code, errors=[error])


def _stop_if_running(job: Mapping[str, Any] | None) -> list[TrainingJobAction]:
    """The operator decided the outcome while the Job still runs: stop it (after the status is saved)."""
    if job is None or _job_finishing(job) or (job.get("metadata") or {}).get("deletionTimestamp"):
        return []
    return [DeleteBatchJob(_name(job))]


def _with_ttl(
    obs: TrainingJobObserved,
    status: TrainingJobStatus,
    events: list[Event],
    actions: list[TrainingJobAction],
    now: datetime,
    requeue_after: float | None = None,
) -> TrainingJobDecision:
    """ttlSecondsAfterFinished: a finished job is deleted that long after its end time."""
    ttl = obs.spec.ttl_seconds_after_finished if obs.spec else None
    end = parse_time(status.execution_info.end_time if status.execution_info else None)
    if ttl is not None and end is not None and status.execution_state in TERMINAL_STATES:
        remaining = (end + timedelta(seconds=ttl) - now).total_seconds()
        if remaining <= 0:
            actions = [*actions, DeleteTrainingJob()]
        else:
            requeue_after = remaining if requeue_after is None else min(requeue_after, remaining)
    return TrainingJobDecision(status, events, actions, requeue_after)


# ---- status ----------------------------------------------------------------------------------------


def _finished_status(obs: TrainingJobObserved) -> TrainingJobStatus:
    """Batch AI: a completed job stays completed; only the node counts move on (pods being cleaned up)."""
    status = obs.status.model_copy(update={"observed_generation": obs.generation})
    if obs.pods:
        status.nodes = node_counts(obs.pods)
    return status


def _new_status(obs: TrainingJobObserved, out: _Outcome, now: datetime) -> TrainingJobStatus:
    old = obs.status
    stamp = fmt_time(now)
    info = (old.execution_info or ExecutionInfo()).model_copy()
    if out.state in (RUNNING, TERMINATING) or (out.state in TERMINAL_STATES and obs.job is not None):
        info.start_time = info.start_time or _pods_start(obs.pods) or stamp
    if out.state in TERMINAL_STATES:
        info.end_time = stamp
        if out.exit_code is not None:
            info.exit_code = out.exit_code
        if out.errors:
            info.errors = out.errors
    counts = node_counts(obs.pods)
    status = TrainingJobStatus(
        execution_state=out.state,
        execution_state_transition_time=old.execution_state_transition_time
        if old.execution_state == out.state
        else stamp,
        execution_info=info,
        cluster=obs.cluster,
        nodes=counts,
        conditions=_conditions(obs, out, now),
        observed_generation=obs.generation,
    )
    if obs.spec is not None:
        spec, ident = obs.spec, obs.ident
        status.job_output_directory_path_segment = ident.segment
        status.std_out_err_directory = stdouterr_dir(spec, ident)
        # Where outputs and stdout/stderr are in Azure Storage, when they lie on a share or container.
        storage = storage_status(spec, obs.cluster_mounts, ident)
        status.output_directories = [DirectoryPath.model_validate(d) for d in storage["outputDirectories"]]
        if "stdOutErrStorage" in storage:
            status.std_out_err_storage = StoragePath.model_validate(storage["stdOutErrStorage"])
        status.tool_type = spec.tool_type
        status.nodes_summary = f"{counts.running + counts.succeeded + counts.failed}/{spec.node_count}"
    return status


def _conditions(obs: TrainingJobObserved, out: _Outcome, now: datetime) -> list[Condition]:
    active = CONDITION_FOR_STATE[out.state]
    conditions = list(obs.status.conditions or [])
    for ctype in TRAININGJOB_CONDITION_TYPES:
        is_true = ctype == active or (ctype == CONDITION_SUSPENDED and out.suspended)
        prev = find_condition(conditions, ctype)
        reason = out.reason if is_true else (prev.reason if prev and prev.reason else "NotActive")
        conditions = set_condition(
            conditions, ctype, is_true, reason, out.message if is_true else "", obs.generation, now
        )
    if obs.spec is not None:
        conditions = _spec_applied(obs, obs.spec, conditions, now)
    # The job's own condition types first, in their fixed order, then any others.
    order = {t: i for i, t in enumerate((*TRAININGJOB_CONDITION_TYPES, CONDITION_SPEC_APPLIED))}
    return sorted(conditions, key=lambda c: order.get(c.type, len(order)))


def _spec_applied(
    obs: TrainingJobObserved, spec: TrainingJobSpec, conditions: list[Condition], now: datetime
) -> list[Condition]:
    """Whether the running Job was built from the current spec: edits after the start are not applied."""
    built_from = ((obs.job or {}).get("metadata") or {}).get("annotations", {}).get(ANNOTATION_SPEC_HASH)
    applied = built_from is None or built_from == spec_hash(spec)
    if applied:
        return set_condition(conditions, CONDITION_SPEC_APPLIED, True, "Applied", "", obs.generation, now)
    message = (
        "The spec changed after the job's pods were created; only suspend, terminate and "
        "ttlSecondsAfterFinished apply to a started job. Delete and re-create it to run the new spec."
    )
    return set_condition(
        conditions, CONDITION_SPEC_APPLIED, False, "ImmutableAfterStart", message, obs.generation, now
    )


def _events(old: TrainingJobStatus, out: _Outcome) -> list[Event]:
    """An Event per change of state that is news (see _Outcome.news)."""
    if out.state == old.execution_state or not out.news:
        return []
    return [Event("Warning" if out.state == FAILED else "Normal", out.state.capitalize(), out.message)]


# ---- reading the Job and its pods --------------------------------------------------------------------


def node_counts(pods: Sequence[Mapping[str, Any]]) -> NodeCounts:
    counts = NodeCounts()
    for p in pods:
        st = p.get("status") or {}
        phase = st.get("phase")
        if phase == "Running":
            counts.running += 1
            if any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or []
            ):
                counts.ready += 1
        elif phase == "Succeeded":
            counts.succeeded += 1
        elif phase == "Failed":
            counts.failed += 1
    return counts


def main_terminated(pod: Mapping[str, Any]) -> dict[str, Any] | None:
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        if cs.get("name") == MAIN_CONTAINER:
            term = (cs.get("state") or {}).get("terminated")
            if term:
                return dict(term)
    return None


def _name(job: Mapping[str, Any]) -> str:
    return str(job["metadata"]["name"])


def _true_conditions(job: Mapping[str, Any]) -> set[str]:
    conds = (job.get("status") or {}).get("conditions") or []
    return {c.get("type") for c in conds if c.get("status") == "True"}


def _job_finished(job: Mapping[str, Any]) -> bool:
    return bool(_true_conditions(job) & {"Complete", "Failed"})


def _job_finishing(job: Mapping[str, Any]) -> bool:
    """Finished, or the Job controller is finishing it (its pods are being stopped by it)."""
    return bool(_true_conditions(job) & {"Complete", "Failed", "SuccessCriteriaMet", "FailureTarget"})


def _success_exit(pods: Sequence[Mapping[str, Any]]) -> int:
    for p in pods:
        term = main_terminated(p)
        if term is not None and pod_index(p) == 0:
            return int(term.get("exitCode", 0))
    return 0


def _pods_succeeded(pods: Sequence[Mapping[str, Any]], spec: TrainingJobSpec) -> bool:
    """Node 0 succeeded where only node 0 counts (the Job's successPolicy says the same), else every node."""
    done = {pod_index(p) for p in pods if (p.get("status") or {}).get("phase") == "Succeeded"}
    if toolkit_facts.decided_by_node_zero(spec):
        return 0 in done
    return done >= set(range(spec.node_count))


def _pods_failed(pods: Sequence[Mapping[str, Any]], spec: TrainingJobSpec) -> bool:
    """A node whose main container exited non-zero decides, when the Job retries no pod (maxRetryCount 0)."""
    if spec.effective_constraints.max_retry_count:
        return False
    for p in pods:
        term = main_terminated(p)
        if term is None or int(term.get("exitCode", 0)) == 0:
            continue
        if pod_index(p) == 0 or not toolkit_facts.decided_by_node_zero(spec):
            return True
    return False


def _exit_code_on_its_way(obs: TrainingJobObserved, cond: Mapping[str, Any], now: datetime) -> bool:
    """The Job failed because of a pod (any reason but its deadline; `status.failed` may still be 0
    then, the pod sits in `uncountedTerminatedPods`), no pod view has a non-zero exit code yet, and the
    verdict is recent: the pod's last update is still on its way (EXIT_CODE_GRACE_SECONDS)."""
    if cond.get("reason") == "DeadlineExceeded":
        return False
    if any(int((main_terminated(p) or {}).get("exitCode", 0)) != 0 for p in obs.pods):
        return False
    since = parse_time(cond.get("lastTransitionTime"))
    return since is not None and (now - since).total_seconds() < EXIT_CODE_GRACE_SECONDS


def _job_failure(obs: TrainingJobObserved, spec: TrainingJobSpec, cond: Mapping[str, Any]) -> _Outcome:
    reason = cond.get("reason") or ""
    if reason == "DeadlineExceeded":
        limit = spec.effective_constraints.max_wall_clock_time
        return _failed(ERR_MAX_WALL_CLOCK, f"The job ran longer than maxWallClockTime ({limit})")
    # The pod that decided the outcome: node 0 where only node 0 counts, else the first to fail.
    failed = []
    for p in obs.pods:
        term = main_terminated(p)
        if term is not None and int(term.get("exitCode", 0)) != 0:
            failed.append((term.get("finishedAt") or "", pod_index(p), term))
    if toolkit_facts.decided_by_node_zero(spec):
        failed.sort(key=lambda f: (f[1] != 0, f[0], f[1]))
    else:
        failed.sort(key=lambda f: (f[0], f[1]))
    if not failed:
        return _failed(
            ERR_JOB_FAILED, f"The job failed: {cond.get('message') or reason or 'no pod exit code'}"
        )
    _, index, term = failed[0]
    code = int(term["exitCode"])
    message = (term.get("message") or "").strip()
    if message.startswith("JobPreparationFailed"):
        return _failed(
            ERR_JOB_PREPARATION_FAILED, f"Job preparation failed on node {index} with exit code {code}", code
        )
    if message.startswith("MountFailed"):
        text = f"Mounting a volume failed on node {index}: {message}"
        return _failed(ERR_UNMANAGED_MOUNT, text, code, error_message=UNMANAGED_MOUNT_TEXT, info=text)
    if message.startswith("LauncherFailed"):
        return _failed(ERR_JOB_FAILED, f"The launcher failed on node {index}: {message}", code)
    # Batch AI's own text, without details (the exit code is in executionInfo.exitCode); the Failed
    # condition and Event say more: the node, and a kill by the kernel for want of memory.
    detailed = f"Job failed with non-zero exit code {code} on node {index}"
    if term.get("reason") == "OOMKilled":
        detailed += " (OOMKilled: the container ran out of memory)"
    return _failed(ERR_JOB_FAILED, detailed, code, error_message=JOB_FAILED_TEXT)


def _pod_start_failure(pods: Sequence[Mapping[str, Any]]) -> _Outcome | None:
    for p in sorted(pods, key=pod_index):
        for cs in (p.get("status") or {}).get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason in PULL_FAILURES or reason in START_FAILURES:
                detail = waiting.get("message") or reason
                return _failed(
                    ERR_FAILED_STARTING_CONTAINER,
                    f"Node {pod_index(p)} could not start container {cs.get('name')} ({reason}): {detail}",
                )
    return None


def _waiting_message(obs: TrainingJobObserved, spec: TrainingJobSpec) -> str:
    unschedulable = []
    for p in obs.pods:
        for c in (p.get("status") or {}).get("conditions") or []:
            if c.get("type") == "PodScheduled" and c.get("status") == "False" and c.get("message"):
                unschedulable.append(c["message"])
    n = spec.node_count
    if unschedulable:
        return (
            f"Waiting for {n} free node(s) of cluster {obs.cluster}: "
            f"{len(unschedulable)} pod(s) unschedulable: {unschedulable[0]}"
        )
    return f"Waiting for {n} node(s) of cluster {obs.cluster}"


def _pods_start(pods: Sequence[Mapping[str, Any]]) -> str | None:
    starts: list[str] = [s for p in pods if (s := (p.get("status") or {}).get("startTime"))]
    return min(starts) if starts else None


_SECRET_OPTION = re.compile(r"(?i)\b(password|pass|passwd|key|accountkey|sig|sastoken|token|secret)=[^,\s&]*")


def mount_failure_message(event_message: str, volumes: Mapping[str, str]) -> str:
    """The kubelet's FailedMount message, made safe and readable for status and Events.

    Drops the mount command's arguments (they may carry credentials), redacts option-style secrets,
    and names the Batch AI volume instead of the pod volume's hashed name.
    """
    lines = [ln for ln in event_message.splitlines() if not ln.strip().startswith("Mounting arguments:")]
    text = " ".join(ln.strip() for ln in lines if ln.strip())
    text = _SECRET_OPTION.sub(lambda m: f"{m.group(1)}=<redacted>", text)
    for name, description in volumes.items():
        text = text.replace(f'"{name}"', description).replace(name, description)
    return text[:1000]
