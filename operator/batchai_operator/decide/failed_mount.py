"""Which FailedMount Events count against a job: only the kubelet's, about one of our own pods, while that
pod has not started (a pod whose containers started has mounted its volumes). Pure.

Anyone who can create Events in a namespace can post one that looks like the kubelet's; what they cannot
forge is the pod's uid and the controller chain checked here (the pod is controlled by the Job that the
TrainingJob controls, all in one namespace), nor make a running pod look unstarted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .views import pod_index

KUBELET = "kubelet"


@dataclass(frozen=True)
class MountFailure:
    node_index: int
    attempts: int  # the Event's count: how many times the kubelet tried
    message: str  # the kubelet's message (sanitised before it reaches status)


def _started(pod: Mapping[str, Any]) -> bool:
    status = pod.get("status") or {}
    if status.get("phase") not in (None, "Pending"):
        return True
    return any(
        "running" in (cs.get("state") or {}) or "terminated" in (cs.get("state") or {})
        for cs in status.get("containerStatuses") or []
    )


def failed_mount(
    event: Mapping[str, Any], pod: Mapping[str, Any] | None, job: Mapping[str, Any] | None
) -> MountFailure | None:
    """The mount failure an Event reports about `pod` (a job pod view) of `job` (our Job's view, found
    under the TrainingJob that controls it), or None when the Event does not count."""
    if pod is None or job is None or event.get("reason") != "FailedMount":
        return None
    source = (event.get("source") or {}).get("component") or event.get("reportingComponent")
    if source != KUBELET:
        return None
    involved = event.get("involvedObject") or {}
    meta, job_meta = pod.get("metadata") or {}, job.get("metadata") or {}
    if (
        involved.get("kind") != "Pod"
        or involved.get("uid") != meta.get("uid")
        or involved.get("namespace") != meta.get("namespace")
        or involved.get("name") != meta.get("name")
        or meta.get("namespace") != job_meta.get("namespace")
        or meta.get("controllerUid") != job_meta.get("uid")
    ):
        return None
    if _started(pod):
        return None
    count = int(event.get("count") or (event.get("series") or {}).get("count") or 1)
    return MountFailure(pod_index(pod), count, str(event.get("message") or ""))
