"""BatchAICluster -> its setup-task DaemonSet. Pure functions.

Batch AI ran `nodeSetup.setupTask.commandLine` with bash, as root, on every node of the cluster when the
node was allocated or rebooted, after the cluster's mountVolumes were mounted (batchai-reference.md §4).
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
from typing import Any

from ..api.cluster import BatchAIClusterSpec, SetupTask
from ..config import LABEL_CLUSTER, LABEL_MANAGED_BY, LABEL_ROLE, MANAGED_BY, OperatorConfig
from ..launcher.commands import expand_function
from .env import user_env
from .job import node_selector, tolerations
from .names import LABEL_CLUSTER_UID, SETUP_ROLE, label_value
from .paths import MOUNT_ROOT
from .volumes import build_volumes

SETUP_CONTAINER = "setup-task"
IDLE_CONTAINER = "idle"
# Template label carrying the hash of the pod template: tells pods of the current setup task from old ones.
LABEL_SETUP_REVISION = "batchai.io/setup-task-revision"
ANNOTATION_SETUP_REVISION = LABEL_SETUP_REVISION
# Annotations of the BatchAICluster that stay on it and are not copied onto setup pods.
_NOT_FOR_PODS = ("kubectl.kubernetes.io/", "batchai.io/", "kopf.zalando.org/", "argocd.argoproj.io/")
_MAX_NAME = 63

# Runs in the init container. Only environment variables are read (see setup_env): $NAME and ${NAME} in
# AZ_BATCHAI_STDOUTERR_DIR are expanded like the job launcher does (no command substitution), the
# cluster's unmanaged file systems are mounted as Batch AI did (mountCommand + " " + path), then the
# command runs with `bash -c`; stdout and stderr are written to per-node files and copied to the
# container's own streams (kubectl logs). The exit code is the command's.
SETUP_SCRIPT = "set -u\n" + expand_function() + r"""
finish() {
    printf '[batchai setup %s] %s\n' "$NODE" "$2" >&2
    local file=${BATCHAI_TERMINATION_LOG:-/dev/termination-log}
    if [[ -n ${BATCHAI_TERMINATION_LOG:-} || -w $file ]]; then
        printf '%s\n' "$2" >"$file" 2>/dev/null || true
    fi
    exit "$1"
}
NODE=${BATCHAI_NODE_NAME:-$(hostname)}
expand_value "${AZ_BATCHAI_MOUNT_ROOT:-}"
export AZ_BATCHAI_MOUNT_ROOT=$REPLY
expand_value "${AZ_BATCHAI_STDOUTERR_DIR:-}"
export AZ_BATCHAI_STDOUTERR_DIR=$REPLY
mkdir -p -- "$AZ_BATCHAI_STDOUTERR_DIR" || finish 1 "SetupTaskFailed: cannot create $AZ_BATCHAI_STDOUTERR_DIR"
while IFS=$'\t' read -r cmd path; do
    [[ -n $cmd ]] || continue
    mkdir -p -- "$path" || finish 1 "MountFailed: $path: cannot create the mount point"
    bash -c "$cmd $(printf '%q' "$path")" </dev/null
    code=$?
    if ((code != 0)); then finish "$code" "MountFailed: $path: exit code $code"; fi
done <<<"${BATCHAI_UNMANAGED_MOUNTS:-}"
out=$AZ_BATCHAI_STDOUTERR_DIR/stdout-$NODE.txt
err=$AZ_BATCHAI_STDOUTERR_DIR/stderr-$NODE.txt
: >"$out"
: >"$err"
cmd=$BATCHAI_SETUP_TASK_COMMAND_LINE
({ bash -c "$cmd" </dev/null 3>&- | tee -a "$out"; exit "${PIPESTATUS[0]}"; } 2>&1 1>&3 |
    tee -a "$err" 1>&2; exit "${PIPESTATUS[0]}") 3>&1
code=$?
if ((code != 0)); then finish "$code" "SetupTaskFailed: exit code $code"; fi
exit 0
"""

# The idle container: stays up (so the pod keeps reporting the node's setup state) and stops at once.
IDLE_COMMAND = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done"]


def setup_task_name(cluster_name: str) -> str:
    """Name of the setup-task DaemonSet of a cluster (a DNS label, hashed when too long)."""
    base = f"{cluster_name}-setup"
    if len(base) <= _MAX_NAME:
        return base
    digest = hashlib.sha256(cluster_name.encode()).hexdigest()[:8]
    return f"{cluster_name[: _MAX_NAME - 15].rstrip('-.')}-{digest}-setup"


def setup_stdouterr_dir(setup: SetupTask, namespace: str, cluster_name: str, uid: str) -> str:
    """<stdOutErrPathPrefix>/<namespace>/clusters/<cluster>/<uid>, $VARS left for the pod's shell."""
    return f"{setup.std_out_err_path_prefix.rstrip('/')}/{namespace}/clusters/{cluster_name}/{uid}"


def setup_labels(cluster_name: str, uid: str) -> dict[str, str]:
    """Labels of the DaemonSet and its pods; the operator finds a cluster's setup pods by them."""
    return {
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_CLUSTER: label_value(cluster_name),
        LABEL_CLUSTER_UID: uid,
        LABEL_ROLE: SETUP_ROLE,
    }


def cluster_owner_reference(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj["metadata"]
    return {
        "apiVersion": obj.get("apiVersion", "batchai.io/v1alpha1"),
        "kind": "BatchAICluster",
        "name": meta["name"],
        "uid": meta["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


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
    obj: dict[str, Any], spec: BatchAIClusterSpec, config: OperatorConfig
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
        config.allow_privileged_mounts,
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
    pod_annotations = {
        k: v for k, v in (meta.get("annotations") or {}).items() if not k.startswith(_NOT_FOR_PODS)
    }
    template: dict[str, Any] = {
        "metadata": {"labels": dict(labels), "annotations": pod_annotations},
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
            "ownerReferences": [cluster_owner_reference(obj)],
        },
        "spec": {
            "selector": {"matchLabels": {LABEL_CLUSTER_UID: uid, LABEL_ROLE: SETUP_ROLE}},
            # The setup task is per node: a changed task re-runs on every node at once.
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}},
            "template": template,
        },
    }
