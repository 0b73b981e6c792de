"""The operator's use of glibc's allocator (reconcile/malloc.py): few arenas, and freed memory returned."""

from __future__ import annotations

import asyncio
import gc
import platform
import threading
import time

import pytest

from batchai_operator.reconcile.malloc import (
    MALLOC_ARENAS,
    limit_malloc_arenas,
    release_freed_memory,
    release_freed_memory_periodically,
)


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_glibc_takes_the_arena_limit() -> None:
    assert platform.libc_ver()[0] == "glibc", "this machine and the operator image use glibc"
    assert limit_malloc_arenas(MALLOC_ARENAS) is True


def test_freed_memory_goes_back_to_the_system() -> None:
    # 200 MB in 20 kB blocks: below glibc's mmap threshold, so they live in the heap, as watch bodies do.
    blocks = [bytearray(20_000) for _ in range(10_000)]
    keep = blocks[-1]  # the heap's top stays in use: only a trim (not free) can give the rest back
    before = rss_kb()
    del blocks
    assert release_freed_memory() is True
    assert rss_kb() < before - 150_000
    assert keep


def test_an_idle_operator_collects_garbage_once_per_burst_and_stops_with_the_operator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collections: list[float] = []
    monkeypatch.setattr(gc, "collect", lambda: collections.append(time.monotonic()) or 0)
    stopping = threading.Event()
    last_sync = [0.0]

    async def run() -> None:
        task = asyncio.create_task(release_freed_memory_periodically(stopping, 0.02, lambda: last_sync[0]))
        await asyncio.sleep(0.1)
        assert collections == []  # no work since it started: nothing to collect
        last_sync[0] = time.monotonic()  # a burst ends
        await asyncio.sleep(0.15)
        assert len(collections) == 1 and collections[0] - last_sync[0] >= 0.02
        stopping.set()
        await asyncio.wait_for(task, timeout=1)

    asyncio.run(run())
