"""Options every command shares (workspace = namespace, kube context, output format) and key input."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from .errors import CliError
from .k8s import Kube
from .output import FORMATS

T = TypeVar("T")


def add(subparsers: Any, name: str, help_text: str, output: str | None) -> argparse.ArgumentParser:
    """A subcommand with -w/--workspace/--namespace, --context and, when it prints objects, -o."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        name, help=help_text, description=help_text, allow_abbrev=False
    )
    p.add_argument(
        "-w",
        "--workspace",
        "--namespace",
        dest="namespace",
        help="namespace (Batch AI workspace); default: the kubeconfig context's",
    )
    p.add_argument("--context", help="kubeconfig context")
    if output is not None:
        p.add_argument(
            "-o", "--output", choices=FORMATS, default=output, help=f"output format (default {output})"
        )
    return p


def kube(args: argparse.Namespace) -> Kube:
    return Kube(context=args.context, namespace=args.namespace)


def namespace(args: argparse.Namespace) -> str:
    """-w, else the kubeconfig context's namespace, else 'default', without needing a cluster."""
    if args.namespace:
        return str(args.namespace)
    try:
        return Kube(context=args.context).namespace
    except CliError:
        return "default"


def placeholder(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    name = name.strip().strip("<>")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


MSG_KEY_ON_COMMAND_LINE = (
    "storage keys are not taken on the command line (shell history, process listings): use "
    "--storage-account-key-file FILE, the environment variable AZURE_BATCHAI_STORAGE_KEY, or the prompt"
)


class _RefuseKey(argparse.Action):
    """az's --storage-account-key: refused with the ways that do not expose the key (value not echoed)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        parser.error(MSG_KEY_ON_COMMAND_LINE)


def add_storage_key_arguments(p: argparse.ArgumentParser) -> None:
    """Where a storage key may come from. Never a command-line value: those land in shell history and
    in every process listing."""
    p.add_argument("--storage-account-key", action=_RefuseKey, help=argparse.SUPPRESS)
    p.add_argument(
        "--storage-account-name",
        help="the storage account the key is for (default: env AZURE_BATCHAI_STORAGE_ACCOUNT)",
    )
    p.add_argument(
        "--storage-account-key-file",
        type=Path,
        metavar="FILE",
        help="file holding the account key (default: env AZURE_BATCHAI_STORAGE_KEY, else a prompt)",
    )


def converted(fn: Callable[[], T], source: str) -> T:
    """Run a job.json/cluster.json conversion; its failures as one CLI error line."""
    from ..convert import ConversionError

    try:
        return fn()
    except FileNotFoundError:
        raise CliError(f"{source}: no such file") from None
    except ConversionError as exc:
        raise CliError(str(exc)) from None


def print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def add_placeholder_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--placeholder",
        action="append",
        type=placeholder,
        metavar="NAME=VALUE",
        help="replace <NAME> in the file, e.g. --placeholder YOUR_STORAGE_ACCOUNT=myacct (repeatable)",
    )


def redacted(doc: dict[str, Any]) -> dict[str, Any]:
    """A manifest to print: Secret values hidden."""
    if doc.get("kind") != "Secret":
        return doc
    return {**doc, "data": dict.fromkeys(doc.get("data") or {}, "<redacted>")}


def storage_options(
    args: argparse.Namespace, account: str | None = None, key: str | None = None
) -> dict[str, Any]:
    """The conversion options every create/convert command takes alike (convert.StorageOptions)."""
    return {
        "storage_account_name": account or args.storage_account_name,
        "storage_account_key": key or key_from_file(args.storage_account_key_file),
        "storage_secret": getattr(args, "storage_secret", None),
        "placeholders": dict(args.placeholder or []),
        "source": args.file,
    }


def key_from_file(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        key = path.read_text().strip()
    except OSError as exc:
        raise CliError(f"cannot read --storage-account-key-file {path}: {exc.strerror}") from None
    if not key:
        raise CliError(f"--storage-account-key-file {path} is empty")
    return key
