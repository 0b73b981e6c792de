"""Every branch of the TrainingJob decision (decide/trainingjob.py) without a cluster: the actions it
returns (mpi-operator's expect*Action idea), the state and reason it reports and when it looks again."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from batchai_operator.config import OperatorConfig
from batchai_operator.decide.admission import Verdict
from batchai_operator.decide.common import parse_time
from batchai_operator.decide.gang import GangFacts, Mechanism
from batchai_operator.decide.pods import EXIT_CODE_GRACE_SECONDS
from batchai_operator.decide.trainingjob import (
    ADMISSION_RECHECK_SECONDS,
    CREATE_RETRY_SECONDS,
    EXIT_CODE_RECHECK_SECONDS,
    SECRET_RETRY_SECONDS,
    CreateChildren,
    DeleteBatchJob,
    DeleteTrainingJob,
    SetBatchJobSuspend,
    TrainingJobAction,
    TrainingJobDecision,
    at_rest,
)
from decisions import NOW, batch_job, decision, mount_failure, pod, refused, spec, world

AT = parse_time(NOW)
assert AT is not None
KUEUE = {"kueue.x-k8s.io/queue-name": "gpu-queue"}


def decided(**kw: Any) -> TrainingJobDecision:
    s = kw.pop("s", None)
    now = kw.pop("now", AT)
    desired = kw.pop("desired", None)
    return decision(world(s, **kw), now, desired)


def expect_actions(d: TrainingJobDecision, *expected: TrainingJobAction | type[CreateChildren]) -> None:
    """The actions, in order; CreateChildren by its type (its children are the real builders')."""
    assert [type(a) if isinstance(e, type) else a for a, e in zip(d.actions, expected, strict=False)] == list(
        expected
    )
    assert len(d.actions) == len(expected), d.actions


def reason(d: TrainingJobDecision) -> tuple[str | None, str | None]:
    """(executionState, reason of the condition that is True for it)."""
    state = d.status.execution_state
    active = next(c for c in d.status.conditions or [] if c.status == "True" and c.type != "SpecApplied")
    return state, active.reason


def running() -> dict[str, Any]:
    return {"executionState": "running", "executionInfo": {"startTime": "2026-11-29T11:59:00Z"}}


def finished(state: str = "succeeded", end: str = "2026-11-29T11:58:00Z") -> dict[str, Any]:
    return {"executionState": state, "executionInfo": {"endTime": end, "exitCode": 0}}


# ---- starting ----------------------------------------------------------------------------------------


def test_a_new_job_on_an_existing_cluster_is_started() -> None:
    d = decided()
    expect_actions(d, CreateChildren)
    assert reason(d) == ("queued", "WaitingForNodes")
    assert d.requeue_after is None


def test_missing_cluster_waits_without_actions() -> None:
    d = decided(cluster=None)
    expect_actions(d)
    assert reason(d) == ("queued", "ClusterNotFound")


def test_invalid_cluster_waits_with_its_error() -> None:
    d = decided(cluster={})
    expect_actions(d)
    assert reason(d) == ("queued", "ClusterInvalid")
    assert "vmSize: Field required" in d.events[0].message


def test_missing_secret_waits_and_looks_again() -> None:
    d = decided(missing_secrets=["storage", "registry"])
    expect_actions(d)
    assert reason(d) == ("queued", "SecretNotFound")
    assert "registry, storage" in d.events[0].message
    assert d.requeue_after == SECRET_RETRY_SECONDS


def test_children_just_created_are_not_created_again() -> None:
    d = decided(creating=True)
    expect_actions(d)
    assert reason(d) == ("queued", "WaitingForNodes")


def test_refused_create_waits_then_tries_again() -> None:
    quota = refused("exceeded quota: gpu", AT - timedelta(seconds=4))
    d = decided(create_refused=quota)
    expect_actions(d)
    assert reason(d) == ("queued", "JobCreationRejected")
    assert "exceeded quota: gpu" in d.events[0].message
    assert d.requeue_after == pytest.approx(CREATE_RETRY_SECONDS - 4)
    later = decided(create_refused=quota, now=AT + timedelta(seconds=CREATE_RETRY_SECONDS))
    expect_actions(later, CreateChildren)
    assert reason(later) == ("queued", "JobCreationRejected")  # until the Job exists


def test_a_spec_that_cannot_become_children_fails_at_the_start() -> None:
    """The desired step's build error is data: the job fails with its code, and nothing is created."""
    unknown_size = {"vmSize": "Standard_Foo9"}  # not in the operator's table, and no gpusPerNode
    d = decided(cluster=unknown_size)
    expect_actions(d)
    assert reason(d) == ("failed", "UnknownVmSize")
    # Children are built only for a job that starts: one whose batch Job runs is not failed by a build.
    assert reason(decided(cluster=unknown_size, batch_job=batch_job(), pods=[pod(0)])) == (
        "running",
        "Running",
    )


def test_a_child_the_apiserver_finds_invalid_fails_the_job() -> None:
    d = decided(create_refused=refused('Job.batch "j" is invalid: x', AT, status=422))
    expect_actions(d)
    assert reason(d) == ("failed", "InvalidSpec")
    assert "The apiserver refused the job's Job" in d.events[0].message


def test_unparsable_spec_fails_with_invalid_spec() -> None:
    d = decided(unparsed="maxWallClockTime: out of range")
    expect_actions(d)
    assert d.status.execution_state == "failed"
    [error] = d.status.execution_info.errors  # type: ignore[union-attr]
    assert error.code == "InvalidSpec" and "maxWallClockTime: out of range" in error.message


# ---- suspend, resume, Kueue ----------------------------------------------------------------------------


def test_suspend_is_passed_to_the_batch_job() -> None:
    d = decided(s=spec(suspend=True), status=running(), batch_job=batch_job(), pods=[pod(0)])
    expect_actions(d, SetBatchJobSuspend("j", True))
    assert reason(d) == ("queued", "Suspended")


def test_resume_is_passed_to_the_batch_job() -> None:
    d = decided(s=spec(suspend=False), batch_job=batch_job(suspend=True), pods=[])
    expect_actions(d, SetBatchJobSuspend("j", False))
    assert reason(d) == ("queued", "WaitingForNodes")


def test_kueue_owns_suspend_on_batch_jobs_it_queues() -> None:
    held = decided(labels=KUEUE, batch_job=batch_job(suspend=True), pods=[])
    expect_actions(held)
    # Kueue holds it, not the user: queued with a reason naming Kueue, and the Suspended condition false.
    assert reason(held) == ("queued", "QueuedByKueue")
    queued = next(c for c in held.status.conditions or [] if c.type == "Queued")
    assert (queued.message or "").startswith("Kueue holds the job in LocalQueue 'gpu-queue'")
    assert next(c for c in held.status.conditions or [] if c.type == "Suspended").status == "False"
    user_suspended = decided(batch_job=batch_job(suspend=True), s=spec(suspend=True), pods=[])
    assert reason(user_suspended) == ("queued", "Suspended")
    admitted = decided(labels=KUEUE, s=spec(suspend=True), batch_job=batch_job(suspend=False), pods=[pod(0)])
    expect_actions(admitted)  # the TrainingJob's own suspend does not fight Kueue's
    assert reason(admitted) == ("running", "Running")


# ---- running and finishing -------------------------------------------------------------------------------


def test_all_nodes_allocated_is_running_and_nothing_to_do() -> None:
    d = decided(batch_job=batch_job(), pods=[pod(0)])
    expect_actions(d)
    assert reason(d) == ("running", "Running")


def test_events_mark_ends_and_setbacks_not_creation_or_start() -> None:
    queued = {"executionState": "queued"}
    assert decided().events == []  # created
    assert decided(status=queued, batch_job=batch_job(), pods=[pod(0)]).events == []  # started
    done = decided(status=running(), batch_job=batch_job(("Complete", "")), pods=[pod(0, "Succeeded", 0)])
    assert [(e.type, e.reason) for e in done.events] == [("Normal", "Succeeded")]
    # A running job whose Job is gone waits for nodes again: that is news.
    again = decided(status=running())
    assert [(e.type, e.reason) for e in again.events] == [("Normal", "Queued")]


def test_unscheduled_pods_wait_for_nodes() -> None:
    d = decided(batch_job=batch_job(), pods=[pod(0, phase="Pending", node=None)])
    expect_actions(d)
    assert reason(d) == ("queued", "WaitingForNodes")


def test_completion_succeeds_without_stopping_the_batch_job() -> None:
    d = decided(status=running(), batch_job=batch_job(("Complete", "")), pods=[pod(0, "Succeeded", 0)])
    expect_actions(d)
    assert reason(d) == ("succeeded", "Succeeded")


def test_kubelet_failures_fail_the_job_and_stop_its_batch_job() -> None:
    pull = decided(batch_job=batch_job(), pods=[pod(0, phase="Pending", waiting="ErrImageNeverPull")])
    expect_actions(pull, DeleteBatchJob("j"))
    assert reason(pull) == ("failed", "FailedStartingContainer")
    mount = decided(batch_job=batch_job(), pods=[pod(0, phase="Pending")], mount_failure=mount_failure())
    expect_actions(mount, DeleteBatchJob("j"))
    assert reason(mount) == ("failed", "AZFMountError")


def test_the_job_controllers_failure_needs_no_stop() -> None:
    d = decided(batch_job=batch_job(("FailureTarget", "BackoffLimitExceeded")), pods=[pod(0, "Failed", 3)])
    expect_actions(d)
    assert reason(d) == ("failed", "JobFailed")


# ---- terminate --------------------------------------------------------------------------------------------


def test_terminate_deletes_a_running_job_once() -> None:
    d = decided(s=spec(terminate=True), status=running(), batch_job=batch_job(), pods=[pod(0)])
    expect_actions(d, DeleteBatchJob("j"))
    assert reason(d) == ("terminating", "Terminating")
    deleting = batch_job()
    deleting["metadata"]["deletionTimestamp"] = NOW
    d = decided(s=spec(terminate=True), status=running(), batch_job=deleting, pods=[pod(0)])
    expect_actions(d)  # already being deleted
    d = decided(s=spec(terminate=True), status=running(), batch_job=None, pods=[])
    expect_actions(d)
    assert reason(d) == ("failed", "JobTerminated")


def test_terminate_of_a_queued_job_fails_it_at_once() -> None:
    d = decided(s=spec(terminate=True))
    expect_actions(d)
    assert reason(d) == ("failed", "JobTerminated")


# ---- finished jobs: crash recovery and TTL ----------------------------------------------------------------


def test_a_finished_job_whose_batch_job_still_runs_is_stopped() -> None:
    """The status was saved but the operator died before deleting the Job: the next sync deletes it."""
    stopped = finished("failed")
    stopped["executionInfo"]["errors"] = [{"code": "FailedStartingContainer", "message": "m"}]
    d = decided(status=stopped, batch_job=batch_job(), pods=[pod(0)])
    expect_actions(d, DeleteBatchJob("j"))
    assert d.events == []
    # What the pods decided themselves, the Job ends on its own: it is not deleted (its logs stay).
    ended = finished("failed")
    ended["executionInfo"]["errors"] = [{"code": "JobFailed", "message": "m"}]
    expect_actions(decided(status=ended, batch_job=batch_job(), pods=[pod(0, "Failed", 3)]))
    expect_actions(
        decided(status=finished("succeeded"), batch_job=batch_job(), pods=[pod(0, "Succeeded", 0)])
    )


def test_the_pods_decide_before_the_job_controller_does() -> None:
    """A Job's Complete/Failed condition can lag far behind its pods (the Job controller's rate limit)."""
    done = decided(status=running(), batch_job=batch_job(), pods=[pod(0, "Succeeded", 0)])
    assert reason(done) == ("succeeded", "Succeeded")
    expect_actions(done)
    failed = decided(status=running(), batch_job=batch_job(), pods=[pod(0, "Failed", 3)])
    assert reason(failed) == ("failed", "JobFailed") and failed.status.execution_info.exit_code == 3  # type: ignore[union-attr]
    expect_actions(failed)
    # With retries the Job may run the node again: its own verdict is awaited.
    retried = decided(
        s=spec(constraints={"maxRetryCount": 2}),
        status=running(),
        batch_job=batch_job(),
        pods=[pod(0, "Failed", 3)],
    )
    assert reason(retried)[0] != "failed"


def test_a_failed_job_waits_briefly_for_its_pods_exit_code() -> None:
    """The Job's watch can say Failed before the failed pod's last update arrives on the pods' watch."""
    failed_job = batch_job(("FailureTarget", "BackoffLimitExceeded"))  # status.failed is still 0 then
    failed_job["status"]["conditions"][0]["lastTransitionTime"] = NOW
    waiting = decided(status=running(), batch_job=failed_job, pods=[pod(0, "Running")])
    assert reason(waiting) == ("running", "Finishing")
    assert waiting.requeue_after == EXIT_CODE_RECHECK_SECONDS
    arrived = decided(status=running(), batch_job=failed_job, pods=[pod(0, "Failed", 3)])
    assert arrived.status.execution_info.exit_code == 3  # type: ignore[union-attr]
    later = AT + timedelta(seconds=EXIT_CODE_GRACE_SECONDS)
    gave_up = decided(status=running(), batch_job=failed_job, pods=[], now=later)
    assert reason(gave_up) == ("failed", "JobFailed")
    assert gave_up.status.execution_info.exit_code is None  # type: ignore[union-attr]
    # A deadline is the Job's own verdict: nothing to wait for.
    deadline = batch_job(("Failed", "DeadlineExceeded"))
    assert reason(decided(status=running(), batch_job=deadline, pods=[pod(0)]))[0] == "failed"


def test_a_finished_job_keeps_its_status_and_counts_its_pods() -> None:
    d = decided(status=finished(), batch_job=batch_job(("Complete", "")), pods=[pod(0, "Succeeded", 0)])
    expect_actions(d)
    assert d.status.execution_state == "succeeded"
    assert d.status.nodes is not None and d.status.nodes.succeeded == 1


def test_ttl_deletes_the_trainingjob_when_due_and_waits_until_then() -> None:
    s = spec(ttlSecondsAfterFinished=300)
    not_yet = decided(s=s, status=finished(end="2026-11-29T11:58:00Z"), batch_job=batch_job(("Complete", "")))
    expect_actions(not_yet)
    assert not_yet.requeue_after == pytest.approx(180)
    due = decided(s=s, status=finished(end="2026-11-29T11:50:00Z"), batch_job=batch_job(("Complete", "")))
    expect_actions(due, DeleteTrainingJob())


def test_ttl_counts_from_the_moment_the_job_finishes() -> None:
    d = decided(
        s=spec(ttlSecondsAfterFinished=60), status=running(), batch_job=batch_job(("Complete", "")), pods=[]
    )
    assert d.status.execution_state == "succeeded"
    expect_actions(d)
    assert d.requeue_after == pytest.approx(60)


def test_no_ttl_no_timer() -> None:
    d = decided(status=finished(), batch_job=batch_job(("Complete", "")))
    assert d.requeue_after is None


def test_status_shape_is_the_api_model() -> None:
    wire = decided(batch_job=batch_job(), pods=[pod(0)]).status.wire()
    assert wire["nodesSummary"] == "1/1" and wire["observedGeneration"] == 1


def test_pods_the_job_controller_cannot_create_say_why_the_job_waits() -> None:
    refused = 'pods "j-0" is forbidden: exceeded quota: gpu, requested: pods=1, limited: pods=0'
    d = decided(batch_job=batch_job(), pods=[], pods_refused=refused)
    expect_actions(d)
    assert reason(d) == ("queued", "PodCreationRejected")
    assert refused in d.events[0].message
    # Once the pods exist, the old refusal no longer matters.
    assert reason(decided(batch_job=batch_job(), pods=[pod(0)], pods_refused=refused)) == (
        "running",
        "Running",
    )


def test_status_says_where_outputs_are_in_storage() -> None:
    """The seed's MODEL output and stdout/stderr are on its Azure Files share 'logs' of account acct."""
    from batchai_operator.api.trainingjob import TrainingJobSpec
    from samples import cntk_spec

    d = decided(s=TrainingJobSpec.model_validate(cntk_spec()), batch_job=batch_job(), pods=[pod(0)])
    wire = d.status.wire()
    [model] = wire["outputDirectories"]
    assert model["storage"]["accountName"] == "acct" and model["storage"]["shareName"] == "logs"
    assert model["storage"]["path"].endswith("ns/default/j/u1/outputs")
    assert wire["stdOutErrStorage"]["shareName"] == "logs"


# ---- at rest: a finished job whose sync would change nothing -----------------------------------------


def test_at_rest_only_when_decide_would_write_and_do_nothing() -> None:
    done = {"executionState": "succeeded", "observedGeneration": 1, "nodes": {
        "ready": 0, "running": 0, "succeeded": 1, "failed": 0}}  # fmt: skip
    pods = [pod(0, phase="Succeeded", exit_code=0)]
    complete = batch_job(("Complete", "True"))
    assert at_rest(done, 1, spec(), complete, pods)
    assert at_rest({"executionState": "succeeded", "observedGeneration": 1}, 1, None, None, [])
    assert not at_rest({**done, "executionState": "running"}, 1, spec(), complete, pods)
    assert not at_rest(done, 2, spec(), complete, pods)  # a new generation to acknowledge
    assert not at_rest(done, 1, spec(ttlSecondsAfterFinished=60), complete, pods)  # a TTL to run out
    assert not at_rest({**done, "nodes": None}, 1, spec(), complete, pods)  # counts not written yet
    # A failure decided here while the batch Job still runs: decide stops it.
    failed = {**done, "executionState": "failed"}
    assert not at_rest(failed, 1, spec(), batch_job(), pods)
    assert at_rest(failed, 1, spec(), batch_job(("Failed", "BackoffLimitExceeded")), pods)


# ---- settled: finished for good, no longer watched (status.settled) ---------------------------------


def test_a_job_that_completes_is_settled_in_the_write_that_finishes_it() -> None:
    d = decided(status=running(), batch_job=batch_job(("Complete", "")), pods=[pod(0, "Succeeded", 0)])
    assert reason(d) == ("succeeded", "Succeeded") and d.status.settled
    assert d.status.wire()["settled"] is True
    invalid = decided(unparsed="spec.nodeCount: Input should be a valid integer")
    assert invalid.status.execution_state == "failed" and invalid.status.settled  # nothing was ever created


def test_a_finished_job_with_something_left_to_happen_is_not_settled() -> None:
    # A failure decided here: its batch Job is stopped first.
    pull = decided(batch_job=batch_job(), pods=[pod(0, phase="Pending", waiting="ErrImageNeverPull")])
    assert pull.status.execution_state == "failed" and not pull.status.settled
    # A TTL to run out: the operator must still see the job to delete it.
    ttl = decided(
        s=spec(ttlSecondsAfterFinished=60), status=running(), batch_job=batch_job(("Complete", "")), pods=[]
    )
    assert ttl.status.execution_state == "succeeded" and not ttl.status.settled
    # Pods still running or being deleted: their counts move on.
    deleting = pod(0, "Succeeded", 0)
    deleting["metadata"]["deletionTimestamp"] = "2026-11-29T12:00:00Z"
    for state, pods in (("failed", [pod(0, "Failed", 1), pod(1)]), ("succeeded", [deleting])):
        job = batch_job(("Failed", "BackoffLimitExceeded"))
        d = decided(s=spec(nodeCount=2), status=finished(state), batch_job=job, pods=pods)
        assert d.status.execution_state == state and not d.status.settled, pods


def test_a_finished_job_settles_once_its_batch_job_and_pods_are_done() -> None:
    gone = decided(status=finished("failed"), batch_job=None, pods=[])
    assert gone.status.settled
    expect_actions(gone)
    # A succeeded job's pods decide before the Job controller says Complete: settled at once.
    early = decided(status=running(), batch_job=batch_job(), pods=[pod(0, "Succeeded", 0)])
    assert reason(early) == ("succeeded", "Succeeded") and early.status.settled
    done = decided(status=finished(), batch_job=batch_job(("Complete", "")), pods=[pod(0, "Succeeded", 0)])
    assert done.status.settled and done.status.nodes is not None and done.status.nodes.succeeded == 1


# ---- gang scheduling (decide/gang.py, decide/admission.py) -------------------------------------------


def gang(
    mechanism: Mechanism,
    start: bool = False,
    free: int = 1,
    words: str | None = None,
    never: str | None = None,
) -> GangFacts:
    return GangFacts(mechanism, Verdict(start=start, needed=3, free=free, never=never), words)


MULTI = {"nodeCount": 3}


def test_admission_creates_the_batch_job_suspended_and_says_why_it_waits_once() -> None:
    d = decided(s=spec(**MULTI), gang=gang(Mechanism.ADMISSION))
    expect_actions(d, CreateChildren)
    create = d.actions[0]
    assert isinstance(create, CreateChildren) and create.children.batch_job["spec"]["suspend"] is True
    assert create.children.pod_group is None
    assert reason(d) == ("queued", "WaitingForNodes") and d.requeue_after == ADMISSION_RECHECK_SECONDS
    assert d.status.gang is not None and (
        d.status.gang.mechanism,
        d.status.gang.needed,
        d.status.gang.free,
    ) == (
        "admission",
        3,
        1,
    )
    assert [e.reason for e in d.events] == ["WaitingForNodes"]
    again = decided(
        s=spec(**MULTI), status=d.status, batch_job=batch_job(suspend=True), gang=gang(Mechanism.ADMISSION)
    )
    expect_actions(again)
    assert reason(again) == ("queued", "WaitingForNodes") and not again.events  # said once


def test_admission_unsuspends_the_batch_job_when_its_nodes_are_free() -> None:
    d = decided(
        s=spec(**MULTI), batch_job=batch_job(suspend=True), gang=gang(Mechanism.ADMISSION, start=True, free=4)
    )
    expect_actions(d, SetBatchJobSuspend("j", False))
    assert d.status.gang is not None and d.status.gang.message is None


def test_a_job_the_operator_unsuspended_is_not_held_again_while_the_index_lags() -> None:
    d = decided(
        s=spec(**MULTI), batch_job=batch_job(suspend=True), unsuspended=True, gang=gang(Mechanism.ADMISSION)
    )
    expect_actions(d)
    assert d.status.gang is not None and d.status.gang.message is None


def test_the_users_suspend_wins_over_an_admitted_gang() -> None:
    d = decided(
        s=spec(suspend=True, **MULTI),
        batch_job=batch_job(suspend=True),
        gang=gang(Mechanism.ADMISSION, start=True),
    )
    expect_actions(d)
    assert reason(d) == ("queued", "Suspended")


def test_workload_children_are_a_workload_a_pod_group_and_pods_that_join_it() -> None:
    d = decided(s=spec(**MULTI), gang=gang(Mechanism.WORKLOAD))
    create = d.actions[0]
    assert isinstance(create, CreateChildren)
    children = create.children
    assert children.workload is not None and children.pod_group is not None
    assert children.batch_job["spec"]["suspend"] is False
    assert children.batch_job["spec"]["template"]["spec"]["schedulingGroup"] == {"podGroupName": "j"}
    kinds = [m["kind"] for m in children.owned(lambda: ("k", "k.pub"))]
    assert kinds.index("Workload") < kinds.index("PodGroup") < kinds.index("Job")


def test_workload_waiting_says_the_scheduler_s_words_once() -> None:
    words = "minCount (3) cannot be satisfied: 1 scheduled, 1 remaining"
    pending = [pod(i, phase="Pending", node=None) for i in range(3)]
    d = decided(
        s=spec(**MULTI), batch_job=batch_job(), pods=pending, gang=gang(Mechanism.WORKLOAD, words=words)
    )
    assert reason(d)[1] == "WaitingForNodes"
    assert d.status.gang is not None and (d.status.gang.message or "").endswith(words)
    assert [e.reason for e in d.events].count("WaitingForNodes") == 1


def test_a_job_its_pool_can_never_hold_says_so() -> None:
    never = "the job needs 3 nodes with 1 GPU(s) free each, and its cluster has 2 nodes of its placement"
    d = decided(s=spec(**MULTI), gang=gang(Mechanism.WORKLOAD, never=never))
    assert reason(d) == ("queued", "ClusterTooSmall")
    assert d.status.gang is not None and never in (d.status.gang.message or "")


def test_kueue_held_gang_says_kueue_s_words() -> None:
    d = decided(s=spec(**MULTI), labels=KUEUE, batch_job=batch_job(suspend=True), gang=gang(Mechanism.KUEUE))
    expect_actions(d)  # the operator never touches suspend on a Job Kueue holds
    assert reason(d)[1] == "QueuedByKueue"
    assert d.status.gang is not None and d.status.gang.mechanism == "kueue"
    assert (d.status.gang.message or "").startswith("Kueue holds the job")


# ---- nodes Kubernetes takes away, mounts that die (issue 28) -------------------------------------------


def disrupted(p: dict[str, Any], why: str = "DeletionByTaintManager") -> dict[str, Any]:
    """The pod with the DisruptionTarget condition Kubernetes gives a pod it takes away."""
    p["status"]["conditions"].append(
        {"type": "DisruptionTarget", "status": "True", "reason": why, "message": "Taint manager: deleting"}
    )
    return p


def count(d: TrainingJobDecision) -> int | None:
    return d.status.execution_info.requeue_count if d.status.execution_info else None


def test_a_node_taken_away_requeues_the_job_counts_it_once_and_says_so() -> None:
    # The lost node's pod, evicted, still there (its kubelet cannot confirm): queued again, one requeue.
    d = decided(status=running(), batch_job=batch_job(), pods=[disrupted(pod(0, node="real-1"))])
    expect_actions(d)  # the batch Job replaces the pod itself (podFailurePolicy Ignore)
    assert reason(d) == ("queued", "Requeued")
    info = d.status.execution_info
    assert info is not None and info.requeue_count == 1
    requeues = [(r.pod, r.node_name, r.reason) for r in d.status.requeues or []]
    assert requeues == [("j-0", "real-1", "NodeLost")]
    requeued = next(c for c in d.status.conditions or [] if c.type == "Requeued")
    assert requeued.status == "True" and requeued.reason == "NodeLost"
    assert "requeue 1 of at most 3" in requeued.message
    assert [(e.type, e.reason) for e in d.events] == [("Warning", "Requeued")]
    # Seen again: not counted again, no second Event; the replacement runs: running, still one requeue.
    again = decided(status=d.status, batch_job=batch_job(), pods=[disrupted(pod(0, node="real-1"))])
    assert again.events == [] and count(again) == 1
    rerun = decided(status=again.status, batch_job=batch_job(), pods=[pod(0, node="real-0")])
    assert reason(rerun) == ("running", "Running") and rerun.events == []
    assert count(rerun) == 1


def test_a_drained_pods_sigterm_exit_does_not_fail_the_job() -> None:
    drained = disrupted(pod(0, "Failed", 143), "EvictionByEvictionAPI")
    d = decided(status=running(), batch_job=batch_job(), pods=[drained])
    expect_actions(d)
    assert reason(d) == ("queued", "Requeued")
    assert (d.status.requeues or [])[0].reason == "Evicted"
    # Its own non-zero exit still fails the job at once, with its exit code.
    own = decided(status=d.status, batch_job=batch_job(), pods=[drained, pod(0, "Failed", 3)])
    assert reason(own) == ("failed", "JobFailed")
    assert own.status.execution_info is not None and own.status.execution_info.exit_code == 3


def test_more_requeues_than_the_limit_fail_the_job_and_stop_it() -> None:
    pods = [disrupted(pod(0)), disrupted(pod(1)), pod(2)]
    for i, p in enumerate(pods):
        p["metadata"]["name"] = f"j-{i}-try"
        p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"] = "0"
    d = decided(status=running(), batch_job=batch_job(), pods=pods, config=OperatorConfig(max_requeues=1))
    expect_actions(d, DeleteBatchJob("j"))
    assert reason(d) == ("failed", "TooManyRequeues")
    assert d.status.execution_info is not None
    (error,) = d.status.execution_info.errors or []
    assert "2 times" in error.message and "jobs.maxRequeues" in error.message


def test_a_mount_lost_while_running_fails_with_its_code_naming_the_volume() -> None:
    blob = {
        "accountName": "acct",
        "containerName": "data",
        "credentials": {"secretRef": {"name": "s"}},
        "relativeMountPath": "bfs",
    }
    s = spec(mountVolumes={"azureBlobFileSystems": [blob]})
    path = "/mnt/batch/tasks/shared/LS_root/jobs/ns/default/j/mounts/bfs"
    dead = pod(0, "Failed", 1, message=f"MountLost: {path}: exit code 1")
    d = decided(s=s, status=running(), batch_job=batch_job(), pods=[dead])
    assert reason(d) == ("failed", "BFSMountError")
    info = d.status.execution_info
    assert info is not None and info.exit_code == 1
    (error,) = info.errors or []
    assert error.code == "BFSMountError"
    detail = (error.details or [])[0].value
    assert "blob container data of acct (relativeMountPath bfs)" in detail
    assert "Transport endpoint is not connected" in detail


def test_a_multi_node_job_that_loses_a_node_restarts_its_whole_attempt() -> None:
    # Node 1's pod evicted from a lost node; node 0 still runs. The whole attempt goes: the batch Job is
    # deleted in the foreground (it stays, its name taken, until every pod of it is gone).
    s = spec(nodeCount=2)
    lost = [pod(0, node="real-0"), disrupted(pod(1, node="real-1"))]
    d = decided(s=s, status=running(), batch_job=batch_job(), pods=lost)
    expect_actions(d, DeleteBatchJob("j", wait_for_pods=True))
    assert reason(d) == ("queued", "Requeued") and count(d) == 1
    requeued = next(c for c in d.status.conditions or [] if c.type == "Requeued")
    assert "its 2 nodes start again together" in requeued.message
    assert [e.reason for e in d.events] == ["Requeued"] and "together" in d.events[0].message
    # Being deleted: node 0 stopped (143), node 0 failing for want of its peer, even the batch Job's
    # Failed: none of it decides; still queued, nothing more to do, the requeue counted once.
    deleting = batch_job(("Failed", "BackoffLimitExceeded"))
    deleting["metadata"]["deletionTimestamp"] = "2026-11-29T12:00:00Z"
    stopping = [pod(0, "Failed", 1, node="real-0"), disrupted(pod(1, node="real-1"))]
    again = decided(s=s, status=d.status, batch_job=deleting, pods=stopping)
    expect_actions(again)
    assert reason(again) == ("queued", "Requeued") and count(again) == 1 and again.events == []
    # Gone: the next attempt's children are created; then both nodes run again.
    gone = decided(s=s, status=again.status, batch_job=None, pods=[])
    expect_actions(gone, CreateChildren)
    rerun = decided(s=s, status=gone.status, batch_job=batch_job(), pods=[pod(0), pod(1)])
    assert reason(rerun) == ("running", "Running") and count(rerun) == 1


def test_a_multi_node_job_beyond_the_requeue_limit_fails_instead_of_restarting() -> None:
    s = spec(nodeCount=2)
    seen = decided(s=s, status=running(), batch_job=batch_job(), pods=[pod(0), disrupted(pod(1))])
    p = disrupted(pod(1))
    p["metadata"]["name"] = "j-1-again"
    d = decided(
        s=s,
        status=seen.status,
        batch_job=batch_job(),
        pods=[pod(0), p],
        config=OperatorConfig(max_requeues=1),
    )
    expect_actions(d, DeleteBatchJob("j"))
    assert reason(d) == ("failed", "TooManyRequeues")


def test_a_single_node_job_is_not_restarted_by_the_operator() -> None:
    d = decided(status=running(), batch_job=batch_job(), pods=[disrupted(pod(0))])
    expect_actions(d)  # its batch Job replaces the pod (podReplacementPolicy Failed)


def test_a_multi_node_job_whose_node_zero_succeeded_is_not_restarted_for_a_node_lost_after() -> None:
    s = spec(nodeCount=2)
    d = decided(
        s=s, status=running(), batch_job=batch_job(), pods=[pod(0, "Succeeded", 0), disrupted(pod(1))]
    )
    assert reason(d) == ("succeeded", "Succeeded")
    expect_actions(d)
