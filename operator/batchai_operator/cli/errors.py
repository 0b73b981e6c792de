"""The error types commands raise: a line for the user and az's exit code."""

from __future__ import annotations

# az's exit codes: 1 an error, 2 a command-line usage error (argparse), 3 the resource does not exist.
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3


class CliError(Exception):
    """Printed as `error: <message>`; the process exits with `code`."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


class NotFound(CliError):
    """The named workspace, cluster, experiment or job does not exist (az's ResourceNotFoundError)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_NOT_FOUND)
