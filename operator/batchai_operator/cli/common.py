"""Options every command shares, as az batchai's: -w/--workspace (the namespace), -g/--resource-group,
--context, -o/--output and --query, and --ids where az had it; how output is printed; confirmation
prompts; storage key input.

-g is accepted everywhere, as az required it: one Kubernetes cluster is the scope here, so it only labels
(workspace create records it on the namespace, workspace show/list print it) and is never checked.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import jmespath
from jmespath.exceptions import JMESPathError

from .convert.document import ConversionError
from .errors import EXIT_USAGE, CliError
from .k8s import CliKube
from .naming import ResourceId, namespace_name, parse_id
from .output import FORMATS, Column, render

T = TypeVar("T")
# az's default output format comes from its configuration; the environment variable az reads for it.
ENV_OUTPUT = "AZURE_CORE_OUTPUT"


def _query(text: str) -> str:
    try:
        jmespath.compile(text)
    except JMESPathError as exc:
        raise argparse.ArgumentTypeError(f"invalid JMESPath query {text!r}: {exc}") from None
    return text


def add(
    subparsers: Any,
    name: str,
    help_text: str,
    az: str | None,
    differences: str = "",
    ids: bool = False,
    output: bool = True,
) -> argparse.ArgumentParser:
    """A subcommand with az's common flags. Its help names the az counterpart and what differs."""
    counterpart = f"az counterpart: `{az}`." if az else "No az batchai counterpart."
    description = f"{help_text}.\n\n{counterpart}" + (f" Differences: {differences}" if differences else "")
    p: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help_text,
        description=description,
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-w",
        "--workspace",
        "--namespace",
        dest="namespace",
        help="workspace: the namespace (default: the kubeconfig context's)",
    )
    p.add_argument(
        "-g",
        "--resource-group",
        dest="resource_group",
        help="accepted as az required it; recorded by `workspace create`, otherwise not used",
    )
    p.add_argument("--context", help="kubeconfig context")
    # Every verb takes -o and --query, as az's did, also those that print nothing (`output` False).
    p.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        help=f"output format (default: ${ENV_OUTPUT}, else json, as az)"
        if output
        else "accepted as az did; this command prints no result",
    )
    p.add_argument("--query", type=_query, help="JMESPath query over the output, as az's --query")
    if ids:
        p.add_argument(
            "--ids",
            nargs="+",
            metavar="ID",
            help="Batch AI resource ids (as az's --ids) instead of -w/-n and the like",
        )
    return p


def add_confirm_flags(p: argparse.ArgumentParser, wait_for: str = "until it is gone") -> None:
    """A delete's (or terminate's) -y/--yes and --no-wait, as az's."""
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--no-wait", action="store_true", help=f"do not wait {wait_for}")


def output_format(args: argparse.Namespace) -> str:
    fmt = getattr(args, "output", None) or os.environ.get(ENV_OUTPUT) or "json"
    if fmt not in FORMATS:
        raise CliError(f"{ENV_OUTPUT}={fmt!r}: expected one of {', '.join(FORMATS)}", EXIT_USAGE)
    return fmt


def emit(args: argparse.Namespace, data: Any, columns: Sequence[Column] | None = None) -> None:
    """Print a verb's result as -o and --query say."""
    text = render(data, output_format(args), columns, getattr(args, "query", None), sys.stdout.isatty())
    sys.stdout.write(text)


def kube(args: argparse.Namespace) -> CliKube:
    return CliKube(context=args.context, namespace=namespace_name(args.namespace) if args.namespace else None)


def namespace(args: argparse.Namespace) -> str:
    """-w, else the kubeconfig context's namespace, else 'default', without needing a cluster."""
    if args.namespace:
        return namespace_name(str(args.namespace))
    try:
        return CliKube(context=args.context).namespace
    except CliError:
        return "default"


def targets(args: argparse.Namespace, kind: str, name_attr: str = "name") -> Iterator[tuple[str | None, str]]:
    """(workspace, name) pairs a verb acts on: --ids, else -w and -n (or -j, -c: `name_attr`). The
    workspace is None when -w was not given (the context's namespace applies)."""
    ids: list[str] | None = getattr(args, "ids", None)
    if ids:
        for text in ids:
            try:
                rid: ResourceId = parse_id(text)
            except ValueError as exc:
                raise CliError(str(exc), EXIT_USAGE) from None
            if rid.kind != kind or rid.name is None:
                raise CliError(f"--ids {text!r} does not name a {kind[:-1]}", EXIT_USAGE)
            yield rid.workspace, rid.name
        return
    name = getattr(args, name_attr, None)
    if not name:
        flag = {"name": "-n/--name", "job": "-j/--job", "cluster": "-c/--cluster"}[name_attr]
        raise CliError(f"the following arguments are required: {flag} (or --ids)", EXIT_USAGE)
    yield args.namespace, str(name)


def for_target(args: argparse.Namespace, workspace: str | None) -> CliKube:
    """The CLI's client for one --ids target's workspace (or -w's)."""
    ns = (
        namespace_name(workspace)
        if workspace
        else (namespace_name(args.namespace) if args.namespace else None)
    )
    return CliKube(context=args.context, namespace=ns)


def confirm(args: argparse.Namespace, question: str) -> None:
    """az's prompt: -y/--yes skips it; without a terminal, az refused to go on."""
    if getattr(args, "yes", False):
        return
    if not sys.stdin.isatty():
        raise CliError(f"{question} Unable to prompt for confirmation as no tty is available: pass -y/--yes")
    answer = input(f"{question} (y/n): ").strip().lower()
    if answer not in ("y", "yes"):
        raise CliError("Operation cancelled.")


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
    """The conversion options every create/convert command takes alike (convert.document.StorageOptions)."""
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
