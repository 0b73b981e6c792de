"""The TrainingJob sync (reconcile/trainingjob.py) with in-memory indexes and a recording client: the
exact writes it makes, in order (status before the actions), what it remembers of its actions' outcomes,
and which children and Events it trusts."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from batchai_operator.config import OperatorConfig
from batchai_operator.manifests.configmap import build_launcher_config_map
from batchai_operator.names import GROUP, VERSION
from batchai_operator.observe import indexes as indexers
from batchai_operator.observe.indexes import Indexes
from batchai_operator.reconcile import controller, trainingjob
from batchai_operator.reconcile.runtime import Runtime
from recording_kube import RecordingKube
from samples import cntk_spec

NS, UID = "team-a", "uid-tj"
RT: Runtime  # the runtime of the running test (set by `env`)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[RecordingKube, list[tuple[str, str, str]]]]:
    global RT
    kube = RecordingKube()
    kube.secrets.add("storage")
    RT = Runtime(kube, OperatorConfig(), world(), None)
    events: list[tuple[str, str, str]] = []
    monkeypatch.setattr(  # Runtime.post's own tests: test_runtime_events.py
        Runtime,
        "post",
        lambda self, obj, posted: events.extend((e.type, e.reason, e.message) for e in posted),
    )
    yield kube, events
    RT.forget(UID)


def trainingjob_body(spec: dict[str, Any], status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "metadata": {"name": "j", "namespace": NS, "uid": UID, "generation": 1, "labels": {}},
        "spec": spec,
        "status": status or {},
    }


def cluster_body() -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BatchAICluster",
        "metadata": {"name": "nc6", "namespace": NS, "uid": "uid-c", "generation": 1},
        "spec": {"vmSize": "Standard_NC6"},
    }


def world(*objects: dict[str, Any], spec: dict[str, Any] | None = None, status: Any = None) -> dict[str, Any]:
    """Indexes holding the TrainingJob, its cluster and the given Jobs and pods, as kopf would fill them."""
    out: dict[str, dict[Any, list[Any]]] = {name: {} for name in indexers.ALL}

    def add(index: str, body: dict[str, Any]) -> None:
        for key, value in getattr(indexers, index)(body).items():
            out[index].setdefault(key, []).append(value)

    add(indexers.TRAININGJOB_INDEX, trainingjob_body(spec or cntk_spec(), status))
    add(indexers.CLUSTERS, cluster_body())
    for obj in objects:
        if obj["kind"] == "Job":
            add(indexers.BATCH_JOBS_BY_OWNER, obj)
        else:
            add(indexers.TRAININGJOB_PODS, obj)
    return out


def owned_batch_job(owner: str = UID, **status: Any) -> dict[str, Any]:
    ref = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "name": "j",
        "uid": owner,
        "controller": True,
    }
    return {
        "kind": "Job",
        "metadata": {"name": "j", "namespace": NS, "uid": "uid-job", "ownerReferences": [ref]},
        "spec": {"suspend": False},
        "status": status,
    }


def batch_job_pod(owner_job: str = "uid-job", namespace: str = NS, **state: Any) -> dict[str, Any]:
    return {
        "kind": "Pod",
        "metadata": {
            "name": "j-0-abcde",
            "namespace": namespace,
            "uid": "uid-pod",
            "labels": {"batchai.io/trainingjob-uid": UID, "batch.kubernetes.io/job-completion-index": "0"},
            "ownerReferences": [{"kind": "Job", "uid": owner_job, "controller": True}],
        },
        "spec": {"nodeName": "n1"},
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": "main", "state": state or {"running": {}}}],
        },
    }


async def sync(indexes: dict[str, Any]) -> None:
    RT.indexes = Indexes(indexes)
    await trainingjob.request_sync(RT, UID)


async def test_start_creates_children_in_order_after_the_status(env: Any) -> None:
    kube, events = env
    await sync(world())
    assert kube.kinds() == ["status", "create ConfigMap", "create Job"]
    assert kube.of("status")[0]["executionState"] == "queued"
    assert events == []  # a new job being created is not news (one write fewer per job)
    # The Job is not in the index yet: another event must not create the children again.
    await sync(world())
    assert kube.kinds().count("create Job") == 1


async def test_after_a_restart_the_shared_launcher_config_map_is_asked_for_not_created(env: Any) -> None:
    kube, _ = env
    launcher = build_launcher_config_map(NS)
    kube.existing[("ConfigMap", launcher["metadata"]["name"])] = None  # made before the restart
    RT.shared_objects.clear()
    await sync(world())
    assert kube.kinds() == ["status", "create Job"]
    assert (NS, launcher["metadata"]["name"]) in RT.shared_objects


async def test_a_new_job_waits_for_a_start_slot_and_a_running_one_does_not(env: Any) -> None:
    kube, _ = env
    RT.start_slots = asyncio.Semaphore(1)
    await RT.start_slots.acquire()  # a burst of new jobs holds every slot
    new = asyncio.create_task(sync(world()))
    await asyncio.sleep(0.05)
    assert kube.kinds() == []  # its first sync waits
    # A job that already has a status (here: running) is written at once meanwhile.
    RT.indexes = Indexes(world(owned_batch_job(), batch_job_pod(), status={"executionState": "running"}))
    await controller.sync(RT, trainingjob.KIND, UID)
    assert kube.kinds() == ["status"]
    RT.start_slots.release()
    await new
    RT.forget(UID)


async def test_missing_secret_waits_and_creates_nothing(env: Any) -> None:
    kube, _ = env
    kube.secrets.clear()
    await sync(world())
    assert kube.kinds() == ["status"]
    assert kube.of("status")[0]["conditions"][0]["reason"] == "SecretNotFound"
    assert RT.has_timer(UID, "requeue")


async def test_refused_create_is_reported_in_a_second_pass_and_retried_later(env: Any) -> None:
    from kubernetes.client.exceptions import ApiException

    kube, _ = env

    async def refuse(manifest: dict[str, Any]) -> bool:
        e = ApiException(status=403, reason="Forbidden")
        e.body = '{"message": "pods \\"j\\" is forbidden: exceeded quota: gpu"}'
        raise e

    kube.create = refuse
    await sync(world())
    statuses = kube.of("status")
    assert len(statuses) == 2  # WaitingForNodes, then the refusal, in the same sync
    queued = statuses[-1]["conditions"][0]
    assert queued["reason"] == "JobCreationRejected" and "exceeded quota: gpu" in queued["message"]
    assert RT.has_timer(UID, "requeue")


async def test_a_child_left_by_another_object_is_not_adopted(env: Any) -> None:
    kube, _ = env
    kube.existing[("Job", "j")] = "uid-of-a-deleted-job"
    await sync(world())
    assert kube.of("status")[-1]["conditions"][0]["reason"] == "JobCreationRejected"
    kube.existing[("Job", "j")] = UID  # ours (a restart between the create and its Event): adopted
    RT.forget(UID)
    kube.calls.clear()
    await sync(world())
    assert kube.of("status")[-1]["conditions"][0]["reason"] == "WaitingForNodes"
    assert kube.kinds() == ["status", "create Job"]  # the shared launcher ConfigMap is known to exist


async def test_terminal_status_is_written_before_the_batch_job_is_deleted(env: Any) -> None:
    kube, events = env
    pulling = batch_job_pod(waiting={"reason": "ErrImageNeverPull", "message": "not present"})
    await sync(world(owned_batch_job(), pulling, status={"executionState": "running"}))
    assert kube.kinds() == ["status", "delete Job"]
    assert kube.of("status")[0]["executionState"] == "failed"
    assert events[0][:2] == ("Warning", "Failed")


async def test_children_of_other_objects_do_not_count(env: Any) -> None:
    """A Job controlled by another TrainingJob, or a pod of another Job (even with our label), is ignored."""
    kube, _ = env
    forged_pod = batch_job_pod(owner_job="uid-other", waiting={"reason": "ErrImagePull", "message": "x"})
    await sync(world(owned_batch_job(owner="uid-other"), forged_pod))
    assert "delete Job" not in kube.kinds()
    assert kube.of("status")[0]["executionState"] == "queued"  # no Job of ours: creating it
    kube.calls.clear()
    RT.forget(UID)
    elsewhere = batch_job_pod(namespace="team-b", waiting={"reason": "ErrImagePull", "message": "x"})
    await sync(world(owned_batch_job(), elsewhere))
    assert "delete Job" not in kube.kinds() and kube.of("status")[0]["executionState"] == "queued"


def failed_mount_event(**override: Any) -> dict[str, Any]:
    return {
        "involvedObject": {"kind": "Pod", "namespace": NS, "name": "j-0-abcde", "uid": "uid-pod"},
        "reason": "FailedMount",
        "message": 'MountVolume.SetUp failed for volume "job-afs-0123456789" : Permission denied',
        "count": 1,
        "source": {"component": "kubelet"},
        **override,
    }


CREATING = {"waiting": {"reason": "ContainerCreating"}}


def pending(pod: dict[str, Any]) -> dict[str, Any]:
    pod["status"]["phase"] = "Pending"
    return pod


async def test_failed_mount_counts_only_from_the_kubelet_about_our_unstarted_pod(env: Any) -> None:
    kube, _ = env
    RT.config.mount_failure_threshold = 1
    RT.indexes = Indexes(world(owned_batch_job(), pending(batch_job_pod(**CREATING))))
    ignored = [
        failed_mount_event(source={"component": "someone-else"}),
        failed_mount_event(reportingComponent="kubelet", source={}) | {"source": {"component": "x"}},
        failed_mount_event(
            involvedObject={"kind": "Pod", "namespace": NS, "name": "j-0-abcde", "uid": "old"}
        ),
        failed_mount_event(involvedObject={"kind": "Pod", "namespace": NS, "name": "j-0-abcde"}),
        failed_mount_event(reason="FailedAttachVolume"),
    ]
    for event in ignored:
        trainingjob.on_failed_mount(RT, event)
    await RT.settle()
    assert kube.kinds() == []
    trainingjob.on_failed_mount(RT, failed_mount_event())
    await RT.settle()
    assert kube.kinds()[-2:] == ["status", "delete Job"]
    assert kube.of("status")[-1]["executionInfo"]["errors"][0]["code"] == "AZFMountError"


@pytest.mark.parametrize(
    ("phase", "state"),
    [
        ("Running", {"running": {}}),
        ("Pending", {"running": {}}),
        ("Succeeded", {"terminated": {"exitCode": 0}}),
    ],
)
async def test_a_started_pod_is_not_failed_by_a_stale_failed_mount(env: Any, phase: str, state: Any) -> None:
    """Its containers started, so its volumes were mounted: an old (or replayed) Event does not count."""
    kube, _ = env
    RT.config.mount_failure_threshold = 1
    pod = batch_job_pod(**state)
    pod["status"]["phase"] = phase
    RT.indexes = Indexes(world(owned_batch_job(), pod))
    trainingjob.on_failed_mount(RT, failed_mount_event(count=5))
    await RT.settle()
    assert kube.kinds() == []


async def test_failed_mounts_of_forged_pods_and_batch_jobs_do_not_count(env: Any) -> None:
    """A pod in another namespace with our label, or a pod of a Job that is not ours (another name, even
    with a controller reference to our TrainingJob), cannot fail the job."""
    kube, _ = env
    RT.config.mount_failure_threshold = 1
    elsewhere = pending(batch_job_pod(namespace="team-b", **CREATING))
    RT.indexes = Indexes(world(owned_batch_job(), elsewhere))
    other_ns = {"kind": "Pod", "namespace": "team-b", "name": "j-0-abcde", "uid": "uid-pod"}
    trainingjob.on_failed_mount(RT, failed_mount_event(involvedObject=other_ns))
    forged_batch_job = owned_batch_job()
    forged_batch_job["metadata"] = {**forged_batch_job["metadata"], "name": "forged", "uid": "uid-forged"}
    RT.indexes = Indexes(world(forged_batch_job, pending(batch_job_pod(owner_job="uid-forged", **CREATING))))
    trainingjob.on_failed_mount(RT, failed_mount_event())
    await RT.settle()
    assert "delete Job" not in kube.kinds()
    assert all(s.get("executionState") != "failed" for s in kube.of("status"))


async def test_a_failed_mount_from_the_watch_thread_syncs_its_job_in_the_loop(env: Any) -> None:
    """The FailedMount watch runs in a thread; its callback hands the Event to the loop, where the job
    syncs and says why it failed."""
    import asyncio
    import threading

    from batchai_operator.reconcile.lifecycle import event_callback

    _, events = env
    RT.config.mount_failure_threshold = 1
    RT.indexes = Indexes(world(owned_batch_job(), pending(batch_job_pod(**CREATING))))
    callback = event_callback(RT, asyncio.get_running_loop(), trainingjob.on_failed_mount)
    thread = threading.Thread(target=callback, args=(failed_mount_event(),))
    thread.start()
    thread.join()
    for _ in range(50):
        await asyncio.sleep(0.02)
        await RT.settle()
        if any(reason == "Failed" for _, reason, _ in events):
            break
    (failed,) = [e for e in events if e[1] == "Failed"]
    assert failed[0] == "Warning" and "will not mount" in failed[2]


async def test_ttl_deletes_the_trainingjob(env: Any) -> None:
    kube, _ = env
    done = {"executionState": "succeeded", "executionInfo": {"endTime": "2020-01-01T00:00:00Z"}}
    await sync(
        world(
            owned_batch_job(conditions=[{"type": "Complete", "status": "True"}]),
            spec=cntk_spec(ttlSecondsAfterFinished=5),
            status=done,
        )
    )
    assert kube.of("delete-custom") == [("trainingjobs", "j")]


async def test_suspend_is_patched_onto_the_batch_job(env: Any) -> None:
    kube, _ = env
    await sync(world(owned_batch_job(), batch_job_pod(), spec=cntk_spec(suspend=True)))
    assert kube.of("patch-batch-job") == [("j", {"spec": {"suspend": True}})]


# ---- finished jobs: a lookup, not a sync ------------------------------------------------------------


def finished_status(**extra: Any) -> dict[str, Any]:
    """A succeeded job's status as the operator writes it (the fields the index keeps, and more)."""
    return {
        "executionState": "succeeded",
        "executionInfo": {
            "startTime": "2026-01-01T00:00:00Z",
            "endTime": "2026-01-01T00:01:00Z",
            "exitCode": 0,
        },
        "observedGeneration": 1,
        "conditions": [{"type": "Succeeded", "status": "True", "reason": "Succeeded", "message": "done"}],
        "stdOutErrDirectory": "/logs/team-a/default/j/uid-tj/stdouterr",
        "toolType": "cntk",
        **extra,
    }


def succeeded_children() -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
    """A succeeded single-node job's pod and batch Job, and the node counts its status says."""
    done_pod = batch_job_pod(terminated={"exitCode": 0, "reason": "Completed"})
    done_pod["status"]["phase"] = "Succeeded"
    complete = owned_batch_job(conditions=[{"type": "Complete", "status": "True"}])
    return done_pod, complete, {"ready": 0, "running": 0, "succeeded": 1, "failed": 0}


async def test_a_settled_job_costs_no_sync_and_leaves_nothing_behind(env: Any) -> None:
    kube, events = env
    done_pod, complete, counts = succeeded_children()
    for objects in ((), (complete, done_pod)):
        status = finished_status(nodes=counts, settled=True) if objects else finished_status(settled=True)
        RT.written[UID] = status  # the operator wrote it; the index now shows it (until the watch drops it)
        await sync(world(*objects, status=status))
        assert kube.calls == [] and events == []
        assert UID not in RT.written and not RT._locks  # the index holds the status; no lock kept


async def test_a_finished_job_at_rest_that_is_not_settled_yet_is_settled_with_one_write(env: Any) -> None:
    """A job finished by an operator that did not settle jobs: its first sync settles it, then nothing."""
    kube, events = env
    done_pod, complete, counts = succeeded_children()
    await sync(world(complete, done_pod, status=finished_status(nodes=counts)))
    assert kube.of("status") == [{"settled": True}] and events == []


async def test_a_finished_job_with_something_to_do_still_syncs(env: Any) -> None:
    kube, _ = env
    # A new generation: observedGeneration is written (and, nothing being left to do, the job settles).
    await sync(world(status=finished_status(observedGeneration=0)))
    assert kube.of("status") == [{"observedGeneration": 1, "settled": True}]
    # Pods whose counts the status does not say yet.
    kube.calls.clear()
    running = batch_job_pod()
    await sync(world(owned_batch_job(), running, status=finished_status()))
    assert kube.of("status") == [{"nodes": {"ready": 0, "running": 1, "succeeded": 0, "failed": 0}}]


def test_the_index_keeps_a_finished_jobs_status_slim_and_no_cluster_key() -> None:
    body = trainingjob_body(cntk_spec(), finished_status())
    (view,) = indexers.trainingjobs(body).values()
    assert set(view["status"]) == {"executionState", "executionInfo", "observedGeneration", "toolType"}
    assert indexers.trainingjobs_by_cluster(body) == {}
    running = trainingjob_body(cntk_spec(), {"executionState": "running", "conditions": []})
    (view,) = indexers.trainingjobs(running).values()
    assert view["status"] == {"executionState": "running", "conditions": []}
    assert list(indexers.trainingjobs_by_cluster(running).values()) == [UID]


async def test_the_echo_of_the_operators_own_status_write_syncs_nothing(
    env: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four of a single-node job's five TrainingJob events only echo the operator's status writes."""
    await sync(world())
    written = RT.written[UID]
    syncs: list[str] = []
    monkeypatch.setattr(controller, "ask_sync", lambda rt, kind, key: syncs.append(key))
    RT.indexes = Indexes(world(status=written))  # the echo: our status, the metadata the sync began from
    trainingjob.on_trainingjob_change(RT, UID)
    assert syncs == []
    for changed in (
        {"labels": {"team": "b"}},
        {"generation": 2},
        {"deletionTimestamp": "2026-12-07T00:00:00Z"},
    ):
        changed_world = world(status=written)
        (store,) = [
            v for k, v in changed_world[indexers.TRAININGJOB_INDEX].items() if k[0] == indexers.TRAININGJOBS
        ]
        store[0]["metadata"] = {**store[0]["metadata"], **changed}
        RT.indexes = Indexes(changed_world)
        trainingjob.on_trainingjob_change(RT, UID)
    RT.indexes = Indexes(world(status={**written, "executionState": "running"}))  # not what we wrote
    trainingjob.on_trainingjob_change(RT, UID)
    assert syncs == [UID] * 4
