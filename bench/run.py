"""`make bench`: the same jobs through raw Indexed Jobs, this operator's TrainingJobs and Kubeflow
training-operator's PyTorchJobs, side by side on the local control plane, in one run; and what a long-lived
installation meets (bench/longlived.py): finished jobs kept, and a restart among them.

    make bench                                   # every scenario: burst, history, restart, mixed
    BENCH_SIZES=500 BENCH_SCENARIOS=burst make bench           # one size, new jobs only
    BENCH_SYSTEMS=raw,operator make bench        # leave the peer out
    BENCH_SCENARIOS=history,restart BENCH_HISTORY=10000 make bench   # finished jobs; restart among them
    BENCH_PROFILE=py-spy BENCH_SIZES=500 BENCH_SYSTEMS=operator make bench   # + operator profile

    BENCH_SCENARIOS=mixed BENCH_MIXED=6x3,6x1 BENCH_MIXED_NODES=4 make bench   # gang scheduling
    BENCH_KCM_QPS=100 BENCH_SCENARIOS=burst make bench    # kube-controller-manager at 100 requests/s

Scenarios (BENCH_SCENARIOS, default all):
  burst    BENCH_SIZES new jobs per system, each size in a fresh namespace.
  history  BENCH_HISTORY_NEW (500) new jobs through the operator without history, then the same after
           BENCH_HISTORY (10000) finished TrainingJobs in the namespace (raw Jobs at the same size as the
           baseline); rows carry history_jobs and wall_ratio_to_no_history.
  restart  BENCH_HISTORY finished + BENCH_HISTORY_NEW running TrainingJobs; the operator SIGKILLed, half
           the running jobs' pods end while it is down, the operator started again and one job submitted
           at once: time until caught up, its writes (by verb and resource), peak RSS and CPU.
  mixed    BENCH_MIXED (6x3,6x1) jobs, submitted interleaved, per system, on BENCH_MIXED_NODES (4) nodes of
           one GPU: the multi-node jobs cannot all fit at once. held_gpu_s: GPU-seconds held by pods bound
           while their job's other pods could not be (observe.py: held_gpu_seconds); zero with gangs.

Every system gets the pod template this operator builds; kwok completes each pod 2 s after it runs
(tests/k8s/kwok-stages.yaml). Per size, the bench adds fake GPU nodes for all pods at once (8 GPUs each)
and removes them afterwards; each system runs in a fresh namespace, its controller (the operator or
the peer) a fresh subprocess. The apiserver runs with an audit log (hack/devcluster with
BATCHAI_AUDIT=1), so requests are counted where they arrive, per client (by User-Agent) and verb.
Writes bench/results.json and prints the table (stats.format_table) and the requests per job.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))

from devcluster import export_env, up
from kubernetes import client, config

from harness import (
    GPUS_PER_NODE,
    REPO,
    RESULTS,
    SUBMIT_THREADS,
    Bench,
    add_nodes,
    apply,
    node_count,
    remove_leftover_nodes,
    remove_nodes,
)
from longlived import fill_history, restart
from manifests import MIXED_RUN_FOR
from peer import cleanup as peer_cleanup
from stats import (
    BENCH_USER_AGENT,
    DEFAULT_HISTORY,
    DEFAULT_HISTORY_NEW,
    DEFAULT_MIXED,
    DEFAULT_MIXED_NODES,
    DEFAULT_SIZES,
    SCENARIOS,
    SYSTEMS,
    RestartRow,
    Row,
    Size,
    format_requests,
    format_restart,
    format_table,
    parse_count,
    parse_scenarios,
    parse_sizes,
    parse_systems,
    with_ratios,
)


@contextmanager
def nodes_for(
    bench: Bench, size: Size, scenario: str, count: int | None = None, gpus: int = GPUS_PER_NODE
) -> Iterator[int]:
    """Fake GPU nodes (for every pod of a size unless `count` says), removed afterwards."""
    names = [f"bench-{bench.tag}-{scenario}-{size}-{i}" for i in range(count or node_count(size))]
    core = client.CoreV1Api(bench.api)
    try:
        add_nodes(core, names, gpus)
        yield len(names)
    finally:
        remove_nodes(core, names)


def main() -> None:
    sizes = parse_sizes(os.environ.get("BENCH_SIZES") or DEFAULT_SIZES)
    systems = parse_systems(os.environ.get("BENCH_SYSTEMS") or ",".join(SYSTEMS))
    scenarios = parse_scenarios(os.environ.get("BENCH_SCENARIOS") or ",".join(SCENARIOS))
    history = parse_count("BENCH_HISTORY", os.environ.get("BENCH_HISTORY"), DEFAULT_HISTORY)
    history_new = Size(
        parse_count("BENCH_HISTORY_NEW", os.environ.get("BENCH_HISTORY_NEW"), DEFAULT_HISTORY_NEW)
    )
    mixed = parse_sizes(os.environ.get("BENCH_MIXED") or DEFAULT_MIXED, "BENCH_MIXED")
    mixed_nodes = parse_count("BENCH_MIXED_NODES", os.environ.get("BENCH_MIXED_NODES"), DEFAULT_MIXED_NODES)
    profile = os.environ.get("BENCH_PROFILE", "")
    if profile not in ("", "py-spy"):
        raise SystemExit("BENCH_PROFILE: only py-spy is supported")
    os.environ["BATCHAI_AUDIT"] = "1"  # devcluster: apiserver with the audit log (restarted if needed)
    # kube-controller-manager's client rate: the stock one unless asked (devcluster restarts it to match).
    kcm_qps = parse_count("BENCH_KCM_QPS", os.environ.get("BENCH_KCM_QPS"), 0) or None
    if kcm_qps:
        os.environ["BATCHAI_KCM_QPS"] = str(kcm_qps)
    else:
        os.environ.pop("BATCHAI_KCM_QPS", None)
    cluster = up()
    export_env(cluster)
    run_dir = Path(cluster.kubeconfig).parent  # the dev cluster's state dir (BATCHAI_RUN)
    config.load_kube_config(config_file=cluster.kubeconfig)
    cfg = client.Configuration.get_default_copy()
    cfg.connection_pool_maxsize = SUBMIT_THREADS * 2
    api = client.ApiClient(cfg)
    api.user_agent = BENCH_USER_AGENT
    bench = Bench(api, cluster.kubeconfig, run_dir, uuid.uuid4().hex[:5], profile)
    bench.kcm_qps = kcm_qps
    apply(REPO / "crds")
    if left := remove_leftover_nodes(client.CoreV1Api(api)):
        print(f"[bench] removed {left} fake nodes an earlier, stopped bench left behind", flush=True)
    if "training-operator" in systems and {"burst", "mixed"} & set(scenarios):
        out = subprocess.run(
            [str(REPO / "hack" / "build-peer.sh")], check=True, capture_output=True, text=True
        )
        peer_dir = Path(out.stdout.strip().splitlines()[-1])
        bench.peer_binary = peer_dir / "training-operator"
        apply(peer_dir / "crds" / "kubeflow.org_pytorchjobs.yaml")
    rows: list[Row] = []
    restarts: list[RestartRow] = []

    def save() -> None:
        with_ratios(rows)
        out = [r.as_json() for r in rows] + [r.as_json() for r in restarts]
        RESULTS.write_text(json.dumps(out, indent=1) + "\n")

    started = time.monotonic()
    failed: list[str] = []

    def attempt(scenario: str, fn: Callable[[], None]) -> None:
        """One scenario; a failure is reported at the end and the other scenarios still run."""
        try:
            fn()
        except Exception:
            traceback.print_exc()
            print(f"[bench] scenario {scenario} failed; going on with the others", flush=True)
            failed.append(scenario)

    def burst() -> None:
        for size in sizes:
            with nodes_for(bench, size, "burst") as nodes:
                for system in systems:
                    rows.append(bench.run(system, size, nodes))
                    save()

    def history_runs() -> None:
        with nodes_for(bench, history_new, "history") as nodes:
            # The raw-Jobs baseline of the size, unless the burst scenario measured it in this run.
            if "raw" in systems and not any(r.system == "raw" and r.jobs == history_new.jobs for r in rows):
                rows.append(bench.run("raw", history_new, nodes, "history"))
            rows.append(bench.run("operator", history_new, nodes, "history"))
            save()
            rows.append(
                bench.run(
                    "operator", history_new, nodes, "history", lambda ns: fill_history(bench, ns, history)
                )
            )
            save()

    def restart_run() -> None:
        with nodes_for(bench, history_new, "restart"):
            restarts.append(restart(bench, history, history_new.jobs))
            save()

    def mixed_runs() -> None:
        # One GPU per node: the multi-node jobs cannot all fit at once.
        total = Size(sum(s.jobs for s in mixed), max(s.nodes_per_job for s in mixed))
        with nodes_for(bench, total, "mixed", mixed_nodes, gpus=1) as nodes:
            for system in systems:
                rows.append(bench.run(system, total, nodes, "mixed", workload=mixed, run_for=MIXED_RUN_FOR))
                save()

    runs = {"burst": burst, "history": history_runs, "restart": restart_run, "mixed": mixed_runs}
    try:
        for scenario in scenarios:
            attempt(scenario, runs[scenario])
    finally:
        if "training-operator" in systems:
            peer_cleanup(api)
    print()
    print(format_table(rows))
    print()
    for r in rows:
        print(format_requests(r))
    for rr in restarts:
        print(format_restart(rr))
    print(
        f"\n[bench] {len(rows) + len(restarts)} runs in {time.monotonic() - started:.0f} s; rows in {RESULTS}"
    )
    if failed:
        raise SystemExit(f"[bench] failed scenarios: {', '.join(failed)} (tracebacks above)")


if __name__ == "__main__":
    main()
