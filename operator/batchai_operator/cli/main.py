"""kubectl-batchai: `az batchai` (API 2018-05-01) for TrainingJobs and BatchAIClusters (a kubectl plugin).
The seed quickstart's commands run as they are, with `kubectl batchai` for `az batchai`:

    kubectl batchai workspace create -g batchai.quickstart -n quickstart
    kubectl batchai cluster create -n nc6 -g batchai.quickstart -w quickstart -s Standard_NC6 \\
        -i UbuntuDSVM -t 1 --generate-ssh-keys
    kubectl batchai experiment create -g batchai.quickstart -w quickstart -n quickstart
    kubectl batchai job create -n cntk_python_1 -c nc6 -g batchai.quickstart -w quickstart \\
        -e quickstart -f job.json --storage-account-name ACCOUNT
    kubectl batchai job file stream -j cntk_python_1 -g batchai.quickstart -w quickstart -e quickstart \\
        -f stderr.txt

A workspace is a namespace; -g is accepted and only recorded. Output: -o json|jsonc|table|tsv|yaml|none and
--query (JMESPath), as az. Storage keys are never taken on the command line: --storage-account-key-file,
the environment (AZURE_BATCHAI_STORAGE_KEY), the job's Secret, an Azure login, or a prompt. docs/cli.md
maps every az batchai command.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .. import __doc__ as package_doc
from . import clusters, common, files, jobs, workspaces
from .convert.job import ConvertOptions, convert_file
from .errors import EXIT_USAGE, CliError
from .output import QueryError, render

Handler = Callable[[argparse.Namespace], int]


def _job_convert(args: argparse.Namespace) -> int:
    options = ConvertOptions(
        name=args.name,
        namespace=common.namespace(args) if args.namespace else None,
        cluster=args.cluster,
        experiment=args.experiment,
        **common.storage_options(args),
    )
    result = common.converted(lambda: convert_file(args.file, options), args.file)
    common.print_warnings(result.warnings)
    fmt = args.output or "yaml"
    if fmt in ("table", "tsv"):
        raise CliError("job convert prints manifests: -o yaml (default), json, jsonc or none", EXIT_USAGE)
    if fmt == "yaml" and not args.query:
        sys.stdout.write(result.to_yaml())
    else:
        listed = {"apiVersion": "v1", "kind": "List", "items": result.documents()}
        sys.stdout.write(render(listed, fmt, None, args.query, sys.stdout.isatty()))
    return 0


def _add_job_convert(jobs_group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = common.add(
        jobs_group,
        "convert",
        "convert a Batch AI job.json into a TrainingJob and the Secrets it needs, without creating them",
        None,
        "Reads the whole file ($schema and properties, API 2018-05-01 or 2018-03-01) or a bare properties "
        "object and prints the TrainingJob plus the Secrets holding its storage keys, secret values and "
        "registry password as multi-document YAML (Secrets first; -o json for a List). Pipe it to `kubectl "
        "apply -f -` rather than into a file: the Secrets carry the keys. `job create` does both in one "
        "step. Warnings go to stderr and never contain secret values; they name what differs from Batch AI "
        "(e.g. a fileServers mount's host and dropped mount options).",
    )
    jobs.add_job_file_arguments(p)
    p.set_defaults(func=_job_convert)


def _group(groups: argparse._SubParsersAction[argparse.ArgumentParser], name: str, help_text: str) -> Any:
    parser = groups.add_parser(name, help=help_text, description=help_text)
    return parser.add_subparsers(dest="command", metavar="COMMAND", required=True)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl-batchai",
        description=(package_doc or "").strip() + " Batch AI's az batchai commands for the batchai.io API.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        epilog="\n".join((__doc__ or "").splitlines()[2:13]),
    )
    groups = parser.add_subparsers(dest="group", metavar="GROUP", required=True)

    job_cmds = _group(groups, "job", "TrainingJobs (az batchai job)")
    _add_job_convert(job_cmds)
    jobs.add_parsers(job_cmds)
    file_group = job_cmds.add_parser("file", help="a job's output files (az batchai job file)")
    files.add_parsers(file_group.add_subparsers(dest="file_command", metavar="COMMAND", required=True))
    node_group = job_cmds.add_parser("node", help="a job's nodes (az batchai job node)")
    jobs.add_node_parsers(node_group.add_subparsers(dest="node_command", metavar="COMMAND", required=True))

    cluster_cmds = _group(groups, "cluster", "BatchAIClusters (az batchai cluster)")
    clusters.add_parsers(cluster_cmds)
    node_group = cluster_cmds.add_parser("node", help="a cluster's nodes (az batchai cluster node)")
    clusters.add_node_parsers(
        node_group.add_subparsers(dest="node_command", metavar="COMMAND", required=True)
    )
    file_group = cluster_cmds.add_parser("file", help="setup-task output (az batchai cluster file)")
    clusters.add_file_parsers(
        file_group.add_subparsers(dest="file_command", metavar="COMMAND", required=True)
    )

    workspaces.add_experiment_parsers(_group(groups, "experiment", "experiments (az batchai experiment)"))
    workspaces.add_workspace_parsers(
        _group(
            groups, "workspace", "workspaces: namespaces holding Batch AI resources (az batchai workspace)"
        )
    )
    workspaces.add_file_server_parsers(
        _group(groups, "file-server", "Batch AI file servers: not available on AKS (az batchai file-server)")
    )
    workspaces.add_usage_parser(groups)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "argv_rest", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    func: Handler = args.func
    try:
        return func(args)
    except QueryError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
