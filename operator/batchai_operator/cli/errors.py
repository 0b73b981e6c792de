"""The one error type commands raise: a line for the user and the exit code."""

from __future__ import annotations


class CliError(Exception):
    """Printed as `error: <message>`; the process exits with `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code
