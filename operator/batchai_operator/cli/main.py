"""kubectl-batchai: `az batchai` for TrainingJobs and BatchAIClusters (a kubectl plugin).

    AZURE_BATCHAI_STORAGE_KEY=... kubectl batchai job convert -f job.json -c nc6 \
        --storage-account-name acct | kubectl apply -f -

(The output holds the storage key in a Secret: pipe it to kubectl rather than keeping it in a file.)

Subcommands are grouped like `az batchai`: `job convert` now; `job show/list/wait/terminate` and
`job file list/stream` join the `job` group later.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .. import __doc__ as package_doc
from ..convert import ConversionError, ConvertOptions, convert_file

Handler = Callable[[argparse.Namespace], int]


def _placeholder(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    name = name.strip().strip("<>")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return name, value


def _job_convert(args: argparse.Namespace) -> int:
    options = ConvertOptions(
        name=args.name,
        namespace=args.namespace,
        cluster=args.cluster,
        experiment=args.experiment,
        storage_account_name=args.storage_account_name,
        storage_account_key=args.storage_account_key,
        storage_secret=args.storage_secret,
        placeholders=dict(args.placeholder or []),
        source=args.file,
    )
    try:
        result = convert_file(args.file, options)
    except FileNotFoundError:
        print(f"error: {args.file}: no such file", file=sys.stderr)
        return 1
    except ConversionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    sys.stdout.write(result.to_json() if args.output == "json" else result.to_yaml())
    return 0


def _add_job_convert(jobs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = jobs.add_parser(
        "convert",
        help="convert a Batch AI job.json into a TrainingJob and the Secrets it needs",
        description=(
            "Convert a Batch AI job.json (the whole file with $schema and properties, API 2018-05-01 or "
            "2018-03-01, or a bare properties object) into a TrainingJob plus the Secrets holding its "
            "storage keys, secret values and registry password. Prints multi-document YAML (Secrets "
            "first) for kubectl apply -f -. Warnings go to stderr and never contain secret values."
        ),
    )
    p.add_argument("-f", "--file", required=True, help="job.json file ('-' for standard input)")
    p.add_argument("-n", "--name", help="TrainingJob name (default: from the file name)")
    p.add_argument("--namespace", help="namespace for the TrainingJob and its Secrets")
    p.add_argument("-c", "--cluster", help="BatchAICluster name (or Batch AI cluster ARM id)")
    p.add_argument("-e", "--experiment", help="experiment (default: the file's, else 'default')")
    p.add_argument(
        "--storage-account-name",
        help="replaces <AZURE_BATCHAI_STORAGE_ACCOUNT> (default: env AZURE_BATCHAI_STORAGE_ACCOUNT)",
    )
    p.add_argument(
        "--storage-account-key",
        help=(
            "key of --storage-account-name; replaces <AZURE_BATCHAI_STORAGE_KEY> and goes into a Secret "
            "(default: env AZURE_BATCHAI_STORAGE_KEY, which is better: a key on the command line shows in "
            "ps and the shell's history)"
        ),
    )
    p.add_argument(
        "--storage-secret",
        help="existing Secret (azurestorageaccountname/azurestorageaccountkey) for the storage account, "
        "instead of a generated <name>-storage-<account>",
    )
    p.add_argument(
        "--placeholder",
        action="append",
        type=_placeholder,
        metavar="NAME=VALUE",
        help="replace <NAME> in the file, e.g. --placeholder YOUR_STORAGE_ACCOUNT=myacct (repeatable)",
    )
    p.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml", help="output format")
    p.set_defaults(func=_job_convert)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl-batchai",
        description=(package_doc or "").strip() + " Batch AI's az batchai commands for the batchai.io API.",
    )
    groups = parser.add_subparsers(dest="group", metavar="GROUP", required=True)
    job = groups.add_parser("job", help="TrainingJobs (az batchai job)")
    jobs = job.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_job_convert(jobs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Handler = args.func
    return func(args)


if __name__ == "__main__":
    sys.exit(main())
