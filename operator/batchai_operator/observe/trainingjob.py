"""What the operator sees of one TrainingJob's world, from the indexes and its memory: read only.

The one request to the apiserver made here asks whether the Secrets a starting job's pods reference
exist: a server-side dry run of creating each (nothing is stored, and the operator needs no `get` on
Secrets; kube.py's secret_exists). Everything else comes from the in-memory indexes.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ..api.cluster import BatchAIClusterSpec
from ..api.trainingjob import TrainingJobSpec, TrainingJobStatus
from ..config import OperatorConfig
from ..decide.gang import GangFacts
from ..manifests.naming import child_name
from ..manifests.paths import TrainingJobIdentity
from ..manifests.secrets import referenced_secrets
from ..names import TERMINAL_STATES
from . import indexes as idx
from .memory import MountFailure, Refusal, TrainingJobMemory
from .views import BatchJobView, ClusterView, PodView, TrainingJobView, parse_status

# After creating a job's children, how long to trust that its batch Job will show up in the index before
# creating again (a create of existing children is adopted, so this only saves requests).
EXPECT_BATCH_JOB_SECONDS = 30.0


class SecretProbe(Protocol):
    async def secret_exists(self, namespace: str, name: str) -> bool: ...


@dataclass(frozen=True)
class TrainingJobWorld:
    """What decide/trainingjob.py decides from: the object, its cluster and children, and what the
    operator remembers of its own actions."""

    view: TrainingJobView  # the TrainingJob as indexed
    status: TrainingJobStatus  # the status last written
    config: OperatorConfig
    cluster: ClusterView | None = None  # the BatchAICluster spec.cluster names; None: it does not exist
    batch_job: BatchJobView | None = None  # the batch/v1 Job it controls, named as the operator names it
    pods: Sequence[PodView] = ()  # that Job's pods
    missing_secrets: Sequence[str] = ()  # referenced Secrets that do not exist (asked only when starting)
    creating: bool = False  # the children were just created; the batch Job is not in the index yet
    create_refused: Refusal | None = None  # the apiserver's answer to the last create of the children
    mount_failure: MountFailure | None = None  # the last FailedMount Event that counts (not yet judged)
    pods_refused: str | None = None  # the Job controller's message: it cannot create the pods
    gang: GangFacts | None = None  # a multi-node job's gang (observe/gang.py); None: single-node or none
    unsuspended: bool = False  # the operator unsuspended its batch Job (the index may still say suspended)

    @property
    def spec(self) -> TrainingJobSpec | None:
        return self.view["spec"]

    @property
    def cluster_spec(self) -> BatchAIClusterSpec | None:
        return self.cluster["spec"] if self.cluster is not None else None

    @property
    def ident(self) -> TrainingJobIdentity:
        meta, spec = self.view["metadata"], self.view["spec"]
        return TrainingJobIdentity(
            meta["namespace"], meta["name"], meta["uid"], spec.experiment if spec else "default"
        )

    @property
    def starting(self) -> bool:
        """No batch Job of its own yet, none being created, not finished: its children are to be made
        (once nothing they need is missing)."""
        spec = self.spec
        return (
            self.batch_job is None
            and not self.creating
            and self.status.execution_state not in TERMINAL_STATES
            and spec is not None
            and not spec.terminate
            and self.cluster_spec is not None
        )

    @property
    def wants_children(self) -> bool:
        """Build the children this pass (the desired step): a starting job whose Secrets all exist."""
        return self.starting and not self.missing_secrets


async def observe(
    indexes: idx.Indexes,
    view: TrainingJobView,
    written: Mapping[str, Any] | None,
    memory: TrainingJobMemory | None,
    config: OperatorConfig,
    secrets: SecretProbe,
) -> TrainingJobWorld:
    """The job's world now. `written`: the status last written (the index may lag behind our own patch)."""
    memory = memory or TrainingJobMemory()
    meta = view["metadata"]
    namespace, uid = meta["namespace"], meta["uid"]
    spec = view["spec"]
    batch_job = our_batch_job(indexes, namespace, uid)
    pods = batch_job_pods(indexes, namespace, uid, batch_job)
    created_at = memory.created_at
    world = TrainingJobWorld(
        view=view,
        status=parse_status(TrainingJobStatus, written or view["status"]),
        config=config,
        cluster=indexes.first(idx.CLUSTERS, (namespace, spec.cluster_name if spec else view["cluster"])),
        batch_job=batch_job,
        pods=pods,
        creating=created_at is not None and time.monotonic() - created_at < EXPECT_BATCH_JOB_SECONDS,
        create_refused=memory.create_refused,
        mount_failure=memory.mount_failure,
        pods_refused=memory.pods_refused if batch_job is not None else None,
        unsuspended=memory.unsuspended,
    )
    if not world.starting:
        return world
    assert spec is not None and world.cluster_spec is not None
    missing = [
        s
        for s in sorted(referenced_secrets(spec, world.cluster_spec))
        if not await secrets.secret_exists(namespace, s)
    ]
    return replace(world, missing_secrets=missing)


def our_batch_job(indexes: idx.Indexes, namespace: str | None, uid: str) -> BatchJobView | None:
    """The TrainingJob's batch Job: in its namespace, controlled by it (the index's key) and named as the
    operator names it; a Job anyone else made to point at the TrainingJob does not count."""
    view: TrainingJobView | None = indexes.first(idx.TRAININGJOBS, uid)
    if view is None or view["metadata"]["namespace"] != namespace:
        return None
    name = child_name(view["metadata"]["name"])
    batch_jobs = indexes.all(idx.BATCH_JOBS_BY_OWNER, (namespace, uid))
    return next((j for j in batch_jobs if j["metadata"]["name"] == name), None)


def batch_job_pods(
    indexes: idx.Indexes, namespace: str, uid: str, batch_job: BatchJobView | None
) -> list[PodView]:
    """The TrainingJob's pods: found by label, but counted only when its batch Job controls them."""
    if batch_job is None:
        return []
    batch_job_uid = batch_job["metadata"]["uid"]
    return [
        p
        for p in indexes.all(idx.PODS_BY_OWNER, (namespace, uid))
        if p["metadata"]["controllerUid"] == batch_job_uid
    ]


def owner_of_pod(indexes: idx.Indexes, namespace: str | None, name: str | None) -> tuple[str, PodView] | None:
    """(TrainingJob uid its label names, pod view) of a pod with a TrainingJob's label."""
    found: tuple[str, PodView] | None = indexes.first(idx.POD_OWNER_BY_NAME, (namespace, name))
    return found


def batch_job_owner(indexes: idx.Indexes, namespace: str | None, batch_job_uid: str | None) -> str | None:
    """The uid of the TrainingJob that controls the batch Job of this uid, if it is one of ours."""
    for (ns, uid), store in indexes[idx.BATCH_JOBS_BY_OWNER].items():
        if ns == namespace and any(j["metadata"]["uid"] == batch_job_uid for j in store):
            return str(uid)
    return None
