"""TrainingJob -> its children: one Indexed batch/v1 Job, and for multi-node jobs a headless Service,
plus a ConfigMap (launcher, hostfile, per-node tasks) and an SSH key Secret. Pure functions."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from ..api.cluster import BatchAIClusterSpec
from ..api.trainingjob import TrainingJobSpec
from ..config import LABEL_CLUSTER, OperatorConfig, vm_size_info
from ..launcher import commands
from .env import user_env
from .errors import BuildError
from .names import child_labels, child_name, label_value, owner_reference, setup_done_affinity
from .paths import CONFIG_DIR, SSH_DIR, JobIdentity, batchai_env
from .volumes import PodVolumes, build_volumes

MAIN_CONTAINER = "main"
# The spec a Job was built from, so a later spec change can be reported as not applied.
SPEC_HASH_ANNOTATION = "batchai.io/spec-hash"
# Fields that may change on a running job: they steer the Job instead of rebuilding it.
MUTABLE_FIELDS = {"suspend", "terminate", "ttlSecondsAfterFinished"}
# Annotation prefixes that stay on the TrainingJob and are not copied onto pods.
_NOT_FOR_PODS = ("kubectl.kubernetes.io/", "batchai.io/", "kopf.zalando.org/", "argocd.argoproj.io/")

# Taints AKS users put on GPU pools (design.md §2), tolerated by every job pod.
GPU_TOLERATIONS: list[dict[str, Any]] = [
    {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"},
    {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
]
SPOT_TOLERATION = {
    "key": "kubernetes.azure.com/scalesetpriority",
    "operator": "Equal",
    "value": "spot",
    "effect": "NoSchedule",
}


@dataclass
class JobChildren:
    """Everything the operator creates for one TrainingJob."""

    job: dict[str, Any]
    config_map: dict[str, Any]
    service: dict[str, Any] | None
    ssh_secret_name: str | None


def identity(obj: dict[str, Any], spec: TrainingJobSpec) -> JobIdentity:
    meta = obj["metadata"]
    return JobIdentity(
        namespace=meta["namespace"], name=meta["name"], uid=meta["uid"], experiment=spec.experiment
    )


def spec_hash(spec: TrainingJobSpec) -> str:
    """Hash of the spec without its mutable fields."""
    fixed = {k: v for k, v in spec.wire().items() if k not in MUTABLE_FIELDS}
    return hashlib.sha256(json.dumps(fixed, sort_keys=True).encode()).hexdigest()[:16]


def gpus_per_node(cluster: BatchAIClusterSpec) -> int:
    if cluster.gpus_per_node is not None:
        return cluster.gpus_per_node
    _, gpus = vm_size_info(cluster.vm_size)
    if gpus is None:
        raise BuildError(
            "UnknownVmSize",
            f"vmSize {cluster.vm_size} is not in the operator's table of GPU counts; set spec.gpusPerNode "
            "on the BatchAICluster",
        )
    return gpus


def node_selector(cluster: BatchAIClusterSpec) -> dict[str, str]:
    """The cluster's nodes: by agent pool when given, else by instance type; plus extra labels."""
    if cluster.agent_pool:
        selector = {"kubernetes.azure.com/agentpool": cluster.agent_pool}
    else:
        selector = {"node.kubernetes.io/instance-type": vm_size_info(cluster.vm_size)[0]}
    selector.update(cluster.node_selector or {})
    return selector


def tolerations(cluster: BatchAIClusterSpec) -> list[dict[str, Any]]:
    out = [dict(t) for t in GPU_TOLERATIONS]
    if cluster.vm_priority == "lowpriority":
        out.append(dict(SPOT_TOLERATION))
    out.extend(t.wire() for t in cluster.tolerations or [])
    return out


def image_for(spec: TrainingJobSpec, cluster: BatchAIClusterSpec, config: OperatorConfig) -> str:
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
        raise BuildError("InvalidShmSize", f"containerSettings.shmSize {shm_size!r} is not a docker size")
    number, unit = m.groups()
    suffix = {"": "", "b": "", "k": "Ki", "m": "Mi", "g": "Gi", "t": "Ti"}[unit]
    return f"{number}{suffix}"


def hosts(child: str, node_count: int) -> list[str]:
    """Stable DNS names of the job's pods: hostname '<job>-<index>' under the headless Service."""
    return [f"{child}-{i}.{child}" for i in range(node_count)]


def _env_list(values: dict[str, str]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in values.items()]


def build_children(
    obj: dict[str, Any],
    spec: TrainingJobSpec,
    cluster_name: str,
    cluster: BatchAIClusterSpec,
    config: OperatorConfig,
    cluster_uid: str | None = None,
) -> JobChildren:
    """The manifests for a TrainingJob object (as read from the API) on a given cluster."""
    meta = obj["metadata"]
    ident = identity(obj, spec)
    child = child_name(meta["name"])
    namespace = meta["namespace"]
    labels = {**(meta.get("labels") or {}), **child_labels(meta["name"], meta["uid"], spec.experiment)}
    labels[LABEL_CLUSTER] = label_value(cluster_name)
    owner = owner_reference(obj)
    gpus = gpus_per_node(cluster)
    multi_node = spec.node_count > 1
    node_hosts = hosts(child, spec.node_count)

    # Volumes: the job's mounts, the cluster's mounts, the launcher config, temp and /dev/shm.
    vols = build_volumes(spec.mount_volumes, ident.job_mount_root, "job", config.allow_privileged_mounts)
    node_setup = cluster.node_setup
    vols.extend(
        build_volumes(
            node_setup.mount_volumes if node_setup else None,
            batchai_env(spec, ident, gpus)["AZ_BATCHAI_MOUNT_ROOT"],
            "cluster",
            config.allow_privileged_mounts,
        )
    )
    _add_fixed_volumes(vols, child, ident, spec, needs_ssh=multi_node and commands.needs_ssh(spec))

    env = batchai_env(spec, ident, gpus)
    env.update(commands.toolkit_env(spec, node_hosts, gpus))
    env.update(
        {
            "BATCHAI_CONFIG_DIR": CONFIG_DIR,
            "BATCHAI_NODE_COUNT": str(spec.node_count),
            "BATCHAI_TOOLKIT": spec.tool_type,
        }
    )
    if multi_node:
        env["BATCHAI_HOSTS"] = ",".join(node_hosts)
    if multi_node and commands.needs_ssh(spec):
        env["BATCHAI_SSH_DIR"] = SSH_DIR
    if spec.job_preparation is not None:
        env["BATCHAI_JOB_PREPARATION"] = spec.job_preparation.command_line
    if vols.unmanaged:
        env["BATCHAI_UNMANAGED_MOUNTS"] = "\n".join(f"{cmd}\t{path}" for cmd, path in vols.unmanaged)
    # Batch AI expanded $VARS in user variables with the node's shell; the launcher does it for these.
    to_expand = [e.name for e in spec.environment_variables or [] if "$" in e.value]
    if to_expand:
        env["BATCHAI_EXPAND_VARS"] = " ".join(to_expand)
    env_list = _env_list(env) + user_env(spec.environment_variables, spec.secrets)

    container: dict[str, Any] = {
        "name": MAIN_CONTAINER,
        "image": image_for(spec, cluster, config),
        "command": ["/bin/bash", f"{CONFIG_DIR}/launcher.sh"],
        "env": env_list,
        "volumeMounts": vols.mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {"privileged": bool(vols.unmanaged)},
    }
    if gpus > 0:
        container["resources"] = {"limits": {"nvidia.com/gpu": str(gpus)}}

    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "containers": [container],
        "volumes": vols.volumes,
        "nodeSelector": node_selector(cluster),
        "tolerations": tolerations(cluster),
        # One job pod per node, as Batch AI gang-scheduled a job on nodeCount whole nodes.
        "affinity": {
            "podAntiAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "labelSelector": {"matchLabels": {"batchai.io/trainingjob-uid": meta["uid"]}},
                        "topologyKey": "kubernetes.io/hostname",
                    }
                ]
            }
        },
        "enableServiceLinks": False,
    }
    if cluster.node_setup and cluster.node_setup.setup_task and cluster_uid:
        # Batch AI ran jobs only on nodes whose setup task succeeded.
        pod_spec["affinity"]["podAffinity"] = {
            "requiredDuringSchedulingIgnoredDuringExecution": [setup_done_affinity(cluster_uid)]
        }
    if multi_node:
        pod_spec["subdomain"] = child
    if spec.service_account_name:
        pod_spec["serviceAccountName"] = spec.service_account_name
    else:
        pod_spec["automountServiceAccountToken"] = False
    pull_secret = _pull_secret(spec)
    if pull_secret:
        pod_spec["imagePullSecrets"] = [{"name": pull_secret}]
    priority_class = config.priority_classes.get(spec.scheduling_priority)
    if priority_class:
        pod_spec["priorityClassName"] = priority_class

    pod_annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(_NOT_FOR_PODS)
    }
    constraints = spec.effective_constraints
    job_spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": spec.node_count,
        "parallelism": spec.node_count,
        "backoffLimit": constraints.max_retry_count or 0,
        "activeDeadlineSeconds": constraints.max_wall_clock_seconds,
        "suspend": bool(spec.suspend),
        "template": {"metadata": {"labels": dict(labels), "annotations": pod_annotations}, "spec": pod_spec},
    }
    if commands.decided_by_node_zero(spec) and spec.node_count > 1:
        # Batch AI: where only node 0 runs the toolkit, node 0's exit decides the job.
        job_spec["successPolicy"] = {"rules": [{"succeededIndexes": "0"}]}

    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": child,
            "namespace": namespace,
            "labels": labels,
            "annotations": {SPEC_HASH_ANNOTATION: spec_hash(spec)},
            "ownerReferences": [owner],
        },
        "spec": job_spec,
    }
    config_map = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": child, "namespace": namespace, "labels": labels, "ownerReferences": [owner]},
        "data": commands.render_config(spec, node_hosts, gpus),
    }
    service = None
    if multi_node:
        service = {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": child, "namespace": namespace, "labels": labels, "ownerReferences": [owner]},
            "spec": {
                "clusterIP": "None",
                # Workers must be resolvable before they are Ready: node 0 waits for their sshd itself.
                "publishNotReadyAddresses": True,
                "selector": {"batchai.io/trainingjob-uid": meta["uid"]},
            },
        }
    ssh_name = f"{child}-ssh" if multi_node and commands.needs_ssh(spec) else None
    return JobChildren(job=job, config_map=config_map, service=service, ssh_secret_name=ssh_name)


def build_ssh_secret(children: JobChildren, private_key: str, public_key: str) -> dict[str, Any]:
    """The SSH key Secret, shaped like the other children (key material generated by the caller)."""
    assert children.ssh_secret_name is not None
    meta = children.job["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "kubernetes.io/ssh-auth",
        "metadata": {
            "name": children.ssh_secret_name,
            "namespace": meta["namespace"],
            "labels": meta["labels"],
            "ownerReferences": meta["ownerReferences"],
        },
        "stringData": {"ssh-privatekey": private_key, "ssh-publickey": public_key},
    }


def _pull_secret(spec: TrainingJobSpec) -> str | None:
    cs = spec.container_settings
    if cs and cs.image_source_registry.credentials and cs.image_source_registry.credentials.secret_ref:
        return cs.image_source_registry.credentials.secret_ref.name
    return None


def _add_fixed_volumes(
    vols: PodVolumes, child: str, ident: JobIdentity, spec: TrainingJobSpec, needs_ssh: bool
) -> None:
    vols.volumes.append({"name": "batchai-config", "configMap": {"name": child, "defaultMode": 0o755}})
    vols.mounts.append({"name": "batchai-config", "mountPath": CONFIG_DIR, "readOnly": True})
    vols.volumes.append({"name": "batchai-temp", "emptyDir": {}})
    vols.mounts.append({"name": "batchai-temp", "mountPath": ident.job_temp})
    if spec.container_settings and spec.container_settings.shm_size:
        shm = {"medium": "Memory", "sizeLimit": shm_quantity(spec.container_settings.shm_size)}
        vols.volumes.append({"name": "dshm", "emptyDir": shm})
        vols.mounts.append({"name": "dshm", "mountPath": "/dev/shm"})
    if needs_ssh:
        vols.volumes.append(
            {"name": "batchai-ssh", "secret": {"secretName": f"{child}-ssh", "defaultMode": 0o600}}
        )
        vols.mounts.append({"name": "batchai-ssh", "mountPath": SSH_DIR, "readOnly": True})
