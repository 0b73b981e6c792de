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

FAILED_MOUNT_EVENTS = "reason=FailedMount,involvedObject.kind=Pod"
FAILED_CREATE_EVENTS = "reason=FailedCreate,involvedObject.kind=Job"
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


async def startup(settings: kopf.OperatorSettings, kwargs: Mapping[str, Any]) -> Runtime:
    """The one startup hook: settings, the runtime (with kopf's indexes from the hook's kwargs), watches."""
    configure(settings)
    # The kubernetes client is synchronous: give its calls enough threads for bursts of jobs.
    loop = asyncio.get_running_loop()
    loop.set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=32))
    kube = Kube.load()
    rt = Runtime(kube, OperatorConfig.from_env(), {name: kwargs[name] for name in idx.ALL}, AgentPoolScaler())
    install(rt)
    # Events no kopf handler sees come from narrow watches of our own (threads: the client is synchronous),
    # fed back into the loop in kopf's context (the threads have none, and Events are posted from there):
    # volumes the kubelet cannot mount, and pods the Job controller cannot create.
    for name, selector, handler in (
        ("failed-mount", FAILED_MOUNT_EVENTS, trainingjob.on_failed_mount),
        ("failed-create", FAILED_CREATE_EVENTS, trainingjob.on_failed_create),
    ):

        def deliver(event: dict[str, Any], handler: EventHandler = handler) -> None:
            loop.call_soon_threadsafe(handler, rt, event, context=rt.context)

        threading.Thread(
            target=kube.watch_events, args=(selector, deliver, rt.stopping), name=f"{name}-watch", daemon=True
        ).start()
    return rt


async def cleanup() -> None:
    rt = current()
    await rt.close()
    install(None)
