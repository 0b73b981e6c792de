"""kubectl-batchai: `az batchai` for TrainingJobs and BatchAIClusters (a kubectl plugin).

    kubectl batchai cluster create -f cluster.json -n nc6
    kubectl batchai job create -f job.json -n cntk-python-1 -c nc6 -e quickstart
    kubectl batchai job file stream -j cntk-python-1 -f stdout.txt
    kubectl batchai job wait -n cntk-python-1
    kubectl batchai job file list -j cntk-python-1 -d MODEL

Commands are grouped as `az batchai`'s: workspace (a namespace), cluster, experiment, job, job file,
job node. Storage keys are never taken on the command line: --storage-account-key-file, the
environment (AZURE_BATCHAI_STORAGE_KEY), the job's Secret, an Azure login, or a prompt.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from .. import __doc__ as package_doc
from ..convert import ConvertOptions, convert_file
from . import clusters, common, files, jobs
from .errors import CliError

Handler = Callable[[argparse.Namespace], int]


def _job_convert(args: argparse.Namespace) -> int:
    options = ConvertOptions(
        name=args.name,
        namespace=args.namespace,
        cluster=args.cluster,
        experiment=args.experiment,
        **common.storage_options(args),
    )
    result = common.converted(lambda: convert_file(args.file, options), args.file)
    common.print_warnings(result.warnings)
    sys.stdout.write(result.to_json() if args.output == "json" else result.to_yaml())
    return 0


def _add_job_convert(jobs_group: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = jobs_group.add_parser(
        "convert",
        allow_abbrev=False,
        help="convert a Batch AI job.json into a TrainingJob and the Secrets it needs",
        description=(
            "Convert a Batch AI job.json (the whole file with $schema and properties, API 2018-05-01 or "
            "2018-03-01, or a bare properties object) into a TrainingJob plus the Secrets holding its "
            "storage keys, secret values and registry password, as multi-document YAML (Secrets first). "
            "Pipe it to `kubectl apply -f -` rather than into a file: the Secrets carry the keys. "
            "`job create` does both in one step. Warnings go to stderr and never contain secret values."
        ),
    )
    p.add_argument("-f", "--file", required=True, help="job.json file ('-' for standard input)")
    p.add_argument("-n", "--name", help="TrainingJob name (default: from the file name)")
    p.add_argument("--namespace", help="namespace for the TrainingJob and its Secrets")
    p.add_argument("-c", "--cluster", help="BatchAICluster name (or Batch AI cluster ARM id)")
    p.add_argument("-e", "--experiment", help="experiment (default: the file's, else 'default')")
    common.add_storage_key_arguments(p)
    p.add_argument(
        "--storage-secret",
        help="existing Secret (azurestorageaccountname/azurestorageaccountkey) for the storage account, "
        "instead of a generated <name>-storage-<account>",
    )
    common.add_placeholder_argument(p)
    p.add_argument("-o", "--output", choices=("yaml", "json"), default="yaml", help="output format")
    p.set_defaults(func=_job_convert)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl-batchai",
        description=(package_doc or "").strip() + " Batch AI's az batchai commands for the batchai.io API.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
        epilog="\n".join((__doc__ or "").splitlines()[2:8]),
    )
    groups = parser.add_subparsers(dest="group", metavar="GROUP", required=True)

    job = groups.add_parser("job", help="TrainingJobs (az batchai job)")
    job_cmds = job.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_job_convert(job_cmds)
    jobs.add_parsers(job_cmds)
    file_group = job_cmds.add_parser("file", help="a job's output files (az batchai job file)")
    files.add_parsers(file_group.add_subparsers(dest="file_command", metavar="COMMAND", required=True))
    node_group = job_cmds.add_parser("node", help="a job's nodes (az batchai job node)")
    jobs.add_node_parsers(node_group.add_subparsers(dest="node_command", metavar="COMMAND", required=True))

    cluster = groups.add_parser("cluster", help="BatchAIClusters (az batchai cluster)")
    clusters.add_parsers(cluster.add_subparsers(dest="command", metavar="COMMAND", required=True))
    experiment = groups.add_parser("experiment", help="experiments (az batchai experiment)")
    clusters.add_experiment_parsers(
        experiment.add_subparsers(dest="command", metavar="COMMAND", required=True)
    )
    workspace = groups.add_parser(
        "workspace", help="namespaces holding Batch AI resources (az batchai workspace)"
    )
    clusters.add_workspace_parsers(workspace.add_subparsers(dest="command", metavar="COMMAND", required=True))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Handler = args.func
    try:
        return func(args)
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
