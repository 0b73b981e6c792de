"""The setup-task DaemonSet builder (pure) and the setup script it runs (real bash, real files)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from batchai_operator.api.cluster import BatchAIClusterSpec
from batchai_operator.config import AllowPolicy, OperatorConfig
from batchai_operator.manifests.errors import BuildError
from batchai_operator.manifests.naming import setup_task_name
from batchai_operator.manifests.paths import MOUNT_ROOT
from batchai_operator.manifests.setup_daemonset import SETUP_SCRIPT, build_setup_daemonset
from batchai_operator.names import (
    ANNOTATION_SETUP_REVISION,
    IDLE_CONTAINER,
    LABEL_CLUSTER_UID,
    LABEL_SETUP_REVISION,
    SETUP_CONTAINER,
)

CONFIG = OperatorConfig()


def cluster_obj(name: str = "nc6", annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "batchai.io/v1alpha1",
        "kind": "BatchAICluster",
        "metadata": {"name": name, "namespace": "team-a", "uid": "uid-123", "annotations": annotations or {}},
    }


def spec(setup: dict[str, Any] | None = None, **extra: Any) -> BatchAIClusterSpec:
    base: dict[str, Any] = {"vmSize": "STANDARD_NC6"}
    node_setup: dict[str, Any] = {}
    if setup is not None:
        node_setup["setupTask"] = {
            "commandLine": "apt-get install -y foo",
            "stdOutErrPathPrefix": "/logs",
            **setup,
        }
    if "mountVolumes" in extra:
        node_setup["mountVolumes"] = extra.pop("mountVolumes")
    if node_setup:
        base["nodeSetup"] = node_setup
    base.update(extra)
    return BatchAIClusterSpec.model_validate(base)


def build(
    s: BatchAIClusterSpec, obj: dict[str, Any] | None = None, config: OperatorConfig = CONFIG
) -> dict[str, Any]:
    ds = build_setup_daemonset(obj or cluster_obj(), s, config)
    assert ds is not None
    return ds


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_no_setup_task_no_daemonset() -> None:
    assert build_setup_daemonset(cluster_obj(), spec(), CONFIG) is None
    assert build_setup_daemonset(cluster_obj(), spec(mountVolumes={"fileServers": []}), CONFIG) is None


def test_daemonset_identity_owner_and_selector() -> None:
    ds = build(spec({}))
    meta = ds["metadata"]
    assert (ds["apiVersion"], ds["kind"]) == ("apps/v1", "DaemonSet")
    assert meta["name"] == "nc6-setup" and meta["namespace"] == "team-a"
    owner = meta["ownerReferences"][0]
    assert owner == {
        "apiVersion": "batchai.io/v1alpha1",
        "kind": "BatchAICluster",
        "name": "nc6",
        "uid": "uid-123",
        "controller": True,
        "blockOwnerDeletion": True,
    }
    assert meta["labels"]["app.kubernetes.io/managed-by"] == "batchai-operator"
    assert meta["labels"]["batchai.io/cluster"] == "nc6"
    assert meta["labels"]["batchai.io/role"] == "setup-task"
    assert ds["spec"]["selector"]["matchLabels"] == {
        LABEL_CLUSTER_UID: "uid-123",
        "batchai.io/role": "setup-task",
    }
    pod_labels = ds["spec"]["template"]["metadata"]["labels"]
    assert all(pod_labels[k] == v for k, v in ds["spec"]["selector"]["matchLabels"].items())
    assert pod_labels[LABEL_SETUP_REVISION] == meta["annotations"][ANNOTATION_SETUP_REVISION]


def test_pinned_to_cluster_nodes_like_jobs() -> None:
    pod = build(spec({}))["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "Standard_NC6"}
    keys = {t["key"] for t in pod["tolerations"]}
    assert {"sku", "nvidia.com/gpu"} <= keys
    assert "kubernetes.azure.com/scalesetpriority" not in keys

    pod = build(
        spec(
            {},
            agentPool="gpupool",
            nodeSelector={"zone": "1"},
            vmPriority="lowpriority",
            tolerations=[{"key": "team", "operator": "Exists"}],
        )
    )["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.azure.com/agentpool": "gpupool", "zone": "1"}
    keys = {t.get("key") for t in pod["tolerations"]}
    assert {"kubernetes.azure.com/scalesetpriority", "team"} <= keys


def test_init_container_runs_command_with_env_and_secrets() -> None:
    ds = build(
        spec(
            {
                "commandLine": "nvidia-smi && echo $FOO",
                "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/afs/",
                "environmentVariables": [{"name": "FOO", "value": "bar"}],
                "secrets": [
                    {"name": "TOKEN", "secretRef": {"name": "setup-secrets"}},
                    {"name": "PASS", "secretRef": {"name": "setup-secrets", "key": "pw"}},
                ],
            }
        )
    )
    pod = ds["spec"]["template"]["spec"]
    [init] = pod["initContainers"]
    assert init["name"] == SETUP_CONTAINER
    assert init["command"] == ["/bin/bash", "-c", SETUP_SCRIPT]
    assert init["image"] == CONFIG.images["custom"]
    assert init["securityContext"]["runAsUser"] == 0
    assert init["securityContext"]["privileged"] is False
    env = env_of(init)
    assert env["AZ_BATCHAI_MOUNT_ROOT"] == MOUNT_ROOT
    assert env["AZ_BATCHAI_STDOUTERR_DIR"] == "$AZ_BATCHAI_MOUNT_ROOT/afs/team-a/clusters/nc6/uid-123"
    assert env["BATCHAI_SETUP_TASK_COMMAND_LINE"] == "nvidia-smi && echo $FOO"
    assert env["BATCHAI_NODE_NAME"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    assert env["FOO"] == "bar"
    assert env["TOKEN"] == {"secretKeyRef": {"name": "setup-secrets", "key": "TOKEN"}}
    assert env["PASS"] == {"secretKeyRef": {"name": "setup-secrets", "key": "pw"}}
    # No secret value is ever inlined.
    assert "value" not in next(e for e in init["env"] if e["name"] == "TOKEN")


def test_idle_container_is_small_and_requests_no_gpu() -> None:
    pod = build(spec({}))["spec"]["template"]["spec"]
    [idle] = pod["containers"]
    assert idle["name"] == IDLE_CONTAINER
    assert "sleep" in " ".join(idle["command"])
    requests = idle["resources"]["requests"]
    assert "nvidia.com/gpu" not in requests and "nvidia.com/gpu" not in idle["resources"].get("limits", {})
    assert requests["cpu"] == "1m"
    assert "resources" not in pod["initContainers"][0] or "nvidia.com/gpu" not in str(
        pod["initContainers"][0]["resources"]
    )
    assert pod["automountServiceAccountToken"] is False


def test_cluster_mounts_on_init_container() -> None:
    mv = {
        "azureFileShares": [
            {
                "accountName": "acct",
                "azureFileUrl": "https://acct.file.core.windows.net/share",
                "credentials": {"secretRef": {"name": "storage"}},
                "relativeMountPath": "afs",
            }
        ],
        "fileServers": [
            {
                "fileServer": {"id": "/subscriptions/s/fileServers/nfs1"},
                "server": "10.0.0.4",
                "sourceDirectory": "/data",
                "relativeMountPath": "nfs",
            }
        ],
    }
    pod = build(spec({}, mountVolumes=mv))["spec"]["template"]["spec"]
    mounts = {m["mountPath"] for m in pod["initContainers"][0]["volumeMounts"]}
    assert mounts == {f"{MOUNT_ROOT}/afs", f"{MOUNT_ROOT}/nfs"}
    assert {v["name"] for v in pod["volumes"]} == {
        m["name"] for m in pod["initContainers"][0]["volumeMounts"]
    }


def test_unmanaged_mounts_need_privileged_pods() -> None:
    mv = {
        "unmanagedFileSystems": [
            {"mountCommand": "mount -t glusterfs 10.0.0.4:/gv0", "relativeMountPath": "g"}
        ]
    }
    with pytest.raises(BuildError) as err:
        build(spec({}, mountVolumes=mv))
    assert err.value.code == "UnmanagedFileSystemNotAllowed"
    ds = build(spec({}, mountVolumes=mv), config=OperatorConfig(allow=AllowPolicy(privileged_mounts=["*"])))
    init = ds["spec"]["template"]["spec"]["initContainers"][0]
    assert init["securityContext"]["privileged"] is True
    assert env_of(init)["BATCHAI_UNMANAGED_MOUNTS"] == f"mount -t glusterfs 10.0.0.4:/gv0\t{MOUNT_ROOT}/g"


def test_revision_follows_the_pod_template_only() -> None:
    a = build(spec({}))["metadata"]["annotations"][ANNOTATION_SETUP_REVISION]
    assert build(spec({}))["metadata"]["annotations"][ANNOTATION_SETUP_REVISION] == a
    b = build(spec({"commandLine": "other"}))["metadata"]["annotations"][ANNOTATION_SETUP_REVISION]
    assert a != b
    # The operator's own annotations on the cluster (applied scale, kopf state) do not roll the pods.
    c = build(
        spec({}),
        cluster_obj(annotations={"batchai.io/applied-scale-settings": "{}", "kopf.zalando.org/x": "y"}),
    )
    assert c["metadata"]["annotations"][ANNOTATION_SETUP_REVISION] == a
    # Other annotations are copied to the pods (kwok simulation annotations, for instance).
    d = build(spec({}), cluster_obj(annotations={"sim.batchai.io/init-exit-code": "1"}))
    assert d["spec"]["template"]["metadata"]["annotations"] == {"sim.batchai.io/init-exit-code": "1"}
    assert d["metadata"]["annotations"][ANNOTATION_SETUP_REVISION] != a


def test_cluster_image_override() -> None:
    ds = build(spec({}, images={"custom": "myregistry.azurecr.io/setup:1"}))
    pod = ds["spec"]["template"]["spec"]
    assert (
        pod["initContainers"][0]["image"] == pod["containers"][0]["image"] == "myregistry.azurecr.io/setup:1"
    )


def test_names_fit_a_dns_label() -> None:
    assert setup_task_name("nc6") == "nc6-setup"
    long = "a" * 60
    name = setup_task_name(long)
    assert len(name) <= 63 and name.endswith("-setup")
    assert setup_task_name("a" * 61) != name


# ---- the setup script, run by real bash ----------------------------------------------------------


def run_script(tmp_path: Path, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {
        "PATH": os.environ["PATH"],
        "AZ_BATCHAI_MOUNT_ROOT": str(tmp_path / "mnt"),
        "AZ_BATCHAI_STDOUTERR_DIR": "$AZ_BATCHAI_MOUNT_ROOT/logs/team-a/clusters/nc6/uid-123",
        "BATCHAI_NODE_NAME": "aks-nc6-0",
        "BATCHAI_SETUP_TASK_COMMAND_LINE": command,
        "BATCHAI_TERMINATION_LOG": str(tmp_path / "termination-log"),
        **env,
    }
    return subprocess.run(
        ["/bin/bash", "-c", SETUP_SCRIPT], env=full, capture_output=True, text=True, timeout=30
    )


def test_script_success_writes_per_node_files(tmp_path: Path) -> None:
    r = run_script(
        tmp_path, 'echo "hello $GREETING from $AZ_BATCHAI_STDOUTERR_DIR"; echo warn >&2', GREETING="hi"
    )
    assert r.returncode == 0, r.stderr
    out_dir = tmp_path / "mnt/logs/team-a/clusters/nc6/uid-123"
    assert (out_dir / "stdout-aks-nc6-0.txt").read_text() == f"hello hi from {out_dir}\n"
    assert (out_dir / "stderr-aks-nc6-0.txt").read_text() == "warn\n"
    # Also copied to the container's streams, for kubectl logs.
    assert "hello hi" in r.stdout and "warn" in r.stderr
    assert not (tmp_path / "termination-log").exists()


def test_script_failure_keeps_exit_code(tmp_path: Path) -> None:
    r = run_script(tmp_path, "echo partial; exit 7")
    assert r.returncode == 7
    assert (tmp_path / "termination-log").read_text().strip() == "SetupTaskFailed: exit code 7"
    assert (tmp_path / "mnt/logs/team-a/clusters/nc6/uid-123/stdout-aks-nc6-0.txt").read_text() == "partial\n"


def test_script_runs_in_bash_and_is_rerunnable(tmp_path: Path) -> None:
    command = "[[ -n $BASH_VERSION ]] && echo run >> $AZ_BATCHAI_MOUNT_ROOT/count"
    assert run_script(tmp_path, command).returncode == 0
    assert run_script(tmp_path, command).returncode == 0  # a reboot re-runs it; output files start afresh
    assert (tmp_path / "mnt/count").read_text() == "run\nrun\n"
    assert (tmp_path / "mnt/logs/team-a/clusters/nc6/uid-123/stdout-aks-nc6-0.txt").read_text() == ""


def test_script_unmanaged_mounts_before_the_command(tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    marker.write_text("mounted\n")
    mounts = f"cp {marker}\t{tmp_path}/mnt/ufs"
    r = run_script(tmp_path, "cat $AZ_BATCHAI_MOUNT_ROOT/ufs/marker", BATCHAI_UNMANAGED_MOUNTS=mounts)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "mounted\n"

    r = run_script(tmp_path, "echo never", BATCHAI_UNMANAGED_MOUNTS=f"false\t{tmp_path}/mnt/bad")
    assert r.returncode == 1
    assert "never" not in r.stdout
    assert (tmp_path / "termination-log").read_text().startswith(f"MountFailed: {tmp_path}/mnt/bad")
