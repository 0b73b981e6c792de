"""Faults of the real nodes under running jobs (issue 28), each printing its timeline: fault injected ->
status seen -> job rerun or failed -> final state.

Every job here beats once a second into an Azure Files share (the Files double's directory, which both
real nodes bind-mount): `<run> <epoch seconds>` lines, <run> a random id each run of the command draws (an
Indexed Job's pods all have the hostname <job>-<index>). Two runs of one job whose beats interleave ran at
the same time ("ran twice"), which must never happen. The faults are real: the node's kubelet and
containerd stopped (`hack/devcluster node-stop`), a drain through the Eviction API, containerd restarted
under a running container, rclone killed under a mount. Nothing here writes a pod status or an Event.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from devcluster import DEVCLUSTER, node_ready, wait_for
from jobs import create_trainingjob, get_trainingjob, trainingjob_pods, wait_state
from kubernetes import client

from storage_services import AZURITE, running_azurite

from .conftest import MAX_REQUEUES, NODE_LOST_SECONDS, delete_namespace, new_namespace
from .realnodes import LOCAL_IMAGES, REAL_NODES, cluster_body, job_spec, share_path

pytestmark = pytest.mark.e2e

CLUSTER = "real-cpu"
ROOT = "$AZ_BATCHAI_JOB_MOUNT_ROOT"
# A directory the timelines are also saved to (28-<scenario>.txt), when set: a closing note pastes them.
TIMELINES = os.environ.get("BATCHAI_TIMELINES_DIR")
OUT_OF_SERVICE = {"key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute"}


# A random id for this run of the command.
RUN_ID = "run=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \\n'); "


def beating(job: str, seconds: int) -> str:
    """A job that beats `seconds` times into the share (its file <job>.txt there), then succeeds. In a
    multi-node job, node 0 runs it (the custom toolkit's command line); the other nodes serve ssh."""
    return (
        RUN_ID + f'for i in $(seq {seconds}); do echo "$run $(date +%s.%N)" >> {ROOT}/beats/{job}.txt; '
        "sleep 1; done; echo done"
    )


@dataclass
class Timeline:
    """What happened when, printed as the test goes and saved to the notes."""

    name: str
    t0: float = field(default_factory=time.monotonic)
    epoch: float = field(default_factory=time.time)  # t0 on the wall clock (the beats' clock)
    lines: list[str] = field(default_factory=list)

    def __call__(self, what: str) -> None:
        line = f"{time.monotonic() - self.t0:7.1f}s  {what}"
        self.lines.append(line)
        print(f"[{self.name}] {line}", flush=True)
        self.save()  # as it goes: a test that fails leaves its timeline so far

    def save(self) -> None:
        if TIMELINES:
            path = Path(TIMELINES) / f"28-{self.name}.txt"
            path.write_text("\n".join([f"# {self.name}", *self.lines]) + "\n")


def devcluster(*args: str) -> None:
    subprocess.run([str(DEVCLUSTER), *args], check=True, stdin=subprocess.DEVNULL, timeout=600)


def set_schedulable(core: client.CoreV1Api, node: str, schedulable: bool) -> None:
    core.patch_node(node, {"spec": {"unschedulable": not schedulable}})


def beats(account: str, ns: str, job: str) -> dict[str, list[float]]:
    """The beats of each run of a job's command."""
    path = share_path(account, ns, f"{job}.txt")
    out: dict[str, list[float]] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        pod, _, stamp = line.partition(" ")
        if stamp:
            out.setdefault(pod, []).append(float(stamp))
    return out


def ran_twice(by_pod: dict[str, list[float]]) -> list[tuple[str, str]]:
    """Pairs of runs whose beating spans overlap."""
    spans = sorted((min(b), max(b), pod) for pod, b in by_pod.items())
    return [(a[2], b[2]) for a, b in itertools.pairwise(spans) if b[0] <= a[1]]


def running_pod(ns: str, job: str, node: str | None = None) -> client.V1Pod:
    def find() -> client.V1Pod | None:
        for p in trainingjob_pods(ns, job):
            if p.status.phase == "Running" and (node is None or p.spec.node_name == node):
                return p
        return None

    return wait_for(find, timeout=120, what=f"a running pod of {job}" + (f" on {node}" if node else ""))


def pod_end(core: client.CoreV1Api, ns: str, name: str) -> str | None:
    """How a pod ended ("Failed, exit 143"; "deleted" once gone), or None while it runs."""
    try:
        pod = core.read_namespaced_pod(name, ns)
    except client.ApiException as e:
        if e.status == 404:
            return "deleted"
        raise
    if pod.status.phase not in ("Failed", "Succeeded"):
        return None
    statuses = pod.status.container_statuses or []
    codes = [cs.state.terminated.exit_code for cs in statuses if cs.state.terminated]
    return f"{pod.status.phase}, exit {codes[0] if codes else None}"


def disruption(pod: client.V1Pod) -> client.V1PodCondition | None:
    return next((c for c in pod.status.conditions or [] if c.type == "DisruptionTarget"), None)


def requeues(tj: dict[str, Any]) -> int:
    return int(((tj.get("status") or {}).get("executionInfo") or {}).get("requeueCount") or 0)


def condition(tj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((c for c in (tj.get("status") or {}).get("conditions") or [] if c["type"] == kind), None)


@pytest.fixture
def namespace(core_v1: client.CoreV1Api, operator: Any) -> Iterator[tuple[str, str]]:
    """A namespace with the CPU cluster over the real pool and a share for the jobs' beats and logs."""
    ns = new_namespace(core_v1)
    azurite = running_azurite()
    account = azurite.account
    client.CustomObjectsApi().create_namespaced_custom_object(
        "batchai.io", "v1alpha1", ns, "batchaiclusters", cluster_body(ns, CLUSTER, gpus=False)
    )
    core_v1.create_namespaced_secret(
        ns,
        {
            "metadata": {"name": "storage"},
            "stringData": {
                "azurestorageaccountname": account,
                "azurestorageaccountkey": running_azurite().key,
            },
        },
    )
    share_path(account, ns).mkdir(parents=True)
    yield ns, account
    delete_namespace(core_v1, ns)


@pytest.fixture
def real_nodes_back(core_v1: client.CoreV1Api) -> Iterator[None]:
    """Whatever a test did to the real nodes is undone: both schedulable, untainted, up and Ready."""
    yield
    for node in REAL_NODES:
        set_schedulable(core_v1, node, True)
        taints = core_v1.read_node(node).spec.taints or []
        kept = [t for t in taints if t.key != OUT_OF_SERVICE["key"]]
        if len(kept) != len(taints):
            core_v1.patch_node(node, {"spec": {"taints": [t.to_dict() for t in kept]}})
    devcluster("up")
    for node in REAL_NODES:
        wait_for(lambda n=node: node_ready(core_v1, n), timeout=180, what=f"{node} Ready again")


def beating_job(ns: str, account: str, name: str, seconds: int, node_count: int = 1) -> None:
    share = {
        "accountName": account,
        "azureFileUrl": f"https://{account}.file.core.windows.net/{ns}",
        "credentials": {"secretRef": {"name": "storage"}},
        "relativeMountPath": "beats",
    }
    settings = {"customToolkitSettings": {"commandLine": beating(name, seconds)}}
    spec = job_spec(CLUSTER, node_count, mountVolumes={"azureFileShares": [share]}, **settings)
    create_trainingjob(ns, name, spec)


def start_on(
    core: client.CoreV1Api, ns: str, account: str, job: str, node: str, seconds: int
) -> client.V1Pod:
    """Submit a beating job while only `node` takes pods; its pod running there, the others open again."""
    others = [n for n in REAL_NODES if n != node]
    for n in others:
        set_schedulable(core, n, False)
    try:
        beating_job(ns, account, job, seconds)
        pod = running_pod(ns, job, node)
        wait_for(lambda: beats(account, ns, job), timeout=60, what=f"{job}'s first beats")
    finally:
        for n in others:
            set_schedulable(core, n, True)
    return pod


def wait_requeued(ns: str, job: str, t: Timeline, at_least: int = 1, timeout: float = 180) -> dict[str, Any]:
    def requeued() -> dict[str, Any] | None:
        tj = get_trainingjob(ns, job)
        return tj if requeues(tj) >= at_least else None

    tj = wait_for(requeued, timeout=timeout, what=f"{job} requeued")
    cond = condition(tj, "Requeued") or {}
    t(
        f"status: requeueCount={requeues(tj)} state={tj['status']['executionState']} "
        f"Requeued[{cond.get('reason')}]: {cond.get('message')}"
    )
    return tj


def finish(ns: str, account: str, job: str, t: Timeline, state: str = "succeeded") -> dict[str, Any]:
    tj = wait_state(ns, job, state, timeout=240)
    info = tj["status"].get("executionInfo") or {}
    t(f"final: {state} exitCode={info.get('exitCode')} requeueCount={info.get('requeueCount')}")
    by_pod = beats(account, ns, job)
    twice = ran_twice(by_pod)
    spans = [f"{len(b)} beats at {min(b) - t.epoch:.0f}-{max(b) - t.epoch:.0f}s" for b in by_pod.values()]
    runs = ", ".join(spans)
    t(f"runs of the command: {runs}; ran_twice={len(twice)}")
    assert not twice, f"pods ran at the same time: {twice}"
    return tj


@pytest.mark.timeout(600)  # two runs of a long job around a node's ~100 s away
def test_a_hung_node_is_left_and_the_job_rerun_only_once_its_pod_is_gone(
    namespace: tuple[str, str], core_v1: client.CoreV1Api, real_nodes_back: None
) -> None:
    """real-1's kubelet and containerd stop; its container keeps running, unseen. The node goes NotReady,
    the pod is evicted after jobs.nodeLostSeconds (DisruptionTarget), and the Job does not replace it
    while it may still run (podReplacementPolicy Failed). When real-1 comes back, its kubelet kills the
    evicted pod, and only then the job's node runs again; the job succeeds, one requeue in its status."""
    ns, account = namespace
    t = Timeline("node-hung")
    # Long enough to be still running, unseen, when real-1 comes back (~90 s after the fault).
    pod = start_on(core_v1, ns, account, "hung", "real-1", 120)
    t(f"job running: pod {pod.metadata.name} on real-1")
    devcluster("node-stop", "real-1")
    t("fault: real-1's kubelet and containerd stopped (its container still runs)")
    wait_for(lambda: not node_ready(core_v1, "real-1"), timeout=120, what="real-1 NotReady")
    t("real-1 NotReady")
    evicted = wait_for(
        lambda: disruption(core_v1.read_namespaced_pod(pod.metadata.name, ns)),
        timeout=NODE_LOST_SECONDS + 60,
        what="the pod evicted from real-1",
    )
    t(f"pod evicted: DisruptionTarget {evicted.reason}: {evicted.message}")
    wait_requeued(ns, "hung", t)
    # Not replaced while the old pod may run: for 20 s, no second pod, and the old one still beats.
    time.sleep(20)
    assert [p.metadata.name for p in trainingjob_pods(ns, "hung")] == [pod.metadata.name]
    (old_run,) = beats(account, ns, "hung").values()
    assert max(old_run) > time.time() - 5
    t("20 s later: still the one pod (terminating, its container beating on real-1): no replacement")
    devcluster("up")
    t("real-1's kubelet and containerd started again")
    ended = wait_for(lambda: pod_end(core_v1, ns, pod.metadata.name), timeout=120, what="the old pod ended")
    t(f"the old pod stopped by real-1's kubelet: {ended}")
    new = wait_for(
        lambda: next(
            (
                p
                for p in trainingjob_pods(ns, "hung")
                if p.metadata.name != pod.metadata.name and p.status.phase == "Running"
            ),
            None,
        ),
        timeout=180,
        what="the rerun",
    )
    t(f"rerun: pod {new.metadata.name} running on {new.spec.node_name}")
    finish(ns, account, "hung", t)


def test_a_node_gone_for_good_reruns_the_job_on_the_other_node_and_the_operator_may_die_meanwhile(
    namespace: tuple[str, str], core_v1: client.CoreV1Api, operator: Any, real_nodes_back: None
) -> None:
    """real-1 dies with its pods (kubelet, containerd, shims, containers). After the eviction its pod is
    still Terminating: nothing may replace it until the cluster says the node is down. Once it does (the
    node.kubernetes.io/out-of-service taint of non-graceful node shutdown; on AKS, the Node of a deleted VM
    is deleted), pod GC fails the pod and the Job reruns the node on real-0. The operator is SIGKILLed
    while real-1 is lost and started again: nothing is lost or duplicated."""
    ns, account = namespace
    t = Timeline("node-gone")
    pod = start_on(core_v1, ns, account, "gone", "real-1", 40)
    t(f"job running: pod {pod.metadata.name} on real-1")
    devcluster("node-stop", "real-1", "--kill")
    t("fault: real-1 gone (kubelet, containerd and its pods killed)")
    operator.kill()
    t("operator SIGKILLed")
    wait_for(lambda: not node_ready(core_v1, "real-1"), timeout=120, what="real-1 NotReady")
    t("real-1 NotReady")
    evicted = wait_for(
        lambda: disruption(core_v1.read_namespaced_pod(pod.metadata.name, ns)),
        timeout=NODE_LOST_SECONDS + 60,
        what="the pod evicted from real-1",
    )
    t(f"pod evicted: DisruptionTarget {evicted.reason}; still Terminating, not replaced")
    operator.start()
    t("operator started again")
    wait_requeued(ns, "gone", t)
    assert len(trainingjob_pods(ns, "gone")) == 1
    taints = [tt.to_dict() for tt in core_v1.read_node("real-1").spec.taints or []]
    core_v1.patch_node("real-1", {"spec": {"taints": [*taints, OUT_OF_SERVICE]}})
    t("real-1 tainted node.kubernetes.io/out-of-service (the node is down: non-graceful node shutdown)")
    new = running_pod(ns, "gone", "real-0")
    t(f"rerun: pod {new.metadata.name} running on real-0")
    tj = finish(ns, account, "gone", t)
    assert requeues(tj) == 1
    assert len({e.metadata.name for e in batch_jobs(ns)}) == 1  # one batch Job: nothing duplicated


def described(objs: list[Any]) -> str:
    """Pods or Jobs in a few words each: name, node, phase, deleting, finalizers."""
    out = []
    for o in objs:
        meta, st = o.metadata, o.status
        bits = [meta.name, getattr(o.spec, "node_name", None), getattr(st, "phase", None)]
        bits += ["deleting" if meta.deletion_timestamp else "", ",".join(meta.finalizers or [])]
        out.append(" ".join(str(b) for b in bits if b))
    return "; ".join(out) or "none"


def batch_jobs(ns: str) -> list[client.V1Job]:
    return client.BatchV1Api().list_namespaced_job(ns).items


def drain(ns: str, job: str, node: str) -> None:
    """`kubectl drain` the node of the job's pods (the Eviction API; the node stays cordoned)."""
    out = subprocess.run(
        [
            "kubectl",
            "drain",
            node,
            "--ignore-daemonsets",
            "--delete-emptydir-data",
            "--pod-selector",
            f"batchai.io/trainingjob-uid={get_trainingjob(ns, job)['metadata']['uid']}",
            "--timeout=120s",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stderr


def test_a_drained_node_requeues_the_job_without_failing_it(
    namespace: tuple[str, str], core_v1: client.CoreV1Api, real_nodes_back: None
) -> None:
    """`kubectl drain real-1` evicts the pod through the Eviction API (DisruptionTarget
    EvictionByEvictionAPI): its SIGTERM exit does not fail the job; it runs again on real-0."""
    ns, account = namespace
    t = Timeline("drain")
    pod = start_on(core_v1, ns, account, "drained", "real-1", 30)
    t(f"job running: pod {pod.metadata.name} on real-1")
    drain(ns, "drained", "real-1")
    t("fault: kubectl drain real-1 (Eviction API)")
    wait_requeued(ns, "drained", t)
    assert get_trainingjob(ns, "drained")["status"]["executionState"] != "failed"
    new = running_pod(ns, "drained", "real-0")
    t(f"rerun: pod {new.metadata.name} running on real-0")
    finish(ns, account, "drained", t)


def test_containerd_restarted_under_a_running_job_changes_nothing(
    namespace: tuple[str, str], core_v1: client.CoreV1Api, real_nodes_back: None
) -> None:
    ns, account = namespace
    t = Timeline("containerd-restart")
    pod = start_on(core_v1, ns, account, "steady", "real-1", 30)
    t(f"job running: pod {pod.metadata.name} on real-1")
    states: list[str] = []
    devcluster("restart", "containerd-real-1")
    t("fault: real-1's containerd restarted")

    def ended() -> dict[str, Any] | None:
        tj = get_trainingjob(ns, "steady")
        states.append(tj["status"]["executionState"])
        return tj if states[-1] in ("succeeded", "failed") else None

    tj = wait_for(ended, timeout=240, interval=1, what="steady finished")
    t(f"states seen meanwhile: {sorted(set(states))}")
    assert "failed" not in states and tj["status"]["executionState"] == "succeeded"
    assert [p.metadata.name for p in trainingjob_pods(ns, "steady")] == [pod.metadata.name]
    finish(ns, account, "steady", t)


def pid_of(matches: Callable[[list[bytes]], bool]) -> int | None:
    """The pid of a process of this machine whose command line (its arguments) matches."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmdline and matches(cmdline):
            return int(proc.name)
    return None


def rclone_of(pod_uid: str) -> int:
    """The pid of the rclone serving a volume of the pod (its mount point is under the pod's directory)."""
    pid = pid_of(lambda args: args[0].endswith(b"rclone") and any(pod_uid.encode() in a for a in args))
    assert pid is not None, f"no rclone process for pod {pod_uid}"
    return pid


def mounted_for(pod_uid: str) -> list[str]:
    return [
        line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines() if pod_uid in line
    ]


def test_a_mount_that_dies_mid_job_fails_it_naming_the_volume_and_is_unmounted(
    namespace: tuple[str, str], core_v1: client.CoreV1Api
) -> None:
    """rclone (the blob stand-in's FUSE process, blobfuse2's part) killed under a running job: its writes
    fail with "Transport endpoint is not connected", the job ends failed with BFSMountError naming the
    container, the node plugin posts a Warning Event on the pod, and the dead mount is unmounted once the
    pod is done."""
    ns, account = namespace
    t = Timeline("mount-dies")
    blob = running_azurite()
    blob.container(ns)
    volume = {
        "accountName": account,
        "containerName": ns,
        "credentials": {"secretRef": {"name": "storage"}},
        "relativeMountPath": "data",
    }
    writer = f"for i in $(seq 300); do echo $i > {ROOT}/data/step.txt || exit 1; sleep 1; done"
    create_trainingjob(
        ns,
        "writer",
        job_spec(
            CLUSTER,
            customToolkitSettings={"commandLine": writer},
            mountVolumes={"azureBlobFileSystems": [volume]},
        ),
    )
    pod = running_pod(ns, "writer")
    uid = pod.metadata.uid
    t(f"job running: pod {pod.metadata.name} on {pod.spec.node_name}, writing to its blob volume")
    time.sleep(3)
    os.kill(rclone_of(uid), signal.SIGKILL)
    t("fault: the volume's rclone SIGKILLed")
    tj = wait_state(ns, "writer", "failed", timeout=120)
    info = tj["status"]["executionInfo"]
    (error,) = info["errors"]
    detail = " ".join(d["value"] for d in error.get("details") or [])
    t(f"status: failed {error['code']}: {error['message']} | {detail} | exitCode={info.get('exitCode')}")
    assert error["code"] == "BFSMountError"
    assert f"blob container {ns} of {account} (relativeMountPath data)" in detail
    assert "Transport endpoint is not connected" in detail
    events = [
        e
        for e in core_v1.list_namespaced_event(ns, field_selector=f"involvedObject.uid={uid}").items
        if e.reason == "VolumeConditionAbnormal"
    ]
    assert events and events[0].type == "Warning" and "died" in events[0].message, events
    t(f"Event on the pod: {events[0].source.component} {events[0].reason}: {events[0].message}")
    wait_for(lambda: not mounted_for(uid), timeout=120, what="the dead mount unmounted")
    t("the pod's volumes are unmounted (no mount of the pod left on the node)")


def test_a_job_that_keeps_losing_its_node_fails_beyond_the_requeue_limit(
    namespace: tuple[str, str], core_v1: client.CoreV1Api, real_nodes_back: None
) -> None:
    """Drained again and again (the e2e operator allows MAX_REQUEUES, chart jobs.maxRequeues): each
    drain is a requeue; the one past the limit fails the job with TooManyRequeues, naming the limit and
    the last node, and stops it."""
    ns, account = namespace
    t = Timeline("requeue-limit")
    pod = start_on(core_v1, ns, account, "unlucky", "real-1", 200)
    t(f"job running: pod {pod.metadata.name} on real-1 (at most {MAX_REQUEUES} requeues allowed)")
    node = "real-1"
    for n in range(1, MAX_REQUEUES + 2):
        drain(ns, "unlucky", node)
        t(f"fault {n}: kubectl drain {node}")
        if n <= MAX_REQUEUES:
            wait_requeued(ns, "unlucky", t, at_least=n)
            other = next(x for x in REAL_NODES if x != node)
            new = running_pod(ns, "unlucky", other)
            set_schedulable(core_v1, node, True)
            t(f"rerun: pod {new.metadata.name} running on {other} ({node} uncordoned)")
            node = other
    tj = finish(ns, account, "unlucky", t, state="failed")
    (error,) = tj["status"]["executionInfo"]["errors"]
    t(f"status: {error['code']}: {error['message']}")
    assert error["code"] == "TooManyRequeues"
    assert f"{MAX_REQUEUES + 1} times" in error["message"] and "jobs.maxRequeues" in error["message"]
    assert f"on {node}" in error["message"]
    assert requeues(tj) == MAX_REQUEUES + 1
    wait_for(lambda: not batch_jobs(ns), timeout=60, what="the job's batch Job deleted")
    t("its batch Job deleted: nothing of it runs on")


@pytest.mark.timeout(600)  # two runs of a long job around a node's ~100 s away
def test_a_multi_node_job_that_loses_a_node_restarts_its_whole_attempt_together(
    namespace: tuple[str, str], core_v1: client.CoreV1Api, real_nodes_back: None
) -> None:
    """A 2-node job (node 0 beats, node 1 serves its ssh) when node 0's real node hangs: once its pod
    there is evicted, the operator deletes the attempt's batch Job in the foreground: node 1's pod on the
    other real node stops at once, and the batch Job (its name taken) stays until node 0's pod is gone
    too, which only the returning kubelet can confirm, while its container beats on unseen. Then the next
    attempt starts with both nodes; no run of node 0 overlaps another; one requeue in status."""
    ns, account = namespace
    t = Timeline("multi-node-lost")
    # Long enough to be still running, unseen, when its node comes back (~100 s after the fault).
    beating_job(ns, account, "pair", 150, node_count=2)

    def both_running() -> list[client.V1Pod] | None:
        pods = [p for p in trainingjob_pods(ns, "pair") if p.status.phase == "Running"]
        return pods if len(pods) == 2 else None

    old = wait_for(both_running, timeout=180, what="both nodes of pair running")
    wait_for(lambda: beats(account, ns, "pair"), timeout=90, what="pair's first beats")
    by_index = {p.metadata.labels["batch.kubernetes.io/job-completion-index"]: p for p in old}
    lost, kept = by_index["0"], by_index["1"]
    down, up = lost.spec.node_name, kept.spec.node_name
    (first_job,) = batch_jobs(ns)
    t(f"job running: node 0 on {down}, node 1 on {up}")
    devcluster("node-stop", down)
    t(f"fault: {down}'s kubelet and containerd stopped (node 0's container still runs)")
    evicted = wait_for(
        lambda: disruption(core_v1.read_namespaced_pod(lost.metadata.name, ns)),
        timeout=NODE_LOST_SECONDS + 120,
        what=f"the pod evicted from {down}",
    )
    t(f"node 0's pod on {down} evicted: DisruptionTarget {evicted.reason}")
    tj = wait_requeued(ns, "pair", t)
    assert "start again together" in (condition(tj, "Requeued") or {}).get("message", "")

    def attempt() -> str:
        return f"batch Job {described(batch_jobs(ns))}; pods {described(trainingjob_pods(ns, 'pair'))}"

    t(f"the attempt: {attempt()}")
    try:
        ended = wait_for(
            lambda: pod_end(core_v1, ns, kept.metadata.name), timeout=90, what=f"node 1's pod on {up} ended"
        )
    except TimeoutError:
        t(f"not ended: {attempt()}")
        raise
    t(f"node 1's pod on {up} stopped: {ended}")
    time.sleep(15)
    (held,) = batch_jobs(ns)
    assert held.metadata.uid == first_job.metadata.uid and held.metadata.deletion_timestamp is not None
    assert all(p.metadata.name in {o.metadata.name for o in old} for p in trainingjob_pods(ns, "pair"))
    (old_run,) = beats(account, ns, "pair").values()
    assert max(old_run) > time.time() - 5
    t(f"15 s later: the attempt's batch Job still being deleted, node 0 beating on {down} unseen: no new pod")
    devcluster("up")
    t(f"{down}'s kubelet and containerd started again")
    ended = wait_for(
        lambda: pod_end(core_v1, ns, lost.metadata.name), timeout=120, what="node 0's old pod ended"
    )
    t(f"node 0's old pod stopped by its returning kubelet: {ended}")
    new = wait_for(both_running, timeout=240, what="the next attempt's two nodes running")
    assert not {p.metadata.name for p in new} & {o.metadata.name for o in old}
    (second_job,) = batch_jobs(ns)
    assert second_job.metadata.uid != first_job.metadata.uid
    hosts = ", ".join(sorted(p.spec.node_name for p in new))
    t(f"next attempt: a new batch Job, both nodes running ({hosts})")
    tj = finish(ns, account, "pair", t)
    assert requeues(tj) == 1


def azurite_pid(port: int) -> int | None:
    """The Azurite serving the dev cluster's blob endpoint (hack/azurite up started it)."""
    return pid_of(lambda args: any(a.endswith(b"azurite-blob") for a in args) and str(port).encode() in args)


def test_a_storage_endpoint_down_at_the_start_fails_the_job_with_its_mount_error(
    namespace: tuple[str, str], core_v1: client.CoreV1Api
) -> None:
    """The blob endpoint (Azurite) stopped before the job starts: the blob stand-in cannot reach it, the
    kubelet's FailedMount Events say so, and the job fails with BFSMountError naming the container, as
    for any mount that will not come up. Azurite is started again (its data kept) afterwards."""
    ns, account = namespace
    t = Timeline("endpoint-down")
    blob = running_azurite()
    blob.container(ns)
    port = int(blob.endpoint.split(":")[2].split("/")[0])
    pid = azurite_pid(port)
    assert pid is not None, f"no Azurite on port {port}"
    volume = {
        "accountName": account,
        "containerName": ns,
        "credentials": {"secretRef": {"name": "storage"}},
        "relativeMountPath": "data",
    }
    try:
        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: azurite_pid(port) is None, timeout=30, what="Azurite stopped")
        t(f"fault: the blob endpoint (Azurite, 127.0.0.1:{port}) stopped")
        create_trainingjob(
            ns,
            "nostore",
            job_spec(
                CLUSTER,
                customToolkitSettings={"commandLine": f"ls {ROOT}/data"},
                mountVolumes={"azureBlobFileSystems": [volume]},
            ),
        )
        (pod,) = wait_for(lambda: trainingjob_pods(ns, "nostore"), timeout=60, what="nostore's pod")
        t(f"job submitted with a blob volume on it: pod {pod.metadata.name} on {pod.spec.node_name}")
        tj = wait_state(ns, "nostore", "failed", timeout=240)
    finally:
        subprocess.run([str(AZURITE), "up"], check=True, stdin=subprocess.DEVNULL, timeout=120)
        t("Azurite started again")
    info = tj["status"]["executionInfo"]
    (error,) = info["errors"]
    detail = " ".join(d["value"] for d in error.get("details") or [])
    t(f"status: failed {error['code']}: {error['message']} | {detail[:300]}")
    assert error["code"] == "BFSMountError"
    assert f"blob container {ns} of {account}" in detail
    assert "connection refused" in detail
    events = core_v1.list_namespaced_event(
        ns, field_selector=f"involvedObject.name={pod.metadata.name}"
    ).items
    mounts = [e for e in events if e.reason == "FailedMount"]
    assert mounts and mounts[0].source.component == "kubelet", [e.reason for e in events]
    t(f"FailedMount from the kubelet on {pod.spec.node_name}, {sum(e.count or 1 for e in mounts)} times")


def test_a_job_preempted_by_a_pod_of_higher_priority_is_requeued_not_failed(
    namespace: tuple[str, str], core_v1: client.CoreV1Api, real_nodes_back: None
) -> None:
    """A GPU job on real-1, then a pod of a higher PriorityClass that needs real-1's one GPU: the scheduler
    preempts the job's pod (DisruptionTarget PreemptionByScheduler); its SIGTERM exit fails nothing, the
    job runs again on real-0 and succeeds, one requeue in its status."""
    ns, account = namespace
    t = Timeline("preempted")
    custom = client.CustomObjectsApi()
    custom.create_namespaced_custom_object(
        "batchai.io", "v1alpha1", ns, "batchaiclusters", cluster_body(ns, "real-gpu", gpus=True)
    )
    share = {
        "accountName": account,
        "azureFileUrl": f"https://{account}.file.core.windows.net/{ns}",
        "credentials": {"secretRef": {"name": "storage"}},
        "relativeMountPath": "beats",
    }
    spec = job_spec(
        "real-gpu",
        mountVolumes={"azureFileShares": [share]},
        customToolkitSettings={"commandLine": beating("gpu", 40)},
    )
    set_schedulable(core_v1, "real-0", False)
    try:
        create_trainingjob(ns, "gpu", spec)
        pod = running_pod(ns, "gpu", "real-1")
        wait_for(lambda: beats(account, ns, "gpu"), timeout=60, what="gpu's first beats")
    finally:
        set_schedulable(core_v1, "real-0", True)
    t(f"job running: pod {pod.metadata.name} on real-1, holding its GPU")
    scheduling = client.SchedulingV1Api()
    high = f"preemptor-{ns}"
    scheduling.create_priority_class({"metadata": {"name": high}, "value": 1000000})
    try:
        core_v1.create_namespaced_pod(
            ns,
            {
                "metadata": {"name": "preemptor"},
                "spec": {
                    "priorityClassName": high,
                    "nodeSelector": {"kubernetes.io/hostname": "real-1"},
                    "tolerations": [{"operator": "Exists"}],
                    "restartPolicy": "Never",
                    "containers": [
                        {
                            "name": "main",
                            "image": LOCAL_IMAGES["custom"],
                            "imagePullPolicy": "Never",
                            "command": ["sleep", "30"],
                            "resources": {"limits": {"nvidia.com/gpu": "1"}},
                        }
                    ],
                },
            },
        )
        t("fault: a pod of higher priority needing real-1's GPU submitted")
        evicted = wait_for(
            lambda: disruption(core_v1.read_namespaced_pod(pod.metadata.name, ns)),
            timeout=60,
            what="the job's pod preempted",
        )
        t(f"pod preempted: DisruptionTarget {evicted.reason}: {evicted.message}")
        assert evicted.reason == "PreemptionByScheduler"
        tj = wait_requeued(ns, "gpu", t)
        assert (condition(tj, "Requeued") or {}).get("reason") == "Preempted"
        new = running_pod(ns, "gpu", "real-0")
        t(f"rerun: pod {new.metadata.name} running on real-0")
        tj = finish(ns, account, "gpu", t)
        assert requeues(tj) == 1
    finally:
        scheduling.delete_priority_class(high)
