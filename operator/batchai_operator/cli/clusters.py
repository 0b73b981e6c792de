"""`kubectl batchai cluster ...`, `experiment list`, `workspace list`."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..convert import ClusterOptions, ConversionError, convert_cluster_file, scale_settings
from . import common
from .errors import CliError
from .output import render
from .views import (
    CLUSTER_COLUMNS,
    EXPERIMENT_COLUMNS,
    WORKSPACE_COLUMNS,
    cluster_view,
    experiment_rows,
    workspace_rows,
)


def cluster_create(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    ns = kube.namespace
    options = ClusterOptions(
        name=args.name,
        namespace=ns,
        vm_size=args.vm_size,
        target=args.target,
        min_nodes=args.min,
        max_nodes=args.max,
        **common.storage_options(args),
    )
    result = common.converted(lambda: convert_cluster_file(args.file, options), args.file)
    common.print_warnings(result.warnings)
    if args.dry_run:
        docs = [common.redacted(d) for d in result.documents()]
        sys.stdout.write(render({"apiVersion": "v1", "kind": "List", "items": docs}, args.output))
        return 0
    for secret in result.secrets:
        kube.apply_secret(ns, secret)
    created = kube.create_cluster(ns, result.job)
    sys.stdout.write(render(cluster_view(created), args.output, CLUSTER_COLUMNS))
    return 0


def cluster_show(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    sys.stdout.write(
        render(cluster_view(kube.get_cluster(kube.namespace, args.name)), args.output, CLUSTER_COLUMNS)
    )
    return 0


def cluster_list(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    rows = [cluster_view(c) for c in kube.list_clusters(None if args.all_namespaces else kube.namespace)]
    rows.sort(key=lambda r: (r["workspace"], r["name"]))
    sys.stdout.write(render(rows, args.output, CLUSTER_COLUMNS))
    return 0


def _rescale(args: argparse.Namespace, scale: dict[str, Any]) -> int:
    kube = common.kube(args)
    kube.get_cluster(kube.namespace, args.name)  # a missing cluster is reported as such
    # Merge patch: the other mode is removed, so exactly one of manual/autoScale stays set.
    other = "autoScale" if "manual" in scale else "manual"
    patched = kube.patch_cluster(
        kube.namespace, args.name, {"spec": {"scaleSettings": {**scale, other: None}}}
    )
    sys.stdout.write(render(cluster_view(patched), args.output, CLUSTER_COLUMNS))
    return 0


def cluster_resize(args: argparse.Namespace) -> int:
    return _rescale(args, {"manual": {"targetNodeCount": args.target}})


def cluster_auto_scale(args: argparse.Namespace) -> int:
    try:
        scale = scale_settings(None, args.min, args.max)
    except ConversionError as exc:
        raise CliError(str(exc)) from None
    if scale is None or "autoScale" not in scale:
        raise CliError(
            "--min must be smaller than --max for auto-scale; use `cluster resize -t N` for a fixed count"
        )
    return _rescale(args, scale)


def experiment_list(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    jobs = kube.list_jobs(None if args.all_namespaces else kube.namespace)
    sys.stdout.write(render(experiment_rows(jobs), args.output, EXPERIMENT_COLUMNS))
    return 0


def workspace_list(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    rows = workspace_rows(kube.list_jobs(None), kube.list_clusters(None))
    sys.stdout.write(render(rows, args.output, WORKSPACE_COLUMNS))
    return 0


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a node count, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("node counts are not negative")
    return value


def add_parsers(clusters: Any) -> None:
    p = common.add(clusters, "create", "create a BatchAICluster from a Batch AI cluster.json", "json")
    p.add_argument(
        "-f", "--config-file", "--file", dest="file", required=True, help="cluster.json ('-': stdin)"
    )
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-s", "--vm-size", help="VM size, e.g. Standard_NC6 (overrides the file)")
    p.add_argument("-t", "--target", type=_count, help="node count (initial count with --min/--max)")
    p.add_argument("--min", type=_count, help="autoscaler minimum (with --max)")
    p.add_argument("--max", type=_count, help="autoscaler maximum (with --min)")
    common.add_storage_key_arguments(p)
    common.add_placeholder_argument(p)
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be created (Secret values hidden)"
    )
    p.set_defaults(func=cluster_create)

    p = common.add(clusters, "show", "show a cluster (az batchai cluster show)", "json")
    p.add_argument("-n", "--name", required=True)
    p.set_defaults(func=cluster_show)

    p = common.add(clusters, "list", "list clusters with node counts (az batchai cluster list)", "table")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="clusters of every workspace")
    p.set_defaults(func=cluster_list)

    p = common.add(clusters, "resize", "set a fixed node count (az batchai cluster resize)", "table")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-t", "--target", type=_count, required=True, help="node count")
    p.set_defaults(func=cluster_resize)

    p = common.add(clusters, "auto-scale", "set autoscaler bounds (az batchai cluster auto-scale)", "table")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("--min", type=_count, required=True)
    p.add_argument("--max", type=_count, required=True)
    p.set_defaults(func=cluster_auto_scale)


def add_experiment_parsers(experiments: Any) -> None:
    p = common.add(
        experiments, "list", "experiments that jobs belong to (az batchai experiment list)", "table"
    )
    p.add_argument("-A", "--all-namespaces", action="store_true", help="experiments of every workspace")
    p.set_defaults(func=experiment_list)


def add_workspace_parsers(workspaces: Any) -> None:
    p = common.add(
        workspaces,
        "list",
        "namespaces holding Batch AI jobs or clusters (az batchai workspace list)",
        "table",
    )
    p.set_defaults(func=workspace_list)
