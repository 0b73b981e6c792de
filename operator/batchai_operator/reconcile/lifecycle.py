"""Starting and stopping the operator: kopf's settings, the one runtime, and the Event watches."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import kopf

from .. import metrics
from ..config import OperatorConfig
from ..decide.gang import setting_error
from ..kube import Kube
from ..names import (
    CLUSTER_PLURAL,
    DOMAIN,
    FINALIZER,
    LABEL_MANAGED_BY,
    LABEL_ROLE,
    MANAGED_BY,
    SETUP_ROLE,
    TRAININGJOB_PLURAL,
)
from ..observe import indexes as idx
from ..scaling import AgentPoolScaler
from . import own_watches, trainingjob
from .malloc import (
    MALLOC_ARENAS,
    TRIM_INTERVAL_SECONDS,
    limit_malloc_arenas,
    release_freed_memory_periodically,
)
from .own_watches import NOT_SETTLED
from .runtime import Runtime, current, install

log = logging.getLogger("batchai_operator")

# Status writes that change no state come at most this often per object (a state change is written at
# once): a job's node counts within a second; a cluster's node counts, which move with every job that
# starts or ends, within three, so that a cluster adds few writes per job.
# Node and pod bursts make one cluster sync per quarter second (few writes per job, little CPU per event).
STATUS_INTERVALS_SECONDS = {TRAININGJOB_PLURAL: 1.0, CLUSTER_PLURAL: 3.0}
COALESCE_SECONDS = 0.25
# The kubernetes client is synchronous: its calls run in this many threads (enough for bursts of jobs).
CLIENT_THREADS = 32
# New jobs whose children are being created at once: as many as the client has threads, so a burst of
# thousands of new jobs puts at most that many requests ahead of a running job's status write (status
# lag p99 at 2000 jobs in make bench: 8-14 s without a limit, 1 s with it). Far fewer slow small
# bursts: each start waits for the busy event loop between its requests (100 jobs took 18 s to run
# with 8 slots, 11 s with none).
START_SLOTS = CLIENT_THREADS
EventHandler = Callable[[Runtime, Mapping[str, Any]], None]
# What kopf watches of pods and DaemonSets: the clusters' setup objects (the job pods and batch Jobs are
# the operator's own watches', reconcile/own_watches.py).
SETUP_SELECTOR = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_ROLE}={SETUP_ROLE}"
WATCHED_BY_LABEL = (("", "v1", "pods"), ("apps", "v1", "daemonsets"))
LIST_CHUNK = 500


class NoDiffBase(kopf.DiffBaseStorage):
    """No diff base. kopf builds one on every watch event (a deep copy of the whole body) for its
    on.create/update/field handlers and daemons; this operator has none of those, only on.event handlers
    and indexes (tests/unit/test_handlers_registry.py), and the copies took a quarter of the event loop's
    CPU at 2000 jobs (py-spy in make bench). kopf has no setting to skip them, hence this class."""

    def build(
        self, *, body: kopf.Body, extra_fields: Iterable[kopf.FieldSpec] | None = None
    ) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


def configure(settings: kopf.OperatorSettings) -> None:
    # kopf's own state (finalizer, progress) under our domain, not kopf.zalando.org; no diff base.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=DOMAIN)
    settings.persistence.diffbase_storage = NoDiffBase()
    # Events are posted explicitly (decide's); handler log lines never become Events.
    settings.posting.level = logging.CRITICAL + 1
    settings.networking.request_timeout = 30
    # Filtered by the apiserver, not in the operator: of pods and DaemonSets only its setup objects reach
    # kopf (every handler and index of theirs requires the labels anyway), not every pod of a busy cluster.
    for resource in WATCHED_BY_LABEL:
        settings.watching.label_selectors[resource] = SETUP_SELECTOR
    # The first lists in pages: 10,000 finished jobs come in 20 answers, not in one that must be held whole.
    settings.watching.chunk_size = LIST_CHUNK
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    quiet_client_logs()


def crd_too_old(refused: str) -> str:
    """The startup's error when the apiserver will not select TrainingJobs by status.settled."""
    return (
        f"the TrainingJob CRD in this cluster cannot select {NOT_SETTLED} ({refused}): it is older than "
        "this operator; apply this release's CRDs (helm upgrade with crds.enabled, or kubectl apply "
        "--server-side -f crds/)"
    )


def quiet_client_logs() -> None:
    """Even with --debug (chart logLevel: debug), the kubernetes client never logs request or response
    bodies: some of its versions do at DEBUG, and the bodies of the SSH key Secrets hold private keys."""
    logging.getLogger("kubernetes.client.rest").setLevel(logging.INFO)
    # kopf logs every handler that succeeded at INFO: a line per watch event, most of the log and a few
    # per cent of the CPU at scale. Kept with --verbose/--debug, where the root logger is below INFO.
    if logging.getLogger().getEffectiveLevel() >= logging.INFO:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)


async def startup(settings: kopf.OperatorSettings, kwargs: Mapping[str, Any]) -> Runtime:
    """The one startup hook: settings, the runtime (with kopf's indexes from the hook's kwargs), watches."""
    configure(settings)
    limit_malloc_arenas(MALLOC_ARENAS)
    loop = asyncio.get_running_loop()
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=CLIENT_THREADS))
    config = OperatorConfig.from_env()
    namespaces: list[str | None] = [*config.watch_namespaces] or [None]
    # A pooled connection for each client thread and each of the operator's own watches (a stream holds
    # its connection for minutes; py-spy in make bench saw TLS handshakes when the threads alone had one).
    watches = len(namespaces) * (len(own_watches.OWN_WATCHES) + len(trainingjob.EVENT_WATCHES))
    kube = Kube.load(CLIENT_THREADS + watches)
    own_indexes = own_watches.make_indexes()
    rt = Runtime(
        kube,
        config,
        {**{name: kwargs[name] for name in idx.KOPF_INDEXES}, **own_indexes},
        AgentPoolScaler(),
        status_intervals=STATUS_INTERVALS_SECONDS,
        coalesce_seconds=COALESCE_SECONDS,
        start_slots=START_SLOTS,
    )
    rt.served = await kube.served_apis()
    problem = setting_error(rt.config.gang, rt.served)
    if problem is not None:
        raise kopf.PermanentError(problem)
    # A TrainingJob CRD from before settled jobs cannot select them out: the TrainingJob watch would retry
    # for ever while the liveness probe stays green. Say so once, and stop.
    namespace = next(iter(rt.config.watch_namespaces), None)
    refused = await kube.selection_refused(TRAININGJOB_PLURAL, namespace, NOT_SETTLED)
    if refused is not None:
        raise kopf.PermanentError(crd_too_old(refused))
    log.info(
        "gang scheduling of multi-node jobs: %s (the cluster serves the Workload API: %s; Kueue: %s)",
        rt.config.gang,
        "yes" if rt.served.workload else "no",
        "yes" if rt.served.kueue else "no",
    )
    install(rt)
    # kopf starts its watches once the startup is done; the TrainingJobs' watch waits for their first lists.
    await own_watches.start(rt, kube, own_indexes)
    rt.spawn(release_freed_memory_periodically(rt.stopping, TRIM_INTERVAL_SECONDS, lambda: rt.last_sync))
    metrics.serve(int(os.environ.get("BATCHAI_METRICS_PORT") or 0), status_collector(rt))
    # Events no kopf handler sees come from narrow watches of our own (threads: the client is synchronous;
    # one per watched namespace, or one for all), fed back into the loop: those reconcile/trainingjob.py
    # asks for.
    for namespace in namespaces:
        for name, selector, handler in trainingjob.EVENT_WATCHES:
            threading.Thread(
                target=kube.watch_events,
                args=(selector, event_callback(rt, loop, handler), rt.stopping, namespace),
                name=f"{name}-watch-{namespace or 'all'}",
                daemon=True,
            ).start()
    return rt


def status_collector(rt: Runtime) -> metrics.StatusCollector:
    """What the metrics of jobs and nodes by state read: the statuses last written, else the indexed ones."""

    def jobs() -> Iterable[tuple[str, str]]:
        for uid, store in rt.indexes.items(idx.TRAININGJOBS):
            for view in store:
                status = rt.written.get(uid) or view["status"]
                spec = view["spec"]
                yield status.get("executionState") or "none", spec.tool_type if spec else "unknown"

    def nodes() -> Iterable[tuple[str, str, dict[str, int]]]:
        for (namespace, name), store in rt.indexes.items(idx.CLUSTERS):
            for view in store:
                counts = (rt.written.get((namespace, name)) or view["status"]).get("nodeStateCounts") or {}
                yield namespace, name, {k.removesuffix("NodeCount"): v for k, v in counts.items()}

    return metrics.StatusCollector(jobs, nodes)


def event_callback(
    rt: Runtime, loop: asyncio.AbstractEventLoop, handler: EventHandler
) -> Callable[[dict[str, Any]], None]:
    """What a watch thread calls per Event: hand it to the loop."""

    def on_event(event: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(handler, rt, event)

    return on_event


async def cleanup() -> None:
    rt = current()
    await rt.close()
    install(None)
