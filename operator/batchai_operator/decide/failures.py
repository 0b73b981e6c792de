"""How a TrainingJob fails, in Batch AI's words: the error codes, texts and exit codes it reported, and the
FailedMount feature whole (which kubelet Events count, how many make a failure, which code a file system
gets, and the kubelet's message made safe for status). Pure; decide/trainingjob.py decides when.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..api.cluster import BatchAIClusterSpec
from ..api.trainingjob import BatchAIError, NameValuePair, TrainingJobSpec
from ..manifests.volumes import describe_volumes
from ..names import (
    ERR_AZF_MOUNT,
    ERR_BFS_MOUNT,
    ERR_FAILED_STARTING_CONTAINER,
    ERR_JOB_FAILED,
    ERR_JOB_PREPARATION_FAILED,
    ERR_JOB_TERMINATED,
    ERR_MAX_WALL_CLOCK,
    ERR_NFS_MOUNT,
    ERR_UNMANAGED_MOUNT,
    ERR_VOLUME_MOUNT,
    PULL_FAILURES,
    START_FAILURES,
)
from ..observe.memory import MountFailure
from . import pods as pod_readers

# Batch AI's error texts (docs/migration.md, "Status and errors"): the code per file system, the message
# Batch AI wrote, and the exit code it reported. NFS and unmanaged mounts had no published code.
JOB_FAILED_TEXT = "Job failed with non-zero exit code"
UNMANAGED_MOUNT_TEXT = "Unable to mount unmanaged file system"
MOUNT_ERRORS: dict[str, tuple[str, str, int]] = {
    "afs": (ERR_AZF_MOUNT, "Unable to mount Azure File", -1),
    "bfs": (ERR_BFS_MOUNT, "unable to mount blob fuse file system", 1),
    "nfs": (ERR_NFS_MOUNT, "Unable to mount NFS file server", -1),
    "": (ERR_VOLUME_MOUNT, "Unable to mount a volume of the job", -1),
}
# Failures the job's own pods and batch Job decide (and end): nothing for the operator to stop.
DECIDED_BY_THE_PODS = frozenset(
    {ERR_JOB_FAILED, ERR_JOB_PREPARATION_FAILED, ERR_UNMANAGED_MOUNT, ERR_MAX_WALL_CLOCK, ERR_JOB_TERMINATED}
)


@dataclass(frozen=True)
class Failure:
    """Why a job failed: `message` for the Failed condition and Event, `error` for executionInfo."""

    code: str
    message: str
    error: BatchAIError
    exit_code: int | None = None


def failure(
    code: str,
    message: str,
    exit_code: int | None = None,
    error_message: str | None = None,
    info: str | None = None,
) -> Failure:
    """The error in executionInfo carries `error_message` (the text Batch AI wrote for that code, where
    it had one) with `info` as its only detail, as Batch AI did, or else `message` with the exit code as
    a detail."""
    if error_message is not None:
        details = [NameValuePair(name="Info", value=info)] if info else None
        return Failure(
            code, message, BatchAIError(code=code, message=error_message, details=details), exit_code
        )
    exit_detail = [NameValuePair(name="exitCode", value=str(exit_code))] if exit_code is not None else None
    return Failure(code, message, BatchAIError(code=code, message=message, details=exit_detail), exit_code)


# ---- what the pods and the batch Job say ---------------------------------------------------------------


def batch_job_failure(
    spec: TrainingJobSpec, pods: Sequence[Mapping[str, Any]], failed_condition: Mapping[str, Any]
) -> Failure:
    """The failure of a job whose batch Job (its `failed_condition`, or {}) or pods say it failed."""
    reason = failed_condition.get("reason") or ""
    if reason == "DeadlineExceeded":
        limit = spec.effective_constraints.max_wall_clock_time
        return failure(ERR_MAX_WALL_CLOCK, f"The job ran longer than maxWallClockTime ({limit})")
    deciding = pod_readers.deciding_failure(pods, spec)
    if deciding is None:
        detail = failed_condition.get("message") or reason or "no pod exit code"
        return failure(ERR_JOB_FAILED, f"The job failed: {detail}")
    index, term = deciding
    code = int(term["exitCode"])
    message = (term.get("message") or "").strip()
    if message.startswith("JobPreparationFailed"):
        text = f"Job preparation failed on node {index} with exit code {code}"
        return failure(ERR_JOB_PREPARATION_FAILED, text, code)
    if message.startswith("MountFailed"):
        text = f"Mounting a volume failed on node {index}: {message}"
        return failure(ERR_UNMANAGED_MOUNT, text, code, error_message=UNMANAGED_MOUNT_TEXT, info=text)
    if message.startswith("LauncherFailed"):
        return failure(ERR_JOB_FAILED, f"The launcher failed on node {index}: {message}", code)
    # Batch AI's own text, without details (the exit code is in executionInfo.exitCode); the Failed
    # condition and Event say more: the node, and a kill by the kernel for want of memory.
    detailed = f"Job failed with non-zero exit code {code} on node {index}"
    if term.get("reason") == "OOMKilled":
        detailed += " (OOMKilled: the container ran out of memory)"
    return failure(ERR_JOB_FAILED, detailed, code, error_message=JOB_FAILED_TEXT)


def start_failure(pods: Sequence[Mapping[str, Any]]) -> Failure | None:
    """A container that cannot start (its image cannot be pulled, its config is wrong): the job fails."""
    for p in sorted(pods, key=pod_readers.pod_index):
        for cs in (p.get("status") or {}).get("containerStatuses") or []:
            waiting = (cs.get("state") or {}).get("waiting") or {}
            reason = waiting.get("reason")
            if reason in PULL_FAILURES or reason in START_FAILURES:
                detail = waiting.get("message") or reason
                node = pod_readers.pod_index(p)
                return failure(
                    ERR_FAILED_STARTING_CONTAINER,
                    f"Node {node} could not start container {cs.get('name')} ({reason}): {detail}",
                )
    return None


# ---- FailedMount -----------------------------------------------------------------------------------------
#
# A kubelet that cannot mount a volume of a pod posts FailedMount Events and tries again, for ever; the
# pod stays Pending. The operator's own Event watch (kube.py, started in reconcile/lifecycle.py) hands each
# one to reconcile/trainingjob.py's on_failed_mount, which asks `failed_mount` whether it counts and keeps
# the last that does in the job's memory (observe/memory.py). The next decision asks `mount_failure`
# whether the kubelet tried often enough; if so the job fails with its file system's Batch AI code.

KUBELET = "kubelet"
_VOLUME_KIND = re.compile(r"\b(?:job|cluster)-(afs|bfs|nfs)-[0-9a-f]{10}\b")
_SECRET_OPTION = re.compile(r"(?i)\b(password|pass|passwd|key|accountkey|sig|sastoken|token|secret)=[^,\s&]*")


def failed_mount(
    event: Mapping[str, Any], pod: Mapping[str, Any] | None, batch_job: Mapping[str, Any] | None
) -> MountFailure | None:
    """The mount failure an Event reports about `pod` (a pod view) of `batch_job` (our batch Job's view,
    found under the TrainingJob that controls it), or None when the Event does not count.

    Only the kubelet's count, about one of our own pods, while that pod has not started (a pod whose
    containers started has mounted its volumes). Anyone who can create Events in a namespace can post
    one that looks like the kubelet's; what they cannot forge is the pod's uid and the controller chain
    checked here (the pod is controlled by the batch Job that the TrainingJob controls, all in one
    namespace), nor make a running pod look unstarted.
    """
    if pod is None or batch_job is None or event.get("reason") != "FailedMount":
        return None
    source = (event.get("source") or {}).get("component") or event.get("reportingComponent")
    if source != KUBELET:
        return None
    involved = event.get("involvedObject") or {}
    meta, batch_job_meta = pod.get("metadata") or {}, batch_job.get("metadata") or {}
    if (
        involved.get("kind") != "Pod"
        or involved.get("uid") != meta.get("uid")
        or involved.get("namespace") != meta.get("namespace")
        or involved.get("name") != meta.get("name")
        or meta.get("namespace") != batch_job_meta.get("namespace")
        or meta.get("controllerUid") != batch_job_meta.get("uid")
    ):
        return None
    if _started(pod):
        return None
    count = int(event.get("count") or (event.get("series") or {}).get("count") or 1)
    return MountFailure(pod_readers.pod_index(pod), count, str(event.get("message") or ""))


def _started(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") not in (None, "Pending"):
        return True
    return any(
        "running" in (cs.get("state") or {}) or "terminated" in (cs.get("state") or {})
        for cs in status.get("containerStatuses") or []
    )


def mount_failure(
    seen: MountFailure | None,
    threshold: int,
    spec: TrainingJobSpec,
    cluster: BatchAIClusterSpec | None,
) -> Failure | None:
    """The job's failure when the kubelet failed to mount a volume at least `threshold` times (the chart's
    mountFailureThreshold), with the code of the volume's file system and the volume named as the user
    wrote it."""
    if seen is None or seen.attempts < threshold:
        return None
    volumes = describe_volumes(spec.mount_volumes, "job")
    node_setup = cluster.node_setup if cluster else None
    volumes.update(describe_volumes(node_setup.mount_volumes if node_setup else None, "cluster"))
    message = mount_failure_message(seen.message, volumes)
    code, batchai_text, exit_code = MOUNT_ERRORS[mount_kind(seen.message)]
    index = seen.node_index
    return failure(
        code,
        f"A volume of node {index} will not mount: {message}",
        exit_code,
        error_message=batchai_text,
        info=f"Could not mount on node {index}: {message}",
    )


def mount_kind(event_message: str) -> str:
    """Which kind of Batch AI mount a kubelet's FailedMount message is about ('afs', 'bfs', 'nfs'), from the
    pod volume name the builders give it; '' for any other volume."""
    m = _VOLUME_KIND.search(event_message)
    return m.group(1) if m else ""


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
