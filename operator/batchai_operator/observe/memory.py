"""What each kind's sync remembers about an object between syncs, typed per kind: the outcomes of its own
actions and the Events of its own watches, which no index holds. reconcile/ writes it (when it acts or an
Event comes), observe/ reads it back into the next world, and it is forgotten with the object.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

from ..api.trainingjob import BatchAIError

# The apiserver refused the child itself (a malformed object): the spec made it so, and trying again
# would not help. Any other refusal (admission: a ResourceQuota, a policy; a name taken) may pass later.
INVALID_CHILD_STATUSES = (400, 422)


@dataclass(frozen=True)
class Refusal:
    """The apiserver refused to create (or replace) a child, or one of its name exists and is not ours."""

    kind: str
    status: int  # the HTTP status (409: the name is taken by an object we do not control)
    message: str  # the apiserver's own message
    at: datetime

    @property
    def permanent(self) -> bool:
        return self.status in INVALID_CHILD_STATUSES


@dataclass(frozen=True)
class MountFailure:
    """A kubelet's FailedMount Event that counts against a job (decide/failures.py says which count)."""

    node_index: int
    attempts: int  # the Event's count: how many times the kubelet tried
    message: str  # the kubelet's message (redacted before it reaches status)


@dataclass
class TrainingJobMemory:
    create_refused: Refusal | None = None  # the last create of the children
    created_at: float | None = None  # monotonic time the children were created; None once the Job is seen
    mount_failure: MountFailure | None = None
    pods_refused: str | None = None  # the Job controller's message when it could not create a pod
    unsuspended: bool = False  # the operator unsuspended the batch Job; False once the index shows it


@dataclass(frozen=True)
class ScaleFailure:
    """The last failed attempt to apply scaleSettings to the AKS agent pool."""

    desired_key: str
    error: BatchAIError
    attempts: int
    retry_at: datetime


@dataclass
class ClusterMemory:
    nodes: set[str] = field(default_factory=set)  # the nodes counted last time (one may have left since)
    setup_refused: Refusal | None = None  # the setup DaemonSet's last create or replace
    scale_failure: ScaleFailure | None = None
    scaling: asyncio.Task[None] | None = None  # the agent-pool update in flight
    applied_scale: str | None = None  # scaleSettings this process applied (the annotation may lag)
