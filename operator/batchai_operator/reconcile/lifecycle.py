"""Starting and stopping the operator: kopf's settings, the one runtime, and the Event watches."""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import ctypes.util
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import kopf

from .. import metrics
from ..config import OperatorConfig
from ..kube import FAILED_CREATE_EVENTS, FAILED_MOUNT_EVENTS, Kube
from ..names import DOMAIN, FINALIZER
from ..scaling import AgentPoolScaler
from . import indexes as idx
from . import trainingjob
from .runtime import Runtime, current, install

# Status writes that change no state at most once a second per object; node and pod bursts make one
# cluster sync per quarter second (the performance targets: few writes per job, little CPU per event).
STATUS_INTERVAL_SECONDS = 1.0
COALESCE_SECONDS = 0.25
# glibc gives each thread that allocates its own malloc arena (up to 8 per core), and the client's
# thread pool below then holds freed memory in dozens of them. Two arenas are enough (the threads mostly
# wait on sockets); peak RSS at 2000 jobs in make bench fell from 471 to 284 MB with this and the other
# changes of that stop (not measured alone), and it still does not fall after the jobs are deleted.
MALLOC_ARENAS = 2
M_ARENA_MAX = -8  # glibc's mallopt() parameter number (malloc.h)
EventHandler = Callable[[Runtime, Mapping[str, Any]], None]


def configure(settings: kopf.OperatorSettings) -> None:
    # kopf's own state (finalizer, progress, diff base) under our domain, not kopf.zalando.org.
    settings.persistence.finalizer = FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=DOMAIN)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=DOMAIN, key="last-handled-configuration"
    )
    # Events are posted explicitly (one per state change); handler log lines never become Events.
    settings.posting.level = logging.CRITICAL + 1
    settings.networking.request_timeout = 30
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    quiet_client_logs()


def limit_malloc_arenas(arenas: int) -> bool:
    """mallopt(M_ARENA_MAX) before the thread pool exists (like MALLOC_ARENA_MAX, but set here so that
    every way of starting the operator gets it); False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        return bool(ctypes.CDLL(name).mallopt(M_ARENA_MAX, arenas)) if name else False
    except (OSError, AttributeError):
        return False


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
    # The kubernetes client is synchronous: give its calls enough threads for bursts of jobs.
    loop = asyncio.get_running_loop()
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=32))
    kube = Kube.load()
    rt = Runtime(
        kube,
        OperatorConfig.from_env(),
        {name: kwargs[name] for name in idx.ALL},
        AgentPoolScaler(),
        status_interval=STATUS_INTERVAL_SECONDS,
        coalesce_seconds=COALESCE_SECONDS,
    )
    install(rt)
    metrics.serve(int(os.environ.get("BATCHAI_METRICS_PORT") or 0), status_collector(rt))
    # Events no kopf handler sees come from narrow watches of our own (threads: the client is synchronous;
    # one per watched namespace, or one for all), fed back into the loop in kopf's context (the threads
    # have none, and Events are posted from there): volumes the kubelet cannot mount, and pods the Job
    # controller cannot create.
    namespaces: list[str | None] = [*rt.config.watch_namespaces] or [None]
    for namespace in namespaces:
        for name, selector, handler in (
            ("failed-mount", FAILED_MOUNT_EVENTS, trainingjob.on_failed_mount),
            ("failed-create", FAILED_CREATE_EVENTS, trainingjob.on_failed_create),
        ):
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
        for uid, store in list(rt.indexes[idx.TRAININGJOBS].items()):
            for view in store:
                status = rt.written.get(uid) or view["status"]
                spec = view["spec"]
                yield status.get("executionState") or "none", spec.tool_type if spec else "unknown"

    def nodes() -> Iterable[tuple[str, str, dict[str, int]]]:
        for (namespace, name), store in list(rt.indexes[idx.CLUSTERS].items()):
            for view in store:
                counts = (rt.written.get((namespace, name)) or view["status"]).get("nodeStateCounts") or {}
                yield namespace, name, {k.removesuffix("NodeCount"): v for k, v in counts.items()}

    return metrics.StatusCollector(jobs, nodes)


def event_callback(
    rt: Runtime, loop: asyncio.AbstractEventLoop, handler: EventHandler
) -> Callable[[dict[str, Any]], None]:
    """What a watch thread calls per Event: hand it to the loop, run in kopf's context."""

    def on_event(event: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(handler, rt, event, context=rt.context)

    return on_event


def failed_mount_callback(rt: Runtime, loop: asyncio.AbstractEventLoop) -> Callable[[dict[str, Any]], None]:
    return event_callback(rt, loop, trainingjob.on_failed_mount)


async def cleanup() -> None:
    rt = current()
    await rt.close()
    install(None)
