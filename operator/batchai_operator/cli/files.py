"""`kubectl batchai job file list|stream`: a job's stdouterr and output directories, read from the Azure
Files share or blob container mounted where the job wrote them (see storage/)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Callable
from typing import Any

from ..api.cluster import BatchAIClusterSpec
from ..api.common import MountVolumes
from ..api.trainingjob import TrainingJobSpec
from ..manifests.paths import identity
from ..storage.access import Store, open_store
from ..storage.credentials import CredentialSources
from ..storage.errors import StorageError
from ..storage.follow import Follow
from ..storage.locations import STDOUTERR, NotOnMount, StorageLocation, directory_location, storage_status
from . import common
from .errors import CliError
from .k8s import CliKube
from .views import FILE_COLUMNS, file_rows

MIN_EXPIRY, MAX_EXPIRY = 5, 600  # minutes, as Batch AI's listOutputFiles accepted


def expiry_minutes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected minutes, got {text!r}") from None
    if not MIN_EXPIRY <= value <= MAX_EXPIRY:
        raise argparse.ArgumentTypeError(f"--expiry must be {MIN_EXPIRY} to {MAX_EXPIRY} minutes")
    return value


def _cluster_mounts(kube: CliKube, ns: str, spec: TrainingJobSpec) -> MountVolumes | None:
    cluster = kube.find_cluster(ns, spec.cluster_name)
    if cluster is None:
        return None
    node_setup = BatchAIClusterSpec.model_validate(cluster.get("spec") or {}).node_setup
    return node_setup.mount_volumes if node_setup else None


def with_storage(kube: CliKube, obj: dict[str, Any]) -> dict[str, Any]:
    """The job with the status fields that say where its directories are in storage, computed here
    when the operator has not put them in status (yet)."""
    status = obj.get("status") or {}
    if "stdOutErrStorage" in status or not obj.get("metadata", {}).get("uid"):
        return obj
    spec = TrainingJobSpec.model_validate(obj["spec"])
    fields = storage_status(
        spec, _cluster_mounts(kube, obj["metadata"]["namespace"], spec), identity(obj, spec)
    )
    return {**obj, "status": {**status, **fields}}


def locate(kube: CliKube, ns: str, job: str, directory: str, path: str) -> StorageLocation:
    """The storage location of the job's directory (-d) and subpath (-p); `job` by Batch AI or
    Kubernetes name."""
    obj = kube.resolve_trainingjob(ns, job)
    spec = TrainingJobSpec.model_validate(obj["spec"])
    ident = identity(obj, spec)
    cluster_mounts = _cluster_mounts(kube, ns, spec)
    try:
        return directory_location(directory, spec, cluster_mounts, ident).child(path)
    except NotOnMount as exc:
        raise CliError(str(exc)) from None


def _login() -> Any:
    from azure.identity import DefaultAzureCredential  # imported when needed: it is slow to import

    return DefaultAzureCredential()


def credentials(kube: CliKube, args: argparse.Namespace) -> CredentialSources:
    return CredentialSources(
        namespace=kube.namespace,
        read_secret=lambda name: kube.read_secret(kube.namespace, name),
        environ=os.environ,
        key_file=args.storage_account_key_file,
        account_name=args.storage_account_name,
        prompt=getpass.getpass if sys.stdin.isatty() else None,
        login=_login,
        auth_mode=args.auth_mode,
    )


def store_opener(location: StorageLocation, sources: CredentialSources) -> Callable[[bool], Store]:
    def open_(renew: bool) -> Store:
        del renew  # every call resolves afresh: the Secret is read again, a new login token is taken
        try:
            return open_store(location, sources.resolve(location.ref), os.environ)
        except StorageError as exc:
            raise CliError(str(exc)) from None

    return open_


def file_list(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    location = locate(kube, kube.namespace, args.job, args.output_directory_id, args.path)
    sources = credentials(kube, args)
    try:
        credential = sources.resolve(location.ref)
        store = open_store(location, credential, os.environ)
        entries = store.list(location, args.expiry)
    except StorageError as exc:
        raise CliError(str(exc)) from None
    if any(not e.is_directory and e.download_url is None for e in entries):
        why = (
            "Azure Files has no user-delegation SAS"
            if location.kind == "file" and credential.token is not None
            else "the credentials are a SAS token, not a key"
        )
        print(f"note: no download URLs ({why}); `job file stream` reads files", file=sys.stderr)
    common.emit(args, file_rows(entries), FILE_COLUMNS)
    return 0


def file_stream(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    ns = kube.namespace
    directory = locate(kube, ns, args.job, args.output_directory_id, args.path)
    if "/" in args.file_name.strip("/"):
        raise CliError(f"-f {args.file_name!r}: a file name in the directory; use -p for a subdirectory")
    location = directory.child(args.file_name)
    out = sys.stdout.buffer

    def write(data: bytes) -> None:
        out.write(data)
        out.flush()

    k8s_name = kube.resolve_trainingjob(ns, args.job)["metadata"]["name"]

    def state() -> str | None:
        status = kube.get_trainingjob(ns, k8s_name).get("status") or {}
        value = status.get("executionState")
        return str(value) if value is not None else None

    follow = Follow(
        location,
        open_store=store_opener(location, credentials(kube, args)),
        job_state=state,
        write=write,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    try:
        follow.run()
    except StorageError as exc:
        raise CliError(str(exc)) from None
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-j", "--job", required=True, help="the job's Batch AI or Kubernetes name")
    p.add_argument("-e", "--experiment", help="accepted as az required it (a job's name is unique here)")
    p.add_argument(
        "-d",
        "--output-directory-id",
        default=STDOUTERR,
        help="stdouterr (default) or the id of an output directory",
    )
    p.add_argument("-p", "--path", default=".", help="subdirectory of it (default: .)")
    common.add_storage_key_arguments(p)
    p.add_argument(
        "--auth-mode",
        choices=("auto", "key", "login"),
        default="auto",
        help="key: only keys (file, env, the job's Secret, prompt); login: only your Azure login; "
        "auto (default): keys, then the login, then a prompt",
    )


DIFF_FILES = (
    "files are read from the Azure Files share or blob container the directory is on, with the key from "
    "--storage-account-key-file, the environment, the job's Secret, your Azure login or a prompt."
)


def add_parsers(files: Any) -> None:
    p = common.add(
        files, "list", "list a job's files with download URLs", "az batchai job file list", DIFF_FILES
    )
    _common(p)
    p.add_argument(
        "--expiry",
        type=expiry_minutes,
        default=60,
        help=f"minutes the download URLs stay valid ({MIN_EXPIRY}-{MAX_EXPIRY}, default 60)",
    )
    p.set_defaults(func=file_list)

    p = common.add(
        files,
        "stream",
        "follow a file the job writes until the job ends",
        "az batchai job file stream",
        DIFF_FILES,
        output=False,
    )
    _common(p)
    p.add_argument("-f", "--file-name", required=True, help="file in the directory, e.g. stdout.txt")
    p.set_defaults(func=file_stream)
