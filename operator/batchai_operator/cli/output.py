"""Output formats, as az printed them: json (indented), yaml, and tables (header, dashes, columns)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import yaml

FORMATS = ("table", "json", "yaml")

# A table column: its header and how to get the cell from one row of data.
Column = tuple[str, Callable[[dict[str, Any]], Any]]


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def table(rows: Sequence[dict[str, Any]], columns: Sequence[Column]) -> str:
    """az's table: a header, a line of dashes under each column, left-aligned cells."""
    cells = [[cell(get(r)) for _, get in columns] for r in rows]
    headers = [h for h, _ in columns]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out = [line(headers), line(["-" * w for w in widths])]
    out += [line(c) for c in cells]
    return "\n".join(out) + "\n"


def render(data: Any, fmt: str, columns: Sequence[Column] | None = None) -> str:
    """`data` (a dict or a list of dicts) in the format; table needs columns (one row per dict)."""
    if fmt == "json":
        return json.dumps(data, indent=2, default=str) + "\n"
    if fmt == "yaml":
        return str(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False))
    if fmt == "table":
        if columns is None:
            raise ValueError("no table columns for this output")
        rows = data if isinstance(data, list) else [data]
        return table(rows, columns)
    raise ValueError(f"unknown output format {fmt!r}")


def query(data: Any, path: str) -> Any:
    """The value at a dotted path (`a.b`, `a[0].b`): the part of az's --query that reads one field."""
    current = data
    for raw in path.replace("]", "").split("."):
        name, *indexes = raw.split("[")
        if name:
            if not isinstance(current, dict) or name not in current:
                return None
            current = current[name]
        for index in indexes:
            if not isinstance(current, list):
                return None
            try:
                current = current[int(index)]
            except (ValueError, IndexError):
                return None
    return current
