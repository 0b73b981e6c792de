"""Output as az printed it (pure): `--query` (JMESPath, with the `jmespath` package az itself uses), then
`-o json|jsonc|table|tsv|yaml|none`.

- json: indented, keys sorted (az's order); jsonc: the same, coloured on a terminal.
- table: the verb's own columns (az's table transformers); with --query, or for a verb without
  columns, az's automatic table: one column per scalar field, headers capitalised.
- tsv: one line per item, the values of an object in key order, tab-separated; nested objects print
  nothing and lists their length (so columns stay aligned), as az's tsv did.
- yaml: keys sorted; none: nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import jmespath
import yaml
from jmespath.exceptions import JMESPathError

FORMATS = ("json", "jsonc", "table", "tsv", "yaml", "none")

# A table column: its header and how to get the cell from one row of data.
Column = tuple[str, Callable[[dict[str, Any]], Any]]


class QueryError(ValueError):
    """--query is not a valid JMESPath expression."""


def query(data: Any, expression: str) -> Any:
    """az's --query: a JMESPath expression over the output data."""
    try:
        return jmespath.search(expression, data)
    except JMESPathError as exc:
        raise QueryError(f"--query {expression!r} is not a valid JMESPath query: {exc}") from None


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
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


def _header(key: str) -> str:
    return key[:1].upper() + key[1:]


def auto_columns(rows: Sequence[Any]) -> tuple[list[dict[str, Any]], list[Column]]:
    """az's table without a transformer: scalar fields of each object, in first-seen order; a list of
    scalars is one column named Result."""
    as_dicts = [r if isinstance(r, dict) else {"Result": r} for r in rows]
    keys: list[str] = []
    for r in as_dicts:
        for k, v in r.items():
            if not isinstance(v, (dict, list)) and k not in keys:
                keys.append(k)
    return as_dicts, [(_header(k), _getter(k)) for k in keys]


def _getter(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda row: row.get(key)


def _tsv_value(value: Any) -> str:
    if isinstance(value, list):
        return str(len(value))
    if isinstance(value, dict):
        return ""
    return cell(value)


def tsv(data: Any) -> str:
    rows = data if isinstance(data, list) else [data]
    lines = []
    for row in rows:
        if isinstance(row, dict):
            lines.append("\t".join(_tsv_value(v) for _, v in sorted(row.items())))
        elif isinstance(row, list):
            lines.append("\t".join(_tsv_value(v) for v in row))
        else:
            lines.append(_tsv_value(row))
    return "".join(line + "\n" for line in lines)


_JSON_TOKEN = re.compile(
    r'("(?:[^"\\]|\\.)*")(\s*:)?|\b(true|false|null)\b|(-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)'
)


def colour(text: str) -> str:
    """jsonc: keys blue, strings green, numbers and constants yellow (ANSI)."""

    def paint(m: re.Match[str]) -> str:
        if m.group(1) is not None:
            code = "94" if m.group(2) else "32"
            return f"\033[{code}m{m.group(1)}\033[0m{m.group(2) or ''}"
        return f"\033[33m{m.group(0)}\033[0m"

    return _JSON_TOKEN.sub(paint, text)


def render(
    data: Any,
    fmt: str,
    columns: Sequence[Column] | None = None,
    expression: str | None = None,
    tty: bool = False,
) -> str:
    """`data` after --query `expression`, in the format. `columns` is the verb's table (one row per dict);
    it is not used after a query, as az dropped its table transformer then."""
    if expression:
        data = query(data, expression)
        columns = None
    if fmt == "none":
        return ""
    if fmt in ("json", "jsonc"):
        text = json.dumps(data, indent=2, sort_keys=True, default=str, ensure_ascii=False) + "\n"
        return colour(text) if fmt == "jsonc" and tty else text
    if fmt == "yaml":
        plain = json.loads(json.dumps(data, default=str))
        return str(yaml.safe_dump(plain, sort_keys=True, default_flow_style=False, allow_unicode=True))
    if fmt == "tsv":
        return tsv(data)
    if fmt == "table":
        if data is None:
            return ""
        rows = data if isinstance(data, list) else [data]
        if columns is None:
            dict_rows, auto = auto_columns(rows)
            return table(dict_rows, auto) if auto else ""
        return table(rows, columns)
    raise ValueError(f"unknown output format {fmt!r}")
