"""`kubectl batchai workspace ...` (a namespace), `experiment ...` (a ConfigMap plus its jobs' label),
`list-usages` (GPUs by VM family) and `file-server ...` (refused, with what to use on AKS)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..api.cluster import BatchAIClusterSpec
from ..manifests.errors import BuildError
from ..manifests.placement import gpus_per_node, node_selector
from ..names import (
    ANNOTATION_BATCHAI_NAME,
    ANNOTATION_LOCATION,
    ANNOTATION_RESOURCE_GROUP,
    LABEL_EXPERIMENT,
    LABEL_MANAGED_BY,
    LABEL_TRAININGJOB_UID,
    MANAGED_BY_CLI,
    RESOURCE_GPU,
)
from . import common
from .clusters import file_server_message
from .convert.job import experiment_name
from .errors import CliError, NotFound
from .k8s import CliKube
from .naming import namespace_name
from .views import (
    EXPERIMENT_COLUMNS,
    USAGE_COLUMNS,
    WORKSPACE_COLUMNS,
    experiment_rows,
    experiment_view,
    usage_rows,
    workspace_rows,
    workspace_view,
)

EXPERIMENT_PREFIX = "batchai-experiment-"

# ---- workspaces -------------------------------------------------------------------------------------


def _managed(ns: dict[str, Any]) -> bool:
    return ((ns.get("metadata") or {}).get("labels") or {}).get(LABEL_MANAGED_BY) == MANAGED_BY_CLI


def workspace_body(name: str, resource_group: str | None, location: str | None) -> dict[str, Any]:
    """The namespace of `workspace create` (pure): the project's label, az's -g and -l recorded."""
    k8s_name = namespace_name(name)
    annotations = {ANNOTATION_RESOURCE_GROUP: resource_group, ANNOTATION_LOCATION: location}
    if k8s_name != name:
        annotations[ANNOTATION_BATCHAI_NAME] = name
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": k8s_name,
            "labels": {LABEL_MANAGED_BY: MANAGED_BY_CLI},
            "annotations": {k: v for k, v in annotations.items() if v},
        },
    }


def workspace_create(args: argparse.Namespace) -> int:
    kube = CliKube(context=args.context)
    body = workspace_body(args.name, args.resource_group, args.location)
    name = body["metadata"]["name"]
    try:
        ns = kube.create_namespace(body)
    except CliError as exc:
        if "already exists" not in str(exc):
            raise
        # az's create is a PUT: an existing workspace is returned as it is.
        ns = kube.read_namespace(name)
        if not _managed(ns):
            print(
                f"note: namespace {name} exists and was not created by kubectl batchai; using it",
                file=sys.stderr,
            )
    common.emit(args, workspace_view(ns, _managed(ns)), WORKSPACE_COLUMNS[:1])
    return 0


def workspace_show(args: argparse.Namespace) -> int:
    views = []
    for workspace in _workspaces(args):
        kube = CliKube(context=args.context)
        ns = kube.read_namespace(namespace_name(workspace))
        views.append(workspace_view(ns, _managed(ns)))
    common.emit(args, views[0] if len(views) == 1 else views, WORKSPACE_COLUMNS[:1])
    return 0


def _workspaces(args: argparse.Namespace) -> list[str]:
    """-n, or --ids' workspaces."""
    if args.ids:
        from .naming import parse_id

        out = []
        for text in args.ids:
            try:
                out.append(parse_id(text).workspace)
            except ValueError as exc:
                raise CliError(str(exc), 2) from None
        return out
    if not args.name:
        raise CliError("the following arguments are required: -n/--name (or --ids)", 2)
    return [args.name]


def workspace_list(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    rows = workspace_rows(kube.list_trainingjobs(None), kube.list_clusters(None))
    # Workspaces `workspace create` made but that hold nothing yet (when namespaces may be listed).
    try:
        created = [
            namespace_name(str(n.metadata.name))
            for n in kube.list_namespaces(f"{LABEL_MANAGED_BY}={MANAGED_BY_CLI}")
        ]
    except CliError:
        created = []
    known = {r["name"] for r in rows}
    rows += [{"name": n, "clusters": 0, "experiments": 0, "jobs": 0} for n in created if n not in known]
    rows.sort(key=lambda r: str(r["name"]))
    common.emit(args, rows, WORKSPACE_COLUMNS)
    return 0


def workspace_delete(args: argparse.Namespace) -> int:
    from .jobs import wait_gone

    for workspace in _workspaces(args):
        kube = CliKube(context=args.context)
        name = namespace_name(workspace)
        ns = kube.read_namespace(name)
        if not _managed(ns) and not args.force:
            raise CliError(
                f"namespace {name} was not created by kubectl batchai (no label {LABEL_MANAGED_BY}="
                f"{MANAGED_BY_CLI}); deleting it deletes everything in it: pass --force if that is meant"
            )
        common.confirm(
            args,
            f"Are you sure you want to delete workspace {workspace} (namespace {name}) with all its "
            "clusters, "
            "experiments and jobs?",
        )
        kube.delete_namespace(name)
        if args.no_wait:
            print(f"Workspace {workspace}: deletion requested", file=sys.stderr)
            continue
        wait_gone(lambda k=kube, n=name: k.read_namespace(n), f"workspace {workspace}")
    return 0


# ---- experiments ------------------------------------------------------------------------------------


def experiment_body(name: str) -> dict[str, Any]:
    """The ConfigMap that records `experiment create` (pure)."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": namespace_name(EXPERIMENT_PREFIX + name)[:253],
            "labels": {LABEL_MANAGED_BY: MANAGED_BY_CLI, LABEL_EXPERIMENT: name},
        },
        "data": {"name": name},
    }


def _experiment(name: str) -> str:
    if experiment_name(name) != name:
        raise CliError(
            f"experiment {name!r}: letters, digits, '-' and '_', at most 63, starting and ending with a "
            "letter or digit (it labels the experiment's jobs)",
            2,
        )
    return name


def _experiment_map(kube: CliKube, name: str) -> dict[str, Any] | None:
    maps = kube.config_maps(kube.namespace, f"{LABEL_MANAGED_BY}={MANAGED_BY_CLI},{LABEL_EXPERIMENT}={name}")
    return maps[0] if maps else None


def experiment_create(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    name = _experiment(str(args.name))
    cm = _experiment_map(kube, name) or kube.create_config_map(kube.namespace, experiment_body(name))
    jobs = kube.experiment_trainingjobs(kube.namespace, name)
    common.emit(args, experiment_view(name, kube.namespace, cm, jobs), EXPERIMENT_COLUMNS)
    return 0


def experiment_show(args: argparse.Namespace) -> int:
    views = []
    for workspace, name in common.targets(args, "experiments"):
        kube = common.for_target(args, workspace)
        name = _experiment(name)
        cm = _experiment_map(kube, name)
        jobs = kube.experiment_trainingjobs(kube.namespace, name)
        if cm is None and not jobs:
            raise NotFound(f"experiment {name} not found in workspace {kube.namespace}")
        views.append(experiment_view(name, kube.namespace, cm, jobs))
    common.emit(args, views[0] if len(views) == 1 else views, EXPERIMENT_COLUMNS)
    return 0


def experiment_list(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    ns = None if args.all_namespaces else kube.namespace
    jobs = kube.list_trainingjobs(ns)
    selector = f"{LABEL_MANAGED_BY}={MANAGED_BY_CLI},{LABEL_EXPERIMENT}"
    maps = kube.config_maps(ns, selector) if ns else _all_config_maps(kube, selector)
    created = [
        (str(m["metadata"]["namespace"]), str(m["metadata"]["labels"][LABEL_EXPERIMENT])) for m in maps
    ]
    common.emit(args, experiment_rows(jobs, created), EXPERIMENT_COLUMNS)
    return 0


def _all_config_maps(kube: CliKube, selector: str) -> list[dict[str, Any]]:
    out = kube.call(
        "ConfigMaps in all namespaces",
        lambda: kube.core.list_config_map_for_all_namespaces(label_selector=selector),
        verb="list",
    )
    return [dict(kube.api.sanitize_for_serialization(c)) for c in out.items]


def experiment_delete(args: argparse.Namespace) -> int:
    for workspace, name in common.targets(args, "experiments"):
        _delete_experiment(args, common.for_target(args, workspace), _experiment(name))
    return 0


def _delete_experiment(args: argparse.Namespace, kube: CliKube, name: str) -> None:
    from .jobs import wait_gone

    ns = kube.namespace
    cm = _experiment_map(kube, name)
    jobs = kube.experiment_trainingjobs(ns, name)
    if cm is None and not jobs:
        raise NotFound(f"experiment {name} not found in workspace {ns}")
    common.confirm(
        args,
        f"Are you sure you want to delete experiment {name} in workspace {ns} and its {len(jobs)} job(s)?",
    )
    for job in jobs:
        kube.delete_trainingjob(ns, job["metadata"]["name"])
    if cm is not None:
        kube.delete_config_map(ns, cm["metadata"]["name"])
    if not args.no_wait:
        wait_gone(
            lambda: _raise_if_any(kube.experiment_trainingjobs(ns, name)),
            f"experiment {name}",
        )


def _raise_if_any(items: list[Any]) -> None:
    if not items:
        raise NotFound("gone")


# ---- list-usages --------------------------------------------------------------------------------------


def _gpu_request(pod: dict[str, Any]) -> int:
    total = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        value = ((c.get("resources") or {}).get("requests") or {}).get(RESOURCE_GPU)
        total += int(value or 0)
    return total


def list_usages(args: argparse.Namespace) -> int:
    """GPUs by VM family in the workspace: in use by its job pods, and allowed (its clusters' nodes'
    GPUs, capped by a ResourceQuota on requests.nvidia.com/gpu)."""
    kube = common.kube(args)
    ns = kube.namespace
    clusters = kube.list_clusters(ns)
    pods = [
        p
        for p in kube.list_pods_dicts(ns, LABEL_TRAININGJOB_UID)
        if (p.get("status") or {}).get("phase") in ("Pending", "Running")
    ]
    gpus: dict[tuple[str, str], tuple[int, int]] = {}
    for c in clusters:
        meta = c["metadata"]
        try:
            spec = BatchAIClusterSpec.model_validate(c.get("spec") or {})
            per_node = gpus_per_node(spec)
        except (ValueError, BuildError):
            continue
        selector = ",".join(f"{k}={v}" for k, v in node_selector(spec).items())
        nodes = {n["metadata"]["name"] for n in kube.list_nodes(selector)}
        used = sum(_gpu_request(p) for p in pods if (p.get("spec") or {}).get("nodeName") in nodes)
        gpus[(str(meta["namespace"]), str(meta["name"]))] = (used, per_node * len(nodes))
    quota: int | None = None
    for q in kube.resource_quotas(ns):
        hard = ((q.get("spec") or {}).get("hard") or {}).get(f"requests.{RESOURCE_GPU}")
        if hard is not None:
            quota = int(hard) if quota is None else min(quota, int(hard))
    common.emit(args, usage_rows(clusters, gpus, quota), USAGE_COLUMNS)
    return 0


def file_server(args: argparse.Namespace) -> int:
    raise CliError(file_server_message(f"file-server {args.command}"))


# ---- parsers ------------------------------------------------------------------------------------------


def add_workspace_parsers(workspaces: Any) -> None:
    p = common.add(
        workspaces,
        "create",
        "create a workspace: a namespace labelled as made by kubectl batchai",
        "az batchai workspace create",
        "-g and -l are recorded on the namespace; an existing namespace is used as it is.",
    )
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-l", "--location", help="recorded (the Kubernetes cluster has one location)")
    p.set_defaults(func=workspace_create)

    p = common.add(workspaces, "show", "show a workspace (namespace)", "az batchai workspace show", ids=True)
    p.add_argument("-n", "--name")
    p.set_defaults(func=workspace_show)

    p = common.add(
        workspaces,
        "list",
        "namespaces holding Batch AI jobs or clusters, or created with workspace create",
        "az batchai workspace list",
    )
    p.set_defaults(func=workspace_list)

    p = common.add(
        workspaces,
        "delete",
        "delete a workspace: its namespace, with everything in it",
        "az batchai workspace delete",
        "a namespace kubectl batchai did not create is refused unless --force.",
        ids=True,
        output=False,
    )
    p.add_argument("-n", "--name")
    common.add_confirm_flags(p)
    p.add_argument("--force", action="store_true", help="delete a namespace kubectl batchai did not create")
    p.set_defaults(func=workspace_delete)


def add_experiment_parsers(experiments: Any) -> None:
    diff = (
        "an experiment is a ConfigMap (batchai-experiment-NAME) plus the label batchai.io/experiment on "
        "its jobs."
    )
    p = common.add(experiments, "create", "create an experiment", "az batchai experiment create", diff)
    p.add_argument("-n", "--name", required=True)
    p.set_defaults(func=experiment_create)

    p = common.add(
        experiments,
        "show",
        "show an experiment and its jobs by state",
        "az batchai experiment show",
        diff,
        ids=True,
    )
    p.add_argument("-n", "--name")
    p.set_defaults(func=experiment_show)

    p = common.add(
        experiments, "list", "list experiments", "az batchai experiment list", diff + " -A: every workspace."
    )
    p.add_argument("-A", "--all-namespaces", action="store_true", help="experiments of every workspace")
    p.set_defaults(func=experiment_list)

    p = common.add(
        experiments,
        "delete",
        "delete an experiment and its jobs",
        "az batchai experiment delete",
        diff,
        ids=True,
        output=False,
    )
    p.add_argument("-n", "--name")
    common.add_confirm_flags(p, "until its jobs are gone")
    p.set_defaults(func=experiment_delete)


def add_usage_parser(groups: Any) -> None:
    p = common.add(
        groups,
        "list-usages",
        "GPUs by VM family in the workspace: in use and allowed",
        "az batchai list-usages",
        "counts GPUs (not cores) of the workspace's clusters' nodes, capped by a ResourceQuota on "
        "requests.nvidia.com/gpu; -l is accepted and not used.",
    )
    p.add_argument("-l", "--location", help="accepted; not used")
    p.set_defaults(func=list_usages)


def add_file_server_parsers(file_servers: Any) -> None:
    for verb in ("create", "list", "show", "delete"):
        p = common.add(
            file_servers,
            verb,
            f"{verb} a Batch AI file server: not available on AKS (the error says what to use)",
            f"az batchai file-server {verb}",
            "Batch AI's single-VM NFS servers have no equivalent here: use Azure Files NFS, Azure NetApp "
            "Files or another NFS server, mounted as a fileServers mount with `server`.",
        )
        p.add_argument("-n", "--name")
        p.set_defaults(func=file_server, argv_rest=True)
