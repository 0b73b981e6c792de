"""Pure: which gang mechanism a multi-node TrainingJob uses, and how to say why its gang waits.

A multi-node job must never hold some of its nodes while waiting for the rest (node 0 of an MPI job
gives up after 900 s, and the held GPUs are lost to everyone). Three mechanisms keep it whole, best
first (docs/gang-scheduling.md):

1. Kueue, for a job that names a LocalQueue: Kueue admits the whole Indexed Job; nothing on top.
2. The Workload API (scheduling.k8s.io/v1beta1, GenericWorkload): a PodGroup with a gang policy, which
   kube-scheduler binds all or nothing.
3. The operator's own admission (decide/admission.py): the batch Job stays suspended until the cluster
   has the job's nodes free, Batch AI's rule.

The chart's `gang` value picks one (or `auto`, or `off`); single-node jobs never use any.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, get_args

from .admission import Verdict

GangSetting = Literal["auto", "kueue", "workload", "admission", "off"]
GANG_SETTINGS: tuple[str, ...] = get_args(GangSetting)


class Mechanism(StrEnum):
    KUEUE = "kueue"
    WORKLOAD = "workload"
    ADMISSION = "admission"


@dataclass(frozen=True)
class ServedApis:
    """What the cluster serves, found by discovery when the operator starts."""

    workload: bool  # scheduling.k8s.io/v1beta1 workloads and podgroups (GenericWorkload on)
    kueue: bool  # kueue.x-k8s.io workloads (Kueue installed)


@dataclass(frozen=True)
class GangFacts:
    """A multi-node job's gang as observed (observe/gang.py)."""

    mechanism: Mechanism
    verdict: Verdict  # needed, free and never for every mechanism; start only under admission
    words: str | None = None  # the PodGroup's own words, while its gang is not placed


def workload_api_served(resources: Iterable[str] | None) -> bool:
    """Both kinds the gang needs are in scheduling.k8s.io/v1beta1's discovered resources."""
    return resources is not None and {"workloads", "podgroups"} <= set(resources)


def setting_error(setting: str, served: ServedApis) -> str | None:
    """Why the operator cannot run with this `gang` setting on this cluster, or None."""
    if setting not in GANG_SETTINGS:
        return f"gang: {setting!r} is not one of {', '.join(GANG_SETTINGS)}"
    if setting == Mechanism.WORKLOAD and not served.workload:
        return (
            "gang: workload, but the cluster does not serve scheduling.k8s.io/v1beta1 Workloads and "
            "PodGroups (enable the GenericWorkload feature gate and that API group, or choose auto)"
        )
    if setting == Mechanism.KUEUE and not served.kueue:
        return "gang: kueue, but Kueue (kueue.x-k8s.io) is not installed (install it, or choose auto)"
    return None


def choose(setting: str, served: ServedApis, node_count: int, queue: str | None) -> Mechanism | None:
    """The mechanism that keeps a job's nodes together; None for a single-node job or no gang at all.

    A job naming a LocalQueue is Kueue's, whatever the setting: Kueue's webhook holds its Job, and a
    second gang on top could only disagree with Kueue's admission. (Not only when discovery at start saw
    Kueue: it may be installed later, and the operator must never unsuspend a Job Kueue holds.)
    """
    if node_count <= 1:
        return None
    if queue is not None:
        return Mechanism.KUEUE
    if setting == "auto":
        return Mechanism.WORKLOAD if served.workload else Mechanism.ADMISSION
    if setting in (Mechanism.WORKLOAD, Mechanism.ADMISSION):
        return Mechanism(setting)
    return None  # off, or kueue for a job that names no queue


def admission_possible(setting: str, served: ServedApis) -> bool:
    """Whether any job can be under the operator's own admission with this setting on this cluster."""
    return setting == Mechanism.ADMISSION or (setting == "auto" and not served.workload)


def pod_group_words(pod_group: Mapping[str, Any] | None) -> str | None:
    """The scheduler's words for why a PodGroup's gang is not placed yet (its PodGroupInitiallyScheduled
    condition while False), or None."""
    for c in ((pod_group or {}).get("status") or {}).get("conditions") or []:
        if c.get("type") == "PodGroupInitiallyScheduled" and c.get("status") == "False":
            return str(c.get("message") or c.get("reason") or "").strip() or None
    return None


def waiting_message(mechanism: Mechanism, needed: int, free: int | None, detail: str | None = None) -> str:
    """The WaitingForNodes message: the counts, the mechanism, and its own words when it has some."""
    counts = f"{needed} nodes needed" if free is None else f"{needed} nodes needed, {free} free"
    how = {
        Mechanism.KUEUE: "Kueue admits the whole job",
        Mechanism.WORKLOAD: "the scheduler binds all of them or none (PodGroup, gang)",
        Mechanism.ADMISSION: "the operator starts the job when all are free",
    }[mechanism]
    text = f"Waiting for nodes ({counts}): {how}"
    return f"{text}: {detail}" if detail else text
