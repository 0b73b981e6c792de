"""What a long-lived installation meets: finished TrainingJobs kept for weeks (scenario history) and an
operator restarted among them (scenario restart). I/O; the pure parts are in stats.py, observe.py and
manifests.py.

History jobs are created straight to the apiserver with the status the operator wrote for a real job of
the same spec (a template job run first in the namespace; manifests.history_status), labelled
HISTORY_LABEL. They have no children, as if their batch Jobs had been cleaned up.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from devcluster import wait_for
from operator_process import OperatorProcess

from harness import (
    CONTROLLER_CLIENTS,
    OUT,
    SETTLE_S,
    SUBMIT_THREADS,
    Bench,
    control_plane_pids,
    cpu_seconds,
    machine_busy_seconds,
    memory_mb,
    start_operator,
    stop_operator,
    wait_idle,
    watch,
)
from manifests import HISTORY_LABEL, history_status, training_job
from observe import StateLog
from stats import RestartRow, caught_up_at, count_requests, writes_by_verb, writes_to

GROUP, VERSION, PLURAL = "batchai.io", "v1alpha1", "trainingjobs"
TEMPLATE = "history-template"
LABEL_TRAININGJOB_UID = "batchai.io/trainingjob-uid"
RUNNING_FOR = "1h"  # the restart's running jobs: running until the bench ends them


def history_name(i: int) -> str:
    return f"history-{i:05d}"


def fill_history(bench: Bench, ns: str, count: int) -> int:
    """`count` finished TrainingJobs in `ns` (the template job, run for real by an operator started for
    it, and count - 1 copies of its status); returns count."""
    op = OperatorProcess(OUT / f"operator-{bench.tag}-{ns}-template.log")
    op.start()
    try:
        bench.custom.create_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, training_job(ns, TEMPLATE, 1, history=True)
        )

        def finished() -> dict[str, Any] | None:
            obj = bench.custom.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, TEMPLATE)
            return obj if (obj.get("status") or {}).get("executionState") == "succeeded" else None

        template = wait_for(finished, timeout=120, interval=0.5, what="the history template job")
    finally:
        op.stop()
    status, uid = template["status"], template["metadata"]["uid"]

    def create(i: int) -> None:
        name = history_name(i)
        body = training_job(ns, name, 1, history=True)
        made = bench.custom.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, body)
        patch = {"status": history_status(status, TEMPLATE, uid, name, made["metadata"]["uid"])}
        bench.custom.patch_namespaced_custom_object_status(GROUP, VERSION, ns, PLURAL, name, patch)

    started = time.monotonic()
    with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
        list(pool.map(create, range(1, count)))
    print(f"[bench] {count} finished jobs in {ns} in {time.monotonic() - started:.0f} s", flush=True)
    return count


@contextlib.contextmanager
def logging_states(bench: Bench, ns: str, log: StateLog) -> Any:
    """Watch the namespace's TrainingJobs other than the history, into `log`."""
    lock = threading.Lock()
    stop = threading.Event()

    def on_job(obj: dict[str, Any], seen: float) -> None:
        with lock:
            log.job(obj, seen)

    def list_fn(**kw: Any) -> Any:
        return bench.custom.list_namespaced_custom_object(
            GROUP, VERSION, ns, PLURAL, label_selector=f"!{HISTORY_LABEL}", **kw
        )

    threading.Thread(target=watch, args=(list_fn, on_job, stop), daemon=True).start()
    try:
        yield
    finally:
        stop.set()


def end_pods(bench: Bench, ns: str, uids: set[str]) -> None:
    """Make the running pods of these TrainingJobs end now (kwok completes a pod run-for after it runs,
    and reads the annotation again when it changes), and wait until they have."""
    pods = json.loads(bench.core.list_namespaced_pod(ns, _preload_content=False).data)["items"]
    names = [
        p["metadata"]["name"] for p in pods if p["metadata"]["labels"].get(LABEL_TRAININGJOB_UID) in uids
    ]
    patch = {"metadata": {"annotations": {"sim.batchai.io/run-for": "0s"}}}
    with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
        list(pool.map(lambda n: bench.core.patch_namespaced_pod(n, ns, patch), names))

    def ended() -> bool:
        pods = json.loads(bench.core.list_namespaced_pod(ns, _preload_content=False).data)["items"]
        return all(
            p["status"].get("phase") == "Succeeded"
            for p in pods
            if p["metadata"]["labels"].get(LABEL_TRAININGJOB_UID) in uids
        )

    wait_for(ended, timeout=300, interval=1, what=f"{len(names)} pods ended")

    # And until the Job controller has finished their batch Jobs: its 20 requests a second take most of a
    # minute over 250 Jobs ending at once, and a job submitted meanwhile waits that long for its pod
    # whatever the operator does. The restart measures the operator, so it starts on a settled cluster.
    def complete() -> bool:
        jobs = json.loads(bench.batch.list_namespaced_job(ns, _preload_content=False).data)["items"]
        mine = [j for j in jobs if j["metadata"]["labels"].get(LABEL_TRAININGJOB_UID) in uids]
        done = [j for j in mine if {"type": "Complete", "status": "True"}.items() <= _condition(j).items()]
        return len(mine) == len(uids) == len(done)

    wait_for(complete, timeout=300, interval=1, what=f"{len(uids)} batch Jobs complete")


def _condition(job: dict[str, Any], type_: str = "Complete") -> dict[str, Any]:
    """The batch Job's condition of that type ({} if none)."""
    return next((c for c in job["status"].get("conditions") or [] if c["type"] == type_), {})


def restart(bench: Bench, history: int, running: int) -> RestartRow:
    """`history` finished and `running` running TrainingJobs; the operator SIGKILLed; half the running
    jobs' pods end while it is down; the operator started again and a new job submitted at once. Measured
    from the new process's start until every job's status is current and the new job runs."""
    ns = bench.namespace("operator", "restart")
    fill_history(bench, ns, history)
    log = StateLog()
    names = [f"r{i}" for i in range(running)]
    op = OperatorProcess(OUT / f"operator-{bench.tag}-restart-before.log")
    op.start()
    assert op.proc is not None
    with logging_states(bench, ns, log):
        try:
            wait_idle(op.proc.pid)
            with ThreadPoolExecutor(SUBMIT_THREADS) as pool:
                list(
                    pool.map(
                        lambda n: bench.custom.create_namespaced_custom_object(
                            GROUP, VERSION, ns, PLURAL, training_job(ns, n, 1, run_for=RUNNING_FOR)
                        ),
                        names,
                    )
                )
            wait_for(
                lambda: log.in_state(names, "running") >= running,
                timeout=600 + 2 * running,
                interval=0.5,
                what=f"{running} jobs running",
            )
        finally:
            op.kill()
        ended = names[::2]
        end_pods(bench, ns, {log.uids[n] for n in ended})
        bench._reset_audit()
        cp_pids = control_plane_pids(bench.run_dir)
        cp0 = {c: cpu_seconds(p) for c, p in cp_pids.items()}
        busy0, bench0 = machine_busy_seconds(), cpu_seconds(os.getpid())
        t0 = time.time()
        op, pid = start_operator(OUT / f"operator-{bench.tag}-restart-after.log", bench.profile, "restart")
        try:
            live = time.time() - t0
            bench.custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, PLURAL, training_job(ns, "new", 1, run_for=RUNNING_FOR)
            )
            want = {**{n: ("succeeded",) for n in ended}, "new": ("running", "succeeded")}
            at = wait_for(
                lambda: caught_up_at(log.first_seen, want), timeout=900, interval=0.2, what="caught up"
            )
            cpu, peak = cpu_seconds(pid), memory_mb(pid, "VmHWM")
            cp = {c: round(cpu_seconds(p) - cp0[c], 1) for c, p in cp_pids.items()}
            busy = machine_busy_seconds() - busy0
            own = cpu_seconds(os.getpid()) - bench0
            time.sleep(SETTLE_S)
            t1 = time.time()
            still = [n for n in names if n not in ended and "succeeded" in log.first_seen.get(n, {})]
        finally:
            stop_operator(op, pid, signal.SIGKILL)
    time.sleep(2)  # the audit backend writes in batches
    events = list(bench._audit_events(t0, t1))
    counts = count_requests(events, ns, CONTROLLER_CLIENTS["operator"])
    finished = {TEMPLATE, *(history_name(i) for i in range(1, history))}
    row = RestartRow(
        history_jobs=history,
        running_jobs=running,
        ended_jobs=len(ended),
        caught_up_s=round(at - t0, 2),
        writes_to_finished=writes_to(events, ns, PLURAL, finished, CONTROLLER_CLIENTS["operator"]),
        writes_by_verb=writes_by_verb(counts.controller),
        peak_rss_mb=round(peak, 1),
        cpu_s=round(cpu, 1),
        new_job_running_s=_since(log.first_seen.get("new", {}).get("running"), t0),
        ended_status_s=_since(max((log.first_seen[n]["succeeded"] for n in ended), default=None), t0),
        live_s=round(live, 2),
        control_plane_cpu_s=cp,
        # CPU the machine spent on anything else meanwhile (other work on a shared machine).
        other_cpu_s=round(busy - own - sum(cp.values()) - cpu, 1),
    )
    if still:
        print(f"[bench] restart: {len(still)} jobs that should run say succeeded: {still[:5]}", flush=True)
    bench._delete_all("operator", ns, None)
    bench._delete_namespace(ns)
    print(f"[bench] restart: {json.dumps(row.as_json())}", flush=True)
    return row


def _since(at: float | None, t0: float) -> float | None:
    return None if at is None else round(at - t0, 2)
