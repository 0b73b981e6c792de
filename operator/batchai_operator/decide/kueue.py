"""Pure: whether Kueue holds a TrainingJob's Job, and how to say so in the TrainingJob's status.

Kueue (sigs.k8s.io/kueue) admits batch/v1 Jobs that carry `kueue.x-k8s.io/queue-name`: its webhook
creates them suspended, it unsuspends one when its ClusterQueue has quota, and it suspends it again when
it evicts or preempts it. The operator copies the TrainingJob's labels to the Job and leaves `suspend`
to Kueue on such jobs; this module turns "the Job is suspended and Kueue owns it" into a queued reason
that names Kueue, the LocalQueue and, when the caller has the Job's Kueue Workload, Kueue's own words.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..names import LABEL_KUEUE_QUEUE
from ..names import WAIT_KUEUE_DEACTIVATED as DEACTIVATED
from ..names import WAIT_KUEUE_EVICTED as EVICTED
from ..names import WAIT_KUEUE_HELD as HELD
from .pods import finishing


def queue_name(labels: Mapping[str, str] | None) -> str | None:
    """The LocalQueue a TrainingJob (and so its Job) is submitted to, if any."""
    name = (labels or {}).get(LABEL_KUEUE_QUEUE)
    return name or None


def kueue_hold(
    labels: Mapping[str, str] | None,
    batch_job: Mapping[str, Any] | None,
    workload: Mapping[str, Any] | None = None,
) -> tuple[str, str] | None:
    """(reason, message) for a TrainingJob whose batch Job Kueue keeps suspended; None when Kueue does not
    hold it.

    `labels` are the TrainingJob's labels, `batch_job` the observed batch/v1 Job (None before it exists),
    and `workload` that Job's kueue.x-k8s.io Workload when the caller watches those (optional: without it
    the message points at `kubectl get workloads`).
    """
    queue = queue_name(labels)
    if queue is None or batch_job is None:
        return None
    if not (batch_job.get("spec") or {}).get("suspend") or finishing(batch_job):
        return None
    namespace = (batch_job.get("metadata") or {}).get("namespace") or ""
    where = f"LocalQueue {queue!r}"
    if workload is None:
        ns_flag = f" -n {namespace}" if namespace else ""
        return (
            HELD,
            f"Kueue holds the job in {where} until its ClusterQueue has quota for it "
            f"(kubectl get workloads{ns_flag} shows why)",
        )
    wl_conditions = {c.get("type"): c for c in (workload.get("status") or {}).get("conditions") or []}
    if (workload.get("spec") or {}).get("active") is False:
        return DEACTIVATED, f"The job's Kueue workload in {where} is deactivated: Kueue will not admit it"
    evicted = wl_conditions.get("Evicted")
    if evicted is not None and evicted.get("status") == "True":
        detail = _words(evicted) or "evicted"
        return EVICTED, f"Kueue evicted the job and holds it in {where} again: {detail}"
    reserved = wl_conditions.get("QuotaReserved")
    admitted = wl_conditions.get("Admitted")
    if admitted is not None and admitted.get("status") == "True":
        return HELD, f"Kueue admitted the job in {where}; waiting for Kueue to start it"
    detail = _words(reserved) if reserved is not None and reserved.get("status") == "False" else ""
    message = f"Kueue holds the job in {where} until its ClusterQueue has quota for it"
    return HELD, f"{message}: {detail}" if detail else message


def _words(condition: Mapping[str, Any]) -> str:
    return str(condition.get("message") or condition.get("reason") or "").strip()
