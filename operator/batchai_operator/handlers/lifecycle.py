"""kopf registrations: operator startup and cleanup."""

from __future__ import annotations

from typing import Any

import kopf

from ..reconcile import lifecycle


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, **kwargs: Any) -> None:
    """Settings, the one runtime both kinds share, and the FailedMount and FailedCreate Event watches."""
    await lifecycle.startup(settings, kwargs)


@kopf.on.cleanup()
async def cleanup(**_: Any) -> None:
    await lifecycle.cleanup()
