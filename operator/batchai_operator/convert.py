"""Batch AI job.json -> a TrainingJob manifest plus the Secrets its credentials need.

Accepts the whole file (`$schema` + `properties`, API 2018-05-01, 2018-03-01 or 2017-09-01-preview) or a
bare `properties` object, and mirrors what `az batchai job create -f job.json` did before sending it:

- `<AZURE_BATCHAI_STORAGE_ACCOUNT>` / `<AZURE_BATCHAI_STORAGE_KEY>` are replaced by the storage
  account name and key (options, else env AZURE_BATCHAI_STORAGE_ACCOUNT / AZURE_BATCHAI_STORAGE_KEY);
  other placeholders (the quickstart's `<YOUR_STORAGE_ACCOUNT>`) come from `placeholders`;
- an Azure Files share without accountName gets it from its URL's host;
- a storage mount without credentials uses the storage account key, which here goes into a Secret
  (`azurestorageaccountname` / `azurestorageaccountkey`, as the Azure Files and Blob CSI drivers read
  them) that the mount references. Inline keys, secret values and registry passwords are moved into
  Secrets too: no key material ever stays in the TrainingJob.

2018-03-01 (and 2017-09-01-preview) files: `priority` (int) becomes `schedulingPriority` (<0 low,
0 normal, >0 high), `experimentName` becomes `experiment`, and outputDirectories' `type` / `createNew` are
dropped.

Fields Batch AI's API does not have are dropped with a warning, as the az CLI's deserializer ignored them
(older recipes carry e.g. `process_count`). A CNTK job without `languageType` is left so: the model
infers the language from its fields (configFilePath alone: BrainScript), as Batch AI did.

Warnings never contain secret values: only account names, Secret names and field paths.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, TypeVar, Union, get_args, get_origin
from urllib.parse import urlparse

import yaml
from pydantic import BaseModel, ValidationError

from . import API_VERSION
from .api.cluster import BatchAIClusterSpec
from .api.trainingjob import EXPERIMENT_PATTERN, MAX_JOB_NAME, TrainingJobSpec
from .names import LABEL_CLUSTER, LABEL_MANAGED_BY, LABEL_SECRET_OF_JOB, MANAGED_BY_CLI
from .vmsizes import retirement_warning

STORAGE_ACCOUNT_PLACEHOLDER = "AZURE_BATCHAI_STORAGE_ACCOUNT"
STORAGE_KEY_PLACEHOLDER = "AZURE_BATCHAI_STORAGE_KEY"
ENV_STORAGE_ACCOUNT = "AZURE_BATCHAI_STORAGE_ACCOUNT"
ENV_STORAGE_KEY = "AZURE_BATCHAI_STORAGE_KEY"

# Keys of a storage Secret, as the Azure Files / Blob CSI drivers read them.
SECRET_ACCOUNT_NAME = "azurestorageaccountname"
SECRET_ACCOUNT_KEY = "azurestorageaccountkey"

DOCKER_HUB = "https://index.docker.io/v1/"

# Labels on the Secrets the CLI generates, so `job delete` and `kubectl get secret -l` find them.

# Read-only job properties a GET returned; dropped so a saved `az batchai job show` output converts.
READ_ONLY_FIELDS = (
    "toolType",
    "jobOutputDirectoryPathSegment",
    "creationTime",
    "provisioningState",
    "provisioningStateTransitionTime",
    "executionState",
    "executionStateTransitionTime",
    "executionInfo",
)

_PLACEHOLDER = re.compile(r"<([A-Za-z][A-Za-z0-9_]*)>")
_SCHEMA_VERSION = re.compile(r"(20\d\d-\d\d-\d\d)")
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
# Paths (as _strings spells them) of values that are moved into Secrets.
_SECRET_FIELD = re.compile(r"credentials\.(accountKey|password)$|^secrets\[\d+\]\.value$")
_LANGUAGE_TYPES = {"brainscript": "BrainScript", "python": "Python"}


class ConversionError(ValueError):
    """The job.json cannot be converted; the message says what to pass or change."""


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
    # The file the job came from, used to derive a name when `name` is not given.
    source: str | None = None


@dataclass
class ConvertOptions(StorageOptions):
    """What `az batchai job create` took on its command line, plus Kubernetes names."""

    name: str | None = None
    cluster: str | None = None
    experiment: str | None = None


@dataclass
class Conversion:
    """The result: a TrainingJob, the Secrets it needs, and what the user should know."""

    job: dict[str, Any]
    secrets: list[dict[str, Any]]
    warnings: list[str]
    api_version: str
    # account -> Secret referenced without a key to put in it (the Secret must exist already).
    missing_keys: dict[str, str] = field(default_factory=dict)

    def documents(self) -> list[dict[str, Any]]:
        """Secrets first (the job references them), then the TrainingJob."""
        return [*self.secrets, self.job]

    def to_yaml(self) -> str:
        return yaml.safe_dump_all(self.documents(), sort_keys=False, explicit_start=True)

    def to_json(self) -> str:
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": self.documents()}, indent=2) + "\n"


# Read-only cluster properties a GET returned (az batchai cluster show); dropped so saved output converts.
CLUSTER_READ_ONLY_FIELDS = (
    "allocationState",
    "allocationStateTransitionTime",
    "creationTime",
    "currentNodeCount",
    "errors",
    "nodeStateCounts",
    "provisioningState",
    "provisioningStateTransitionTime",
)


@dataclass
class ClusterOptions(StorageOptions):
    """What `az batchai cluster create` took besides -f: name, and flags that override the file."""

    name: str | None = None
    vm_size: str | None = None
    target: int | None = None  # -t: initial/target node count
    min_nodes: int | None = None
    max_nodes: int | None = None


def scale_settings(target: int | None, lo: int | None, hi: int | None) -> dict[str, Any] | None:
    """az's rule: --min == --max (or only -t) is a manual count, else autoScale with initial = -t."""
    if lo is None and hi is None:
        return None if target is None else {"manual": {"targetNodeCount": target}}
    if lo is None or hi is None:
        raise ConversionError("--min and --max go together")
    if lo > hi:
        raise ConversionError(f"--min {lo} is larger than --max {hi}")
    if lo == hi:
        return {"manual": {"targetNodeCount": lo}}
    auto: dict[str, Any] = {"minimumNodeCount": lo, "maximumNodeCount": hi}
    if target is not None:
        auto["initialNodeCount"] = target
    return {"autoScale": auto}


# ---- helpers ---------------------------------------------------------------------------------------


# A job.json is a few KiB; anything this large is not one (and would only cost memory to parse).
MAX_JOB_FILE_BYTES = 1024 * 1024


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


MAX_NESTING = 100


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


def dns_label(text: str, max_length: int = MAX_JOB_NAME) -> str:
    """The nearest DNS-1035 label: lowercase, '-' for anything else, starting with a letter."""
    out = re.sub(r"[^a-z0-9-]+", "-", text.lower())
    out = re.sub(r"-{2,}", "-", out).strip("-")
    if not out or not out[0].isalpha():
        out = f"job-{out}".rstrip("-")
    return out[:max_length].rstrip("-")


def _experiment_name(text: str) -> str:
    out = re.sub(r"[^-_A-Za-z0-9]+", "-", text)
    out = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", out)[:63]
    return re.sub(r"[^A-Za-z0-9]+$", "", out) or "default"


def _cluster_name(text: str) -> str:
    out = re.sub(r"[^a-z0-9.-]+", "-", text.lower())
    return re.sub(r"^[^a-z0-9]+|[^a-z0-9]+$", "", out)[:253]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


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


def _account_from_url(url: str) -> str | None:
    host = urlparse(url).netloc
    return host.split(".", 1)[0] if "." in host else None


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
    fields = {(f.alias or name): f for name, f in model.model_fields.items()}
    dropped: list[str] = []
    for key in list(node):
        where = f"{path}.{key}" if path else str(key)
        field_info = fields.get(key)
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


def _validation_summary(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        lines.append(f"  spec.{loc}: {err['msg']}" if loc else f"  spec: {err['msg']}")
    return "\n".join(lines)


SpecT = TypeVar("SpecT", bound=BaseModel)


def _validated(model: type[SpecT], props: dict[str, Any], problem: str) -> SpecT:
    try:
        return model.model_validate(props)
    except ValidationError as exc:
        raise ConversionError(f"the converted {problem}:\n" + _validation_summary(exc)) from None


# ---- the conversion ---------------------------------------------------------------------------------


class _Converter:
    def __init__(self, options: ConvertOptions, environ: Mapping[str, str]) -> None:
        self.opts = options
        self.warnings: list[str] = []
        self.account = options.storage_account_name or environ.get(ENV_STORAGE_ACCOUNT) or None
        self.key = options.storage_account_key or environ.get(ENV_STORAGE_KEY) or None
        self.name = ""
        # Generated Secrets are named <prefix>-storage-<account>, <prefix>-secrets, ... and labelled.
        self.prefix = ""
        self.owner_label = LABEL_SECRET_OF_JOB
        # account -> Secret the mounts reference but which holds no key the converter knew.
        self.missing_keys: dict[str, str] = {}
        # account -> (secret name, key or None)
        self.storage: dict[str, tuple[str, str | None]] = {}
        self.secret_values: dict[str, str] = {}
        self.keyvault_secrets: list[str] = []
        self.registry_secret: dict[str, Any] | None = None

    def warn(self, message: str) -> None:
        self.warnings.append(message)

    # -- entry point --

    def run(self, doc: Mapping[str, Any]) -> Conversion:
        props, version = self._split(doc)
        props = self._substitute(props)
        self._drop_read_only(props)
        self._convert_2018_03_01(props)
        self.name = self._job_name()
        self.prefix = self.name
        props["cluster"] = self._cluster(props)
        experiment = self._experiment(props)
        if experiment is not None:
            props["experiment"] = experiment
        self._normalize_case(props)
        self._drop_unknown(props)
        self._check_placeholders(props)
        self._mounts(props)
        self._secrets(props)
        self._registry(props)
        spec = _validated(TrainingJobSpec, props, "job is not a valid TrainingJob")
        metadata: dict[str, Any] = {"name": self.name}
        if self.opts.namespace:
            metadata["namespace"] = self.opts.namespace
        job = {"apiVersion": API_VERSION, "kind": "TrainingJob", "metadata": metadata, "spec": spec.wire()}
        secrets = self._secret_manifests()
        return Conversion(job, secrets, self.warnings, version, self.missing_keys)

    def run_cluster(self, doc: Mapping[str, Any], opts: ClusterOptions) -> Conversion:
        """A Batch AI cluster.json (ClusterCreateParameters) -> BatchAICluster + Secrets."""
        props, version = self._split(doc)
        props = self._substitute(props)
        dropped = [f for f in CLUSTER_READ_ONLY_FIELDS if props.pop(f, None) is not None]
        if dropped:
            self.warn(
                f"dropped read-only field(s) {', '.join(dropped)} (the operator reports them in status)"
            )
        raw = opts.name or (Path(opts.source).stem if opts.source and opts.source != "-" else "")
        if not raw:
            raise ConversionError("the cluster needs a name: pass -n/--name")
        self.name = _cluster_name(raw)
        if self.name != raw:
            self.warn(f"cluster name {raw!r} is not a Kubernetes name; using {self.name!r}")
        self.prefix = dns_label(f"{self.name}-cluster", 253)
        self.owner_label = LABEL_CLUSTER
        if opts.vm_size:
            props["vmSize"] = opts.vm_size
        scale = scale_settings(opts.target, opts.min_nodes, opts.max_nodes)
        if scale is not None:
            props["scaleSettings"] = scale
        users = props.get("userAccountSettings")
        if isinstance(users, dict) and users.pop("adminUserPassword", None) is not None:
            self.warn("userAccountSettings.adminUserPassword dropped: AKS nodes are not reached over SSH")
        node_setup = props.get("nodeSetup")
        if isinstance(node_setup, dict):
            counters = node_setup.get("performanceCountersSettings") or {}
            insights = counters.get("appInsightsReference") if isinstance(counters, dict) else None
            if isinstance(insights, dict) and insights.pop("instrumentationKey", None) is not None:
                self.warn(
                    "the Application Insights instrumentationKey was dropped: counters are not sent here"
                )
        self._check_placeholders(props)
        if isinstance(node_setup, dict):
            self._mounts(node_setup)
            if isinstance(node_setup.get("setupTask"), dict):
                self._secrets(node_setup["setupTask"])
        spec = _validated(BatchAIClusterSpec, props, "cluster is not a valid BatchAICluster")
        retired = retirement_warning(spec.vm_size)
        if retired:
            self.warn(retired)
        metadata: dict[str, Any] = {"name": self.name}
        if opts.namespace:
            metadata["namespace"] = opts.namespace
        cluster = {
            "apiVersion": API_VERSION,
            "kind": "BatchAICluster",
            "metadata": metadata,
            "spec": spec.wire(),
        }
        secrets = self._secret_manifests()
        return Conversion(cluster, secrets, self.warnings, version, self.missing_keys)

    # -- steps --

    def _split(self, doc: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
        if isinstance(doc.get("properties"), dict):
            props = copy.deepcopy(doc["properties"])
            schema = str(doc.get("$schema") or "")
            ignored = sorted(k for k in doc if k not in ("$schema", "properties"))
            if ignored:
                self.warn(
                    f"ignored top-level field(s) {', '.join(ignored)}: only `properties` describes the job"
                )
        else:
            props = copy.deepcopy(dict(doc))
            schema = str(props.pop("$schema", "") or "")
        m = _SCHEMA_VERSION.search(schema)
        if m:
            version = m.group(1)
        else:
            version = "2018-03-01" if ("priority" in props or "experimentName" in props) else "2018-05-01"
        # 2017-09-01-preview (the first recipes' $schema) has 2018-03-01's fields: converted the same way.
        if version not in ("2017-09-01", "2018-03-01", "2018-05-01"):
            self.warn(f"$schema names API version {version}; converting it as 2018-05-01")
        return props, version

    def _substitute(self, props: dict[str, Any]) -> dict[str, Any]:
        values = dict(self.opts.placeholders)
        if self.account:
            values.setdefault(STORAGE_ACCOUNT_PLACEHOLDER, self.account)

        def sub(text: str) -> str:
            return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)

        out: dict[str, Any] = _walk_strings(props, sub)
        return out

    def _drop_read_only(self, props: dict[str, Any]) -> None:
        dropped = [f for f in READ_ONLY_FIELDS if props.pop(f, None) is not None]
        if dropped:
            self.warn(
                f"dropped read-only field(s) {', '.join(dropped)} (the operator reports them in status)"
            )

    def _convert_2018_03_01(self, props: dict[str, Any]) -> None:
        if "priority" in props:
            priority = props.pop("priority")
            if "schedulingPriority" in props:
                self.warn("2018-03-01 `priority` ignored: schedulingPriority is set")
            elif isinstance(priority, str) and priority.lower() in ("low", "normal", "high"):
                props["schedulingPriority"] = priority.lower()
            else:
                try:
                    value = int(priority)
                except (TypeError, ValueError):
                    raise ConversionError(f"priority must be an integer, not {priority!r}") from None
                props["schedulingPriority"] = "low" if value < 0 else "high" if value > 0 else "normal"
                if value:
                    self.warn(
                        f"2018-03-01 priority {value} became schedulingPriority {props['schedulingPriority']}"
                    )
        if "experimentName" in props:
            name = props.pop("experimentName")
            if "experiment" not in props and name:
                props["experiment"] = name
        for i, out in enumerate(props.get("outputDirectories") or []):
            if isinstance(out, dict):
                gone = [k for k in ("type", "createNew") if k in out]
                for k in gone:
                    out.pop(k)
                if gone:
                    self.warn(
                        f"outputDirectories[{i}] ({out.get('id')}): dropped 2018-03-01 field(s) "
                        f"{', '.join(gone)}; output directories are created on first write"
                    )

    def _job_name(self) -> str:
        raw = self.opts.name
        if not raw:
            raw = "job"
            if self.opts.source and self.opts.source != "-":
                path = Path(self.opts.source)
                raw = (
                    path.stem
                    if path.stem.lower() not in ("job", "")
                    else (path.resolve().parent.name or "job")
                )
        name = dns_label(raw)
        if name != raw:
            self.warn(
                f"job name {raw!r} is not a Kubernetes name; using {name!r} "
                f"(lowercase letters, digits and '-', at most {MAX_JOB_NAME})"
            )
        return name

    def _cluster(self, props: dict[str, Any]) -> str:
        raw: Any = self.opts.cluster or props.get("cluster")
        if isinstance(raw, dict):
            raw = raw.get("id")
        if not raw or not isinstance(raw, str):
            raise ConversionError(
                "the job names no cluster: pass -c/--cluster with the BatchAICluster name (az batchai's -c)"
            )
        head, sep, last = raw.rstrip("/").rpartition("/")
        if _DNS_SUBDOMAIN.match(last) and (not sep or head.lower().endswith("/clusters")):
            return raw.rstrip("/")
        name = _cluster_name(last)
        if not name:
            raise ConversionError(f"cannot derive a BatchAICluster name from cluster {raw!r}")
        self.warn(f"cluster {raw!r}: using BatchAICluster {name!r} (Kubernetes names are lowercase)")
        return name

    def _experiment(self, props: dict[str, Any]) -> str | None:
        raw = self.opts.experiment or props.get("experiment")
        if raw is None:
            return None
        raw = str(raw)
        if re.match(EXPERIMENT_PATTERN, raw):
            return raw
        name = _experiment_name(raw)
        self.warn(f"experiment {raw!r} is not a valid label value; using {name!r}")
        return name

    def _normalize_case(self, props: dict[str, Any]) -> None:
        if isinstance(props.get("schedulingPriority"), str):
            props["schedulingPriority"] = props["schedulingPriority"].lower()
        cntk = props.get("cntkSettings")
        if isinstance(cntk, dict) and isinstance(cntk.get("languageType"), str):
            cntk["languageType"] = _LANGUAGE_TYPES.get(cntk["languageType"].lower(), cntk["languageType"])

    def _drop_unknown(self, props: dict[str, Any]) -> None:
        dropped = drop_unknown_fields(props, TrainingJobSpec)
        if dropped:
            self.warn(
                f"ignored field(s) Batch AI's API does not have: {', '.join(dropped)} "
                "(az batchai job create ignored them too)"
            )

    # -- storage --

    def _mounts(self, props: dict[str, Any]) -> None:
        volumes = props.get("mountVolumes")
        if not isinstance(volumes, dict):
            return
        shares = volumes.get("azureFileShares") or []
        blobs = volumes.get("azureBlobFileSystems") or []
        for i, ref in enumerate(shares):
            where = f"mountVolumes.azureFileShares[{i}]"
            if not ref.get("accountName"):
                account = _account_from_url(str(ref.get("azureFileUrl") or ""))
                if not account:
                    raise ConversionError(f"{where}: no accountName and none in azureFileUrl")
                ref["accountName"] = account
        for i, ref in enumerate(blobs):
            if not ref.get("accountName"):
                raise ConversionError(f"mountVolumes.azureBlobFileSystems[{i}]: no accountName")

        accounts = sorted({str(r["accountName"]) for r in [*shares, *blobs]})
        primary = self.account
        if primary is None and len(accounts) == 1:
            primary = accounts[0]
        if self.opts.storage_secret and primary is None and accounts:
            raise ConversionError(
                f"--storage-secret is ambiguous with several storage accounts ({', '.join(accounts)}): "
                "pass --storage-account-name too"
            )
        if self.key and primary is None and accounts:
            self.warn(
                f"the storage key given cannot be matched to one of the accounts {', '.join(accounts)}: "
                "pass --storage-account-name"
            )

        for group, refs in (("azureFileShares", shares), ("azureBlobFileSystems", blobs)):
            for i, ref in enumerate(refs):
                self._credentials(f"mountVolumes.{group}[{i}]", ref, primary)

    def _credentials(self, where: str, ref: dict[str, Any], primary: str | None) -> None:
        account = str(ref["accountName"])
        creds = ref.get("credentials") or {}
        if not isinstance(creds, dict):
            raise ConversionError(f"{where}.credentials must be an object")
        if creds.get("secretRef") or creds.get("workloadIdentity"):
            kept = {k: v for k, v in creds.items() if k in ("secretRef", "workloadIdentity")}
            if set(creds) - set(kept):
                self.warn(f"{where}: ignored inline credentials; secretRef/workloadIdentity is used")
            ref["credentials"] = kept
            return
        key: str | None = None
        if creds.get("accountKey"):
            key = str(creds["accountKey"])
            if key == f"<{STORAGE_KEY_PLACEHOLDER}>":
                if not self.key:
                    raise ConversionError(
                        f"{where}: the job uses <{STORAGE_KEY_PLACEHOLDER}>: pass --storage-account-key-file "
                        f"or set {ENV_STORAGE_KEY}"
                    )
                key = self.key
            elif _PLACEHOLDER.fullmatch(key):
                raise ConversionError(
                    f"{where}: unresolved placeholder in credentials.accountKey: pass "
                    "--storage-account-key-file or --placeholder NAME=VALUE"
                )
        elif creds.get("accountKeySecretReference"):
            self.warn(f"{where}: the key of account {account!r} is in Key Vault, which is not read here")
        elif account == primary:
            key = self.key

        if account == primary and self.opts.storage_secret:
            secret = self.opts.storage_secret
        else:
            secret = dns_label(f"{self.prefix}-storage-{account}", 253)
        known = self.storage.get(account)
        if known is not None:
            if key is not None and known[1] is not None and key != known[1]:
                raise ConversionError(
                    f"{where}: a different key for storage account {account!r} than another mount"
                )
            key = key if key is not None else known[1]
        self.storage[account] = (secret, key)
        ref["credentials"] = {"secretRef": {"name": secret}}

    # -- secrets[] and the registry --

    def _secrets(self, props: dict[str, Any]) -> None:
        for i, item in enumerate(props.get("secrets") or []):
            if not isinstance(item, dict) or item.get("secretRef"):
                continue
            name = str(item.get("name") or "")
            if "value" in item:
                value = item.pop("value")
                self.secret_values[name] = "" if value is None else str(value)
                item["secretRef"] = {"name": f"{self.prefix}-secrets", "key": name}
            elif "valueSecretReference" in item:
                item.pop("valueSecretReference")
                self.keyvault_secrets.append(name)
                item["secretRef"] = {"name": f"{self.prefix}-keyvault", "key": name}
                self.warn(
                    f"secrets[{i}] ({name}): its value is in Key Vault, which is not read here; "
                    f"create Secret {self.prefix}-keyvault with key {name} before the job starts"
                )

    def _registry(self, props: dict[str, Any]) -> None:
        registry = (props.get("containerSettings") or {}).get("imageSourceRegistry") or {}
        creds = registry.get("credentials")
        if not isinstance(creds, dict) or creds.get("secretRef"):
            return
        secret = f"{self.prefix}-registry"
        server = registry.get("serverUrl") or DOCKER_HUB
        username = creds.get("username")
        if creds.get("password") is not None:
            if not username:
                raise ConversionError(
                    "containerSettings.imageSourceRegistry.credentials: a password needs a username"
                )
            password = str(creds.pop("password"))
            auth = _b64(f"{username}:{password}")
            config = {"auths": {server: {"username": username, "password": password, "auth": auth}}}
            self.registry_secret = {
                "name": secret,
                "data": {".dockerconfigjson": _b64(json.dumps(config, separators=(",", ":")))},
            }
        elif creds.get("passwordSecretReference") is not None:
            creds.pop("passwordSecretReference")
            self.warn(
                "containerSettings.imageSourceRegistry.credentials: the password is in Key Vault, which is "
                f"not read here; create it with: kubectl create secret docker-registry {secret} "
                f"--docker-server={server} --docker-username={username or '<user>'} --docker-password=..."
            )
        else:
            return
        creds["secretRef"] = {"name": secret}

    def _check_placeholders(self, props: dict[str, Any]) -> None:
        """Fail on <NAME>s left over, except in the secret fields (checked as they are moved)."""
        found: dict[str, str] = {}
        for path, text in _strings(props):
            if _SECRET_FIELD.search(path):
                continue
            for m in _PLACEHOLDER.finditer(text):
                found.setdefault(m.group(1), path)
        if not found:
            return
        hints = []
        for name, path in sorted(found.items()):
            if name == STORAGE_ACCOUNT_PLACEHOLDER:
                hints.append(
                    f"<{name}> (in {path}): pass --storage-account-name or set {ENV_STORAGE_ACCOUNT}"
                )
            else:
                hints.append(f"<{name}> (in {path}): pass --placeholder {name}=VALUE")
        raise ConversionError("unresolved placeholder(s):\n  " + "\n  ".join(hints))

    # -- output --

    def _meta(self, name: str) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": name,
            "labels": {LABEL_MANAGED_BY: MANAGED_BY_CLI, self.owner_label: self.name},
        }
        if self.opts.namespace:
            meta["namespace"] = self.opts.namespace
        return meta

    def _secret_manifests(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        user_secret = self.opts.storage_secret
        for account, (secret, key) in sorted(self.storage.items()):
            if key is None:
                self.missing_keys[account] = secret
                if secret == user_secret:
                    self.warn(
                        f"storage account {account!r}: using Secret {secret!r}, which must already exist"
                    )
                else:
                    self.warn(
                        f"storage account {account!r}: no key known, so Secret {secret!r} is referenced "
                        "but not generated; pass --storage-account-key-file (with --storage-account-name "
                        f"{account}) or create it: kubectl create secret generic {secret} "
                        f"--from-literal={SECRET_ACCOUNT_NAME}={account} "
                        f"--from-literal={SECRET_ACCOUNT_KEY}=..."
                    )
                continue
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": self._meta(secret),
                    "type": "Opaque",
                    "data": {SECRET_ACCOUNT_NAME: _b64(account), SECRET_ACCOUNT_KEY: _b64(key)},
                }
            )
        if self.secret_values:
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": self._meta(f"{self.prefix}-secrets"),
                    "type": "Opaque",
                    "data": {k: _b64(v) for k, v in self.secret_values.items()},
                }
            )
        if self.registry_secret is not None:
            out.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": self._meta(self.registry_secret["name"]),
                    "type": "kubernetes.io/dockerconfigjson",
                    "data": self.registry_secret["data"],
                }
            )
        return out


def convert(
    doc: Mapping[str, Any],
    options: ConvertOptions | None = None,
    environ: Mapping[str, str] | None = None,
) -> Conversion:
    """Convert a parsed job.json (whole file or bare properties). Raises ConversionError."""
    if not isinstance(doc, Mapping):
        raise ConversionError("a job file must be a JSON object")
    return _Converter(options or ConvertOptions(), os.environ if environ is None else environ).run(doc)


def _read_limited(path: str) -> bytes:
    """At most one byte more than a job file may have ('-': standard input)."""
    if path != "-":
        with Path(path).open("rb") as f:
            return f.read(MAX_JOB_FILE_BYTES + 1)
    stdin: Any = sys.stdin
    if hasattr(stdin, "buffer"):
        return bytes(stdin.buffer.read(MAX_JOB_FILE_BYTES + 1))
    return str(stdin.read(MAX_JOB_FILE_BYTES + 1)).encode()


def convert_cluster_file(
    path: str, options: ClusterOptions, environ: Mapping[str, str] | None = None
) -> Conversion:
    """Read and convert a Batch AI cluster.json ('-' reads standard input); `job` holds the cluster."""
    text = decode_job_file(_read_limited(path))
    if options.source is None:
        options.source = path
    doc = load_job_file(text)
    opts = ConvertOptions(**{f.name: getattr(options, f.name) for f in fields(StorageOptions)})
    converter = _Converter(opts, os.environ if environ is None else environ)
    return converter.run_cluster(doc, options)


def convert_file(
    path: str, options: ConvertOptions | None = None, environ: Mapping[str, str] | None = None
) -> Conversion:
    """Read and convert a job.json file ('-' reads standard input)."""
    text = decode_job_file(_read_limited(path))
    opts = options or ConvertOptions()
    if opts.source is None:
        opts.source = path
    return convert(load_job_file(text), opts, environ)
