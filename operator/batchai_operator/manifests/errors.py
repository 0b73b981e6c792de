"""Errors a builder raises when a spec cannot become manifests; the desired step (reconcile/controller.py)
hands them to decide as data, which reports them in status."""

from __future__ import annotations


class BuildError(Exception):
    """A spec the operator cannot run; code is a Batch AI style error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
