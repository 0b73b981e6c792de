"""Pure parts of the scale benchmark: sizes, percentiles, who made an API request (from the apiserver's
audit log), request counts per job, the results rows and the table. No I/O here; bench/run.py does it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

SYSTEMS = ("raw", "operator", "training-operator")
DEFAULT_SIZES = "100,500,2000,200x4"
# burst: N new jobs on an empty namespace; history: the same after BENCH_HISTORY finished jobs; restart:
# the operator SIGKILLed and started again with BENCH_HISTORY finished and BENCH_HISTORY_NEW running jobs.
# mixed: multi-node and single-node jobs that cannot all fit at once on a few one-GPU nodes (gang scheduling).
SCENARIOS = ("burst", "history", "restart", "mixed")
DEFAULT_HISTORY = 10_000
DEFAULT_HISTORY_NEW = 500
DEFAULT_MIXED = "6x3,6x1"  # BENCH_MIXED: the jobs, submitted interleaved
DEFAULT_MIXED_NODES = 4  # BENCH_MIXED_NODES: one GPU each, so two 3-node jobs never fit together
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
# Clients that are this operator (kopf's own aiohttp session, and the kubernetes client of kube.py).
OPERATOR_CLIENTS = frozenset({"operator/kopf", "operator/client"})
BENCH_USER_AGENT = "batchai-bench"


@dataclass(frozen=True)
class Size:
    jobs: int
    nodes_per_job: int = 1

    def __str__(self) -> str:
        return f"{self.jobs}" if self.nodes_per_job == 1 else f"{self.jobs}x{self.nodes_per_job}"


def parse_sizes(text: str, name: str = "BENCH_SIZES") -> list[Size]:
    """`100,500,2000,200x4` -> sizes; `NxK` is N jobs of K nodes (pods) each (BENCH_SIZES, BENCH_MIXED)."""
    sizes = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        jobs, x, nodes = part.partition("x")
        try:
            size = Size(int(jobs), int(nodes) if x else 1)
        except ValueError:
            raise ValueError(f"{name}: {part!r} is not N or NxK (e.g. 500 or 200x4)") from None
        if size.jobs < 1 or size.nodes_per_job < 1:
            raise ValueError(f"{name}: {part!r} must be positive")
        sizes.append(size)
    if not sizes:
        raise ValueError(f"{name} is empty")
    return sizes


def interleave(sizes: Sequence[Size]) -> Iterator[int]:
    """The node count of each job of these sizes, taking one job of each size in turn: 2x3,2x1 -> 3,1,3,1."""
    left = [s.jobs for s in sizes]
    while any(left):
        for i, s in enumerate(sizes):
            if left[i]:
                left[i] -= 1
                yield s.nodes_per_job


def parse_systems(text: str) -> list[str]:
    """`raw,operator,training-operator` (any subset, in the canonical order; raw is the baseline)."""
    return _subset("BENCH_SYSTEMS", text, SYSTEMS)


def parse_scenarios(text: str) -> list[str]:
    """`burst,history,restart,mixed` (any subset, in the canonical order)."""
    return _subset("BENCH_SCENARIOS", text, SCENARIOS)


def _subset(name: str, text: str, choices: Sequence[str]) -> list[str]:
    wanted = {s.strip() for s in text.split(",") if s.strip()}
    unknown = wanted - set(choices)
    if unknown:
        raise ValueError(f"{name}: unknown {sorted(unknown)}; choose from {', '.join(choices)}")
    if not wanted:
        raise ValueError(f"{name} is empty")
    return [s for s in choices if s in wanted]


def parse_count(name: str, text: str | None, default: int) -> int:
    """A positive count from the environment (BENCH_HISTORY, BENCH_HISTORY_NEW, BENCH_KCM_QPS)."""
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}: {text!r} is not a whole number") from None
    if value < 1:
        raise ValueError(f"{name}: {text!r} must be positive")
    return value


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear between closest ranks (numpy's default); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def parse_time(text: str) -> float:
    """RFC 3339 (as the apiserver writes it, `Z` or an offset, optional fraction) -> epoch seconds."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def classify_client(user_agent: str) -> str:
    """Who made a request, from its User-Agent (every component uses the same admin certificate here).

    The controller-manager appends the controller's name (`.../job-controller`), which is kept.
    """
    ua = user_agent or ""
    if ua.startswith("kopf/"):
        return "operator/kopf"
    if ua.startswith("OpenAPI-Generator/"):
        return "operator/client"
    if ua.startswith(BENCH_USER_AGENT):
        return "bench"
    if ua.startswith("kube-controller-manager/"):
        # `kube-controller-manager/<version> (<os>/<arch>) kubernetes/<commit>[/<controller>]`
        controller = ua.rsplit("/", 1)[-1] if ua.count("/") >= 4 else ""
        return f"kcm/{controller}" if controller and " " not in controller else "kcm"
    for prefix, name in (
        ("kube-scheduler/", "scheduler"),
        ("kwok/", "kwok"),
        ("training-operator", "training-operator"),
        ("kube-apiserver/", "apiserver"),
        ("kubectl/", "kubectl"),
    ):
        if ua.startswith(prefix):
            return name
    return "other"


def resource_of(event: Mapping[str, Any]) -> str:
    """`pods`, `pods/status`, `trainingjobs/status`, ... (or the URL path for non-resource requests)."""
    ref = event.get("objectRef") or {}
    if not ref.get("resource"):
        return str(event.get("requestURI", "?")).split("?", 1)[0]
    sub = ref.get("subresource")
    return f"{ref['resource']}/{sub}" if sub else str(ref["resource"])


def is_counted(event: Mapping[str, Any]) -> bool:
    """One audit event per request: ResponseStarted for watches (they may outlive the run),
    ResponseComplete for everything else (the policy omits RequestReceived)."""
    stage = event.get("stage")
    if event.get("verb") == "watch":
        return stage == "ResponseStarted"
    return stage == "ResponseComplete"


@dataclass
class RequestCounts:
    """Requests of one run, from the audit log: keys are (client, verb, resource)."""

    in_namespace: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    # The operator's (or the peer's) requests anywhere: cluster-scoped watches, nodes, other namespaces.
    controller: Counter[tuple[str, str, str]] = field(default_factory=Counter)


def count_requests(
    events: Iterable[Mapping[str, Any]], namespace: str, controller_clients: frozenset[str]
) -> RequestCounts:
    counts = RequestCounts()
    for ev in events:
        if not is_counted(ev):
            continue
        client = classify_client(str(ev.get("userAgent", "")))
        key = (client, str(ev.get("verb")), resource_of(ev))
        if (ev.get("objectRef") or {}).get("namespace") == namespace:
            counts.in_namespace[key] += 1
        if client in controller_clients:
            counts.controller[key] += 1
    return counts


def writes_by_verb(counter: Mapping[tuple[str, str, str], int]) -> dict[str, int]:
    """{"verb resource": writes} summed over clients, e.g. {"patch trainingjobs/status": 3}."""
    out: Counter[str] = Counter()
    for (_, verb, resource), n in counter.items():
        if verb in WRITE_VERBS:
            out[f"{verb} {resource}"] += n
    return dict(sorted(out.items()))


def writes_to(
    events: Iterable[Mapping[str, Any]],
    namespace: str,
    resource: str,
    names: Container[str],
    clients: frozenset[str],
) -> int:
    """Writes by `clients` to the objects of `resource` (any subresource) in `namespace` named `names`."""
    n = 0
    for ev in events:
        ref = ev.get("objectRef") or {}
        if (
            is_counted(ev)
            and ev.get("verb") in WRITE_VERBS
            and ref.get("resource") == resource
            and ref.get("namespace") == namespace
            and ref.get("name") in names
            and classify_client(str(ev.get("userAgent", ""))) in clients
        ):
            n += 1
    return n


def writes(counter: Mapping[tuple[str, str, str], int], exclude_clients: Iterable[str] = ()) -> int:
    skip = set(exclude_clients)
    return sum(n for (client, verb, _), n in counter.items() if verb in WRITE_VERBS and client not in skip)


def by_client_verb(counter: Mapping[tuple[str, str, str], int], per: int) -> dict[str, dict[str, float]]:
    """{client: {verb resource: requests per job}} for the JSON and the detail table."""
    out: dict[str, dict[str, float]] = {}
    for (client, verb, resource), n in sorted(counter.items()):
        out.setdefault(client, {})[f"{verb} {resource}"] = round(n / per, 3)
    return out


@dataclass(frozen=True)
class JobTiming:
    """One job: when its last pod terminated and when its status said so (the objects' own timestamps,
    whole seconds) and when the bench saw each (its watch, sub-second)."""

    last_pod_finished: float
    terminal_status: float
    last_pod_seen: float
    terminal_seen: float
    succeeded: bool


def lag_stats(timings: Sequence[JobTiming]) -> dict[str, float | None]:
    lags = [t.terminal_status - t.last_pod_finished for t in timings]
    seen = [t.terminal_seen - t.last_pod_seen for t in timings]
    return {
        "lag_p50_s": _round(percentile(lags, 50)),
        "lag_p99_s": _round(percentile(lags, 99)),
        "lag_max_s": _round(max(lags) if lags else None),
        "lag_watch_p50_s": _round(percentile(seen, 50)),
        "lag_watch_p99_s": _round(percentile(seen, 99)),
    }


def slow_jobs(timings: Sequence[JobTiming], t0: float, over_s: float = 2.0) -> str:
    """Where in the run the jobs whose status came late (as the bench's watch saw it) finished: a clue for
    profiling (a burst of creations, of completions, or spread out)."""
    slow = sorted(
        (t.last_pod_seen - t0, t.terminal_seen - t.last_pod_seen)
        for t in timings
        if t.terminal_seen - t.last_pod_seen > over_s
    )
    if not slow:
        return f"no job's status came more than {over_s:g} s late"
    spans = ", ".join(f"t+{at:.0f}s:{lag:.1f}s" for at, lag in slow[:: max(1, len(slow) // 10)])
    return f"{len(slow)} jobs' status came more than {over_s:g} s late (pod finished at: lag) {spans}"


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


@dataclass
class Row:
    """One system at one size. The first ten fields are the issue's interface; the rest are extras."""

    system: str
    jobs: int
    nodes_per_job: int
    wall_s: float
    ratio_to_raw: float | None
    lag_p50_s: float | None
    lag_p99_s: float | None
    peak_rss_mb: float | None
    cpu_s: float | None
    writes_per_job: float
    running_s: float | None = None
    lag_max_s: float | None = None
    lag_watch_p50_s: float | None = None
    lag_watch_p99_s: float | None = None
    rss_after_delete_mb: float | None = None
    idle_rss_mb: float | None = None  # the controller's RSS before the first job (after its start)
    controller_writes_per_job: float | None = None
    controller_requests_per_job: float | None = None
    requests_per_job: float | None = None
    control_plane_cpu_s: dict[str, float] = field(default_factory=dict)
    bench_cpu_s: float | None = None
    other_cpu_s: float | None = None
    requests: dict[str, dict[str, float]] = field(default_factory=dict)
    controller_requests: dict[str, dict[str, float]] = field(default_factory=dict)
    failed_jobs: int = 0
    nodes: int = 0
    profiled: bool = False
    scenario: str = "burst"
    history_jobs: int = 0  # finished TrainingJobs in the namespace before the run (scenario history)
    wall_ratio_to_no_history: float | None = None  # wall_s / the same run's row without history
    workload: str | None = None  # scenario mixed: its sizes, e.g. 6x3,6x1
    held_gpu_s: float | None = None  # GPU-seconds held by pods that waited for peers (observe.py)
    # kube-controller-manager's client rate (requests/s) when not the stock 20 (BENCH_KCM_QPS): each of its
    # controllers, the Job controller among them, is held to it.
    kcm_qps: int | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def with_ratios(rows: Sequence[Row]) -> list[Row]:
    """ratio_to_raw = wall_s / the raw row's wall_s of the same size in the same run (None without one);
    wall_ratio_to_no_history = wall_s / the same system's and size's history row without history; a mixed
    row's baseline is the raw row of the same workload."""
    raw = {_baseline_key(r): r.wall_s for r in rows if r.system == "raw"}
    bare = {
        (r.system, r.jobs, r.nodes_per_job): r.wall_s
        for r in rows
        if r.scenario == "history" and not r.history_jobs
    }
    for r in rows:
        base = raw.get(_baseline_key(r))
        r.ratio_to_raw = round(r.wall_s / base, 3) if base else None
        if r.scenario == "history" and r.history_jobs:
            no_history = bare.get((r.system, r.jobs, r.nodes_per_job))
            r.wall_ratio_to_no_history = round(r.wall_s / no_history, 3) if no_history else None
    return list(rows)


def _baseline_key(r: Row) -> tuple[Any, ...]:
    """A row's raw baseline: the same size (a history row: the burst's), or the same mixed workload."""
    return ("mixed", r.workload) if r.scenario == "mixed" else (r.jobs, r.nodes_per_job)


@dataclass
class RestartRow:
    """The operator SIGKILLed and started again with `history_jobs` finished and `running_jobs` running
    TrainingJobs, `ended_jobs` of which ended while it was down. The first five measured fields are the
    issue's interface."""

    history_jobs: int
    running_jobs: int
    ended_jobs: int
    caught_up_s: float  # from the new process's start: every job's status current, the new job running
    writes_to_finished: int  # the operator's writes to the finished TrainingJobs
    writes_by_verb: dict[str, int]  # the operator's writes from its start until caught up (+ settle)
    peak_rss_mb: float
    cpu_s: float
    new_job_running_s: float | None = None  # the job submitted right after the restart: status running
    ended_status_s: float | None = None  # the last of the ended jobs' terminal status
    live_s: float | None = None  # the new process answered its liveness probe
    control_plane_cpu_s: dict[str, float] = field(default_factory=dict)
    other_cpu_s: float | None = None
    scenario: str = "restart"
    system: str = "operator"

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def caught_up_at(
    first_seen: Mapping[str, Mapping[str, float]], want: Mapping[str, Iterable[str]]
) -> float | None:
    """When every job reached one of the states it should (the bench's watch: name -> state -> first time
    seen), or None while one has not."""
    latest = 0.0
    for name, states in want.items():
        seen = [first_seen.get(name, {}).get(s) for s in states]
        times = [t for t in seen if t is not None]
        if not times:
            return None
        latest = max(latest, min(times))
    return latest


def _fmt(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


TABLE_HEADER = (
    "| scenario | system | jobs x nodes | wall s | ratio to raw | all running s | lag p50 / p99 s | "
    "peak RSS MB | RSS after delete MB | CPU s | writes/job (controller's own) | GPU s held waiting | "
    "other load (cores) |"
)


def format_table(rows: Sequence[Row]) -> str:
    """A Markdown table (printed, and pasted into docs/performance.md)."""
    lines = [TABLE_HEADER, "|" + "---|" * TABLE_HEADER.count(" | ") + "---|"]
    for r in rows:
        own = "" if r.controller_writes_per_job is None else f" ({r.controller_writes_per_job:.1f})"
        cells = [
            r.scenario if not r.history_jobs else f"{r.scenario} ({r.history_jobs} finished)",
            r.system,
            r.workload.replace("x", " x ") if r.workload else f"{r.jobs} x {r.nodes_per_job}",
            f"{r.wall_s:.1f}",
            _fmt(r.ratio_to_raw, ".2f"),
            _fmt(r.running_s),
            f"{_fmt(r.lag_p50_s)} / {_fmt(r.lag_p99_s)}",
            _fmt(r.peak_rss_mb, ".0f"),
            _fmt(r.rss_after_delete_mb, ".0f"),
            _fmt(r.cpu_s),
            f"{r.writes_per_job:.1f}{own}",
            _fmt(r.held_gpu_s),
            # Busy cores spent outside this run meanwhile: a shared machine makes the figures noisier.
            _fmt(r.other_cpu_s / r.wall_s if r.other_cpu_s is not None and r.wall_s else None),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_restart(row: RestartRow) -> str:
    """One line per restart run, and the operator's writes by verb."""
    head = (
        f"restart with {row.history_jobs} finished + {row.running_jobs} running ({row.ended_jobs} ended "
        f"while down): caught up in {row.caught_up_s:.1f} s (live {_fmt(row.live_s)} s, new job running "
        f"{_fmt(row.new_job_running_s)} s, ended jobs' status {_fmt(row.ended_status_s)} s), "
        f"{row.writes_to_finished} writes to finished jobs, peak RSS {row.peak_rss_mb:.0f} MB, "
        f"CPU {row.cpu_s:.1f} s"
    )
    verbs = ", ".join(f"{k}={v}" for k, v in row.writes_by_verb.items()) or "none"
    return f"{head}\n  the operator's writes: {verbs}"


def format_requests(row: Row) -> str:
    """Per-job requests of one run by client and verb (writes first), for the detail output."""
    lines = [f"{row.system} {row.jobs}x{row.nodes_per_job}: requests per job in the run's namespace"]
    for client, verbs in row.requests.items():
        items = sorted(verbs.items(), key=lambda kv: (kv[0].split()[0] not in WRITE_VERBS, kv[0]))
        lines.append(f"  {client:<36} " + ", ".join(f"{k}={v:g}" for k, v in items))
    if row.controller_requests:
        lines.append("  the controller's own requests per job, anywhere:")
        for client, verbs in row.controller_requests.items():
            lines.append(f"  {client:<36} " + ", ".join(f"{k}={v:g}" for k, v in sorted(verbs.items())))
    return "\n".join(lines)
