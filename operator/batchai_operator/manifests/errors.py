"""Errors a builder raises when a spec cannot become manifests; the handler turns them into status."""

from __future__ import annotations


class BuildError(Exception):
    """A spec the operator cannot run; code is a Batch AI style error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
