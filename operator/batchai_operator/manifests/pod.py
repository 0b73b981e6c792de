"""The pod template of a TrainingJob's Job: one pod per Batch AI node, running the launcher
(docs/design.md)."""

from __future__ import annotations

import re
from typing import Any

from .. import toolkit_facts
from ..api.cluster import BatchAIClusterSpec
from ..api.trainingjob import TrainingJobSpec
from ..config import OperatorConfig, namespace_matches
from ..launcher import commands
from ..names import (
    ERR_INVALID_SHM_SIZE,
    ERR_SERVICE_ACCOUNT_NOT_ALLOWED,
    MAIN_CONTAINER,
    RESOURCE_GPU,
    VOLUME_CONFIG,
    VOLUME_SHARED_TEMP,
    VOLUME_SHM,
    VOLUME_SSH,
    VOLUME_TEMP,
)
from .configmap import launcher_config_map_name
from .context import TrainingJobContext
from .env import user_env
from .errors import BuildError
from .naming import pod_annotations
from .paths import CONFIG_DIR, MOUNT_ROOT, SSH_DIR, batchai_env
from .placement import node_selector, one_pod_per_node, setup_done, tolerations
from .shared_temp import shared_temp_claim_name
from .volumes import PodVolumes, build_volumes


def image_for(spec: TrainingJobSpec, cluster: BatchAIClusterSpec, config: OperatorConfig) -> str:
    """containerSettings' image, else the cluster's, else the operator's default image for the toolkit."""
    if spec.container_settings is not None:
        reg = spec.container_settings.image_source_registry
        if reg.server_url and "/" in reg.image and "." not in reg.image.split("/", 1)[0]:
            # Batch AI required a fully qualified name with a custom registry; be lenient and qualify it.
            host = re.sub(r"^https?://", "", reg.server_url).rstrip("/")
            return f"{host}/{reg.image}"
        return reg.image
    tool = spec.tool_type
    cluster_images = cluster.images.wire() if cluster.images else {}
    return cluster_images.get(tool) or config.images[tool]


def shm_quantity(shm_size: str) -> str:
    """docker's '16gb' / '512m' (binary units) as a Kubernetes quantity."""
    m = re.fullmatch(r"([0-9.]+)\s*([bkmgt]?)b?", shm_size.strip().lower())
    if not m:
        raise BuildError(ERR_INVALID_SHM_SIZE, f"containerSettings.shmSize {shm_size!r} is not a docker size")
    number, unit = m.groups()
    suffix = {"": "", "b": "", "k": "Ki", "m": "Mi", "g": "Gi", "t": "Ti"}[unit]
    return f"{number}{suffix}"


_UNITS = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}
_UNITS |= {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}


def quantity_bytes(quantity: str) -> float:
    """A Kubernetes memory quantity ('64Gi', '512M', '1e9' not supported) in bytes."""
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?", quantity.strip())
    if not m:
        raise ValueError(f"not a quantity: {quantity!r}")
    return float(m.group(1)) * _UNITS[m.group(2) or ""]


def shm_volume_size(shm_size: str, cap: str) -> str:
    """containerSettings.shmSize as the sizeLimit of a memory-backed /dev/shm, within the admin's cap
    (a tmpfs counts against the node's memory: '16tb' must not become an unbounded one)."""
    size = shm_quantity(shm_size)
    if quantity_bytes(size) > quantity_bytes(cap):
        raise BuildError(
            ERR_INVALID_SHM_SIZE,
            f"containerSettings.shmSize {shm_size} is larger than this installation allows ({cap}, chart "
            "value jobs.maxShmSize)",
        )
    return size


def pod_volumes(ctx: TrainingJobContext) -> PodVolumes:
    """The job's mounts, the cluster's mounts, the launcher config, job temp, /dev/shm and the SSH keys."""
    spec, ns = ctx.spec, ctx.namespace
    allow = namespace_matches(ctx.config.allow.privileged_mounts, ns)
    endpoint = ctx.config.blob_endpoint
    vols = build_volumes(spec.mount_volumes, ctx.ident.job_mount_root, "job", ns, allow, endpoint)
    node_setup = ctx.cluster.node_setup
    cluster_mounts = node_setup.mount_volumes if node_setup else None
    vols.extend(build_volumes(cluster_mounts, MOUNT_ROOT, "cluster", ns, allow, endpoint))

    def add(name: str, source: dict[str, Any], path: str, read_only: bool = False) -> None:
        vols.volumes.append({"name": name, **source})
        vols.mounts.append({"name": name, "mountPath": path, **({"readOnly": True} if read_only else {})})

    config = ctx.child if ctx.multi_node else launcher_config_map_name()
    add(VOLUME_CONFIG, {"configMap": {"name": config, "defaultMode": 0o755}}, CONFIG_DIR, read_only=True)
    add(VOLUME_TEMP, {"emptyDir": {}}, ctx.ident.job_temp)
    claim = shared_temp_claim_name(ctx)
    if claim is not None:
        add(VOLUME_SHARED_TEMP, {"persistentVolumeClaim": {"claimName": claim}}, ctx.ident.shared_job_temp)
    if spec.container_settings and spec.container_settings.shm_size:
        size = shm_volume_size(spec.container_settings.shm_size, ctx.config.max_shm_size)
        shm = {"medium": "Memory", "sizeLimit": size}
        add(VOLUME_SHM, {"emptyDir": shm}, "/dev/shm")
    if toolkit_facts.needs_ssh(ctx.spec):
        secret = {"secretName": ctx.ssh_secret_name, "defaultMode": 0o600}
        add(VOLUME_SSH, {"secret": secret}, SSH_DIR, read_only=True)
    return vols


def container_env(ctx: TrainingJobContext, vols: PodVolumes) -> list[dict[str, Any]]:
    """Batch AI's AZ_BATCHAI_* variables, the toolkit's, the launcher's, then the job's own."""
    spec = ctx.spec
    shared = shared_temp_claim_name(ctx) is not None
    env = batchai_env(spec, ctx.ident, ctx.gpus, shared_temp=shared)
    env.update(commands.toolkit_env(spec, ctx.hosts, ctx.gpus, shared_job_temp=shared))
    env.update(
        {
            "BATCHAI_CONFIG_DIR": CONFIG_DIR,
            "BATCHAI_NODE_COUNT": str(spec.node_count),
            "BATCHAI_TOOLKIT": spec.tool_type,
        }
    )
    if ctx.multi_node:
        env["BATCHAI_HOSTS"] = ",".join(ctx.hosts)
    if toolkit_facts.needs_ssh(ctx.spec):
        env["BATCHAI_SSH_DIR"] = SSH_DIR
    if spec.job_preparation is not None:
        env["BATCHAI_JOB_PREPARATION"] = spec.job_preparation.command_line
    if vols.unmanaged:
        env["BATCHAI_UNMANAGED_MOUNTS"] = "\n".join(f"{cmd}\t{path}" for cmd, path in vols.unmanaged)
    # Batch AI expanded $VARS in user variables with the node's shell; the launcher does it for these.
    to_expand = [e.name for e in spec.environment_variables or [] if "$" in e.value]
    if to_expand:
        env["BATCHAI_EXPAND_VARS"] = " ".join(to_expand)
    if not ctx.multi_node:
        # A single node's tasks and hostfile travel in the pod (the launcher's files are shared).
        files = commands.job_files(spec, ctx.hosts, ctx.gpus)
        env["BATCHAI_TASKS"] = files[commands.tasks_key(0)]
        env["BATCHAI_HOSTFILE"] = files[commands.HOSTFILE_KEY]
    listed = [{"name": k, "value": v} for k, v in env.items()]
    return listed + user_env(spec.environment_variables, spec.secrets)


def _pull_secret(spec: TrainingJobSpec) -> str | None:
    cs = spec.container_settings
    if cs and cs.image_source_registry.credentials and cs.image_source_registry.credentials.secret_ref:
        return cs.image_source_registry.credentials.secret_ref.name
    return None


def container_resources(ctx: TrainingJobContext) -> dict[str, Any]:
    """The configured requests (and limits, if any) plus the node's GPUs as a limit."""
    resources = {k: dict(v) for k, v in ctx.config.job_resources.items() if v}
    if ctx.gpus > 0:
        resources.setdefault("limits", {})[RESOURCE_GPU] = str(ctx.gpus)
    return resources


def service_account(ctx: TrainingJobContext) -> str:
    """The job's serviceAccountName: any of its namespace's, but never the operator's own."""
    name = ctx.spec.service_account_name
    assert name is not None
    if ctx.config.operator_service_account != (ctx.namespace, name):
        return name
    raise BuildError(
        ERR_SERVICE_ACCOUNT_NOT_ALLOWED,
        f"serviceAccountName {name} is the operator's own ServiceAccount; job pods may not run with the "
        "operator's rights",
    )


def build_pod_template(ctx: TrainingJobContext) -> dict[str, Any]:
    """The Job's pod template: the launcher in the main container, placed on the cluster's nodes."""
    spec = ctx.spec
    vols = pod_volumes(ctx)
    container: dict[str, Any] = {
        "name": MAIN_CONTAINER,
        "image": image_for(spec, ctx.cluster, ctx.config),
        "command": ["/bin/bash", f"{CONFIG_DIR}/{commands.LAUNCHER_KEY}"],
        "env": container_env(ctx, vols),
        "volumeMounts": vols.mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        # Hardened by default; only pods with unmanaged mounts (an admin's grant) are privileged.
        "securityContext": {"privileged": True} if vols.unmanaged else {"allowPrivilegeEscalation": False},
        "resources": container_resources(ctx),
    }

    affinity: dict[str, Any] = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [one_pod_per_node(ctx.ident.uid)]
        }
    }
    if ctx.cluster.node_setup and ctx.cluster.node_setup.setup_task and ctx.cluster_uid:
        affinity["podAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": [setup_done(ctx.cluster_uid)]
        }
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": vols.volumes,
        "nodeSelector": node_selector(ctx.cluster),
        "tolerations": tolerations(ctx.cluster),
        "affinity": affinity,
        "enableServiceLinks": False,
        "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
    }
    if ctx.multi_node:
        pod_spec["subdomain"] = ctx.child
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = service_account(ctx)
    else:
        pod_spec["automountServiceAccountToken"] = False
    pull_secret = _pull_secret(spec)
    if pull_secret:
        pod_spec["imagePullSecrets"] = [{"name": pull_secret}]
    priority_class = ctx.config.priority_classes.get(spec.scheduling_priority)
    if priority_class:
        pod_spec["priorityClassName"] = priority_class
    annotations = pod_annotations(ctx.obj["metadata"].get("annotations"))
    return {"metadata": {"labels": dict(ctx.labels), "annotations": annotations}, "spec": pod_spec}
