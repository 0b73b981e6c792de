"""BatchAICluster -> its setup-task DaemonSet. Pure functions.

Batch AI ran `nodeSetup.setupTask.commandLine` with bash, as root, on every node of the cluster when the
node was allocated or rebooted, after the cluster's mountVolumes were mounted
(docs/migration.md, "cluster.json").
Here that is a DaemonSet pinned to the cluster's nodes (the same nodeSelector and tolerations as the
cluster's jobs): an init container runs the command, then a tiny container idles so the pod, and so
the setup state of the node, stays visible. The pods' init container status feeds the node counts.

Output goes to `$AZ_BATCHAI_STDOUTERR_DIR/stdout-<node>.txt` and `stderr-<node>.txt`, where
`AZ_BATCHAI_STDOUTERR_DIR = <stdOutErrPathPrefix>/<namespace>/clusters/<cluster>/<uid>`. This adapts
Batch AI's read-only `stdOutErrPathSuffix` (`<sub>/<rg>/workspaces/<ws>/clusters/<cluster>/<uuid>`) the
same way jobs adapt theirs: the namespace plays the workspace.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from ..api.cluster import BatchAIClusterSpec, SetupTask
from ..config import OperatorConfig, namespace_matches
from ..launcher.commands import setup_script
from ..names import (
    ANNOTATION_SETUP_REVISION,
    CLUSTER_KIND,
    IDLE_CONTAINER,
    LABEL_CLUSTER_UID,
    LABEL_ROLE,
    LABEL_SETUP_REVISION,
    SETUP_CONTAINER,
    SETUP_ROLE,
)
from .env import user_env
from .naming import owner_reference, pod_annotations, setup_labels, setup_task_name
from .paths import MOUNT_ROOT, setup_stdouterr_dir
from .placement import node_selector, tolerations
from .volumes import build_volumes

# The init container's script (launcher/setup.sh with launcher/lib.sh prepended).
SETUP_SCRIPT = setup_script()

# The idle container: stays up (so the pod keeps reporting the node's setup state) and stops at once.
IDLE_COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]


def setup_image(spec: BatchAIClusterSpec, config: OperatorConfig) -> str:
    """The image the setup task runs in: the cluster's (else the operator's) customToolkit image."""
    custom = spec.images.custom if spec.images else None
    return custom or config.images["custom"]


def setup_env(setup: SetupTask, stdouterr_dir: str) -> list[dict[str, Any]]:
    """The init container's environment: Batch AI's variables, then the task's variables and secrets."""
    env: list[dict[str, Any]] = [
        {"name": "AZ_BATCHAI_MOUNT_ROOT", "value": MOUNT_ROOT},
        {"name": "AZ_BATCHAI_STDOUTERR_DIR", "value": stdouterr_dir},
        {"name": "BATCHAI_NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "BATCHAI_SETUP_TASK_COMMAND_LINE", "value": setup.command_line},
    ]
    return env + user_env(setup.environment_variables, setup.secrets)


def _revision(template: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:16]


def build_setup_daemonset(
    obj: Mapping[str, Any], spec: BatchAIClusterSpec, config: OperatorConfig
) -> dict[str, Any] | None:
    """The setup-task DaemonSet of a BatchAICluster object (as read from the API), or None without one.

    Raises BuildError when the cluster's mounts cannot become volumes (e.g. unmanaged file systems
    where privileged pods are not allowed).
    """
    setup = spec.node_setup.setup_task if spec.node_setup else None
    if setup is None:
        return None
    meta = obj["metadata"]
    namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
    labels = setup_labels(name, uid)
    vols = build_volumes(
        spec.node_setup.mount_volumes if spec.node_setup else None,
        MOUNT_ROOT,
        "cluster",
        namespace,
        namespace_matches(config.allow.privileged_mounts, namespace),
        config.blob_endpoint,
    )
    env = setup_env(setup, setup_stdouterr_dir(setup, namespace, name, uid))
    if vols.unmanaged:
        mounts = "\n".join(f"{command}\t{path}" for command, path in vols.unmanaged)
        env.insert(3, {"name": "BATCHAI_UNMANAGED_MOUNTS", "value": mounts})
    image = setup_image(spec, config)
    init: dict[str, Any] = {
        "name": SETUP_CONTAINER,
        "image": image,
        "command": ["/bin/bash", "-c", SETUP_SCRIPT],
        "env": env,
        "volumeMounts": vols.mounts,
        # Batch AI ran the setup task as root; unmanaged mounts need a privileged container.
        "securityContext": {"runAsUser": 0, "runAsGroup": 0, "privileged": bool(vols.unmanaged)},
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    idle: dict[str, Any] = {
        "name": IDLE_CONTAINER,
        "image": image,
        "command": IDLE_COMMAND,
        "resources": {"requests": {"cpu": "1m", "memory": "8Mi"}, "limits": {"memory": "32Mi"}},
    }
    template: dict[str, Any] = {
        "metadata": {"labels": dict(labels), "annotations": pod_annotations(meta.get("annotations"))},
        "spec": {
            "initContainers": [init],
            "containers": [idle],
            "volumes": vols.volumes,
            "nodeSelector": node_selector(spec),
            "tolerations": tolerations(spec),
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "terminationGracePeriodSeconds": 5,
        },
    }
    revision = _revision(template)
    template["metadata"]["labels"][LABEL_SETUP_REVISION] = revision
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": setup_task_name(name),
            "namespace": namespace,
            "labels": dict(labels),
            "annotations": {ANNOTATION_SETUP_REVISION: revision},
            "ownerReferences": [owner_reference(obj, CLUSTER_KIND)],
        },
        "spec": {
            "selector": {"matchLabels": {LABEL_CLUSTER_UID: uid, LABEL_ROLE: SETUP_ROLE}},
            # The setup task is per node: a changed task re-runs on every node at once.
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}},
            "template": template,
        },
    }
