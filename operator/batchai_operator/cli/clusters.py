"""`kubectl batchai cluster ...`: create (from flags, a cluster.json, or both), show, list, delete,
resize, auto-scale, node list, node exec, file list.

Every verb takes the cluster's Batch AI name or its BatchAICluster name."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from ..api.cluster import BatchAIClusterSpec
from ..manifests.paths import MOUNT_ROOT, setup_stdouterr_dir
from ..manifests.placement import node_selector
from ..names import LABEL_CLUSTER_UID, LABEL_ROLE, LABEL_TRAININGJOB_UID, MAIN_CONTAINER, SETUP_ROLE
from ..storage.errors import StorageError
from ..storage.locations import NotOnMount, resolve, scope_mount_points
from . import common
from .convert.cluster import ClusterOptions, convert_cluster_file, scale_settings
from .convert.document import ConversionError
from .errors import CliError, NotFound
from .k8s import CliKube
from .views import (
    CLUSTER_COLUMNS,
    CLUSTER_NODE_COLUMNS,
    FILE_COLUMNS,
    cluster_node_rows,
    cluster_view,
    file_rows,
)

# Kubernetes addition: a VM size -> agent pool map, for sizes whose nodes carry another instance type
# (Standard_NC6 is retired; its successors' pools are what AKS has). "Standard_NC6=gpupool,...".
ENV_VM_SIZE_POOLS = "BATCHAI_VM_SIZE_POOLS"
IDLE_CONTAINER_NAME = "idle"


def vm_size_pools(text: str | None) -> dict[str, str]:
    out = {}
    for item in (text or "").split(","):
        size, sep, pool = item.partition("=")
        if sep and size.strip() and pool.strip():
            out[size.strip().lower()] = pool.strip()
    return out


def _ssh_key(value: str | None) -> str | None:
    """-k: the key, or a file holding it (az took both)."""
    if not value:
        return None
    path = Path(value).expanduser()
    return path.read_text().strip() if path.is_file() else value


def _login_name() -> str:
    """az's default -u: the user running the command."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "batchai"


def cluster_create(args: argparse.Namespace) -> int:
    refuse_unsupported(args)
    kube = common.kube(args)
    ns = kube.namespace
    agent_pool = args.agent_pool
    if agent_pool is None and args.vm_size:
        agent_pool = vm_size_pools(os.environ.get(ENV_VM_SIZE_POOLS)).get(args.vm_size.lower())
        if agent_pool:
            print(
                f"note: vmSize {args.vm_size}: nodes of agent pool {agent_pool} ({ENV_VM_SIZE_POOLS})",
                file=sys.stderr,
            )
    user = args.user_name or (_login_name() if args.file is None else None)
    options = ClusterOptions(
        name=args.name,
        namespace=ns,
        vm_size=args.vm_size,
        target=args.target,
        min_nodes=args.min,
        max_nodes=args.max,
        vm_priority=args.vm_priority,
        image=args.image,
        custom_image=args.custom_image,
        user_name=user,
        ssh_public_key=_ssh_key(args.ssh_key),
        subnet=args.subnet,
        afs_name=args.afs_name,
        afs_mount_path=args.afs_mount_path,
        bfs_name=args.bfs_name,
        bfs_mount_path=args.bfs_mount_path,
        setup_task=args.setup_task,
        setup_task_output=args.setup_task_output,
        agent_pool=agent_pool,
        aks_pool=args.aks_pool,
        **common.storage_options(args),
    )
    result = common.converted(lambda: convert_cluster_file(args.file, options), args.file or "the flags")
    warnings = list(result.warnings)
    if args.generate_ssh_keys:
        warnings.append(
            "--generate-ssh-keys: no key is generated or used; nodes are reached through the API server "
            "(`cluster node exec`, `job node exec`)"
        )
    common.print_warnings(warnings)
    if args.dry_run:
        docs = [common.redacted(d) for d in result.documents()]
        common.emit(args, {"apiVersion": "v1", "kind": "List", "items": docs})
        return 0
    for secret in result.secrets:
        kube.apply_secret(ns, secret)
    created = kube.create_cluster(ns, result.obj)
    for line in resize_notes(created):
        print(f"note: {line}", file=sys.stderr)
    common.emit(args, cluster_view(created), CLUSTER_COLUMNS)
    return 0


def refuse_unsupported(args: argparse.Namespace) -> None:
    """az's flags that have nothing to map to here, refused before anything is created."""
    if args.password is not None:
        raise CliError("-p/--password: passwords are not taken; nodes are reached with `cluster node exec`")
    if args.nfs:
        raise CliError(file_server_message("--nfs"))
    if args.use_auto_storage:
        raise CliError(
            "--use-auto-storage is not supported: create the storage account, share and container first "
            "(az storage ...) and pass --afs-name/--bfs-name with --storage-account-name"
        )


def cluster_show(args: argparse.Namespace) -> int:
    views = []
    for workspace, name in common.targets(args, "clusters"):
        kube = common.for_target(args, workspace)
        views.append(cluster_view(kube.resolve_cluster(kube.namespace, name)))
    common.emit(args, views[0] if len(views) == 1 else views, CLUSTER_COLUMNS)
    return 0


def cluster_list(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    rows = [cluster_view(c) for c in kube.list_clusters(None if args.all_namespaces else kube.namespace)]
    rows.sort(key=lambda r: (r["workspace"], r["name"]))
    common.emit(args, rows, CLUSTER_COLUMNS)
    return 0


def cluster_delete(args: argparse.Namespace) -> int:
    from .jobs import wait_gone

    for workspace, name in common.targets(args, "clusters"):
        kube = common.for_target(args, workspace)
        ns = kube.namespace
        k8s_name = kube.resolve_cluster(ns, name)["metadata"]["name"]
        common.confirm(
            args,
            f"Are you sure you want to delete cluster {name} in workspace {ns}? Its nodes stay (they belong "
            "to the AKS node pool); its setup-task pods go.",
        )
        kube.delete_cluster(ns, k8s_name)
        if args.no_wait:
            print(f"Cluster {name}: deletion requested", file=sys.stderr)
            continue
        wait_gone(lambda k=kube, n=ns, c=k8s_name: k.get_cluster(n, c), f"cluster {name}")
    return 0


def resize_notes(cluster: dict[str, Any]) -> list[str]:
    """Why scaleSettings will not move any node (pure): the cluster has no AKS agent pool binding."""
    spec = cluster.get("spec") or {}
    if spec.get("scaleSettings") and not spec.get("aks"):
        return [
            "the cluster has no AKS agent pool binding (spec.aks), so nothing resizes its nodes: "
            "scaleSettings "
            "are recorded and the node count is only observed. Bind the pool with --aks-pool <agent pool "
            "ARM id> (an admin must map it to this namespace: chart value allow.agentPools), or scale the "
            "pool yourself (az aks nodepool scale)"
        ]
    return []


def _rescale(args: argparse.Namespace, scale: dict[str, Any]) -> int:
    views = []
    for workspace, name in common.targets(args, "clusters"):
        kube = common.for_target(args, workspace)
        k8s_name = kube.resolve_cluster(kube.namespace, name)["metadata"]["name"]
        # Merge patch: the other mode is removed, so exactly one of manual/autoScale stays set.
        other = "autoScale" if "manual" in scale else "manual"
        spec: dict[str, Any] = {"scaleSettings": {**scale, other: None}}
        if args.aks_pool:
            spec["aks"] = _aks(args.aks_pool)
        patched = kube.patch_cluster(kube.namespace, k8s_name, {"spec": spec})
        for line in resize_notes(patched):
            print(f"note: {line}", file=sys.stderr)
        views.append(cluster_view(patched))
    common.emit(args, views[0] if len(views) == 1 else views, CLUSTER_COLUMNS)
    return 0


def _aks(pool_id: str) -> dict[str, str]:
    from .convert.cluster import aks_binding

    try:
        return aks_binding(pool_id)
    except ConversionError as exc:
        raise CliError(str(exc)) from None


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


# ---- nodes and files ------------------------------------------------------------------------------------


def _cluster_nodes(
    kube: CliKube, cluster: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the cluster's nodes, the pods of its jobs and setup task on them)."""
    spec = BatchAIClusterSpec.model_validate(cluster.get("spec") or {})
    selector = ",".join(f"{k}={v}" for k, v in node_selector(spec).items())
    nodes = kube.list_nodes(selector)
    names = {n["metadata"]["name"] for n in nodes}
    pods = [
        p
        for p in kube.list_pods_dicts(kube.namespace, LABEL_TRAININGJOB_UID)
        + kube.list_pods_dicts(kube.namespace, f"{LABEL_CLUSTER_UID}={cluster['metadata']['uid']}")
        if (p.get("spec") or {}).get("nodeName") in names
    ]
    return nodes, pods


def cluster_node_list(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    cluster = kube.resolve_cluster(kube.namespace, args.cluster)
    nodes, pods = _cluster_nodes(kube, cluster)
    counts: dict[str, int] = {}
    for p in pods:
        if LABEL_TRAININGJOB_UID in ((p.get("metadata") or {}).get("labels") or {}) and (
            p.get("status") or {}
        ).get("phase") in ("Pending", "Running"):
            node = str(p["spec"]["nodeName"])
            counts[node] = counts.get(node, 0) + 1
    common.emit(args, cluster_node_rows(nodes, counts), CLUSTER_NODE_COLUMNS)
    return 0


def container_on_node(pods: list[dict[str, Any]], node: str | None) -> tuple[str, str, str]:
    """(pod, container, node) to exec in on the node (default: the first node with one): a running
    job's main container, else the setup task's idle container (pure)."""
    running = [p for p in pods if (p.get("status") or {}).get("phase") == "Running"]
    if node is not None:
        running = [p for p in running if p["spec"].get("nodeName") == node]

    def rank(p: dict[str, Any]) -> tuple[int, str]:
        is_setup = ((p.get("metadata") or {}).get("labels") or {}).get(LABEL_ROLE) == SETUP_ROLE
        return (1 if is_setup else 0, str(p["spec"].get("nodeName")))

    for pod in sorted(running, key=rank):
        labels = (pod.get("metadata") or {}).get("labels") or {}
        container = IDLE_CONTAINER_NAME if labels.get(LABEL_ROLE) == SETUP_ROLE else MAIN_CONTAINER
        return str(pod["metadata"]["name"]), container, str(pod["spec"].get("nodeName"))
    where = f"node {node}" if node else "any node of the cluster"
    raise NotFound(
        f"no running job or setup-task pod of the cluster on {where}: `cluster node exec` runs in a "
        "container the cluster has there (there is no SSH to AKS nodes); for the host itself an admin can "
        "use `kubectl debug node/NODE`"
    )


def cluster_node_exec(args: argparse.Namespace) -> int:
    from .jobs import exec_on

    kube = common.kube(args)
    cluster = kube.resolve_cluster(kube.namespace, args.cluster)
    _, pods = _cluster_nodes(kube, cluster)
    pod, container, node = container_on_node(pods, args.node_id)
    print(f"Node {node}: container {container} of pod {pod}", file=sys.stderr)
    return exec_on(kube, args, pod, container)


def cluster_file_list(args: argparse.Namespace) -> int:
    """The setup task's output: stdout/stderr per node, where its stdOutErrPathPrefix lies in storage."""
    from ..storage.access import open_store
    from .files import credentials

    kube = common.kube(args)
    cluster = kube.resolve_cluster(kube.namespace, args.cluster)
    spec = BatchAIClusterSpec.model_validate(cluster.get("spec") or {})
    setup = spec.node_setup.setup_task if spec.node_setup else None
    if setup is None:
        raise CliError(f"cluster {args.cluster} has no setup task, so no setup-task output to list")
    meta = cluster["metadata"]
    directory = setup_stdouterr_dir(setup, meta["namespace"], meta["name"], meta["uid"])
    mounts = spec.node_setup.mount_volumes if spec.node_setup else None
    variables = {v.name: v.value for v in setup.environment_variables or []}
    variables["AZ_BATCHAI_MOUNT_ROOT"] = MOUNT_ROOT
    try:
        location = resolve(directory, scope_mount_points("cluster", MOUNT_ROOT, mounts), variables).child(
            args.path
        )
    except NotOnMount as exc:
        raise CliError(
            f"the setup task's output ({directory}) is not on an Azure Files share or blob container the "
            f"cluster mounts: {exc}"
        ) from None
    sources = credentials(kube, args)
    try:
        store = open_store(location, sources.resolve(location.ref), os.environ)
        entries = store.list(location, args.expiry)
    except StorageError as exc:
        raise CliError(str(exc)) from None
    common.emit(args, file_rows(entries), FILE_COLUMNS)
    return 0


def file_server_message(what: str) -> str:
    return (
        f"{what}: Batch AI file servers (single-VM NFS servers) cannot be created here. On AKS use Azure "
        "Files NFS shares or Azure NetApp Files (or any NFS server), and mount them in job.json as a "
        "`fileServers` mount with `server` set to its host, or as azureFileShares"
    )


# ---- parsers --------------------------------------------------------------------------------------------


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a node count, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("node counts are not negative")
    return value


DIFF_CLUSTER = (
    "a cluster is a BatchAICluster over the AKS nodes of its vmSize (or --agent-pool); no VMs are created. "
    "Node counts move only with an AKS agent pool binding (--aks-pool), otherwise they are observed."
)


def add_parsers(clusters: Any) -> None:
    p = common.add(
        clusters,
        "create",
        "create a BatchAICluster from flags, a Batch AI cluster.json (-f), or both (flags override the file)",
        "az batchai cluster create",
        DIFF_CLUSTER + " -i, -u and -k are recorded and not used (the pool decides the node image; there is "
        "no SSH); --generate-ssh-keys generates nothing; -p, --nfs and --use-auto-storage are refused.",
    )
    p.add_argument("-f", "--config-file", "--file", dest="file", help="cluster.json ('-': stdin)")
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-s", "--vm-size", help="VM size, e.g. Standard_NC6 (overrides the file)")
    p.add_argument("--vm-priority", choices=("dedicated", "lowpriority"), help="lowpriority: AKS spot nodes")
    p.add_argument("-t", "--target", type=_count, help="node count (initial count with --min/--max)")
    p.add_argument("--min", type=_count, help="autoscaler minimum (with --max)")
    p.add_argument("--max", type=_count, help="autoscaler maximum (with --min)")
    p.add_argument("-i", "--image", help="UbuntuLTS, UbuntuDSVM or publisher:offer:sku[:version] (recorded)")
    p.add_argument("--custom-image", help="custom image ARM id (recorded)")
    p.add_argument("-u", "--user-name", help="admin user name (recorded; default: yours)")
    p.add_argument("-k", "--ssh-key", help="SSH public key or its file (recorded, not used)")
    p.add_argument("-p", "--password", help=argparse.SUPPRESS)
    p.add_argument("--generate-ssh-keys", action="store_true", help="accepted; nothing is generated")
    p.add_argument("--subnet", help="subnet ARM id (recorded, not used)")
    p.add_argument("--nfs", help=argparse.SUPPRESS)
    p.add_argument("--nfs-mount-path", help=argparse.SUPPRESS)
    p.add_argument("--use-auto-storage", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--afs-name", help="Azure Files share of the storage account to mount on every node")
    p.add_argument(
        "--afs-mount-path", default="afs", help="its path under $AZ_BATCHAI_MOUNT_ROOT (default afs)"
    )
    p.add_argument("--bfs-name", help="blob container of the storage account to mount on every node")
    p.add_argument(
        "--bfs-mount-path", default="bfs", help="its path under $AZ_BATCHAI_MOUNT_ROOT (default bfs)"
    )
    p.add_argument("--setup-task", help="command run on every node (needs an admin's allow.setupTasks)")
    p.add_argument("--setup-task-output", help="where the setup task's stdout/stderr go")
    p.add_argument(
        "--agent-pool", help=f"select nodes by AKS agent pool instead of vmSize (also: ${ENV_VM_SIZE_POOLS})"
    )
    p.add_argument(
        "--aks-pool",
        metavar="AGENT_POOL_ID",
        help="ARM id of the AKS agent pool the operator scales to scaleSettings (spec.aks)",
    )
    common.add_storage_key_arguments(p)
    common.add_placeholder_argument(p)
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be created (Secret values hidden)"
    )
    p.set_defaults(func=cluster_create)

    p = common.add(clusters, "show", "show a cluster", "az batchai cluster show", ids=True)
    p.add_argument("-n", "--name")
    p.set_defaults(func=cluster_show)

    p = common.add(
        clusters, "list", "list clusters with node counts", "az batchai cluster list", "-A: every workspace."
    )
    p.add_argument("-A", "--all-namespaces", action="store_true", help="clusters of every workspace")
    p.set_defaults(func=cluster_list)

    p = common.add(
        clusters,
        "delete",
        "delete a cluster (its nodes stay: they are the AKS pool's)",
        "az batchai cluster delete",
        "the nodes are not deallocated; jobs on the cluster wait for it to come back.",
        ids=True,
        output=False,
    )
    p.add_argument("-n", "--name")
    common.add_confirm_flags(p)
    p.set_defaults(func=cluster_delete)

    for verb, help_text in (("resize", "set a fixed node count"), ("auto-scale", "set autoscaler bounds")):
        p = common.add(
            clusters,
            verb,
            help_text,
            f"az batchai cluster {verb}",
            "applied to the AKS agent pool only with a binding (--aks-pool here or at create) that an admin "
            "mapped to the namespace; otherwise the command says so and status reports it.",
            ids=True,
        )
        p.add_argument("-n", "--name")
        if verb == "resize":
            p.add_argument("-t", "--target", type=_count, required=True, help="node count")
            p.set_defaults(func=cluster_resize)
        else:
            p.add_argument("--min", type=_count, required=True)
            p.add_argument("--max", type=_count, required=True)
            p.set_defaults(func=cluster_auto_scale)
        p.add_argument("--aks-pool", metavar="AGENT_POOL_ID", help="bind the AKS agent pool too (spec.aks)")


def add_node_parsers(nodes: Any) -> None:
    from .jobs import add_exec_arguments

    p = common.add(
        nodes,
        "list",
        "the cluster's nodes with their state",
        "az batchai cluster node list",
        "rows add the node's state and job pods; `port` is empty (no SSH).",
    )
    p.add_argument("-c", "--cluster", required=True)
    p.set_defaults(func=cluster_node_list)

    p = common.add(
        nodes,
        "exec",
        "run a command on a node of the cluster, or forward ports to it",
        "az batchai cluster node exec",
        "runs in a container of the cluster on that node (a job's, else the setup task's), through the API "
        "server, not SSH on the host; no key or password is taken; -L reaches that container's ports.",
        output=False,
    )
    p.add_argument("-c", "--cluster", required=True)
    p.add_argument("-n", "--node-id", help="node name (default: the first node with a running pod)")
    add_exec_arguments(p)
    p.set_defaults(func=cluster_node_exec)


def add_file_parsers(files: Any) -> None:
    from .files import MAX_EXPIRY, MIN_EXPIRY, expiry_minutes

    p = common.add(
        files,
        "list",
        "list the setup task's output files (stdout/stderr per node)",
        "az batchai cluster file list",
        "the listing keeps the path below the mount point (az dropped it).",
    )
    p.add_argument("-c", "--cluster", required=True)
    p.add_argument("-p", "--path", default=".", help="subdirectory (default: .)")
    p.add_argument(
        "--expiry",
        type=expiry_minutes,
        default=60,
        help=f"minutes the download URLs stay valid ({MIN_EXPIRY}-{MAX_EXPIRY}, default 60)",
    )
    common.add_storage_key_arguments(p)
    p.add_argument("--auth-mode", choices=("auto", "key", "login"), default="auto", help="as job file list")
    p.set_defaults(func=cluster_file_list)
