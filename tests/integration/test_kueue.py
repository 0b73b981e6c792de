"""A real Kueue v0.17.0 shares 2 GPUs between two 2-GPU TrainingJobs (kueue_process.py runs Kueue).

TrainingJobs labelled kueue.x-k8s.io/queue-name: the operator copies the label to the Job, Kueue's
webhook creates the Job suspended and Kueue admits it (unsuspends it) when its ClusterQueue has quota.
Proven here: one ClusterQueue with 2 GPUs admits the first job, holds the second in `queued` with a
reason that names Kueue, and admits it when the first ends; every Job's `suspend` changes exactly once
(true -> false, by Kueue), seen by a watch of the Jobs from before they exist, so the operator and Kueue
never fight over it. The devcluster has four 1-GPU Standard_NC6 nodes: the scheduler could run both jobs
at once, so only Kueue's quota holds the second.

(This module sorts after test_chart.py, which must run before any module requesting `operator`.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from devcluster import SIM_RUN_FOR, wait_for
from health_fixtures import record
from jobs import GROUP, VERSION, create_cluster, create_trainingjob, custom, get_trainingjob, wait_state
from kubernetes import client, watch
from kueue_process import KUEUE_GROUP, KUEUE_VERSION_API, KueueProcess, gpu_cluster_queue
from kueue_process import kueue as kueue
from operator_process import OperatorProcess

pytestmark = pytest.mark.integration
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def suspend_managers(job: dict[str, Any]) -> list[str]:
    """Field managers that own spec.suspend of a Job (from its managedFields)."""
    return sorted(
        f"{m['manager']}/{m['operation']}"
        for m in job["metadata"].get("managedFields") or []
        if "f:suspend" in ((m.get("fieldsV1") or {}).get("f:spec") or {})
    )


@dataclass
class Recorder:
    """Watches one namespace's Jobs and TrainingJobs and records every version it sees, with the time."""

    namespace: str
    jobs: list[tuple[str, str, bool | None, list[str]]] = field(default_factory=list)
    completed: dict[str, str] = field(default_factory=dict)  # Job name -> first time seen Complete
    tjs: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)

    def _watch(self, lister: Callable[..., Any], on: Callable[[dict[str, Any]], None]) -> None:
        api = client.ApiClient()
        rv = None
        while not self.stop.is_set():
            w = watch.Watch()
            kwargs: dict[str, Any] = {"timeout_seconds": 2, "_preload_content": True}
            if rv:
                kwargs["resource_version"] = rv
            for ev in w.stream(lister, **kwargs):
                obj = ev["object"]
                body = obj if isinstance(obj, dict) else api.sanitize_for_serialization(obj)
                rv = body["metadata"]["resourceVersion"]
                on(body)
                if self.stop.is_set():
                    w.stop()

    def on_job(self, job: dict[str, Any]) -> None:
        t, name = now(), job["metadata"]["name"]
        self.jobs.append((t, name, job["spec"].get("suspend"), suspend_managers(job)))
        conditions = (job.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Complete" and c["status"] == "True" for c in conditions):
            self.completed.setdefault(name, t)

    def on_tj(self, tj: dict[str, Any]) -> None:
        st = tj.get("status") or {}
        reason = next((c["reason"] for c in st.get("conditions") or [] if c["status"] == "True"), None)
        self.tjs.append((now(), tj["metadata"]["name"], st.get("executionState"), reason))

    def start(self) -> None:
        batch = client.BatchV1Api()
        cust = client.CustomObjectsApi()

        def jobs(**kw: Any) -> Any:
            return batch.list_namespaced_job(self.namespace, **kw)

        def tjs(**kw: Any) -> Any:
            return cust.list_namespaced_custom_object(GROUP, VERSION, self.namespace, "trainingjobs", **kw)

        for lister, on in ((jobs, self.on_job), (tjs, self.on_tj)):
            t = threading.Thread(target=self._watch, args=(lister, on), daemon=True)
            t.start()
            self.threads.append(t)

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(10)

    def suspend_sequence(self, job: str) -> list[bool | None]:
        """The Job's suspend values in order, consecutive repeats collapsed."""
        out: list[bool | None] = []
        for _, name, suspend, _m in self.jobs:
            if name == job and (not out or out[-1] != suspend):
                out.append(suspend)
        return out

    def first(self, name: str, state: str) -> str:
        return next(t for t, n, s, _ in self.tjs if n == name and s == state)


@pytest.fixture
def gpu_queue(kueue: KueueProcess, namespace: str) -> Iterator[str]:
    """A ClusterQueue with 2 GPUs for this namespace, and LocalQueue `gpu` in it."""
    with gpu_cluster_queue(namespace, gpus=2) as cq:
        yield cq


def two_gpu_job(name: str) -> dict[str, Any]:
    return {
        "cluster": "nc6",  # Standard_NC6: 1 GPU per node, so 2 nodes = 2 GPUs in one Kueue workload
        "nodeCount": 2,
        "customMpiSettings": {"commandLine": "python train.py", "processCount": 2},
        "stdOutErrPathPrefix": "/tmp/logs",
    }


def queued_reason(ns: str, name: str) -> dict[str, Any] | None:
    obj = get_trainingjob(ns, name)
    st = obj.get("status") or {}
    queued = next((c for c in st.get("conditions") or [] if c["type"] == "Queued"), {})
    return obj if st.get("executionState") == "queued" and queued.get("reason") == "QueuedByKueue" else None


def test_kueue_admits_one_2gpu_job_and_holds_the_second_until_the_first_ends(
    operator: OperatorProcess, kueue: KueueProcess, gpu_queue: str, namespace: str
) -> None:
    create_cluster(namespace)
    rec = Recorder(namespace)
    rec.start()
    time.sleep(1)  # both watches established before the first object
    labels = {QUEUE_LABEL: "gpu"}
    try:
        create_trainingjob(
            namespace, "first", two_gpu_job("first"), annotations={SIM_RUN_FOR: "10s"}, labels=labels
        )
        time.sleep(1)  # Kueue admits in creation order: `first` is older
        create_trainingjob(
            namespace, "second", two_gpu_job("second"), annotations={SIM_RUN_FOR: "4s"}, labels=labels
        )

        wait_state(namespace, "first", "running", timeout=60)
        held = wait_for(lambda: queued_reason(namespace, "second"), timeout=30, what="second queued by Kueue")
        queued = next(c for c in held["status"]["conditions"] if c["type"] == "Queued")
        assert queued["message"].startswith("Kueue holds the job in LocalQueue 'gpu'"), queued
        assert client.BatchV1Api().read_namespaced_job("second", namespace).spec.suspend is True
        assert get_trainingjob(namespace, "first")["status"]["executionState"] == "running"
        verdict = record("TrainingJob", "queued-by-kueue", held)
        assert verdict["status"] == "Progressing" and "Kueue holds" in verdict["message"]

        wait_state(namespace, "first", "succeeded", timeout=90)
        wait_state(namespace, "second", "running", timeout=60)
        wait_state(namespace, "second", "succeeded", timeout=60)
    except BaseException:
        print(f"\nKueue log (last lines):\n{kueue.log_text()[-3000:]}")
        raise
    finally:
        time.sleep(1)
        rec.finish()

    print("\nTrainingJob states over time (time UTC, job, executionState, reason of the true condition):")
    last: dict[str, tuple[Any, ...]] = {}
    for t, name, state, reason in rec.tjs:
        if last.get(name) != (state, reason):
            print(f"  {t}  {name:7} {state} ({reason})")
            last[name] = (state, reason)
    print("Jobs' spec.suspend over time (time UTC, job, suspend, managers owning spec.suspend):")
    seen: dict[str, tuple[Any, ...]] = {}
    for t, name, suspend, managers in rec.jobs:
        if seen.get(name) != (suspend, tuple(managers)):
            print(f"  {t}  {name:7} suspend={suspend}  {managers}")
            seen[name] = (suspend, tuple(managers))

    # Each Job: created suspended (Kueue's webhook), unsuspended once (Kueue's admission), never re-suspended.
    for job in ("first", "second"):
        assert rec.suspend_sequence(job) == [True, False], (job, rec.suspend_sequence(job))
        # spec.suspend's owner: the operator's client only from the create (Kueue's webhook set the value),
        # Kueue from the admission on: the operator never wrote it afterwards.
        owners = [m for _, name, _, m in rec.jobs if name == job]
        unsuspended = [m for _, name, s, m in rec.jobs if name == job and s is False]
        assert unsuspended and all(m == ["kueue/Update"] for m in unsuspended), owners
    # The second is admitted only after the first's Job completed: quota, not nodes, held it.
    second_admitted = next(t for t, n, s, _ in rec.jobs if n == "second" and s is False)
    print(f"first's Job Complete at {rec.completed['first']}; second's Job unsuspended at {second_admitted}")
    assert second_admitted >= rec.completed["first"]
    assert rec.first("second", "running") >= rec.completed["first"]
    # One Kueue Workload per TrainingJob: both nodes' pods are one pod set of 2.
    workloads = custom().list_namespaced_custom_object(KUEUE_GROUP, KUEUE_VERSION_API, namespace, "workloads")
    counts = sorted(ps["count"] for wl in workloads["items"] for ps in wl["spec"]["podSets"])
    assert counts == [2, 2]
