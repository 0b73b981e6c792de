"""A Batch AI job.json or cluster.json as a document: reading it safely, its `properties` and API version,
placeholders, fields Batch AI's API does not have, and validation against the pydantic models (pure,
besides reading the file).
"""

from __future__ import annotations

import copy
import json
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from ...api.trainingjob import MAX_JOB_NAME
from ...names import ENV_STORAGE_ACCOUNT

PLACEHOLDER = re.compile(r"<([A-Za-z][A-Za-z0-9_]*)>")
_SCHEMA_VERSION = re.compile(r"(20\d\d-\d\d-\d\d)")
# Paths (as _strings spells them) of values that are moved into Secrets: not scanned for placeholders.
_SECRET_FIELD = re.compile(r"credentials\.(accountKey|password)$|^secrets\[\d+\]\.value$")

# A job.json is a few KiB; anything this large is not one (and would only cost memory to parse).
MAX_JOB_FILE_BYTES = 1024 * 1024
MAX_NESTING = 100

Warn = Callable[[str], None]


class ConversionError(ValueError):
    """The file cannot be converted; the message says what to pass or change."""


@dataclass
class StorageOptions:
    """What a job.json or cluster.json is converted with: its namespace, the storage account (az's
    --storage-account-name/-key) and placeholders."""

    namespace: str | None = None
    storage_account_name: str | None = None
    storage_account_key: str | None = None
    # Existing (or to-be-created) Secret for the storage account, instead of a generated one.
    storage_secret: str | None = None
    # <NAME> -> value, for placeholders other than the two az CLI ones.
    placeholders: dict[str, str] = field(default_factory=dict)
    # The file the object came from, used to derive a name when none is given.
    source: str | None = None


@dataclass
class Conversion:
    """The result: the object (a TrainingJob or a BatchAICluster), the Secrets it needs, and what the
    user should know."""

    obj: dict[str, Any]
    secrets: list[dict[str, Any]]
    warnings: list[str]
    api_version: str
    # account -> Secret referenced without a key to put in it (the Secret must exist already).
    missing_keys: dict[str, str] = field(default_factory=dict)

    def documents(self) -> list[dict[str, Any]]:
        """Secrets first (the object references them), then the object."""
        return [*self.secrets, self.obj]

    def to_yaml(self) -> str:
        return yaml.safe_dump_all(self.documents(), sort_keys=False, explicit_start=True)

    def to_json(self) -> str:
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": self.documents()}, indent=2) + "\n"


class Converter:
    """One conversion's inputs and the warnings it collects (job.py and cluster.py convert each kind)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        self.warnings.append(message)


# ---- reading ------------------------------------------------------------------------------------------


def decode_job_file(data: bytes) -> str:
    """The text of a job file: UTF-8 (with or without a BOM), or UTF-16 with a BOM (Windows editors)."""
    if len(data) > MAX_JOB_FILE_BYTES:
        raise ConversionError(f"the job file is {len(data) // 1024} KiB; a job.json is at most 1024 KiB")
    encoding = "utf-16" if data.startswith((b"\xff\xfe", b"\xfe\xff")) else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise ConversionError(
            f"the job file is not UTF-8 or UTF-16 text (byte {exc.start} cannot be read)"
        ) from None


def load_job_file(text: str) -> dict[str, Any]:
    """Parse a job.json (JSON; YAML accepted too). Errors give the line and column only: the line itself
    may hold a storage key."""
    try:
        doc = json.loads(text)
    except RecursionError:
        raise ConversionError("the job file is nested too deeply to be a job.json") from None
    except json.JSONDecodeError as json_error:
        doc = _load_yaml(text, json_error)
    if not isinstance(doc, dict):
        raise ConversionError("a job file must be a JSON object")
    return doc


def _nesting(text: str) -> int:
    """The deepest bracket nesting (quotes ignored: a bound, not a parser). PyYAML's scanner takes
    quadratic time on deeply nested flow collections, so depth is checked before it runs."""
    depth = deepest = 0
    for ch in text:
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth = max(0, depth - 1)
    return deepest


def _load_yaml(text: str, json_error: json.JSONDecodeError) -> Any:
    if _nesting(text) > MAX_NESTING:
        raise ConversionError("the job file is nested too deeply to be a job.json")
    try:
        # Anchors and aliases have no place in a job file, and a few of them can expand into billions of
        # nodes (the "billion laughs"): refuse them before anything is built.
        if any(isinstance(e, yaml.AliasEvent) for e in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise ConversionError("the job file uses YAML aliases ('*name'), which a job.json cannot have")
        return yaml.safe_load(text)
    except RecursionError:
        raise ConversionError("the job file is nested too deeply to be a job.json") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        raise ConversionError(
            f"not a JSON job file (JSON: {json_error.msg} at line {json_error.lineno}, column "
            f"{json_error.colno}; as YAML: {getattr(exc, 'problem', None) or 'invalid'} at {where})"
        ) from None


def read_limited(path: str) -> bytes:
    """At most one byte more than a job file may have ('-': standard input)."""
    if path != "-":
        with Path(path).open("rb") as f:
            return f.read(MAX_JOB_FILE_BYTES + 1)
    stdin: Any = sys.stdin
    if hasattr(stdin, "buffer"):
        return bytes(stdin.buffer.read(MAX_JOB_FILE_BYTES + 1))
    return str(stdin.read(MAX_JOB_FILE_BYTES + 1)).encode()


def read_document(path: str) -> dict[str, Any]:
    """Read and parse a job.json or cluster.json ('-': standard input)."""
    return load_job_file(decode_job_file(read_limited(path)))


# ---- the document's parts -------------------------------------------------------------------------------


def split(doc: Mapping[str, Any], warn: Warn) -> tuple[dict[str, Any], str]:
    """(a copy of the properties, the API version): the whole file ($schema + properties) or bare
    properties. 2017-09-01-preview (the first recipes' $schema) has 2018-03-01's fields."""
    if isinstance(doc.get("properties"), dict):
        props = copy.deepcopy(doc["properties"])
        schema = str(doc.get("$schema") or "")
        ignored = sorted(k for k in doc if k not in ("$schema", "properties"))
        if ignored:
            warn(f"ignored top-level field(s) {', '.join(ignored)}: only `properties` describes the job")
    else:
        props = copy.deepcopy(dict(doc))
        schema = str(props.pop("$schema", "") or "")
    m = _SCHEMA_VERSION.search(schema)
    if m:
        version = m.group(1)
    else:
        version = "2018-03-01" if ("priority" in props or "experimentName" in props) else "2018-05-01"
    if version not in ("2017-09-01", "2018-03-01", "2018-05-01"):
        warn(f"$schema names API version {version}; converting it as 2018-05-01")
    return props, version


def _walk_strings(node: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(node, str):
        return fn(node)
    if isinstance(node, list):
        return [_walk_strings(v, fn) for v in node]
    if isinstance(node, dict):
        return {k: _walk_strings(v, fn) for k, v in node.items()}
    return node


def _strings(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(node, str):
        yield path, node
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from _strings(v, f"{path}.{k}" if path else k)


def substitute(props: dict[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """<NAME> replaced by values[NAME] in every string; unknown placeholders are left."""

    def sub(text: str) -> str:
        return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)

    out: dict[str, Any] = _walk_strings(props, sub)
    return out


def check_placeholders(props: dict[str, Any]) -> None:
    """Fail on <NAME>s left over, except in the secret fields (checked as they are moved)."""
    found: dict[str, str] = {}
    for path, text in _strings(props):
        if _SECRET_FIELD.search(path):
            continue
        for m in PLACEHOLDER.finditer(text):
            found.setdefault(m.group(1), path)
    if not found:
        return
    hints = []
    for name, path in sorted(found.items()):
        if name == ENV_STORAGE_ACCOUNT:
            hints.append(f"<{name}> (in {path}): pass --storage-account-name or set {ENV_STORAGE_ACCOUNT}")
        else:
            hints.append(f"<{name}> (in {path}): pass --placeholder {name}=VALUE")
    raise ConversionError("unresolved placeholder(s):\n  " + "\n  ".join(hints))


def drop_read_only(props: dict[str, Any], read_only: tuple[str, ...], warn: Warn) -> None:
    """Remove the fields a GET returned (so a saved `az batchai ... show` output converts)."""
    dropped = [f for f in read_only if props.pop(f, None) is not None]
    if dropped:
        warn(f"dropped read-only field(s) {', '.join(dropped)} (the operator reports them in status)")


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside a field annotation (X, X | None, list[X] | None), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = get_origin(annotation)
    if origin in (Union, UnionType, list, Annotated):
        for arg in get_args(annotation):
            found = _model_of(arg)
            if found is not None:
                return found
    return None


def drop_unknown_fields(node: Any, model: type[BaseModel], path: str = "") -> list[str]:
    """Remove (in place) keys the model does not know, recursively; return their paths. The az CLI read
    job.json with the SDK's deserializer, which ignores such keys, so Batch AI never saw them."""
    if not isinstance(node, dict):
        return []
    known = {(f.alias or name): f for name, f in model.model_fields.items()}
    dropped: list[str] = []
    for key in list(node):
        where = f"{path}.{key}" if path else str(key)
        field_info = known.get(key)
        if field_info is None:
            node.pop(key)
            dropped.append(where)
            continue
        sub = _model_of(field_info.annotation)
        if sub is None:
            continue
        value = node[key]
        if isinstance(value, list):
            for i, item in enumerate(value):
                dropped.extend(drop_unknown_fields(item, sub, f"{where}[{i}]"))
        else:
            dropped.extend(drop_unknown_fields(value, sub, where))
    return dropped


SpecT = TypeVar("SpecT", bound=BaseModel)


def validated(model: type[SpecT], props: dict[str, Any], problem: str) -> SpecT:
    try:
        return model.model_validate(props)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"])
            lines.append(f"  spec.{loc}: {err['msg']}" if loc else f"  spec: {err['msg']}")
        raise ConversionError(f"the converted {problem}:\n" + "\n".join(lines)) from None


# ---- names ----------------------------------------------------------------------------------------------


def dns_label(text: str, max_length: int = MAX_JOB_NAME) -> str:
    """The nearest DNS-1035 label: lowercase, '-' for anything else, starting with a letter."""
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower())
    out = re.sub(r"-{2,}", "-", out).strip("-")
    if not out or not out[0].isalpha():
        out = f"job-{out}".rstrip("-")
    return out[:max_length].rstrip("-")


def dns_subdomain(text: str) -> str:
    """The nearest DNS subdomain name for a BatchAICluster (Batch AI allowed '_' and upper case)."""
    out = re.sub(r"[^a-z0-9.-]+", "-", text.lower())
    return re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", out)[:253]
