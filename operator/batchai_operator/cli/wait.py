"""`job wait`: what to say as a job changes, and the exit code (pure). As `az batchai job wait`
(docs/cli.md): state changes are logged, a failed job prints each error and exits with the
job's exit code, except that a failed job never exits 0 (az did when the exit code was missing).
"""

from __future__ import annotations

import datetime
from typing import Any

TERMINAL = ("succeeded", "failed")
# Exit code of `job wait` for a failed job without an exit code of its own (az exited -1: 255).
NO_EXIT_CODE = 255


def _time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def took(start: str | None, end: str | None) -> str:
    """Duration as az printed it (h:mm:ss), or 'unknown'."""
    a, b = _time(start), _time(end)
    if a is None or b is None:
        return "unknown"
    return str(datetime.timedelta(seconds=max(0, round((b - a).total_seconds()))))


def changes(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """Lines for what changed between two looks at a job's status (before=None: the first look)."""
    old = before or {}
    lines = []
    started = (after.get("executionInfo") or {}).get("startTime")
    if started and not (old.get("executionInfo") or {}).get("startTime"):
        lines.append(f"Job started execution at {started}")
    state = after.get("executionState")
    if state and state != old.get("executionState"):
        lines.append(f"Job state: {state}")
    return lines


def outcome(name: str, namespace: str, status: dict[str, Any]) -> tuple[int, list[str]]:
    """The exit code and closing lines for a terminal job."""
    info = status.get("executionInfo") or {}
    end, start = info.get("endTime"), info.get("startTime")
    if status.get("executionState") == "succeeded":
        return 0, [f"Job completed at {end}; execution took {took(start, end)}"]
    code = info.get("exitCode")
    lines = [f'The job "{name}" in workspace "{namespace}" failed.']
    if code is None:
        lines.append(f"Job failed with no exit code at {end}")
    else:
        lines.append(f"Job failed with exit code {code} at {end}; execution took {took(start, end)}")
    for err in info.get("errors") or []:
        lines.append(f"Error message: {err.get('code')}: {err.get('message')}")
        details = err.get("details") or []
        if details:
            lines.append("Details:")
            lines.extend(f" {d.get('name')}: {d.get('value')}" for d in details)
    return exit_code(status), lines


def exit_code(status: dict[str, Any]) -> int:
    """0 for a succeeded job; for a failed one its exit code as a process exit status (-1 is 255), never 0."""
    if status.get("executionState") == "succeeded":
        return 0
    code = (status.get("executionInfo") or {}).get("exitCode")
    if code is None:
        return NO_EXIT_CODE
    rc = int(code) & 0xFF
    return rc if rc != 0 else 1


def progress_text(name: str, status: dict[str, Any], elapsed: float) -> str:
    """The line a person watching sees: state, nodes, time waited."""
    state = status.get("executionState") or "queued"
    nodes = status.get("nodesSummary")
    reason = ""
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type", "").lower() == state:
            reason = cond.get("message") or ""
    parts = [f"{name}: {state}"]
    if nodes:
        parts.append(f"nodes {nodes}")
    if state == "queued" and reason:
        parts.append(reason)
    parts.append(str(datetime.timedelta(seconds=int(elapsed))))
    return ", ".join(parts)
