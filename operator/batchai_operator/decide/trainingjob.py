"""The TrainingJob state machine: what the operator saw of a job's world (observe/trainingjob.py) and the
children its spec asks for (reconcile's desired step) -> its status, Events and actions. Pure.

Level-based: given the world, `decide` returns the whole status again plus what to do (create the
children, stop or (un)suspend the batch Job, delete the TrainingJob when its TTL is over) and when to look
again. reconcile/ writes the status first, then applies the actions.

Batch AI's rules it follows: a finished job stays finished (terminate is then a no-op); the node that
decides the outcome is node 0 where only node 0 runs the toolkit, else the first to fail; errors carry
Batch AI's codes (decide/failures.py).

Where features plug in (`_outcome`'s numbered steps): one that holds a job before it runs (gang
scheduling: suspended until admitted) is a branch of step 5 that returns QUEUED with its own reason, and
SetBatchJobSuspend when the batch Job must change; its extra child (a PodGroup, a Workload) is one more
member of the desired TrainingJobChildren. A node Kubernetes takes away (lost, drained, preempted) is run
again by the batch Job itself (its podFailurePolicy); the decision counts it in status (decide/requeues.py)
and fails the job beyond jobs.maxRequeues. A multi-node job restarts the whole attempt instead (its nodes
work together: node 0's mpirun cannot take a new peer): the requeue returns DeleteBatchJob with
wait_for_pods (foreground deletion: the batch Job, its name taken, stays until every pod of the attempt is
gone, also the one on the lost node), the job stays queued/Requeued meanwhile, and step 4 then creates the
next attempt's children.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..api.trainingjob import GangStatus, Requeue, TrainingJobSpec, TrainingJobStatus
from ..manifests.children import TrainingJobChildren
from ..names import (
    ERR_INVALID_SPEC,
    ERR_JOB_TERMINATED,
    ERR_TOO_MANY_REQUEUES,
    FAILED,
    LABEL_KUEUE_QUEUE,
    QUEUED,
    RUNNING,
    RUNNING_FINISHING,
    SUCCEEDED,
    TERMINAL_STATES,
    TERMINATING,
    WAIT_CLUSTER_INVALID,
    WAIT_CLUSTER_NOT_FOUND,
    WAIT_CLUSTER_TOO_SMALL,
    WAIT_CREATION_REJECTED,
    WAIT_FOR_NODES,
    WAIT_PODS_REJECTED,
    WAIT_REQUEUED,
    WAIT_SECRET_NOT_FOUND,
    WAIT_SUSPENDED,
)
from ..observe.trainingjob import TrainingJobWorld
from . import failures, requeues
from . import pods as pod_readers
from .common import Decision, Desired, parse_time
from .gang import GangFacts, Mechanism, waiting_message
from .kueue import kueue_hold
from .policy import cluster_problem
from .trainingjob_status import Outcome, events, finished_status, new_status

POD_DONE = ("Succeeded", "Failed")  # a pod in either phase will not change again

# How long a job waits before its children are created again after the apiserver refused them
# (a ResourceQuota, a policy), and before it looks again for Secrets that do not exist yet.
CREATE_RETRY_SECONDS = 10.0
SECRET_RETRY_SECONDS = 10.0
# While the failed pod's exit code is on its way (decide/pods.py: EXIT_CODE_GRACE_SECONDS), look this often.
EXIT_CODE_RECHECK_SECONDS = 2.0
# A job the operator's own gang admission holds looks again this often: nodes are freed by other jobs,
# whose changes do not sync it.
ADMISSION_RECHECK_SECONDS = 3.0


# ---- what decide returns ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateChildren:
    """Create the children (batch Job, ConfigMap, Service, SSH Secret, shared temp volume), the batch Job
    last; each one that exists is adopted if the TrainingJob controls it (reconcile/children.py)."""

    children: TrainingJobChildren


@dataclass(frozen=True)
class DeleteBatchJob:
    """Stop the job's pods by deleting its batch Job."""

    name: str
    # Foreground deletion: the batch Job (and its name) stays until its last pod is gone, so that the
    # next attempt's cannot start while a pod of this one may still run (a multi-node job's restart).
    wait_for_pods: bool = False


@dataclass(frozen=True)
class SetBatchJobSuspend:
    """Pass spec.suspend to the batch Job (when Kueue does not own it)."""

    name: str
    suspend: bool  # the batch Job's spec.suspend from now on


@dataclass(frozen=True)
class DeleteTrainingJob:
    """ttlSecondsAfterFinished is over: delete the TrainingJob (its children go with it)."""


TrainingJobAction = CreateChildren | DeleteBatchJob | SetBatchJobSuspend | DeleteTrainingJob
TrainingJobDecision = Decision[TrainingJobStatus, TrainingJobAction]


# ---- the decision ----------------------------------------------------------------------------------------


def decide(
    world: TrainingJobWorld, desired: Desired[TrainingJobChildren], now: datetime
) -> TrainingJobDecision:
    """The TrainingJob's status, Events and actions for what was observed, at time `now`."""
    old = world.status
    # 1. A finished job stays finished. The operator decided some failures while the batch Job ran on (a
    #    container that cannot start, a volume that will not mount): that Job is stopped, also when a
    #    crash came between the status and the stop.
    if old.execution_state in TERMINAL_STATES:
        errors = old.execution_info.errors if old.execution_info else None
        decided_here = (
            old.execution_state == FAILED
            and errors is not None
            and errors[0].code not in failures.DECIDED_BY_THE_PODS
        )
        actions = _stop_if_running(world.batch_job) if decided_here else []
        return _settled(world, _with_ttl(world, Decision(finished_status(world), [], actions), now))
    spec = world.spec
    if spec is None:
        invalid = failures.failure(ERR_INVALID_SPEC, f"The spec cannot be parsed: {world.view['specError']}")
        out = Outcome.failed(invalid)
        said = events(old, out, world.config.max_requeues)
        return _settled(world, Decision(new_status(world, out, now), said))
    out, actions = _outcome(world, spec, desired, now)
    said = events(old, out, world.config.max_requeues)
    decision = Decision(new_status(world, out, now), said, actions, out.requeue_after)
    return _settled(world, _with_ttl(world, decision, now))


def at_rest(
    status: Mapping[str, Any],
    generation: int,
    spec: TrainingJobSpec | None,
    batch_job: Mapping[str, Any] | None,
    pods: Sequence[Mapping[str, Any]],
) -> bool:
    """A finished job that a sync would leave as it is (decide's step 1 with nothing to write or do): its
    status (as on the wire) is for its current generation and says its pods' counts, no batch Job of its
    is still to be stopped, and no TTL is to run out. Read before anything is parsed or built, so that a
    finished job's events (each one's at the operator's start) cost a lookup, not a sync."""
    state = status.get("executionState")
    if state not in TERMINAL_STATES or status.get("observedGeneration") != generation:
        return False
    if spec is not None and spec.ttl_seconds_after_finished is not None:
        return False
    if state == FAILED and batch_job is not None and not _stopped(batch_job):
        return False  # the failure may have been decided here: decide stops the batch Job
    return not pods or status.get("nodes") == pod_readers.node_counts(pods).wire()


def _settled(world: TrainingJobWorld, decision: TrainingJobDecision) -> TrainingJobDecision:
    """status.settled: a finished job at rest whose pods are done (none running, none being deleted) will
    never change again but by a delete. The operator watches only jobs not settled (its
    TrainingJob watch selects them by this field), so such a job costs it nothing from then on: not at a
    restart, not in memory. Said in the write that finishes it when it can be, else in a later one."""
    status = decision.status
    if status.settled or decision.actions or decision.requeue_after is not None:
        return decision
    meta, pods = world.view["metadata"], world.pods
    if not at_rest(status.wire(), meta["generation"], world.spec, world.batch_job, pods):
        return decision
    # Pods that ended stay as they are; the batch Job's own conditions may follow later (a succeeded
    # job's Complete, after its pods), which changes nothing the status says.
    if any(pod_readers.deleting(p) or p["status"].get("phase") not in POD_DONE for p in pods):
        return decision
    return Decision(status.model_copy(update={"settled": True}), decision.events)


def _stopped(batch_job: Mapping[str, Any]) -> bool:
    return pod_readers.finishing(batch_job) or pod_readers.deleting(batch_job)


def _outcome(
    world: TrainingJobWorld, spec: TrainingJobSpec, desired: Desired[TrainingJobChildren], now: datetime
) -> tuple[Outcome, list[TrainingJobAction]]:
    batch_job = world.batch_job
    # 2. Terminate: stop the pods, then fail as Batch AI did.
    if spec.terminate:
        if batch_job is not None and not pod_readers.finished(batch_job):
            out = Outcome(TERMINATING, "Terminating", "Termination requested: stopping the job's pods")
            return out, _delete(batch_job)
        terminated = failures.failure(
            ERR_JOB_TERMINATED, "The job was terminated by the user (spec.terminate)"
        )
        return Outcome.failed(terminated), []
    # 3. The cluster must exist and be usable.
    cluster = world.cluster
    if cluster is None:
        message = f"BatchAICluster {world.view['cluster']!r} does not exist in this namespace yet"
        return Outcome(QUEUED, WAIT_CLUSTER_NOT_FOUND, message), []
    problem = cluster_problem(cluster["metadata"]["namespace"], cluster, world.config)
    if problem:
        message = f"BatchAICluster {world.view['cluster']} is invalid: {problem}"
        return Outcome(QUEUED, WAIT_CLUSTER_INVALID, message), []
    # 4. No batch Job yet: create the children.
    if batch_job is None:
        return _start(world, spec, desired, now)
    # 5. The batch Job and its pods say how the job runs.
    # The operator unsuspended it and the index does not show that yet: it is not suspended.
    suspend = pod_readers.suspended(batch_job) and not world.unsuspended
    actions: list[TrainingJobAction] = []
    # The operator's own gang admission holds a suspended multi-node job until its nodes are free.
    gang = world.gang
    held = gang is not None and gang.mechanism is Mechanism.ADMISSION and suspend and not gang.verdict.start
    # Kueue owns suspend on the Jobs it queues; otherwise the TrainingJob's suspend is passed through.
    kueue_owns = LABEL_KUEUE_QUEUE in world.view["metadata"]["labels"] and (
        gang is None or gang.mechanism is Mechanism.KUEUE
    )
    if not kueue_owns and suspend != (bool(spec.suspend) or held):
        suspend = bool(spec.suspend) or held
        actions.append(SetBatchJobSuspend(pod_readers.name(batch_job), suspend))
    out = _running_outcome(world, spec, batch_job, suspend, now, held)
    if out.state == FAILED and out.reason not in failures.DECIDED_BY_THE_PODS:
        actions += _stop_if_running(batch_job)
    elif out.state == QUEUED and out.reason == WAIT_REQUEUED and _restarts_whole(spec):
        # The whole attempt goes; the pods Kubernetes replaces one by one are left to the single-node job.
        actions = (
            [] if pod_readers.deleting(batch_job) else [DeleteBatchJob(pod_readers.name(batch_job), True)]
        )
    return out, actions


def _restarts_whole(spec: TrainingJobSpec) -> bool:
    """A job whose lost node loses the whole attempt: one of several nodes (they run as one)."""
    return spec.node_count > 1


def _start(
    world: TrainingJobWorld, spec: TrainingJobSpec, desired: Desired[TrainingJobChildren], now: datetime
) -> tuple[Outcome, list[TrainingJobAction]]:
    """No batch Job yet: create the children, unless something they need is missing. A job whose
    children are being created already waits for its nodes: saying so at once spares a status write."""
    # A new job being created is not news; one whose batch Job is gone again is.
    news = world.status.execution_state is not None
    held = (
        world.gang is not None
        and world.gang.mechanism is Mechanism.ADMISSION
        and not world.gang.verdict.start
    )
    if world.creating:
        return _waiting(world, spec, news=news, admission=held), []
    if world.missing_secrets:
        names = ", ".join(sorted(world.missing_secrets))
        message = f"Waiting for Secret(s) {names} in namespace {world.ident.namespace}"
        return Outcome(QUEUED, WAIT_SECRET_NOT_FOUND, message, requeue_after=SECRET_RETRY_SECONDS), []
    if desired.error is not None:  # the spec cannot become children on this cluster
        return Outcome.failed(failures.failure(*desired.error)), []
    assert desired.children is not None, "the desired step builds the children of a starting job"
    create: list[TrainingJobAction] = [CreateChildren(desired.children)]
    refused = world.create_refused
    if refused is not None and refused.permanent:  # the child itself is invalid: the spec made it so
        message = f"The apiserver refused the job's {refused.kind}: {refused.message}"
        return Outcome.failed(failures.failure(ERR_INVALID_SPEC, message)), []
    if refused is not None:  # admission (a ResourceQuota, a policy) or a name still taken: again later
        out = Outcome(
            QUEUED, WAIT_CREATION_REJECTED, f"The job's pods could not be created: {refused.message}"
        )
        wait = (refused.at + timedelta(seconds=CREATE_RETRY_SECONDS) - now).total_seconds()
        if wait > 0:
            out.requeue_after = wait
            return out, []
        return out, create
    return _waiting(world, spec, news=news, admission=held), create


def _running_outcome(
    world: TrainingJobWorld,
    spec: TrainingJobSpec,
    batch_job: Mapping[str, Any],
    suspend: bool,
    now: datetime,
    held: bool = False,
) -> Outcome:
    """The job's children exist: what they say. Nodes Kubernetes took away are counted first (they are
    history whatever happens next)."""
    pods = world.pods
    seen = world.status.requeues or []
    requeued = requeues.new_requeues(pods, seen, now)
    out = _running_outcome_of_pods(world, spec, batch_job, suspend, now, [*seen, *requeued], held)
    out.requeued = requeued
    return out


def _running_outcome_of_pods(
    world: TrainingJobWorld,
    spec: TrainingJobSpec,
    batch_job: Mapping[str, Any],
    suspend: bool,
    now: datetime,
    all_requeues: list[Requeue],
    held: bool,
) -> Outcome:
    pods = world.pods
    limit = world.config.max_requeues
    conds = pod_readers.true_conditions(batch_job)
    # The pods decide as soon as they end, as Batch AI's nodes did; the batch Job's conditions follow
    # later (the Job controller works through its queue at its own pace) and say the same.
    if "Complete" in conds or "SuccessCriteriaMet" in conds or pod_readers.succeeded(pods, spec):
        exit_code = pod_readers.success_exit_code(pods)
        return Outcome(SUCCEEDED, "Succeeded", "The job completed successfully", exit_code=exit_code)
    if len(all_requeues) > limit:
        message = requeues.too_many_message(all_requeues, limit)
        return Outcome.failed(failures.failure(ERR_TOO_MANY_REQUEUES, message))
    if _restarts_whole(spec) and (pod_readers.deleting(batch_job) or any(map(requeues.taken_away, pods))):
        # A multi-node attempt that lost a node restarts whole, whatever its other pods do meanwhile (node
        # 0 may fail for want of its peer; the pods being stopped exit 143): short of success, its end
        # decides nothing.
        return _requeued(all_requeues, limit, restart=spec.node_count)
    failed = conds.get("Failed") or conds.get("FailureTarget")
    if failed:
        if pod_readers.exit_code_on_its_way(pods, failed, now):
            return Outcome(
                RUNNING,
                RUNNING_FINISHING,
                "The job failed; waiting for its pods' exit codes",
                requeue_after=EXIT_CODE_RECHECK_SECONDS,
            )
        return Outcome.failed(failures.batch_job_failure(spec, pods, failed, world.cluster_spec))
    if pod_readers.failed(pods, spec):
        return Outcome.failed(failures.batch_job_failure(spec, pods, {}, world.cluster_spec))
    start_failure = failures.start_failure(pods)
    if start_failure is not None:
        return Outcome.failed(start_failure)
    threshold = world.config.mount_failure_threshold
    mount_failure = failures.mount_failure(world.mount_failure, threshold, spec, world.cluster_spec)
    if mount_failure is not None:
        return Outcome.failed(mount_failure)
    if held:  # the operator's gang admission: its nodes are not all free
        return _waiting(world, spec, admission=True)
    if suspend:
        kueue = kueue_hold(world.view["metadata"]["labels"], batch_job)
        if kueue is not None:
            out = Outcome(QUEUED, *kueue)
            if world.gang is not None:
                out.gang = _gang_status(world.gang, kueue[1])
            return out
        return Outcome(QUEUED, WAIT_SUSPENDED, "The job is suspended", suspended=True)
    if world.pods_refused and len(pods) < spec.node_count:
        return Outcome(
            QUEUED, WAIT_PODS_REJECTED, f"The job's pods could not be created: {world.pods_refused}"
        )
    if pod_readers.scheduled(pods) >= spec.node_count:
        message = f"All {spec.node_count} node(s) allocated; the job is running"
        return Outcome(RUNNING, "Running", message, news=False)
    if any(requeues.taken_away(p) for p in pods):
        return _requeued(all_requeues, limit)
    return _waiting(world, spec)


def _requeued(all_requeues: list[Requeue], limit: int, restart: int = 0) -> Outcome:
    """Back in the queue until the node (or, `restart` > 0, the whole attempt of that many nodes) runs
    again; the Requeued Event and condition say why."""
    last = all_requeues[-1] if all_requeues else None
    message = requeues.describe(last, len(all_requeues), limit, restart) if last else "Requeued"
    return Outcome(QUEUED, WAIT_REQUEUED, message, news=False, restart=restart)


def _stop_if_running(batch_job: Mapping[str, Any] | None) -> list[TrainingJobAction]:
    """The operator decided the outcome while the batch Job still runs: stop it (after the status is
    saved)."""
    if batch_job is None or pod_readers.finishing(batch_job):
        return []
    return _delete(batch_job)


def _delete(batch_job: Mapping[str, Any]) -> list[TrainingJobAction]:
    return [] if pod_readers.deleting(batch_job) else [DeleteBatchJob(pod_readers.name(batch_job))]


def _with_ttl(world: TrainingJobWorld, decision: TrainingJobDecision, now: datetime) -> TrainingJobDecision:
    """ttlSecondsAfterFinished: a finished job is deleted that long after its end time."""
    ttl = world.spec.ttl_seconds_after_finished if world.spec else None
    status = decision.status
    end = parse_time(status.execution_info.end_time if status.execution_info else None)
    if ttl is None or end is None or status.execution_state not in TERMINAL_STATES:
        return decision
    remaining = (end + timedelta(seconds=ttl) - now).total_seconds()
    if remaining <= 0:
        return Decision(
            status, decision.events, [*decision.actions, DeleteTrainingJob()], decision.requeue_after
        )
    requeue = remaining if decision.requeue_after is None else min(decision.requeue_after, remaining)
    return Decision(status, decision.events, decision.actions, requeue)


def _waiting(
    world: TrainingJobWorld, spec: TrainingJobSpec, news: bool = True, admission: bool = False
) -> Outcome:
    """Queued for nodes. A multi-node job's status says how many it needs and are free, its mechanism and
    the mechanism's words; one that can never fit on its cluster says so. `admission`: the operator's
    own gang admission holds it."""
    gang = world.gang
    if gang is None:
        return Outcome(QUEUED, WAIT_FOR_NODES, _waiting_message(world, spec), news=news)
    verdict = gang.verdict
    if verdict.never is not None:
        message = f"The job cannot start on cluster {world.view['cluster']}: {verdict.never}"
        return Outcome(QUEUED, WAIT_CLUSTER_TOO_SMALL, message, news=news, gang=_gang_status(gang, message))
    message = waiting_message(gang.mechanism, verdict.needed, verdict.free, gang.words)
    # Held: the admission keeps it back, or the scheduler said why the gang does not fit (not merely a
    # job whose pods are on their way).
    held = admission or gang.words is not None
    out = Outcome(
        QUEUED, WAIT_FOR_NODES, message, news=news, gang=_gang_status(gang, message if held else None)
    )
    if admission:
        out.requeue_after = ADMISSION_RECHECK_SECONDS
    return out


def _gang_status(gang: GangFacts, message: str | None) -> GangStatus:
    verdict = gang.verdict
    return GangStatus(
        mechanism=gang.mechanism.value, needed=verdict.needed, free=verdict.free, message=message
    )


def _waiting_message(world: TrainingJobWorld, spec: TrainingJobSpec) -> str:
    unschedulable = pod_readers.unschedulable(world.pods)
    n, cluster = spec.node_count, world.view["cluster"]
    if unschedulable:
        return (
            f"Waiting for {n} free node(s) of cluster {cluster}: "
            f"{len(unschedulable)} pod(s) unschedulable: {unschedulable[0]}"
        )
    return f"Waiting for {n} node(s) of cluster {cluster}"
