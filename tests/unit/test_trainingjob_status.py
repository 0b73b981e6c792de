"""The pure TrainingJob decision, as status: observed Job and pods -> status, Events, stop decisions.

(The decision's other branches, actions and timers, are in test_trainingjob_decide.py.)"""

from __future__ import annotations

import pytest

from batchai_operator.decide.common import Desired
from batchai_operator.decide.trainingjob import DeleteBatchJob
from decisions import AFS_MOUNT_FAILED, LATER, NOW, batch_job, decision, mount_failure, pod, spec, world


def test_missing_cluster_waits_in_queued_with_reason() -> None:
    r = decision(world(cluster=None), NOW)
    assert r.status.wire()["executionState"] == "queued"
    queued = next(c for c in r.status.wire()["conditions"] if c["type"] == "Queued")
    assert queued["status"] == "True" and queued["reason"] == "ClusterNotFound"
    assert r.events == [("Normal", "Queued", "BatchAICluster 'nc6' does not exist in this namespace yet")]


def test_resolved_paths_and_tool_type() -> None:
    r = decision(world(batch_job=batch_job(), pods=[]), NOW)
    seg = "ns/default/j/u1"
    assert r.status.wire()["jobOutputDirectoryPathSegment"] == seg
    assert r.status.wire()["outputDirectories"] == [{"id": "MODEL", "path": f"/out/{seg}/outputs/m"}]
    assert r.status.wire()["stdOutErrDirectory"] == f"$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/{seg}/stdouterr"
    assert r.status.wire()["toolType"] == "cntk"


def test_unschedulable_pods_keep_the_job_queued_with_the_schedulers_message() -> None:
    p = pod(0, phase="Pending", node=None)
    p["status"]["conditions"] = [
        {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": "0/7 nodes are available: 7 Insufficient nvidia.com/gpu.",
        }
    ]
    r = decision(world(batch_job=batch_job(), pods=[p]), NOW)
    assert r.status.wire()["executionState"] == "queued"
    assert "Insufficient nvidia.com/gpu" in r.events[0][2]


def test_lifecycle_running_then_succeeded_with_exit_code_zero() -> None:
    r1 = decision(world(batch_job=batch_job(), pods=[pod(0)]), NOW)
    assert r1.status.wire()["executionState"] == "running"
    assert r1.status.wire()["executionInfo"]["startTime"] == "2026-11-29T11:59:00Z"
    assert r1.status.wire()["nodes"] == {"ready": 1, "running": 1, "succeeded": 0, "failed": 0}
    assert r1.events == []  # a job that starts is in its status, not an Event
    r2 = decision(
        world(status=r1.status, batch_job=batch_job(("Complete", "")), pods=[pod(0, "Succeeded", 0)]), LATER
    )
    assert r2.status.wire()["executionState"] == "succeeded"
    assert r2.status.wire()["executionInfo"]["exitCode"] == 0
    assert r2.status.wire()["executionInfo"]["endTime"] == LATER
    assert r2.status.wire()["executionInfo"]["startTime"] == "2026-11-29T11:59:00Z"
    assert r2.status.wire()["nodesSummary"] == "1/1"
    assert r2.events == [("Normal", "Succeeded", "The job completed successfully")]
    succeeded = next(c for c in r2.status.wire()["conditions"] if c["type"] == "Succeeded")
    assert succeeded["status"] == "True" and succeeded["lastTransitionTime"] == LATER


def test_same_observation_gives_the_same_status_and_no_event() -> None:
    r1 = decision(world(batch_job=batch_job(), pods=[pod(0)]), NOW)
    r2 = decision(world(status=r1.status, batch_job=batch_job(), pods=[pod(0)]), LATER)
    assert r2.status == r1.status
    assert r2.events == []


def test_failed_pod_reports_job_failed_with_its_exit_code() -> None:
    r = decision(
        world(batch_job=batch_job(("Failed", "BackoffLimitExceeded")), pods=[pod(0, "Failed", 3)]), NOW
    )
    assert r.status.wire()["executionState"] == "failed"
    info = r.status.wire()["executionInfo"]
    assert info["exitCode"] == 3
    # Batch AI's text, no details (fidelity review M10); the Event and condition name the node.
    assert info["errors"] == [{"code": "JobFailed", "message": "Job failed with non-zero exit code"}]
    assert r.events[0][:2] == ("Warning", "Failed") and "non-zero exit code 3 on node 0" in r.events[0][2]


def test_oom_killed_pod_says_so_in_the_job_failed_message() -> None:
    p = pod(0, "Failed", 137, message="JobFailed: exit code 137")
    p["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] = "OOMKilled"
    r = decision(world(batch_job=batch_job(("Failed", "BackoffLimitExceeded")), pods=[p]), NOW)
    (err,) = r.status.wire()["executionInfo"]["errors"]
    assert err["code"] == "JobFailed" and r.status.wire()["executionInfo"]["exitCode"] == 137
    assert err["message"] == "Job failed with non-zero exit code"  # Batch AI's text
    failed = next(c for c in r.status.wire()["conditions"] if c["type"] == "Failed")
    assert failed["message"] == (
        "Job failed with non-zero exit code 137 on node 0 (OOMKilled: the container ran out of memory)"
    )


def test_job_preparation_failure_is_reported_as_such() -> None:
    p = pod(0, "Failed", 7, message="JobPreparationFailed: exit code 7")
    r = decision(world(batch_job=batch_job(("Failed", "BackoffLimitExceeded")), pods=[p]), NOW)
    assert r.status.wire()["executionInfo"]["errors"][0]["code"] == "JobPreparationFailed"
    assert r.status.wire()["executionInfo"]["exitCode"] == 7


def test_node_zero_decides_mpi_jobs() -> None:
    s = spec(nodeCount=2, cntkSettings=None, horovodSettings={"pythonScriptFilePath": "t.py"})
    pods = [pod(1, "Failed", 5), pod(0, "Failed", 2)]
    r = decision(world(s, batch_job=batch_job(("Failed", "BackoffLimitExceeded")), pods=pods), NOW)
    assert r.status.wire()["executionInfo"]["exitCode"] == 2


def test_deadline_exceeded() -> None:
    s = spec(constraints={"maxWallClockTime": "PT10S"})
    r = decision(world(s, batch_job=batch_job(("Failed", "DeadlineExceeded")), pods=[pod(0)]), NOW)
    err = r.status.wire()["executionInfo"]["errors"][0]
    assert err["code"] == "MaxWallClockTimeExceeded" and "PT10S" in err["message"]


def test_image_pull_failure_fails_the_job_and_stops_its_batch_job() -> None:
    p = pod(0, phase="Pending", waiting="ErrImagePull")
    r = decision(world(batch_job=batch_job(), pods=[p]), NOW)
    assert r.status.wire()["executionState"] == "failed"
    assert r.status.wire()["executionInfo"]["errors"][0]["code"] == "FailedStartingContainer"
    assert DeleteBatchJob("j") in r.actions


def test_terminate_goes_through_terminating_to_failed() -> None:
    s = spec(terminate=True)
    r1 = decision(world(s, status={"executionState": "running"}, batch_job=batch_job(), pods=[pod(0)]), NOW)
    assert r1.status.wire()["executionState"] == "terminating"
    r2 = decision(world(s, status=r1.status, batch_job=None, pods=[]), LATER)
    assert r2.status.wire()["executionState"] == "failed"
    assert r2.status.wire()["executionInfo"]["errors"][0]["code"] == "JobTerminated"


def test_terminal_states_are_sticky() -> None:
    done = decision(world(batch_job=batch_job(("Complete", "")), pods=[pod(0, "Succeeded", 0)]), NOW).status
    r = decision(world(spec(terminate=True), status=done, batch_job=None, pods=[]), LATER)
    assert r.status.wire()["executionState"] == "succeeded"
    assert r.events == []


def test_suspended_job_is_queued_with_suspended_condition() -> None:
    # decide passes spec.suspend to the Job (without Kueue): the spec says suspended too.
    r = decision(world(spec(suspend=True), batch_job=batch_job(suspend=True), pods=[]), NOW)
    assert r.status.wire()["executionState"] == "queued"
    conds = {c["type"]: c["status"] for c in r.status.wire()["conditions"]}
    assert conds["Suspended"] == "True" and conds["Queued"] == "True"


def test_build_error_fails_with_its_code() -> None:
    r = decision(world(), NOW, Desired(error=("UnknownVmSize", "vmSize X unknown")))
    assert r.status.wire()["executionState"] == "failed"
    assert r.status.wire()["executionInfo"]["errors"] == [
        {"code": "UnknownVmSize", "message": "vmSize X unknown"}
    ]


def test_launcher_mount_and_launcher_failures_are_named() -> None:
    p = pod(0, "Failed", 32, message="MountFailed: /mnt/x: exit code 32")
    r = decision(world(batch_job=batch_job(("Failed", "BackoffLimitExceeded")), pods=[p]), NOW)
    # An unmanaged file system's mount command failed (Batch AI had no code of its own for these).
    [err] = r.status.wire()["executionInfo"]["errors"]
    assert (
        err["code"] == "UnmanagedFileSystemMountError"
        and "/mnt/x: exit code 32" in err["details"][0]["value"]
    )
    p = pod(
        0, "Failed", 1, message="LauncherFailed: timed out after 900s waiting for sshd on h:22 (node 0 of 2)"
    )
    r = decision(world(batch_job=batch_job(("Failed", "BackoffLimitExceeded")), pods=[p]), NOW)
    assert "timed out" in r.status.wire()["executionInfo"]["errors"][0]["message"]


def test_spec_change_after_start_is_reported_as_not_applied() -> None:
    from batchai_operator.manifests.batch_job import spec_hash
    from batchai_operator.names import ANNOTATION_SPEC_HASH as SPEC_HASH_ANNOTATION

    started = batch_job()
    started["metadata"]["annotations"] = {SPEC_HASH_ANNOTATION: spec_hash(spec())}
    r = decision(world(batch_job=started, pods=[pod(0)]), NOW)
    applied = next(c for c in r.status.wire()["conditions"] if c["type"] == "SpecApplied")
    assert applied["status"] == "True"
    changed = spec(environmentVariables=[{"name": "A", "value": "b"}])
    r = decision(world(changed, status=r.status, batch_job=started, pods=[pod(0)]), LATER)
    applied = next(c for c in r.status.wire()["conditions"] if c["type"] == "SpecApplied")
    assert applied["status"] == "False" and applied["reason"] == "ImmutableAfterStart"
    # suspend/terminate/ttl steer a started job and do not count as a change.
    r = decision(world(spec(ttlSecondsAfterFinished=5), batch_job=started, pods=[pod(0)]), LATER)
    assert next(c for c in r.status.wire()["conditions"] if c["type"] == "SpecApplied")["status"] == "True"


KUBELET_FAILED_MOUNT = (
    'MountVolume.SetUp failed for volume "job-afs-0123456789" : rpc error: code = Internal desc = volume(x) '
    "mount //acct.file.core.windows.net/logs on /var/lib/kubelet/pods/p/volumes/kubernetes.io~csi/job-afs/"
    "mount failed with mount failed: exit status 32\n"
    "Mounting command: mount\n"
    "Mounting arguments: -t cifs -o dir_mode=0777,password=SUPERSECRET //acct.file.core.windows.net/logs\n"
    "Output: mount error(13): Permission denied"
)


def test_mount_failure_message_drops_arguments_redacts_and_names_the_volume() -> None:
    from batchai_operator.decide.failures import mount_failure_message

    text = mount_failure_message(KUBELET_FAILED_MOUNT, {"job-afs-0123456789": "Azure Files share logs"})
    assert "SUPERSECRET" not in text and "Mounting arguments" not in text
    assert "Permission denied" in text and "Azure Files share logs" in text
    assert "key=<redacted>" in mount_failure_message("bad sig=abc&key=def", {})


def test_a_volume_that_will_not_mount_fails_the_job_with_azf_mount_error() -> None:
    r = decision(
        world(batch_job=batch_job(), pods=[pod(0, phase="Pending")], mount_failure=mount_failure()), NOW
    )
    assert r.status.wire()["executionState"] == "failed"
    info = r.status.wire()["executionInfo"]
    assert info["exitCode"] == -1
    # Batch AI's text; what the kubelet said is in the Info detail (fidelity review M3).
    [err] = info["errors"]
    assert (err["code"], err["message"]) == ("AZFMountError", "Unable to mount Azure File")
    assert err["details"][0]["name"] == "Info" and "Permission denied" in err["details"][0]["value"]
    assert DeleteBatchJob("j") in r.actions


def test_a_volume_fails_the_job_only_after_the_kubelet_tried_often_enough() -> None:
    pending = {"batch_job": batch_job(), "pods": [pod(0, phase="Pending")]}
    r = decision(world(**pending, mount_failure=mount_failure(attempts=2)), NOW)  # threshold: 3
    assert r.status.execution_state != "failed" and r.actions == []
    r = decision(world(**pending, mount_failure=mount_failure(AFS_MOUNT_FAILED, attempts=3)), NOW)
    assert r.status.execution_state == "failed"


@pytest.mark.parametrize(
    ("volume", "code", "text", "exit_code"),
    [
        ("job-afs-0123456789", "AZFMountError", "Unable to mount Azure File", -1),
        ("job-bfs-0123456789", "BFSMountError", "unable to mount blob fuse file system", 1),
        ("cluster-nfs-0123456789", "NFSMountError", "Unable to mount NFS file server", -1),
        ("batchai-config", "VolumeMountError", "Unable to mount a volume of the job", -1),
    ],
)
def test_mount_errors_carry_the_code_of_their_file_system(
    volume: str, code: str, text: str, exit_code: int
) -> None:
    event = f'MountVolume.SetUp failed for volume "{volume}" : mount failed: exit status 32'
    w = world(batch_job=batch_job(), pods=[pod(0, phase="Pending")], mount_failure=mount_failure(event))
    info = decision(w, NOW).status.wire()["executionInfo"]
    assert (info["errors"][0]["code"], info["errors"][0]["message"], info["exitCode"]) == (
        code,
        text,
        exit_code,
    )
