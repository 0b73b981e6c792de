"""Chaos run: TrainingJobs with mixed exit codes, durations and node counts while the operator is killed
with SIGKILL every few seconds and restarted, and kube-apiserver and etcd are each restarted once.

CHAOS_NODES=1 (with the real nodes, BATCHAI_REAL_NODES=2, under the real-nodes lock): real jobs on the
real nodes while the operator is SIGKILLed and a real node's kubelet and containerd are stopped and started
again CHAOS_NODE_FAULTS times (run_node_faults); it also counts job nodes that ran twice at once:

    chaos: jobs=N kills=K node_faults=F apiserver_restarts=0 etcd_restarts=0 lost=L duplicated=D orphaned=O
    wrong_state=W ran_twice=R   (one line)

At the end every job must have the right terminal state and exit code, no Job or pod may have been created
twice (every creation is counted from a watch), and once the TrainingJobs are deleted no child may be left.
The last line printed:

    chaos: jobs=N kills=K apiserver_restarts=A etcd_restarts=E lost=L duplicated=D orphaned=O wrong_state=W

`make chaos` runs it at full size (CHAOS_JOBS=200, CHAOS_KILLS=10); tests/integration/test_chaos.py runs a
small one in `make test`. Run directly: python tests/chaos.py (brings the local control plane up).
"""

from __future__ import annotations

import itertools
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent / "integration"))
sys.path.insert(0, str(Path(__file__).parent))

from devcluster import DEVCLUSTER, create_fake_node, delete_node, node_ready, wait_for
from kubernetes import client, watch

from batchai_operator.manifests.configmap import launcher_config_map_name

GROUP, VERSION = "batchai.io", "v1alpha1"
MANAGED = "app.kubernetes.io/managed-by=batchai-operator"
POOL = "chaos"


@dataclass(frozen=True)
class Expected:
    state: str
    exit_code: int


@dataclass
class ChaosReport:
    jobs: int
    kills: int = 0
    apiserver_restarts: int = 0
    etcd_restarts: int = 0
    node_faults: int | None = None  # the node-fault mode (CHAOS_NODES=1) only
    lost: list[str] = field(default_factory=list)  # never reached a terminal state
    duplicated: list[str] = field(default_factory=list)  # a Job created twice; a pod replaced needlessly
    orphaned: list[str] = field(default_factory=list)  # children left after the TrainingJobs were deleted
    wrong_state: list[str] = field(default_factory=list)
    ran_twice: list[str] = field(default_factory=list)  # two pods of one job node running at once
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.orphaned or self.wrong_state or self.ran_twice)

    def line(self) -> str:
        faults = "" if self.node_faults is None else f"node_faults={self.node_faults} "
        twice = "" if self.node_faults is None else f" ran_twice={len(self.ran_twice)}"
        return (
            f"chaos: jobs={self.jobs} kills={self.kills} {faults}"
            f"apiserver_restarts={self.apiserver_restarts} "
            f"etcd_restarts={self.etcd_restarts} lost={len(self.lost)} duplicated={len(self.duplicated)} "
            f"orphaned={len(self.orphaned)} wrong_state={len(self.wrong_state)}{twice}"
        )


def job_mix(n: int, seed: int = 7) -> list[tuple[str, dict[str, Any], dict[str, str], Expected]]:
    """n jobs: (name, spec, kwok annotations, expected outcome), a fixed mix of toolkits and outcomes."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        kind = i % 4
        run = f"{rnd.randint(1, 8)}s"
        base = {"cluster": "chaos", "stdOutErrPathPrefix": "/tmp/logs"}
        if kind == 0:  # single node, succeeds
            spec = {**base, "nodeCount": 1, "customToolkitSettings": {"commandLine": "train"}}
            out.append((f"ok-{i}", spec, {"sim.batchai.io/run-for": run}, Expected("succeeded", 0)))
        elif kind == 1:  # single node, fails with exit code 3
            spec = {**base, "nodeCount": 1, "customToolkitSettings": {"commandLine": "train"}}
            sim = {"sim.batchai.io/run-for": run, "sim.batchai.io/exit-code": "3"}
            out.append((f"fail-{i}", spec, sim, Expected("failed", 3)))
        elif kind == 2:  # two-node MPI: node 0 decides (worker runs on)
            code = rnd.choice([0, 7])
            spec = {**base, "nodeCount": 2, "horovodSettings": {"pythonScriptFilePath": "t.py"}}
            sim = {
                "sim.batchai.io/run-for-0": run,
                "sim.batchai.io/exit-code-0": str(code),
                "sim.batchai.io/run-for-1": "600s",
            }
            out.append((f"mpi-{i}", spec, sim, Expected("succeeded" if code == 0 else "failed", code)))
        else:  # two-node PyTorch: every node counts, node 1 fails
            spec = {**base, "nodeCount": 2, "pyTorchSettings": {"pythonScriptFilePath": "t.py"}}
            sim = {"sim.batchai.io/run-for": run, "sim.batchai.io/exit-code-1": "5"}
            out.append((f"pt-{i}", spec, sim, Expected("failed", 5)))
    return out


class CreationCounter:
    """Counts the creations of Jobs and pods in a namespace from watches that survive apiserver restarts
    (after a broken watch, a fresh list adds anything created in the gap)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.jobs: dict[str, set[str]] = defaultdict(set)  # Job name -> uids seen
        self.pods: dict[tuple[str, str], set[str]] = defaultdict(set)  # (Job uid, index) -> pod uids
        # Pods Kubernetes took away (a DisruptionTarget condition seen): their Job rightly replaces them,
        # and a multi-node job's next attempt rightly replaces their Job.
        self.taken_away: set[str] = set()
        self.job_of_pod: dict[str, str] = {}  # pod uid -> its Job's uid
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._run, args=(kind,), daemon=True) for kind in ("jobs", "pods")
        ]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _record(self, kind: str, obj: Any) -> None:
        meta = obj.metadata
        if kind == "pods" and any(
            c.type == "DisruptionTarget" and c.status == "True" for c in obj.status.conditions or []
        ):
            self.taken_away.add(meta.uid)
        if kind == "jobs":
            self.jobs[meta.name].add(meta.uid)
        else:
            labels = meta.labels or {}
            owner = next((o.uid for o in meta.owner_references or [] if o.controller), "?")
            index = labels.get("batch.kubernetes.io/job-completion-index", "?")
            self.pods[(owner, index)].add(meta.uid)
            self.job_of_pod[meta.uid] = owner

    def _run(self, kind: str) -> None:
        core, batch = client.CoreV1Api(), client.BatchV1Api()
        lister: Callable[..., Any] = batch.list_namespaced_job if kind == "jobs" else core.list_namespaced_pod
        while not self.stop.is_set():
            try:
                listed = lister(self.namespace, label_selector=MANAGED, _request_timeout=(5, 30))
                for obj in listed.items:
                    self._record(kind, obj)
                w = watch.Watch()
                for event in w.stream(
                    lister,
                    self.namespace,
                    label_selector=MANAGED,
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=30,
                    _request_timeout=(5, 45),
                ):
                    if self.stop.is_set():
                        break
                    self._record(kind, event["object"])
            except Exception:  # the apiserver is restarting: list again
                self.stop.wait(1)

    def duplicates(self) -> list[str]:
        """Jobs created more than once, unless the earlier ones lost a pod to Kubernetes (a multi-node job
        restarts its attempt: a new Job); pods of a Job's node created more than once when the earlier
        ones were not taken away by Kubernetes (a requeue replaces its pod: that is no duplicate)."""
        lost_a_pod = {self.job_of_pod.get(p) for p in self.taken_away}
        out = [
            f"Job {n}: {len(u)} creations, {len(u & lost_a_pod)} restarted"
            for n, u in self.jobs.items()
            if len(u) > 1 + len(u & lost_a_pod)
        ]
        out += [
            f"pod of Job {j}[{i}]: {len(u)} creations, {len(u & self.taken_away)} taken away"
            for (j, i), u in self.pods.items()
            if len(u) > 1 + len(u & self.taken_away)
        ]
        return out


def devcluster(*args: str) -> None:
    subprocess.run([str(DEVCLUSTER), *args], check=True, capture_output=True, timeout=300)


def retrying(fn: Callable[[], Any], what: str, timeout: float = 120) -> Any:
    """Call fn until it works (the apiserver may be restarting)."""
    return wait_for(fn, timeout=timeout, interval=0.5, what=what)


def run(
    operator: Any,
    jobs: int,
    kills: int,
    kill_every: float = 5.0,
    apiserver_restarts: int = 1,
    etcd_restarts: int = 1,
    nodes: int = 0,
    timeout: float = 900,
    log: Callable[[str], None] = print,
) -> ChaosReport:
    """The chaos run against the running local control plane; `operator` is an OperatorProcess."""
    started = time.monotonic()
    core, custom = client.CoreV1Api(), client.CustomObjectsApi()
    namespace = f"chaos-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    wait_for(
        lambda: core.read_namespaced_service_account("default", namespace), timeout=60, what="default SA"
    )
    mix = job_mix(jobs)
    node_names = [f"chaos-{uuid.uuid4().hex[:6]}-{i}" for i in range(nodes or max(4, jobs // 4))]
    for name in node_names:
        create_fake_node(core, name, wait_ready=False, gpus=1, instance_type="Standard_NC6", agent_pool=POOL)
    cluster = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BatchAICluster",
        "metadata": {"name": "chaos"},
        "spec": {"vmSize": "Standard_NC6", "agentPool": POOL},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "batchaiclusters", cluster)
    counter = CreationCounter(namespace)
    counter.start()
    report = ChaosReport(jobs=jobs)

    # Chaos in the background: operator kills, then one apiserver and one etcd restart along the way.
    disruptions: list[tuple[str, Callable[[], None]]] = [("kill", operator.restart)] * kills
    for i in range(apiserver_restarts):
        disruptions.insert(
            min(len(disruptions), (i + 1) * max(1, kills // 3)),
            ("apiserver", lambda: devcluster("restart", "kube-apiserver")),
        )
    for i in range(etcd_restarts):
        disruptions.insert(
            min(len(disruptions), (i + 2) * max(1, kills // 3) + 1),
            ("etcd", lambda: devcluster("restart", "etcd")),
        )
    done_disrupting = threading.Event()

    def disrupt() -> None:
        for what, action in disruptions:
            time.sleep(kill_every)
            log(f"chaos: {what}")
            action()
            if what == "kill":
                report.kills += 1
            elif what == "apiserver":
                report.apiserver_restarts += 1
            else:
                report.etcd_restarts += 1
        done_disrupting.set()

    chaos = threading.Thread(target=disrupt, daemon=True)
    chaos.start()
    for name, spec, sim, _ in mix:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "TrainingJob",
            "metadata": {"name": name, "annotations": sim},
            "spec": spec,
        }
        retrying(
            lambda body=body: custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "trainingjobs", body
            ),
            f"create {name}",
        )
    log(f"chaos: {jobs} TrainingJobs created in {time.monotonic() - started:.0f}s")

    # Every job reaches its terminal state (the disruptions go on meanwhile).
    expected = {name: exp for name, _, _, exp in mix}
    deadline = time.monotonic() + timeout
    final: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and (len(final) < jobs or not done_disrupting.is_set()):
        try:
            items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs")["items"]
        except Exception:
            time.sleep(1)
            continue
        for obj in items:
            st = obj.get("status") or {}
            if st.get("executionState") in ("succeeded", "failed"):
                final[obj["metadata"]["name"]] = st
        time.sleep(1)
    chaos.join(timeout=300)
    for name, exp in expected.items():
        st = final.get(name)
        if st is None:
            report.lost.append(name)
        elif (st["executionState"], (st.get("executionInfo") or {}).get("exitCode")) != (
            exp.state,
            exp.exit_code,
        ):
            info = st.get("executionInfo") or {}
            why = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in info.get("errors") or [])
            report.wrong_state.append(f"{name}: {st['executionState']}/{info.get('exitCode')} ({why})")
    report.duplicated = counter.duplicates()

    # Deleting the TrainingJobs deletes every child.
    retrying(
        lambda: custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs"),
        "delete the TrainingJobs",
    )
    batch = client.BatchV1Api()

    def leftovers() -> list[str]:
        left = [
            f"Job {j.metadata.name}"
            for j in batch.list_namespaced_job(namespace, label_selector=MANAGED).items
        ]
        left += [
            f"pod {p.metadata.name}"
            for p in core.list_namespaced_pod(namespace, label_selector=MANAGED).items
        ]
        left += [
            f"ConfigMap {c.metadata.name}"
            for c in core.list_namespaced_config_map(namespace, label_selector=MANAGED).items
            # The namespace's shared launcher files belong to no job: they stay for the next one.
            if c.metadata.name != launcher_config_map_name()
        ]
        left += [
            f"Service {s.metadata.name}"
            for s in core.list_namespaced_service(namespace, label_selector=MANAGED).items
        ]
        left += [
            f"Secret {s.metadata.name}"
            for s in core.list_namespaced_secret(namespace, label_selector=MANAGED).items
        ]
        return left

    try:
        wait_for(lambda: not leftovers(), timeout=180, interval=1, what="children garbage-collected")
    except TimeoutError:
        report.orphaned = leftovers()
    counter.stop.set()
    for name in node_names:
        retrying(lambda name=name: delete_node(core, name) or True, f"delete node {name}")
    retrying(lambda: core.delete_namespace(namespace), "delete the namespace")
    report.seconds = time.monotonic() - started
    return report


# ---- the node-fault mode (CHAOS_NODES=1): real jobs on the real nodes ----------------------------------

REAL_CLUSTER = "chaos-real"
# On the dev cluster a pod leaves a lost node 15 s after it went NotReady (chart jobs.nodeLostSeconds).
NODE_LOST_SECONDS = 15


def beating_command(name: str, seconds: int, exit_code: int) -> str:
    """Beat once a second into the share (`<run> <epoch>` lines in <name>.txt, <run> a random id per run:
    an Indexed Job's pods share their hostname), then exit."""
    return (
        "run=$(od -An -N6 -tx1 /dev/urandom | tr -d ' \\n'); "
        f'for i in $(seq {seconds}); do echo "$run $(date +%s.%N)" >> $AZ_BATCHAI_JOB_MOUNT_ROOT/beats/'
        f"{name}.txt; sleep 1; done; exit {exit_code}"
    )


def overlapping(beats: dict[str, list[float]]) -> list[tuple[str, str]]:
    """Runs of one job node whose beating spans overlap: they ran at the same time."""
    spans = sorted((min(b), max(b), pod) for pod, b in beats.items() if b)
    return [(a[2], b[2]) for a, b in itertools.pairwise(spans) if b[0] <= a[1]]


def read_beats(path: Path) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for line in path.read_text().splitlines() if path.exists() else []:
        pod, _, stamp = line.partition(" ")
        if stamp:
            out[pod].append(float(stamp))
    return out


def run_node_faults(
    operator: Any,
    jobs: int,
    kills: int,
    faults: int,
    kill_every: float = 20.0,
    down_for: float = 90.0,
    timeout: float = 1200,
    log: Callable[[str], None] = print,
) -> ChaosReport:
    """Single-node jobs that beat into an Azure Files share run on the real nodes while the operator is
    SIGKILLed every `kill_every` s and, `faults` times, a real node's kubelet and containerd are stopped
    for `down_for` s (long enough for the node to go NotReady and its pods to be evicted) and started
    again. Every job must end as its process does, each job node's pods must never have run at the same
    time, and no pod may be replaced unless Kubernetes took it away. One job in four has 2 nodes (node 0
    beats, node 1 serves its ssh): one lost node restarts its whole attempt (a new batch Job, no
    duplicate), and node 0's runs must not overlap either."""
    from e2e.realnodes import REAL_NODES, cluster_body, share_path
    from storage_services import running_azurite

    started = time.monotonic()
    core, custom = client.CoreV1Api(), client.CustomObjectsApi()
    namespace = f"chaos-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    wait_for(
        lambda: core.read_namespaced_service_account("default", namespace), timeout=60, what="default SA"
    )
    azurite = running_azurite()
    account = azurite.account
    core.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "storage"},
            "stringData": {"azurestorageaccountname": account, "azurestorageaccountkey": azurite.key},
        },
    )
    share_path(account, namespace).mkdir(parents=True)
    body = cluster_body(namespace, REAL_CLUSTER, gpus=False)
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "batchaiclusters", body)
    counter = CreationCounter(namespace)
    counter.start()
    report = ChaosReport(jobs=jobs, node_faults=0)
    rnd = random.Random(11)
    share = {
        "accountName": account,
        "azureFileUrl": f"https://{account}.file.core.windows.net/{namespace}",
        "credentials": {"secretRef": {"name": "storage"}},
        "relativeMountPath": "beats",
    }
    expected: dict[str, Expected] = {}
    for i in range(jobs):
        code = 0 if i % 3 else 3
        name = f"{'ok' if code == 0 else 'fail'}-{i}"
        spec = {
            "cluster": REAL_CLUSTER,
            "nodeCount": 2 if i % 4 == 1 else 1,
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/beats",
            "mountVolumes": {"azureFileShares": [share]},
            "customToolkitSettings": {"commandLine": beating_command(name, rnd.randint(20, 60), code)},
        }
        job = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": name}}
        job["spec"] = spec
        retrying(
            lambda job=job: custom.create_namespaced_custom_object(
                GROUP, VERSION, namespace, "trainingjobs", job
            ),
            f"create {name}",
        )
        expected[name] = Expected("failed" if code else "succeeded", code)
    log(f"chaos: {jobs} TrainingJobs on the real nodes created in {time.monotonic() - started:.0f}s")

    done_disrupting = threading.Event()

    def kill_operator() -> None:
        for _ in range(kills):
            if done_disrupting.wait(kill_every):
                return
            log("chaos: kill")
            operator.restart()
            report.kills += 1

    def node_fault() -> None:
        for i in range(faults):
            node = REAL_NODES[(i + 1) % len(REAL_NODES)]
            time.sleep(10)
            log(f"chaos: node fault: {node}'s kubelet and containerd stopped")
            devcluster("node-stop", node)
            report.node_faults = (report.node_faults or 0) + 1
            time.sleep(down_for)
            devcluster("up")
            wait_for(lambda n=node: node_ready(core, n), timeout=180, what=f"{node} Ready again")
            log(f"chaos: {node} back")
        done_disrupting.set()

    killer = threading.Thread(target=kill_operator, daemon=True)
    faulter = threading.Thread(target=node_fault, daemon=True)
    killer.start()
    faulter.start()

    deadline = time.monotonic() + timeout
    final: dict[str, dict[str, Any]] = {}
    while time.monotonic() < deadline and (len(final) < jobs or not done_disrupting.is_set()):
        try:
            items = custom.list_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs")["items"]
        except Exception:
            time.sleep(2)
            continue
        for obj in items:
            st = obj.get("status") or {}
            if st.get("executionState") in ("succeeded", "failed"):
                final[obj["metadata"]["name"]] = st
        time.sleep(2)
    done_disrupting.set()
    faulter.join(timeout=300)
    killer.join(timeout=60)
    for name, exp in expected.items():
        st = final.get(name)
        info = (st or {}).get("executionInfo") or {}
        if st is None:
            report.lost.append(name)
        elif (st["executionState"], info.get("exitCode")) != (exp.state, exp.exit_code):
            why = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in info.get("errors") or [])
            report.wrong_state.append(f"{name}: {st['executionState']}/{info.get('exitCode')} ({why})")
        twice = overlapping(read_beats(share_path(account, namespace, f"{name}.txt")))
        report.ran_twice += [f"{name}: {a} and {b} ran at the same time" for a, b in twice]
    report.duplicated = counter.duplicates()
    requeued = sum(int(((s.get("executionInfo") or {}).get("requeueCount")) or 0) for s in final.values())
    log(f"chaos: {requeued} requeues in the jobs' status; {len(counter.taken_away)} pods taken away")

    retrying(
        lambda: custom.delete_collection_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs"),
        "delete the TrainingJobs",
    )
    batch = client.BatchV1Api()

    def leftovers() -> list[str]:
        left = [
            f"Job {j.metadata.name}"
            for j in batch.list_namespaced_job(namespace, label_selector=MANAGED).items
        ]
        left += [
            f"pod {p.metadata.name}"
            for p in core.list_namespaced_pod(namespace, label_selector=MANAGED).items
        ]
        return left

    try:
        wait_for(lambda: not leftovers(), timeout=180, interval=1, what="children garbage-collected")
    except TimeoutError:
        report.orphaned = leftovers()
    counter.stop.set()
    retrying(lambda: core.delete_namespace(namespace), "delete the namespace")
    report.seconds = time.monotonic() - started
    return report


def main() -> int:
    from devcluster import export_env, up
    from kubernetes import config
    from operator_process import OperatorProcess

    node_mode = os.environ.get("CHAOS_NODES") == "1"
    if node_mode and os.environ.get("BATCHAI_REAL_NODES") == "0":
        print("CHAOS_NODES=1 needs the real nodes: BATCHAI_REAL_NODES=2 (and the real-nodes lock)")
        return 2
    cluster = up()
    export_env(cluster)
    config.load_kube_config(config_file=cluster.kubeconfig)
    repo = Path(__file__).resolve().parents[1]
    subprocess.run(
        ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(repo / "crds")],
        check=True,
        capture_output=True,
    )
    log_dir = Path(os.environ.get("CHAOS_LOG_DIR", "/tmp"))
    log_path = log_dir / f"chaos-operator-{uuid.uuid4().hex[:6]}.log"
    if node_mode:
        op = OperatorProcess(log_path, extra_env=real_node_operator_env())
    else:
        op = OperatorProcess(log_path)
    op.start()
    try:
        if node_mode:
            report = run_node_faults(
                op,
                int(os.environ.get("CHAOS_JOBS", "20")),
                int(os.environ.get("CHAOS_KILLS", "6")),
                int(os.environ.get("CHAOS_NODE_FAULTS", "2")),
            )
        else:
            report = run(
                op, int(os.environ.get("CHAOS_JOBS", "200")), int(os.environ.get("CHAOS_KILLS", "10"))
            )
    finally:
        op.stop()
    for problem in report.lost + report.duplicated + report.orphaned + report.wrong_state + report.ran_twice:
        print(f"  {problem}")
    print(f"chaos took {report.seconds:.0f}s; operator log: {op.log_path}")
    print(report.line())
    return 0 if report.ok else 1


def real_node_operator_env() -> dict[str, str]:
    """The operator as the e2e tier runs it: the local images, Azurite's endpoint, small requests, and
    job pods leaving a lost node after NODE_LOST_SECONDS."""
    import json

    from e2e.realnodes import LOCAL_IMAGES
    from storage_services import running_azurite

    return {
        "BATCHAI_IMAGES": json.dumps(LOCAL_IMAGES),
        "BATCHAI_STORAGE_BLOB_ENDPOINT": running_azurite().endpoint,
        "BATCHAI_JOB_RESOURCES": json.dumps({"requests": {"cpu": "50m", "memory": "32Mi"}}),
        "BATCHAI_NODE_LOST_SECONDS": str(NODE_LOST_SECONDS),
    }


if __name__ == "__main__":
    sys.exit(main())
