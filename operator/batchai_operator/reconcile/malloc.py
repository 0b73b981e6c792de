"""The process's memory and glibc's allocator: fewer arenas, and freed memory given back to the system.

Python hands large blocks (watch bodies, big dicts and lists) to glibc's malloc, which keeps what is
freed for reuse instead of returning it; a periodic malloc_trim(0) returns those free pages. What it
cannot return is Python's own partly used arenas: after 2000 jobs were deleted, make bench still saw
195 of the 201 MB peak.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import gc
import threading
import time
from collections.abc import Callable
from functools import cache

# glibc gives each thread that allocates its own malloc arena (up to 8 per core), and the client's thread
# pool then holds freed memory in dozens of them. Two arenas are enough: the threads mostly wait on sockets.
MALLOC_ARENAS = 2
M_ARENA_MAX = -8  # glibc's mallopt() parameter number (malloc.h)
# How often freed memory is given back. A trim of a few hundred MB takes milliseconds, in a thread.
TRIM_INTERVAL_SECONDS = 5.0


@cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def limit_malloc_arenas(arenas: int) -> bool:
    """mallopt(M_ARENA_MAX) before the thread pool exists (like MALLOC_ARENA_MAX, but set here so that
    every way of starting the operator gets it); False where the C library is not glibc."""
    libc = _libc()
    try:
        return bool(libc.mallopt(M_ARENA_MAX, arenas)) if libc else False
    except AttributeError:
        return False


def release_freed_memory() -> bool:
    """malloc_trim(0): free pages of every arena back to the system. True when some were released;
    False also where the C library is not glibc."""
    libc = _libc()
    try:
        return bool(libc.malloc_trim(0)) if libc else False
    except AttributeError:
        return False


async def release_freed_memory_periodically(
    stopping: threading.Event, interval: float, last_busy: Callable[[], float]
) -> None:
    """Until `stopping` is set: every `interval` seconds, trim in a thread (the loop goes on meanwhile).
    Once the operator has been idle for a whole interval after some work (`last_busy`: monotonic time of
    its last sync), a full garbage collection first: the cycles a burst left (tasks, futures, exception
    tracebacks) then go too, and the pause stalls no one."""
    loop = asyncio.get_running_loop()
    collected_at = time.monotonic()
    while not stopping.is_set():
        await asyncio.sleep(interval)
        busy = last_busy()
        if busy > collected_at and time.monotonic() - busy >= interval:
            gc.collect()
            collected_at = time.monotonic()
        await loop.run_in_executor(None, release_freed_memory)
