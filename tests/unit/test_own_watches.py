"""The operator's own watches of TrainingJobs, job pods and batch Jobs (reconcile/own_watches.py), the
index they fill (observe/store.py), and the coalesced background syncs they ask for (Runtime.ask)."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from batchai_operator.config import OperatorConfig
from batchai_operator.names import LABEL_TRAININGJOB_UID
from batchai_operator.observe import indexes as idx
from batchai_operator.observe.store import ObjectIndex, replace_all
from batchai_operator.reconcile import cluster, own_watches, trainingjob
from batchai_operator.reconcile.own_watches import CHILD_WATCHES, change_of
from batchai_operator.reconcile.runtime import Runtime
from recording_kube import RecordingKube

PODS, JOBS = CHILD_WATCHES


def pod(name: str, owner: str, namespace: str = "ns", node: str | None = "n1") -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{name}",
            "labels": {LABEL_TRAININGJOB_UID: owner},
            "ownerReferences": [{"kind": "Job", "uid": f"job-{owner}", "controller": True}],
        },
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": "Running"},
    }


def batch_job(owner: str, namespace: str = "ns") -> dict[str, Any]:
    ref = {"kind": "TrainingJob", "name": "j", "uid": owner, "controller": True}
    return {
        "metadata": {
            "name": f"j-{owner}",
            "namespace": namespace,
            "uid": f"job-{owner}",
            "labels": {LABEL_TRAININGJOB_UID: owner},
            "ownerReferences": [ref],
        },
        "spec": {"suspend": False},
        "status": {},
    }


def runtime_and_feed(watch: own_watches.OwnWatch) -> tuple[Runtime, Any]:
    """A runtime with the own watches' indexes, and the feed of one watch (all namespaces) into it."""
    own = own_watches.make_indexes()
    rt = Runtime(RecordingKube(), OperatorConfig(), own)
    loop = asyncio.get_running_loop()
    return rt, own_watches._Feed(rt, loop, watch, own[watch.index], None, asyncio.Event())


def test_the_own_watches_fill_exactly_the_indexes_kopf_does_not() -> None:
    assert set(own_watches.make_indexes()) == set(idx.OWN_INDEXES)
    assert not set(idx.OWN_INDEXES) & set(idx.KOPF_INDEXES)


def test_an_object_index_reads_as_kopfs_and_a_change_replaces_an_objects_entries() -> None:
    index = ObjectIndex()
    indexes = idx.Indexes({idx.TRAININGJOB_PODS: index})
    index.put(("ns", "uid-a"), change_of(PODS, "ADDED", pod("a", "tj1")).entries)
    index.put(("ns", "uid-b"), change_of(PODS, "ADDED", pod("b", "tj1", node=None)).entries)
    assert [p["metadata"]["name"] for p in indexes.all(idx.PODS_BY_OWNER, ("ns", "tj1"))] == ["a", "b"]
    assert indexes.first(idx.POD_OWNER_BY_NAME, ("ns", "a"))[0] == "tj1"
    assert [p["name"] for p in indexes.all(idx.PODS_BY_NODE, "n1")] == ["a"]
    # b is scheduled to n2, a goes away: each object's old entries go with it.
    index.put(("ns", "uid-b"), change_of(PODS, "MODIFIED", pod("b", "tj1", node="n2")).entries)
    index.remove(("ns", "uid-a"))
    assert indexes.all(idx.PODS_BY_NODE, "n1") == []
    assert [k for k, _ in indexes.items(idx.PODS_BY_NODE)] == ["n2"]
    assert [p["metadata"]["name"] for p in indexes.all(idx.PODS_BY_OWNER, ("ns", "tj1"))] == ["b"]
    index.remove(("ns", "uid-b"))
    assert len(index) == 0 and index.objects(None) == []


def test_a_relist_replaces_one_namespace_and_drops_what_vanished_there_only() -> None:
    index = ObjectIndex()
    for body in (batch_job("t1"), batch_job("t2"), batch_job("t3", namespace="other")):
        change = change_of(JOBS, "ADDED", body)
        index.put(change.obj, change.entries)
    listed = [change_of(JOBS, "ADDED", batch_job("t2")), change_of(JOBS, "ADDED", batch_job("t4"))]
    gone = replace_all(index, "ns", [(c.obj, c.entries) for c in listed])
    assert gone == {("ns", "job-t1")}
    assert sorted(index) == [("ns", "t2"), ("ns", "t4"), ("other", "t3")]


def test_a_change_says_whom_it_concerns() -> None:
    change = change_of(PODS, "MODIFIED", pod("a", "tj1"))
    assert (change.obj, change.owner, change.node, change.deleted) == (("ns", "uid-a"), "tj1", "n1", False)
    deleted = change_of(PODS, "DELETED", pod("a", "tj1"))
    assert deleted.deleted and deleted.entries == {} and deleted.node == "n1"  # its node's clusters sync
    job = change_of(JOBS, "ADDED", batch_job("tj1"))
    assert job.owner == "tj1" and job.node is None and list(job.entries) == [("ns", "tj1")]
    # A Job the operator made that no TrainingJob controls is indexed under nothing.
    stray = batch_job("tj1")
    stray["metadata"]["ownerReferences"] = []
    assert change_of(JOBS, "ADDED", stray).entries == {}


async def test_the_feed_fills_the_index_from_the_watch_thread_and_asks_for_the_syncs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []
    nodes: list[str] = []
    monkeypatch.setattr(trainingjob, "ask_sync", lambda rt, uid: asked.append(uid))

    async def on_node_event(rt: Runtime, node: str) -> None:
        nodes.append(node)

    monkeypatch.setattr(cluster, "on_node_event", on_node_event)
    own = own_watches.make_indexes()
    index = own[idx.TRAININGJOB_PODS]
    rt = Runtime(RecordingKube(), OperatorConfig(), own)
    listed = asyncio.Event()
    feed = own_watches._Feed(rt, asyncio.get_running_loop(), PODS, index, None, listed)

    def from_thread(*calls: Any) -> None:
        for fn, *args in calls:
            thread = threading.Thread(target=fn, args=args)
            thread.start()
            thread.join()

    # The first list fills the index and syncs nothing (the TrainingJobs' own first list does).
    from_thread((feed.on_list, [pod("a", "tj1"), pod("b", "tj2", node=None)]))
    await asyncio.wait_for(listed.wait(), 5)
    assert len(index.objects(None)) == 2 and asked == [] and nodes == []
    # An event: indexed, its job asked to sync, and its node's clusters.
    from_thread((feed.on_event, "MODIFIED", pod("b", "tj2", node="n2")))
    await asyncio.sleep(0.05)
    assert rt.indexes.first(idx.PODS_BY_NODE, "n2")["name"] == "b"
    assert asked == ["tj2"] and nodes == ["n2"]
    from_thread((feed.on_event, "DELETED", pod("a", "tj1")))
    await asyncio.sleep(0.05)
    assert rt.indexes.all(idx.PODS_BY_OWNER, ("ns", "tj1")) == [] and asked[-1] == "tj1"
    # A later relist (after a 410) replaces the index and syncs every watched job (none indexed here).
    asked.clear()
    from_thread((feed.on_list, []))
    await asyncio.sleep(0.05)
    assert index.objects(None) == [] and asked == []


async def test_asks_before_a_sync_begins_are_one_and_an_ask_during_it_makes_one_more() -> None:
    rt = Runtime(RecordingKube(), OperatorConfig(), {})
    runs: list[int] = []
    release = asyncio.Event()

    async def sync() -> None:
        runs.append(len(runs))
        await release.wait()

    for _ in range(5):
        rt.ask("k", sync)
    await asyncio.sleep(0.01)
    assert runs == [0]  # one sync running
    for _ in range(5):
        rt.ask("k", sync)  # during it: one more, after it
    release.set()
    await rt.settle()
    assert runs == [0, 1]


async def test_a_burst_of_events_wakes_the_loop_once_and_keeps_their_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []
    monkeypatch.setattr(trainingjob, "ask_sync", lambda rt, uid: asked.append(uid))
    rt, feed = runtime_and_feed(JOBS)
    drains: list[int] = []
    drain = feed._drain

    def counted() -> None:
        drains.append(len(feed._pending))
        drain()

    monkeypatch.setattr(feed, "_drain", counted)

    def burst() -> None:  # the loop is busy meanwhile (this test's thread.join)
        feed.on_list([batch_job("t1")])
        feed.on_event("ADDED", batch_job("t2"))
        feed.on_event("DELETED", batch_job("t1"))

    thread = threading.Thread(target=burst)
    thread.start()
    thread.join()
    await asyncio.sleep(0.05)
    assert drains == [3]  # one wake-up for the three
    assert rt.indexes.all(idx.BATCH_JOBS_BY_OWNER, ("ns", "t1")) == []  # listed, then deleted: in order
    assert len(rt.indexes.all(idx.BATCH_JOBS_BY_OWNER, ("ns", "t2"))) == 1
    assert asked == ["t2", "t1"]  # the first list asks for nothing
    feed.on_event("MODIFIED", batch_job("t2"))  # the next event wakes the loop again
    await asyncio.sleep(0.05)
    assert drains == [3, 1] and asked[-1] == "t2"


def trainingjob_body(uid: str, settled: bool = False) -> dict[str, Any]:
    return {
        "apiVersion": "batchai.io/v1",
        "kind": "TrainingJob",
        "metadata": {"name": f"j-{uid}", "namespace": "ns", "uid": uid, "generation": 1},
        "spec": {},
        "status": {"executionState": "succeeded", "settled": True} if settled else {},
    }


async def test_the_trainingjob_watch_syncs_every_listed_job_then_each_change_and_forgets_the_gone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    changed: list[str] = []
    monkeypatch.setattr(trainingjob, "on_trainingjob_change", lambda rt, uid: changed.append(uid))
    rt, feed = runtime_and_feed(own_watches.TRAININGJOB_WATCH)
    feed.on_list([trainingjob_body("a"), trainingjob_body("b")])
    await asyncio.sleep(0.05)
    assert sorted(changed) == ["a", "b"]  # at the start, every job not settled syncs once
    assert rt.indexes.first(idx.TRAININGJOBS, "a")["metadata"]["name"] == "j-a"
    rt.written["a"] = {"executionState": "succeeded"}
    feed.on_event("MODIFIED", trainingjob_body("b"))
    feed.on_event("DELETED", trainingjob_body("a", settled=True))  # settled: it left the selection
    await asyncio.sleep(0.05)
    assert changed[2:] == ["b"] and "a" not in rt.written
    assert rt.indexes.first(idx.TRAININGJOBS, "a") is None
    assert own_watches.TRAININGJOB_WATCH.selector == ("fieldSelector", "status.settled!=true")


async def test_the_trainingjobs_watch_starts_after_the_childrens_first_lists_and_kopfs_indexes() -> None:
    """A job's sync reads the clusters and nodes kopf indexes, which kopf fills only after the startup:
    a job synced before would say its cluster is not found (seen at a restart mid-job)."""
    started: list[str] = []

    class ListingKube:
        def list_and_watch(self, path: str, selector: Any, on_list: Any, *_: Any, **__: Any) -> None:
            started.append(path.rsplit("/", 1)[-1])
            on_list([])

    own = own_watches.make_indexes()
    rt = Runtime(RecordingKube(), OperatorConfig(), own)
    await own_watches.start(rt, ListingKube(), own)  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert sorted(started) == ["jobs", "pods"]  # the children's, listed before start returned
    rt.kopf_indexed.set()  # kopf's first handler call
    await asyncio.sleep(0.05)
    assert sorted(started) == ["jobs", "pods", "trainingjobs"]
    await rt.close()
