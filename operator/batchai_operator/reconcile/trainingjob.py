"""TrainingJobs, the kind (reconcile/controller.py runs the sync): observe -> desired (the children,
manifests/children.py) -> decide (decide/trainingjob.py) -> apply; and what syncs them: changes of the
TrainingJob, its batch Job and pods (handlers/), of the cluster it waits for, and the Events of the
operator's own watches (FailedMount, FailedCreate), whose news is kept in the job's memory.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from ..api.trainingjob import TrainingJobStatus
from ..decide import failures
from ..decide.common import Decision, Desired
from ..decide.gang import Mechanism, admission_possible
from ..decide.trainingjob import (
    CreateChildren,
    DeleteBatchJob,
    DeleteTrainingJob,
    SetBatchJobSuspend,
    TrainingJobAction,
    at_rest,
    decide,
)
from ..manifests.children import TrainingJobChildren, build_children
from ..manifests.ssh import generate_ssh_keypair
from ..metrics import observe_transition
from ..names import (
    CONDITION_FOR_STATE,
    QUEUED,
    TERMINAL_STATES,
    TRAININGJOB_KIND,
    TRAININGJOB_PLURAL,
    WAIT_CLUSTER_INVALID,
    WAIT_CLUSTER_NOT_FOUND,
)
from ..observe import indexes as idx
from ..observe import trainingjob as observe_trainingjob
from ..observe.gang import mechanism_of, observe_gang
from ..observe.memory import TrainingJobMemory
from ..observe.trainingjob import (
    TrainingJobWorld,
    batch_job_owner,
    batch_job_pods,
    our_batch_job,
    owner_of_pod,
)
from ..observe.views import TrainingJobView, indexed_status
from . import controller
from .children import ensure
from .runtime import Runtime

Key = str  # a TrainingJob's uid
TrainingJobDecision = Decision[TrainingJobStatus, TrainingJobAction]


class TrainingJobs(
    controller.Kind[Key, TrainingJobView, TrainingJobWorld, TrainingJobChildren, TrainingJobAction]
):
    name = TRAININGJOB_KIND
    plural = TRAININGJOB_PLURAL
    index = idx.TRAININGJOBS
    state_field = "executionState"

    async def observe(self, rt: Runtime, view: TrainingJobView) -> TrainingJobWorld:
        uid = view["metadata"]["uid"]
        memory = rt.memory(TrainingJobMemory).get(uid)
        world = await observe_trainingjob.observe(
            rt.indexes, view, rt.written.get(uid), memory, rt.config, rt.kube
        )
        if world.status.execution_state in TERMINAL_STATES:
            return world
        gang = await observe_gang(
            rt.indexes,
            view,
            world.cluster_spec,
            rt.config,
            rt.served,
            world.batch_job,
            list(world.pods),
            rt.kube,
            world.unsuspended,
        )
        return replace(world, gang=gang)

    def desired(self, world: TrainingJobWorld) -> TrainingJobChildren:
        spec, cluster = world.spec, world.cluster
        assert spec is not None and cluster is not None and cluster["spec"] is not None  # world.starting
        uid = cluster["metadata"]["uid"]
        gang = world.gang.mechanism if world.gang else None
        return build_children(
            world.view, spec, world.view["cluster"], cluster["spec"], world.config, uid, gang=gang
        )

    def decide(
        self, world: TrainingJobWorld, desired: Desired[TrainingJobChildren], now: datetime
    ) -> TrainingJobDecision:
        return decide(world, desired, now)

    async def apply(
        self, rt: Runtime, key: Key, world: TrainingJobWorld, decision: TrainingJobDecision
    ) -> bool:
        memories = rt.memory(TrainingJobMemory)
        if key in memories:
            _settle(memories[key], world)
            if memories[key] == TrainingJobMemory():  # nothing left to remember (most jobs, most of the time)
                del memories[key]
        meta = world.view["metadata"]
        old_state, new_state = world.status.execution_state, decision.status.execution_state
        if new_state != old_state:
            toolkit = decision.status.tool_type or "unknown"
            observe_transition(
                old_state, new_state, toolkit, decision.status.wire(), meta["creationTimestamp"]
            )
        changed = False
        for action in decision.actions:
            if isinstance(action, CreateChildren):
                memory = memories.setdefault(key, TrainingJobMemory())
                changed |= await _create_children(rt, memory, action.children, key)
            elif isinstance(action, DeleteBatchJob):
                await rt.kube.delete("Job", meta["namespace"], action.name, foreground=action.wait_for_pods)
            elif isinstance(action, SetBatchJobSuspend):
                patch = {"spec": {"suspend": action.suspend}}
                await rt.kube.patch_batch_job(meta["namespace"], action.name, patch)
                # Until the index shows the Job unsuspended, the job is started (the gang admission's
                # passes in between must not hold it again, nor count its nodes free).
                memory = memories.setdefault(key, TrainingJobMemory())
                memory.unsuspended = not action.suspend
                if not memory.unsuspended and memory == TrainingJobMemory():
                    del memories[key]
            elif isinstance(action, DeleteTrainingJob):
                await rt.kube.delete_custom(TRAININGJOB_PLURAL, meta["namespace"], meta["name"])
        return changed


KIND = TrainingJobs()


# ---- entry points (called by handlers/, the own watches and the Event watches) ---------------------------


async def request_sync(rt: Runtime, uid: Key) -> None:
    if not _at_rest(rt, uid):
        await controller.request_sync(rt, KIND, uid)


def on_trainingjob_change(rt: Runtime, uid: Key) -> None:
    """A TrainingJob changed (reconcile/own_watches.py): it syncs, unless the change is only the echo of the
    operator's own status write (four of a single-node job's five events): the same metadata as its last
    sync began from (so the same spec: its generation) and the status written since. What else a sync
    reads (the job's children, its cluster, time) syncs it from its own watch or timer."""
    view: TrainingJobView | None = rt.indexes.first(idx.TRAININGJOBS, uid)
    written = rt.written.get(uid)
    if (
        view is not None
        and written is not None
        and rt.synced_meta.get(uid) == view["metadata"]
        and indexed_status(written) == view["status"]
        and not view["status"].get("settled")  # ask_sync's at-rest check lets it go
    ):
        return
    ask_sync(rt, uid)


def ask_sync(rt: Runtime, uid: Key) -> None:
    """request_sync from the own watches' callbacks (reconcile/own_watches.py): in the background."""
    if not _at_rest(rt, uid):
        controller.ask_sync(rt, KIND, uid)


def _at_rest(rt: Runtime, uid: Key) -> bool:
    """A settled job with nothing to do and nothing remembered (decide/trainingjob.py: at_rest): seen only
    until the watch, which selects jobs not settled, drops it. One at rest but not yet settled (finished
    by an operator that did not settle jobs) syncs once more, which settles it. Its status last written
    is dropped once the index shows it: the index holds it from then on."""
    view: TrainingJobView | None = rt.indexes.first(idx.TRAININGJOBS, uid)
    if view is None or uid in rt.memory(TrainingJobMemory):
        return False
    written = rt.written.get(uid)
    if written is not None and indexed_status(written) != view["status"]:
        return False  # the index has not caught up with our last write yet
    meta = view["metadata"]
    batch_job = our_batch_job(rt.indexes, meta["namespace"], uid)
    pods = batch_job_pods(rt.indexes, meta["namespace"], uid, batch_job)
    if not view["status"].get("settled"):
        return False
    if not at_rest(view["status"], meta["generation"], view["spec"], batch_job, pods):
        return False
    rt.written.pop(uid, None)
    return True


async def on_cluster_event(rt: Runtime, namespace: str | None, name: str) -> None:
    """A BatchAICluster appeared or changed: the jobs that wait for it (and only those) sync now."""
    for uid in rt.indexes.all(idx.TRAININGJOBS_BY_CLUSTER, (namespace, name)):
        view = rt.indexes.first(idx.TRAININGJOBS, uid)
        if view is not None and _waits_for_cluster(rt.written.get(uid) or view["status"]):
            await request_sync(rt, uid)


async def wake_held_gangs(rt: Runtime, cluster: tuple[str, str]) -> None:
    """A node of the cluster, or a job's pod on one, changed (a pod ended, a node came back): the jobs the
    operator's own gang admission holds there look again now, not at their next recheck, so that a gang
    starts as soon as its nodes are free. Held: queued, and the admission's (single-node jobs are the
    scheduler's, and other mechanisms' gangs are held elsewhere)."""
    if not admission_possible(rt.config.gang, rt.served):
        return
    for uid in rt.indexes.all(idx.TRAININGJOBS_BY_CLUSTER, cluster):
        view = rt.indexes.first(idx.TRAININGJOBS, uid)
        if view is None or (rt.written.get(uid) or view["status"]).get("executionState") != QUEUED:
            continue
        if mechanism_of(view, rt.config, rt.served) is Mechanism.ADMISSION:
            await request_sync(rt, uid)


def on_failed_mount(rt: Runtime, event: Mapping[str, Any]) -> None:
    """A FailedMount Event about a pod: when it counts against one of our jobs (decide/failures.py),
    remember it and sync that job, which decides whether the kubelet has tried often enough."""
    involved = event.get("involvedObject") or {}
    namespace = involved.get("namespace")
    uid, pod = owner_of_pod(rt.indexes, namespace, involved.get("name")) or (None, None)
    if uid is None:
        return
    found = failures.failed_mount(event, pod, our_batch_job(rt.indexes, namespace, uid))
    if found is None:
        return
    rt.memory(TrainingJobMemory).setdefault(uid, TrainingJobMemory()).mount_failure = found
    rt.spawn(request_sync(rt, uid))


def on_failed_create(rt: Runtime, event: Mapping[str, Any]) -> None:
    """The Job controller could not create a pod of one of our batch Jobs (a quota, pod security
    admission, a missing ServiceAccount): remember why, so the job says so while it waits."""
    involved = event.get("involvedObject") or {}
    if (event.get("source") or {}).get("component", "job-controller") != "job-controller":
        return
    uid = batch_job_owner(rt.indexes, involved.get("namespace"), involved.get("uid"))
    if uid is not None:
        rt.memory(TrainingJobMemory).setdefault(uid, TrainingJobMemory()).pods_refused = str(
            event.get("message") or ""
        )
        rt.spawn(request_sync(rt, uid))


# Events no kopf handler sees, from field-selected watches of the operator's own (reconcile/lifecycle.py
# starts them): volumes a kubelet cannot mount, and pods the Job controller cannot create.
FAILED_MOUNT_EVENTS = "reason=FailedMount,involvedObject.kind=Pod"
FAILED_CREATE_EVENTS = "reason=FailedCreate,involvedObject.kind=Job"
EVENT_WATCHES = (
    ("failed-mount", FAILED_MOUNT_EVENTS, on_failed_mount),
    ("failed-create", FAILED_CREATE_EVENTS, on_failed_create),
)


# ---- applying --------------------------------------------------------------------------------------------


def _settle(memory: TrainingJobMemory, world: TrainingJobWorld) -> None:
    """What the world now shows replaces what the memory held: a batch Job in the index ends the wait for
    it and any refusal of an earlier create; all pods there end a refusal of the Job controller's."""
    if world.batch_job is None:
        return
    memory.created_at = memory.create_refused = None
    if not world.batch_job["spec"]["suspend"]:
        memory.unsuspended = False
    spec = world.spec
    if spec is not None and len(world.pods) >= spec.node_count:
        memory.pods_refused = None


async def _create_children(
    rt: Runtime, memory: TrainingJobMemory, children: TrainingJobChildren, uid: str
) -> bool:
    """Create the children (reconcile/children.py: adopted if ours, else refused), the batch Job last;
    True when the apiserver refused one (the job's memory says so for the next pass). The namespace's
    shared launcher ConfigMap is created once per namespace, not once per job."""
    launcher = children.launcher_config_map
    if launcher is not None:
        where = (launcher["metadata"]["namespace"], launcher["metadata"]["name"])
        if where not in rt.shared_objects:
            # Any of its name is it: its name is its content's hash. Asked first (a read): after a
            # restart it exists, and creating it again would be a write of what is already true.
            if not await rt.kube.exists("ConfigMap", *where):
                memory.create_refused = await ensure(rt.kube, launcher, owner_uid=None)
                if memory.create_refused is not None:
                    return True
            rt.shared_objects.add(where)
    for manifest in children.owned(generate_ssh_keypair):
        # The SSH Secret's name holds the TrainingJob's uid: one of that name is an earlier attempt's.
        owner = None if manifest["kind"] == "Secret" else uid
        memory.create_refused = await ensure(rt.kube, manifest, owner)
        if memory.create_refused is not None:
            return True
    memory.created_at = time.monotonic()
    return False


def _waits_for_cluster(status: Mapping[str, Any]) -> bool:
    state = status.get("executionState")
    if state is None:
        return True
    if state != QUEUED:
        return False
    queued: Mapping[str, Any] = next(
        (c for c in status.get("conditions") or [] if c.get("type") == CONDITION_FOR_STATE[QUEUED]), {}
    )
    return queued.get("reason") in (WAIT_CLUSTER_NOT_FOUND, WAIT_CLUSTER_INVALID)
