"""Batch AI job.json -> a TrainingJob manifest plus the Secrets its credentials need (pure, besides
reading the file).

Accepts the whole file (`$schema` + `properties`, API 2018-05-01, 2018-03-01 or 2017-09-01-preview) or a
bare `properties` object, and mirrors what `az batchai job create -f job.json` did before sending it:

- `<AZURE_BATCHAI_STORAGE_ACCOUNT>` / `<AZURE_BATCHAI_STORAGE_KEY>` are replaced by the storage
  account name and key (options, else env AZURE_BATCHAI_STORAGE_ACCOUNT / AZURE_BATCHAI_STORAGE_KEY);
  other placeholders (the quickstart's `<YOUR_STORAGE_ACCOUNT>`) come from `placeholders`;
- an Azure Files share without accountName gets it from its URL's host;
- keys, secret values and registry passwords move into Secrets (secrets.py).

2018-03-01 (and 2017-09-01-preview) files: `priority` (int) becomes `schedulingPriority` (<0 low,
0 normal, >0 high), `experimentName` becomes `experiment`, and outputDirectories' `type` / `createNew` are
dropped.

Fields Batch AI's API does not have are dropped with a warning, as the az CLI's deserializer ignored them
(older recipes carry e.g. `process_count`). A CNTK job without `languageType` is left so: the model
infers the language from its fields (configFilePath alone: BrainScript), as Batch AI did.

A Batch AI job name that is not a Kubernetes name (`cntk_python_1`) is kept in the annotation
`batchai.io/name`; the TrainingJob is named with the nearest DNS label (`cntk-python-1`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import API_VERSION
from ...api.trainingjob import EXPERIMENT_PATTERN, MAX_JOB_NAME, TrainingJobSpec
from ...names import ANNOTATION_BATCHAI_NAME, ENV_STORAGE_ACCOUNT, LABEL_SECRET_OF_JOB
from .document import (
    Conversion,
    ConversionError,
    Converter,
    StorageOptions,
    check_placeholders,
    dns_label,
    dns_subdomain,
    drop_read_only,
    drop_unknown_fields,
    read_document,
    split,
    substitute,
    validated,
)
from .secrets import SecretsBuilder, storage_account

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

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_LANGUAGE_TYPES = {"brainscript": "BrainScript", "python": "Python"}


@dataclass
class ConvertOptions(StorageOptions):
    """What `az batchai job create` took on its command line, plus Kubernetes names."""

    name: str | None = None
    cluster: str | None = None
    experiment: str | None = None


class JobConverter(Converter):
    """One job.json's conversion."""

    def __init__(self, options: ConvertOptions, environ: Mapping[str, str]) -> None:
        super().__init__(environ)
        self.opts = options

    def run(self, doc: Mapping[str, Any]) -> Conversion:
        props, version = split(doc, self.warn)
        account, _ = storage_account(self.opts, self.environ)
        values = dict(self.opts.placeholders)
        if account:
            values.setdefault(ENV_STORAGE_ACCOUNT, account)
        props = substitute(props, values)
        drop_read_only(props, READ_ONLY_FIELDS, self.warn)
        self._convert_2018_03_01(props)
        batchai_name, name = self._job_name()
        props["cluster"] = self._cluster(props)
        experiment = self._experiment(props)
        if experiment is not None:
            props["experiment"] = experiment
        self._normalize_case(props)
        dropped = drop_unknown_fields(props, TrainingJobSpec)
        if dropped:
            self.warn(
                f"ignored field(s) Batch AI's API does not have: {', '.join(dropped)} "
                "(az batchai job create ignored them too)"
            )
        check_placeholders(props)
        secrets = SecretsBuilder(self.opts, self.environ, name, LABEL_SECRET_OF_JOB, name, self.warn)
        secrets.mounts(props)
        self._file_servers(props)
        secrets.values(props)
        secrets.registry(props)
        spec = validated(TrainingJobSpec, props, "job is not a valid TrainingJob")
        metadata: dict[str, Any] = {"name": name}
        if self.opts.namespace:
            metadata["namespace"] = self.opts.namespace
        if batchai_name != name:
            metadata["annotations"] = {ANNOTATION_BATCHAI_NAME: batchai_name}
        job = {"apiVersion": API_VERSION, "kind": "TrainingJob", "metadata": metadata, "spec": spec.wire()}
        manifests, missing = secrets.manifests()
        return Conversion(job, manifests, self.warnings, version, missing)

    # -- steps --

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

    def _job_name(self) -> tuple[str, str]:
        """(the Batch AI name, the TrainingJob's name)."""
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
                f"job name {raw!r} is not a Kubernetes name: the TrainingJob is {name!r} (lowercase "
                f"letters, digits and '-', at most {MAX_JOB_NAME}); {raw!r} is kept in the annotation "
                f"{ANNOTATION_BATCHAI_NAME} and works in every kubectl batchai command"
            )
        return raw, name

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
        name = dns_subdomain(last)
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
        name = experiment_name(raw)
        self.warn(f"experiment {raw!r} is not a valid label value; using {name!r}")
        return name

    def _normalize_case(self, props: dict[str, Any]) -> None:
        if isinstance(props.get("schedulingPriority"), str):
            props["schedulingPriority"] = props["schedulingPriority"].lower()
        cntk = props.get("cntkSettings")
        if isinstance(cntk, dict) and isinstance(cntk.get("languageType"), str):
            cntk["languageType"] = _LANGUAGE_TYPES.get(cntk["languageType"].lower(), cntk["languageType"])

    def _file_servers(self, props: dict[str, Any]) -> None:
        """What a fileServers mount becomes here differs from Batch AI: say so."""
        volumes = props.get("mountVolumes")
        servers = volumes.get("fileServers") if isinstance(volumes, dict) else None
        for i, ref in enumerate(servers or []):
            if not isinstance(ref, dict):
                continue
            for line in file_server_warnings(i, ref):
                self.warn(line)


def file_server_warnings(index: int, ref: Mapping[str, Any]) -> list[str]:
    """A fileServers mount is an inline NFS volume: its host is the ARM id's last segment unless `server`
    is set, and NFS mount options other than `ro` cannot be passed to an inline volume."""
    where = f"mountVolumes.fileServers[{index}]"
    out = []
    server_id = str((ref.get("fileServer") or {}).get("id") or "")
    if not ref.get("server") and server_id:
        host = server_id.rstrip("/").rsplit("/", 1)[-1]
        out.append(
            f"{where}: the NFS host is taken from the file server's ARM id ({host!r}); Batch AI file servers "
            "do not exist on AKS: set `server` to the host of Azure Files NFS, Azure NetApp Files or your "
            "NFS server"
        )
    options = [o for o in str(ref.get("mountOptions") or "").split(",") if o.strip()]
    dropped = [o for o in options if o.strip() != "ro"]
    if dropped:
        out.append(
            f"{where}: mount options {','.join(dropped)} are dropped (an inline nfs volume takes none; only "
            "ro is kept); use a PersistentVolume with mountOptions if they matter"
        )
    return out


def experiment_name(text: str) -> str:
    """The nearest valid experiment (label value) name."""
    out = re.sub(r"[^-_A-Za-z0-9]+", "-", text)
    out = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", out)[:63]
    return re.sub(r"[^A-Za-z0-9]+$", "", out) or "default"


def convert(
    doc: Mapping[str, Any],
    options: ConvertOptions | None = None,
    environ: Mapping[str, str] | None = None,
) -> Conversion:
    """Convert a parsed job.json (whole file or bare properties). Raises ConversionError."""
    if not isinstance(doc, Mapping):
        raise ConversionError("a job file must be a JSON object")
    return JobConverter(options or ConvertOptions(), os.environ if environ is None else environ).run(doc)


def convert_file(
    path: str, options: ConvertOptions | None = None, environ: Mapping[str, str] | None = None
) -> Conversion:
    """Read and convert a job.json file ('-' reads standard input)."""
    opts = options or ConvertOptions()
    doc = read_document(path)
    if opts.source is None:
        opts.source = path
    return convert(doc, opts, environ)
