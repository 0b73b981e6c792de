"""Batch AI cluster.json and `az batchai cluster create` flags -> a BatchAICluster plus the Secrets its
mounts need (pure, besides reading the file).

With -f the file is the base and flags override it, as az did; without -f the flags alone build the
cluster (`cluster create -n nc6 -s Standard_NC6 -i UbuntuDSVM -t 1 --generate-ssh-keys`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ... import API_VERSION
from ...api.cluster import BatchAIClusterSpec
from ...names import ANNOTATION_BATCHAI_NAME, ENV_STORAGE_ACCOUNT, LABEL_CLUSTER
from ...vmsizes import retirement_warning
from .document import (
    Conversion,
    ConversionError,
    Converter,
    StorageOptions,
    check_placeholders,
    dns_label,
    dns_subdomain,
    drop_read_only,
    read_document,
    split,
    substitute,
    validated,
)
from .secrets import SecretsBuilder, storage_account

# Read-only cluster properties a GET returned (az batchai cluster show); dropped so saved output converts.
READ_ONLY_FIELDS = (
    "allocationState",
    "allocationStateTransitionTime",
    "creationTime",
    "currentNodeCount",
    "errors",
    "nodeStateCounts",
    "provisioningState",
    "provisioningStateTransitionTime",
)

# az batchai's -i aliases (publisher, offer, sku, version).
IMAGE_ALIASES = {
    "ubuntults": ("Canonical", "UbuntuServer", "16.04-LTS", "latest"),
    "ubuntudsvm": ("microsoft-ads", "linux-data-science-vm-ubuntu", "linuxdsvmubuntu", "latest"),
}
_AGENT_POOL_ID = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.ContainerService/managedClusters/(?P<cluster>[^/]+)/agentPools/(?P<pool>[^/]+)/?$",
    re.IGNORECASE,
)


@dataclass
class ClusterOptions(StorageOptions):
    """What `az batchai cluster create` took besides -f: the name and flags that override the file,
    plus the Kubernetes additions --agent-pool and --aks-pool."""

    name: str | None = None
    vm_size: str | None = None  # -s
    target: int | None = None  # -t: initial/target node count
    min_nodes: int | None = None
    max_nodes: int | None = None
    vm_priority: str | None = None
    image: str | None = None  # -i: alias or publisher:offer:sku[:version]
    custom_image: str | None = None
    user_name: str | None = None  # -u
    ssh_public_key: str | None = None  # -k, the key's text
    subnet: str | None = None
    afs_name: str | None = None
    afs_mount_path: str = "afs"
    bfs_name: str | None = None
    bfs_mount_path: str = "bfs"
    setup_task: str | None = None
    setup_task_output: str | None = None
    agent_pool: str | None = None  # select nodes by agent pool
    aks_pool: str | None = None  # ARM id of the AKS agent pool to scale (spec.aks)


def scale_settings(target: int | None, lo: int | None, hi: int | None) -> dict[str, Any] | None:
    """az's rule: --min == --max (or only -t) is a manual count, else autoScale with initial = -t."""
    if lo is None and hi is None:
        return None if target is None else {"manual": {"targetNodeCount": target}}
    if lo is None or hi is None:
        raise ConversionError("--min and --max go together")
    if lo > hi:
        raise ConversionError(f"--min {lo} is larger than --max {hi}")
    if lo == hi:
        return {"manual": {"targetNodeCount": lo}}
    auto: dict[str, Any] = {"minimumNodeCount": lo, "maximumNodeCount": hi}
    if target is not None:
        auto["initialNodeCount"] = target
    return {"autoScale": auto}


def image_reference(image: str, custom_image: str | None = None) -> dict[str, Any]:
    """-i as az read it: UbuntuLTS, UbuntuDSVM, or publisher:offer:sku[:version]."""
    alias = IMAGE_ALIASES.get(image.lower())
    parts = alias or tuple(image.split(":"))
    if len(parts) not in (3, 4) or not all(parts):
        raise ConversionError(
            f"-i/--image {image!r}: expected UbuntuLTS, UbuntuDSVM or publisher:offer:sku[:version]"
        )
    ref: dict[str, Any] = {"publisher": parts[0], "offer": parts[1], "sku": parts[2]}
    ref["version"] = parts[3] if len(parts) == 4 else "latest"
    if custom_image:
        ref["virtualMachineImageId"] = custom_image
    return ref


def aks_binding(pool_id: str) -> dict[str, str]:
    """spec.aks from an agent pool's ARM id (`az aks nodepool show ... --query id -o tsv`)."""
    m = _AGENT_POOL_ID.match(pool_id.strip())
    if m is None:
        raise ConversionError(
            f"--aks-pool {pool_id!r}: expected an agent pool id, /subscriptions/SUB/resourceGroups/RG/"
            "providers/Microsoft.ContainerService/managedClusters/AKS/agentPools/POOL"
        )
    return {
        "subscriptionId": m["sub"],
        "resourceGroup": m["rg"],
        "clusterName": m["cluster"],
        "agentPoolName": m["pool"],
    }


def apply_flags(props: dict[str, Any], opts: ClusterOptions, account: str | None, warn: Any) -> None:
    """az's flags over the cluster properties (in place)."""
    if opts.vm_size:
        props["vmSize"] = opts.vm_size
    if opts.vm_priority:
        props["vmPriority"] = opts.vm_priority
    scale = scale_settings(opts.target, opts.min_nodes, opts.max_nodes)
    if scale is not None:
        props["scaleSettings"] = scale
    if opts.image:
        props["virtualMachineConfiguration"] = {
            "imageReference": image_reference(opts.image, opts.custom_image)
        }
    elif opts.custom_image:
        raise ConversionError("--custom-image needs -i/--image naming its base (publisher:offer:sku)")
    if opts.user_name or opts.ssh_public_key:
        users = props.setdefault("userAccountSettings", {})
        if opts.user_name:
            users["adminUserName"] = opts.user_name
        if opts.ssh_public_key:
            users["adminUserSshPublicKey"] = opts.ssh_public_key
    if opts.subnet:
        props["subnet"] = {"id": opts.subnet}
        warn("--subnet is recorded and not used: the AKS cluster decides networking")
    mounts = _node_mounts(opts, account)
    if mounts:
        volumes = props.setdefault("nodeSetup", {}).setdefault("mountVolumes", {})
        for group, refs in mounts.items():
            volumes.setdefault(group, []).extend(refs)
    if opts.setup_task:
        if not opts.setup_task_output:
            raise ConversionError(
                "--setup-task needs --setup-task-output (where its stdout and stderr go, as az required)"
            )
        props.setdefault("nodeSetup", {})["setupTask"] = {
            "commandLine": opts.setup_task,
            "stdOutErrPathPrefix": opts.setup_task_output,
        }
    if opts.agent_pool:
        props["agentPool"] = opts.agent_pool
    if opts.aks_pool:
        props["aks"] = aks_binding(opts.aks_pool)


def _node_mounts(opts: ClusterOptions, account: str | None) -> dict[str, list[dict[str, Any]]]:
    """--afs-name / --bfs-name: an Azure Files share and a blob container of the storage account."""
    out: dict[str, list[dict[str, Any]]] = {}
    if (opts.afs_name or opts.bfs_name) and not account:
        raise ConversionError(
            f"--afs-name and --bfs-name need the storage account: pass --storage-account-name or set "
            f"{ENV_STORAGE_ACCOUNT}"
        )
    if opts.afs_name:
        url = f"https://{account}.file.core.windows.net/{opts.afs_name}"
        out["azureFileShares"] = [
            {"accountName": account, "azureFileUrl": url, "relativeMountPath": opts.afs_mount_path}
        ]
    if opts.bfs_name:
        out["azureBlobFileSystems"] = [
            {"accountName": account, "containerName": opts.bfs_name, "relativeMountPath": opts.bfs_mount_path}
        ]
    return out


class ClusterConverter(Converter):
    """One cluster's conversion: a cluster.json (or nothing) plus flags."""

    def __init__(self, options: ClusterOptions, environ: Mapping[str, str]) -> None:
        super().__init__(environ)
        self.opts = options

    def run(self, doc: Mapping[str, Any] | None) -> Conversion:
        opts = self.opts
        props, version = split(doc, self.warn) if doc is not None else ({}, "2018-05-01")
        account, _ = storage_account(opts, self.environ)
        values = dict(opts.placeholders)
        if account:
            values.setdefault(ENV_STORAGE_ACCOUNT, account)
        props = substitute(props, values)
        drop_read_only(props, READ_ONLY_FIELDS, self.warn)
        raw = opts.name or (Path(opts.source).stem if opts.source and opts.source != "-" else "")
        if not raw:
            raise ConversionError("the cluster needs a name: pass -n/--name")
        name = dns_subdomain(raw)
        if name != raw:
            self.warn(
                f"cluster name {raw!r} is not a Kubernetes name: the BatchAICluster is {name!r}; {raw!r} is "
                f"kept in the annotation {ANNOTATION_BATCHAI_NAME} and works in every kubectl batchai command"
            )
        apply_flags(props, opts, account, self.warn)
        if "vmSize" not in props:
            raise ConversionError(
                "the cluster needs a VM size: pass -s/--vm-size (or -f with a cluster.json)"
            )
        if doc is None and "scaleSettings" not in props:
            raise ConversionError(
                "the cluster needs a node count: pass -t/--target, or --min and --max (as az required)"
            )
        self._drop_secrets_with_warning(props)
        check_placeholders(props)
        secrets = SecretsBuilder(
            opts, self.environ, dns_label(f"{name}-cluster", 253), LABEL_CLUSTER, name, self.warn
        )
        node_setup = props.get("nodeSetup")
        if isinstance(node_setup, dict):
            secrets.mounts(node_setup)
            if isinstance(node_setup.get("setupTask"), dict):
                secrets.values(node_setup["setupTask"])
        spec = validated(BatchAIClusterSpec, props, "cluster is not a valid BatchAICluster")
        retired = retirement_warning(spec.vm_size)
        if retired:
            self.warn(retired)
        metadata: dict[str, Any] = {"name": name}
        if opts.namespace:
            metadata["namespace"] = opts.namespace
        if name != raw:
            metadata["annotations"] = {ANNOTATION_BATCHAI_NAME: raw}
        cluster = {
            "apiVersion": API_VERSION,
            "kind": "BatchAICluster",
            "metadata": metadata,
            "spec": spec.wire(),
        }
        manifests, missing = secrets.manifests()
        return Conversion(cluster, manifests, self.warnings, version, missing)

    def _drop_secrets_with_warning(self, props: dict[str, Any]) -> None:
        users = props.get("userAccountSettings")
        if isinstance(users, dict) and users.pop("adminUserPassword", None) is not None:
            self.warn("userAccountSettings.adminUserPassword dropped: AKS nodes are not reached over SSH")
        node_setup = props.get("nodeSetup")
        if isinstance(node_setup, dict):
            counters = node_setup.get("performanceCountersSettings") or {}
            insights = counters.get("appInsightsReference") if isinstance(counters, dict) else None
            if isinstance(insights, dict) and insights.pop("instrumentationKey", None) is not None:
                self.warn(
                    "the Application Insights instrumentationKey was dropped: counters are not sent here"
                )


def convert_cluster(
    doc: Mapping[str, Any] | None, options: ClusterOptions, environ: Mapping[str, str] | None = None
) -> Conversion:
    """A parsed cluster.json (or None: flags only) with the options -> BatchAICluster + Secrets."""
    return ClusterConverter(options, os.environ if environ is None else environ).run(doc)


def convert_cluster_file(
    path: str | None, options: ClusterOptions, environ: Mapping[str, str] | None = None
) -> Conversion:
    """Read and convert a Batch AI cluster.json ('-' reads standard input; None: flags only)."""
    doc = read_document(path) if path is not None else None
    if options.source is None:
        options.source = path
    return convert_cluster(doc, options, environ)
