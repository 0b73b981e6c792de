"""The bench's I/O: processes and their CPU and memory, the watches of a run's objects, one system at
one size (`Bench.run`), the audit log, fake nodes. bench/run.py drives it; the pure parts are in
stats.py, observe.py and manifests.py."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

from devcluster import create_fake_node, delete_node, wait_for  # noqa: E402
from kubernetes import client  # noqa: E402
from kubernetes.watch.watch import iter_resp_lines  # noqa: E402
from operator_process import LIVENESS_PORT, METRICS_PORT, OperatorProcess  # noqa: E402

from manifests import (  # noqa: E402
    HISTORY_LABEL,
    POOL,
    RUN_FOR,
    batchai_cluster,
    pytorch_job,
    raw_job,
    training_job,
)
from observe import Observation  # noqa: E402
from peer import PeerProcess  # noqa: E402
from stats import (  # noqa: E402
    OPERATOR_CLIENTS,
    Row,
    Size,
    by_client_verb,
    count_requests,
    interleave,
    lag_stats,
    parse_time,
    slow_jobs,
    writes,
)

GPUS_PER_NODE = 8
SUBMIT_THREADS = 16
SETTLE_S = 5.0  # after the last terminal status: writes that follow it (finalizers, counts) still count
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
RESULTS = HERE / "results.json"
OUT = HERE / "out"  # logs and profiles (git-ignored)
KIND = {  # system -> (group, version, plural) of its job objects; raw Jobs use BatchV1Api
    "operator": ("batchai.io", "v1alpha1", "trainingjobs"),
    "training-operator": ("kubeflow.org", "v1", "pytorchjobs"),
}
CONTROLLER_CLIENTS = {
    "raw": frozenset[str](),
    "operator": OPERATOR_CLIENTS,
    "training-operator": frozenset({"training-operator"}),
}


# ---- processes --------------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def memory_mb(pid: int, key: str) -> float:
    """VmHWM (peak RSS) or VmRSS of a process, in MB."""
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith(key + ":"))
    return int(line.split()[1]) / 1024


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has been busy (all cores): /proc/stat's first line less idle, iowait."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def child_pid(pid: int) -> int:
    """The (single) child of a process: the operator under `py-spy record`."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        if children:
            return int(children[0])
    raise RuntimeError(f"process {pid} has no child")


def wait_idle(pid: int, busy_below: float = 0.1, timeout: float = 300) -> float:
    """Wait until the process uses under `busy_below` of a core over a second; the seconds waited."""
    start = time.monotonic()
    last = cpu_seconds(pid)
    while time.monotonic() - start < timeout:
        time.sleep(1)
        now = cpu_seconds(pid)
        if now - last < busy_below:
            break
        last = now
    return time.monotonic() - start


def control_plane_pids(run_dir: Path) -> dict[str, int]:
    return {c: int((run_dir / f"{c}.pid").read_text()) for c in CONTROL_PLANE}


def ports_free(ports: Sequence[int]) -> None:
    """Refuse to start when another process holds the operator's liveness or metrics port: its liveness
    answer would pass for the bench's operator (another session's, on a shared machine; set
    BATCHAI_TEST_LIVENESS_PORT apart)."""
    for port in ports:
        with socket.socket() as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a listener refuses; TIME_WAIT does not
            try:
                s.bind(("0.0.0.0", port))
            except OSError:
                taken = f"[bench] port {port} is taken: set BATCHAI_TEST_LIVENESS_PORT apart"
                raise SystemExit(taken) from None


def start_operator(log: Path, profile: str, name: str) -> tuple[OperatorProcess, int]:
    """The operator (under `py-spy record` into bench/out/profile-operator-<name>.txt when profiled)
    and its pid."""
    ports_free((LIVENESS_PORT, METRICS_PORT))
    prefix = None
    if profile == "py-spy":
        py_spy = str(Path(sys.executable).with_name("py-spy"))
        output = str(OUT / f"profile-operator-{name}.txt")
        prefix = [py_spy, "record", "--format", "raw", "--rate", "20", "--nonblocking", "--threads"]
        prefix += ["--output", output, "--"]
    op = OperatorProcess(log, command_prefix=prefix)
    op.start()
    assert op.proc is not None
    return op, child_pid(op.proc.pid) if prefix else op.proc.pid


def stop_operator(op: OperatorProcess, pid: int, sig: int = signal.SIGTERM) -> None:
    """Stop the operator; under py-spy, the operator first: py-spy writes its profile when its child exits
    (a signal to py-spy would lose it)."""
    assert op.proc is not None
    if pid == op.proc.pid:
        op.kill() if sig == signal.SIGKILL else op.stop()
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    op.proc.wait(120)


# ---- watches ----------------------------------------------------------------------------------------


def watch(
    list_fn: Callable[..., Any], on_object: Callable[[dict[str, Any], float], None], stop: threading.Event
) -> None:
    """Stream one collection (from its current state on), calling on_object(obj, time seen) per event.
    Raw JSON lines: no client models, so the bench spends as little CPU as it can next to the systems."""
    version: str | None = None
    while not stop.is_set():
        try:
            resp = list_fn(
                watch=True,
                resource_version=version,
                allow_watch_bookmarks=True,
                timeout_seconds=60,
                _preload_content=False,
            )
            for line in iter_resp_lines(resp):
                seen = time.time()
                event = json.loads(line)
                obj = event.get("object") or {}
                if event.get("type") == "ERROR":
                    version = None  # 410 Gone: start again from the current state
                    break
                version = (obj.get("metadata") or {}).get("resourceVersion") or version
                if event.get("type") in ("ADDED", "MODIFIED"):
                    on_object(obj, seen)
                if stop.is_set():
                    break
            resp.close()
        except Exception as e:  # a dropped stream: resume from the last version seen
            print(f"[bench] watch: {e}; resuming", file=sys.stderr)
            time.sleep(0.5)


@contextlib.contextmanager
def watching(api: client.ApiClient, system: str, ns: str, obs: Observation) -> Iterator[None]:
    lock = threading.Lock()
    stop = threading.Event()

    def on_pod(obj: dict[str, Any], seen: float) -> None:
        with lock:
            obs.pod(obj, seen)

    def on_job(obj: dict[str, Any], seen: float) -> None:
        with lock:
            obs.job(obj, seen)

    core = client.CoreV1Api(api)
    if system == "raw":
        jobs_fn: Callable[..., Any] = lambda **kw: client.BatchV1Api(api).list_namespaced_job(ns, **kw)  # noqa: E731
    else:
        group, version, plural = KIND[system]
        custom = client.CustomObjectsApi(api)
        jobs_fn = lambda **kw: custom.list_namespaced_custom_object(  # noqa: E731
            group, version, ns, plural, label_selector=f"!{HISTORY_LABEL}", **kw
        )
    threads = [
        threading.Thread(
            target=watch, args=(lambda **kw: core.list_namespaced_pod(ns, **kw), on_pod, stop), daemon=True
        ),
        threading.Thread(target=watch, args=(jobs_fn, on_job, stop), daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        stop.set()


# ---- one system at one size -------------------------------------------------------------------------


class Bench:
    def __init__(self, api: client.ApiClient, kubeconfig: str, run_dir: Path, tag: str, profile: str) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.kubeconfig = kubeconfig
        self.run_dir = run_dir
        self.audit = run_dir / "logs" / "audit.log"
        self.tag = tag
        self.profile = profile
        self.peer_binary: Path | None = None
        self.kcm_qps: int | None = None  # BENCH_KCM_QPS (None: the stock rate)

    def namespace(self, system: str, name: str) -> str:
        """A fresh namespace for one run (with the BatchAICluster for the operator's)."""
        ns = f"bench-{self.tag}-{name}-{system}"
        self.core.create_namespace({"metadata": {"name": ns}})
        wait_for(lambda: self.core.read_namespaced_service_account("default", ns), timeout=60)
        if system == "operator":
            self.custom.create_namespaced_custom_object(
                "batchai.io", "v1alpha1", ns, "batchaiclusters", batchai_cluster(ns)
            )
        return ns

    def run(
        self,
        system: str,
        size: Size,
        nodes: int,
        scenario: str = "burst",
        history: Callable[[str], int] | None = None,
        workload: Sequence[Size] = (),
        run_for: str = RUN_FOR,
    ) -> Row:
        """N new jobs of one system; `history` first fills the namespace with finished jobs (returning
        how many), and the controller then starts on them. A `workload` (scenario mixed) submits its
        sizes' jobs interleaved instead, `size` being their total jobs and largest node count."""
        name = f"{size}" if scenario == "burst" else f"{size}-{scenario}{'-h' if history else ''}"
        jobs = list(interleave(workload or [size]))
        ns = self.namespace(system, name)
        history_jobs = history(ns) if history else 0
        controller = self._start_controller(system, name)
        pid = controller[1]
        try:
            # The controller's start (its initial lists; with history, going through the finished jobs)
            # is not part of the run: the restart scenario measures that.
            time.sleep(3)
            if pid:
                settled = wait_idle(pid)
                print(f"[bench] {system} {name}: controller idle {settled:.1f} s after start", flush=True)
            cp_pids = control_plane_pids(self.run_dir)
            cpu0 = cpu_seconds(pid) if pid else None
            idle = memory_mb(pid, "VmRSS") if pid else None
            cp0 = {c: cpu_seconds(p) for c, p in cp_pids.items()}
            busy0, bench0 = machine_busy_seconds(), cpu_seconds(os.getpid())
            self._reset_audit()
            obs = Observation(system)
            with watching(self.api, system, ns, obs):
                t0 = time.time()
                self._submit(system, ns, jobs, run_for)
                expected = sum(jobs)
                wait_for(
                    # A mixed workload's job may end before all its pods ran (the operator ends a job when
                    # its node 0 ends): its terminal statuses alone end the run.
                    lambda: (
                        obs.terminal_count() >= size.jobs
                        and (bool(workload) or obs.all_running_at(expected) is not None)
                    ),
                    timeout=600 + 2 * expected,
                    interval=0.5,
                    what=f"{size.jobs} {system} jobs terminal",
                )
                held = obs.held_gpu_seconds(time.time())
                cpu = cpu_seconds(pid) - cpu0 if pid and cpu0 is not None else None
                peak = memory_mb(pid, "VmHWM") if pid else None
                cp = {c: round(cpu_seconds(p) - cp0[c], 1) for c, p in cp_pids.items()}
                busy = machine_busy_seconds() - busy0
                own = cpu_seconds(os.getpid()) - bench0
                time.sleep(SETTLE_S)
                t_window = time.time()
            time.sleep(2)  # the audit backend writes in batches (at most 1 s apart)
            counts = count_requests(self._audit_events(t0, t_window), ns, CONTROLLER_CLIENTS[system])
            after = self._delete_all(system, ns, pid)
        finally:
            controller[0]()
        self._delete_namespace(ns)
        timings = obs.timings()
        all_running, all_terminal = obs.all_running_at(expected), obs.all_terminal_at()
        assert all_terminal is not None
        lags = lag_stats(timings)
        print(f"[bench] {system} {name}: {slow_jobs(timings, t0)}", flush=True)
        non_bench = {k: v for k, v in counts.in_namespace.items() if k[0] != "bench"}
        row = Row(
            system=system,
            jobs=size.jobs,
            nodes_per_job=size.nodes_per_job,
            wall_s=round(all_terminal - t0, 2),
            ratio_to_raw=None,
            lag_p50_s=lags["lag_p50_s"],
            lag_p99_s=lags["lag_p99_s"],
            peak_rss_mb=None if peak is None else round(peak, 1),
            cpu_s=None if cpu is None else round(cpu, 1),
            writes_per_job=round(writes(non_bench) / size.jobs, 2),
            running_s=None if all_running is None else round(all_running - t0, 2),
            lag_max_s=lags["lag_max_s"],
            lag_watch_p50_s=lags["lag_watch_p50_s"],
            lag_watch_p99_s=lags["lag_watch_p99_s"],
            rss_after_delete_mb=None if after is None else round(after, 1),
            idle_rss_mb=None if idle is None else round(idle, 1),
            controller_writes_per_job=round(writes(counts.controller) / size.jobs, 2) if pid else None,
            controller_requests_per_job=round(sum(counts.controller.values()) / size.jobs, 2)
            if pid
            else None,
            requests_per_job=round(sum(non_bench.values()) / size.jobs, 2),
            control_plane_cpu_s=cp,
            bench_cpu_s=round(own, 1),
            # CPU the machine spent on anything else meanwhile (other work on a shared machine).
            other_cpu_s=round(busy - own - sum(cp.values()) - (cpu or 0), 1),
            requests=by_client_verb(counts.in_namespace, size.jobs),
            controller_requests=by_client_verb(counts.controller, size.jobs),
            failed_jobs=obs.failed(),
            nodes=nodes,
            profiled=bool(self.profile) and system == "operator",
            scenario=scenario,
            history_jobs=history_jobs,
            workload=",".join(map(str, workload)) if workload else None,
            held_gpu_s=round(held, 1),
            kcm_qps=self.kcm_qps,
        )
        print(f"[bench] {system} {name}: {json.dumps(row.as_json())}", flush=True)
        return row

    def _start_controller(self, system: str, name: str) -> tuple[Callable[[], None], int | None]:
        OUT.mkdir(exist_ok=True)
        if system == "operator":
            op, pid = start_operator(OUT / f"operator-{self.tag}-{name}.log", self.profile, name)
            return (lambda: stop_operator(op, pid)), pid
        if system == "training-operator":
            assert self.peer_binary is not None
            peer = PeerProcess(
                self.peer_binary, self.kubeconfig, OUT / f"training-operator-{self.tag}-{name}.log"
            )
            peer.start(self.api)
            assert peer.proc is not None
            return peer.stop, peer.proc.pid
        return (lambda: None), None

    def _submit(self, system: str, ns: str, jobs: Sequence[int], run_for: str) -> None:
        """One job per entry of `jobs` (its node count), j0, j1, ... in that order."""

        def create(i: int) -> None:
            name, nodes = f"j{i}", jobs[i]
            if system == "raw":
                self.batch.create_namespaced_job(ns, raw_job(ns, name, nodes, run_for=run_for))
            else:
                group, version, plural = KIND[system]
                make = training_job if system == "operator" else pytorch_job
                body = make(ns, name, nodes, run_for=run_for)
                self.custom.create_namespaced_custom_object(group, version, ns, plural, body)

        # Few jobs (scenario mixed) one at a time, so that they are created in the order given.
        with ThreadPoolExecutor(SUBMIT_THREADS if len(jobs) > 100 else 1) as pool:
            list(pool.map(create, range(len(jobs))))

    def _audit_files(self) -> list[Path]:
        """The log and the backups the apiserver rotated it into (every 100 MB, --audit-log-maxsize's
        default), oldest first."""
        return [*sorted(self.audit.parent.glob("audit-*.log")), self.audit]

    def _reset_audit(self) -> None:
        for f in self._audit_files()[:-1]:
            f.unlink()
        os.truncate(self.audit, 0)

    def _audit_events(self, t0: float, t1: float) -> Iterator[dict[str, Any]]:
        for path in self._audit_files():
            with path.open(errors="replace") as f:
                for line in f:
                    # The apiserver writes on at its own offset after a truncation: the gap reads as NULs.
                    line = line.lstrip("\0")
                    try:
                        ev = json.loads(line)
                    except ValueError:
                        continue
                    if t0 - 0.5 <= parse_time(ev["requestReceivedTimestamp"]) <= t1:
                        yield ev

    def _delete_all(self, system: str, ns: str, pid: int | None) -> float | None:
        """Delete every job object (children go by garbage collection); the controller's RSS once
        everything in the namespace is gone and it had a few seconds to drop it."""

        def delete() -> bool:
            try:
                if system == "raw":
                    self.batch.delete_collection_namespaced_job(ns, propagation_policy="Background")
                else:
                    group, version, plural = KIND[system]
                    self.custom.delete_collection_namespaced_custom_object(group, version, ns, plural)
            except client.ApiException as e:
                if e.status not in (500, 504):
                    raise
                return False  # a busy apiserver times out a large delete: it goes on; ask again
            return True

        wait_for(delete, timeout=1800, interval=2, what=f"job objects of {ns} deleted")

        def empty() -> bool:
            pods = self.core.list_namespaced_pod(ns, limit=1, _preload_content=False)
            return not json.loads(pods.data)["items"]

        wait_for(empty, timeout=1800, interval=1, what=f"pods of {ns} deleted")
        if pid is None:
            return None
        time.sleep(10)
        return memory_mb(pid, "VmRSS")

    def _delete_namespace(self, ns: str) -> None:
        self.core.delete_namespace(ns)

        def gone() -> bool:
            try:
                self.core.read_namespace(ns)
            except client.ApiException as e:
                return e.status == 404
            return False

        wait_for(gone, timeout=1800, interval=1, what=f"namespace {ns} deleted")


# ---- nodes, setup -----------------------------------------------------------------------------------


def node_count(size: Size) -> int:
    return max(size.nodes_per_job, math.ceil(size.jobs * size.nodes_per_job / GPUS_PER_NODE))


def add_nodes(core: client.CoreV1Api, names: list[str], gpus: int = GPUS_PER_NODE) -> None:
    def make(name: str) -> None:
        create_fake_node(
            core,
            name,
            wait_ready=False,
            gpus=gpus,
            cpu="48",
            memory="448Gi",
            instance_type="Standard_NC6",
            agent_pool=POOL,
        )

    with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
        list(pool.map(make, names))

    def ready() -> bool:
        nodes = core.list_node(label_selector=f"agentpool={POOL}").items
        return sum(
            any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or []) for n in nodes
        ) >= len(names)

    wait_for(ready, timeout=300, interval=1, what=f"{len(names)} bench nodes Ready")


def remove_leftover_nodes(core: client.CoreV1Api) -> int:
    """Remove the fake nodes a bench that was stopped left behind (they would make every later run's, and
    the tests', cluster bigger than it is); how many there were."""
    names = [n.metadata.name for n in core.list_node(label_selector=f"agentpool={POOL}").items]
    remove_nodes(core, names)
    return len(names)


def remove_nodes(core: client.CoreV1Api, names: list[str]) -> None:
    with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
        list(pool.map(lambda n: delete_node(core, n), names))


def apply(*paths: Path) -> None:
    for p in paths:
        subprocess.run(
            ["kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(p)],
            check=True,
            capture_output=True,
        )
