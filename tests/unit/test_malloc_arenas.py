"""The operator caps glibc's malloc arenas at startup (reconcile/lifecycle.py): its thread pool would
otherwise keep freed memory in one arena per thread."""

from __future__ import annotations

import platform

from batchai_operator.reconcile.lifecycle import MALLOC_ARENAS, limit_malloc_arenas


def test_glibc_takes_the_arena_limit() -> None:
    assert platform.libc_ver()[0] == "glibc", "this machine and the operator image use glibc"
    assert limit_malloc_arenas(MALLOC_ARENAS) is True
