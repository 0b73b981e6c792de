"""Starting and stopping the operator: kopf's settings, the one runtime, and the FailedMount watch."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import kopf

from ..config import OperatorConfig
from ..kube import Kube
from ..names import DOMAIN, FINALIZER
from ..scaling import AgentPoolScaler
from . import indexes as idx
from . import trainingjob
from .runtime import Runtime, current, install


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


def quiet_client_logs() -> None:
    """Even with --debug (chart logLevel: debug), the kubernetes client never logs request or response
    bodies: some of its versions do at DEBUG, and the bodies of the SSH key Secrets hold private keys."""
    logging.getLogger("kubernetes.client.rest").setLevel(logging.INFO)


async def startup(settings: kopf.OperatorSettings, kwargs: Mapping[str, Any]) -> Runtime:
    """The one startup hook: settings, the runtime (with kopf's indexes from the hook's kwargs), watches."""
    configure(settings)
    # The kubernetes client is synchronous: give its calls enough threads for bursts of jobs.
    loop = asyncio.get_running_loop()
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=32))
    kube = Kube.load()
    rt = Runtime(kube, OperatorConfig.from_env(), {name: kwargs[name] for name in idx.ALL}, AgentPoolScaler())
    install(rt)
    # The kubelets' FailedMount Events come from a narrow watch of our own (one per watched namespace, or
    # one for all), fed back into the loop in kopf's context (the watch thread has none, and Events are
    # posted from there).
    namespaces: list[str | None] = [*rt.config.watch_namespaces] or [None]
    for namespace in namespaces:
        threading.Thread(
            target=kube.watch_failed_mounts,
            args=(failed_mount_callback(rt, loop), rt.stopping, namespace),
            name=f"failed-mount-watch-{namespace or 'all'}",
            daemon=True,
        ).start()
    return rt


def failed_mount_callback(rt: Runtime, loop: asyncio.AbstractEventLoop) -> Callable[[dict[str, Any]], None]:
    """What the watch thread calls per Event: hand it to the loop, run in kopf's context."""

    def on_event(event: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(trainingjob.on_failed_mount, rt, event, context=rt.context)

    return on_event


async def cleanup() -> None:
    rt = current()
    await rt.close()
    install(None)
