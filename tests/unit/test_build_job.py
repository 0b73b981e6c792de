"""Pure builders: TrainingJob + BatchAICluster -> Job, ConfigMap, Service, volumes, environment."""

from __future__ import annotations

from typing import Any

import pytest

from batchai_operator.api.cluster import BatchAIClusterSpec
from batchai_operator.api.trainingjob import TrainingJobSpec
from batchai_operator.config import AllowPolicy, OperatorConfig
from batchai_operator.manifests.children import build_children
from batchai_operator.manifests.context import hosts
from batchai_operator.manifests.errors import BuildError
from batchai_operator.manifests.naming import child_name
from batchai_operator.manifests.placement import node_selector
from batchai_operator.manifests.pod import quantity_bytes, shm_quantity
from samples import cntk_spec

SEED_SPEC: dict[str, Any] = cntk_spec(secret="acct-storage")


def obj(
    spec: dict[str, Any], name: str = "cntk-python-1", annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "apiVersion": "batchai.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "namespace": "team-a",
            "uid": "1111-2222",
            "labels": {"kueue.x-k8s.io/queue-name": "gpu"},
            "annotations": annotations or {},
        },
        "spec": spec,
    }


def build(
    spec: dict[str, Any],
    cluster: dict[str, Any] | None = None,
    config: OperatorConfig | None = None,
    **kw: Any,
):
    parsed = TrainingJobSpec.model_validate(spec)
    cl = BatchAIClusterSpec.model_validate(cluster or {"vmSize": "STANDARD_NC6"})
    return build_children(obj(spec, **kw), parsed, "nc6", cl, config or OperatorConfig())


def env_of(children: Any) -> dict[str, str]:
    c = children.batch_job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "<from>") for e in c["env"]}


def test_seed_job_env_follows_batchai_path_rules() -> None:
    env = env_of(build(SEED_SPEC))
    root = "/mnt/batch/tasks/shared/LS_root/jobs/team-a/default/cntk-python-1"
    assert env["AZ_BATCHAI_MOUNT_ROOT"] == "/mnt/batch/tasks/shared/LS_root/mounts"
    assert env["AZ_BATCHAI_JOB_MOUNT_ROOT"] == f"{root}/mounts"
    seg = "team-a/default/cntk-python-1/1111-2222"
    assert env["AZ_BATCHAI_OUTPUT_MODEL"] == f"$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/{seg}/outputs"
    assert env["AZ_BATCHAI_STDOUTERR_DIR"] == f"$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/{seg}/stdouterr"
    assert env["AZ_BATCHAI_NUM_GPUS"] == "1"
    assert env["AZ_BATCHAI_SHARED_JOB_TEMP"].startswith(root)


def test_seed_job_is_one_indexed_job_on_the_clusters_gpu_nodes() -> None:
    ch = build(SEED_SPEC)
    job = ch.batch_job
    assert job["spec"]["completionMode"] == "Indexed"
    assert job["spec"]["completions"] == job["spec"]["parallelism"] == 1
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["activeDeadlineSeconds"] == 7 * 24 * 3600
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpu"
    assert job["metadata"]["ownerReferences"][0]["uid"] == "1111-2222"
    pod = job["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"node.kubernetes.io/instance-type": "Standard_NC6"}
    assert pod["containers"][0]["resources"] == {
        "requests": {"cpu": "500m", "memory": "1Gi"},  # not BestEffort
        "limits": {"nvidia.com/gpu": "1"},
    }
    assert pod["containers"][0]["image"].startswith("mcr.microsoft.com/cntk/release:")
    assert pod["containers"][0]["securityContext"] == {"allowPrivilegeEscalation": False}
    assert pod["securityContext"] == {"seccompProfile": {"type": "RuntimeDefault"}}
    assert {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"} in pod["tolerations"]
    assert ch.service is None and ch.ssh_secret_metadata is None
    assert "successPolicy" not in job["spec"]


def test_csi_inline_volumes_for_files_and_blobs() -> None:
    pod = build(SEED_SPEC).batch_job["spec"]["template"]["spec"]
    csi = {v["csi"]["driver"]: v["csi"]["volumeAttributes"] for v in pod["volumes"] if "csi" in v}
    shares = [
        v["csi"]["volumeAttributes"]
        for v in pod["volumes"]
        if v.get("csi", {}).get("driver") == "file.csi.azure.com"
    ]
    assert sorted(a["shareName"] for a in shares) == ["logs", "scripts"]
    assert {a["secretName"] for a in shares} == {"acct-storage"}
    assert csi["blob.csi.azure.com"]["containerName"] == "data"
    assert csi["blob.csi.azure.com"]["protocol"] == "fuse2"
    paths = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    root = "/mnt/batch/tasks/shared/LS_root/jobs/team-a/default/cntk-python-1/mounts"
    assert {f"{root}/logs", f"{root}/scripts", f"{root}/data", "/etc/batchai"} <= paths


def test_no_secret_value_reaches_the_manifests() -> None:
    spec = {**SEED_SPEC, "secrets": [{"name": "TOKEN", "secretRef": {"name": "tok"}}]}
    env = build(spec).batch_job["spec"]["template"]["spec"]["containers"][0]["env"]
    tok = next(e for e in env if e["name"] == "TOKEN")
    assert tok == {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "tok", "key": "TOKEN"}}}


def test_cluster_mounts_go_under_the_mount_root() -> None:
    cluster = {
        "vmSize": "Standard_NC6",
        "nodeSetup": {
            "mountVolumes": {
                "fileServers": [
                    {
                        "fileServer": {"id": "/subscriptions/x/fileServers/nfs1"},
                        "relativeMountPath": "nfs",
                        "sourceDirectory": "/data",
                    }
                ]
            }
        },
    }
    pod = build(SEED_SPEC, cluster).batch_job["spec"]["template"]["spec"]
    nfs = next(v for v in pod["volumes"] if "nfs" in v)
    assert nfs["nfs"] == {"server": "nfs1", "path": "/data", "readOnly": False}
    assert "/mnt/batch/tasks/shared/LS_root/mounts/nfs" in {
        m["mountPath"] for m in pod["containers"][0]["volumeMounts"]
    }


def test_unmanaged_file_systems_need_the_admin_opt_in() -> None:
    spec = {
        **SEED_SPEC,
        "mountVolumes": {
            "unmanagedFileSystems": [
                {"mountCommand": "mount -t glusterfs 10.0.0.4:/gv0", "relativeMountPath": "gfs"}
            ]
        },
    }
    with pytest.raises(BuildError) as err:
        build(spec)
    assert err.value.code == "UnmanagedFileSystemNotAllowed"
    assert "namespace team-a" in err.value.message and "allow.privilegedMounts" in err.value.message
    # Granted to other namespaces only: still refused here.
    other = OperatorConfig(allow=AllowPolicy(privileged_mounts=["team-b", "team-a-*"]))
    with pytest.raises(BuildError):
        build(spec, config=other)
    for granted in (["team-a"], ["team-*"], ["*"]):
        ch = build(spec, config=OperatorConfig(allow=AllowPolicy(privileged_mounts=granted)))
        c = ch.batch_job["spec"]["template"]["spec"]["containers"][0]
        assert c["securityContext"] == {"privileged": True}


def test_multi_node_horovod_gets_service_hostnames_ssh_and_node_zero_success() -> None:
    spec = {
        "cluster": "nc6",
        "nodeCount": 2,
        "stdOutErrPathPrefix": "/logs",
        "horovodSettings": {"pythonScriptFilePath": "train.py"},
    }
    ch = build(spec)
    pod = ch.batch_job["spec"]["template"]["spec"]
    assert pod["subdomain"] == ch.service["metadata"]["name"] == "cntk-python-1"  # type: ignore[index]
    assert ch.service["spec"]["clusterIP"] == "None"  # type: ignore[index]
    assert ch.ssh_secret_metadata["name"] == "cntk-python-1-ssh-1111-222"  # holds the TrainingJob's uid
    assert ch.batch_job["spec"]["successPolicy"] == {"rules": [{"succeededIndexes": "0"}]}
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti["topologyKey"] == "kubernetes.io/hostname"
    env = env_of(ch)
    assert env["BATCHAI_HOSTS"] == "cntk-python-1-0.cntk-python-1,cntk-python-1-1.cntk-python-1"
    assert "AZ_BATCHAI_SHARED_JOB_TEMP" not in env
    assert "hostfile" in ch.config_map["data"]


def test_container_settings_image_pull_secret_and_shm() -> None:
    spec = {
        **SEED_SPEC,
        "containerSettings": {
            "imageSourceRegistry": {
                "image": "myreg.azurecr.io/cntk:1",
                "credentials": {"secretRef": {"name": "regcred"}},
            },
            "shmSize": "16gb",
        },
    }
    pod = build(spec).batch_job["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] == "myreg.azurecr.io/cntk:1"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    shm = next(v for v in pod["volumes"] if v["name"] == "dshm")
    assert shm["emptyDir"] == {"medium": "Memory", "sizeLimit": "16Gi"}


@pytest.mark.parametrize(
    ("docker", "quantity"), [("16gb", "16Gi"), ("512m", "512Mi"), ("1024", "1024"), ("2G", "2Gi")]
)
def test_shm_quantity(docker: str, quantity: str) -> None:
    assert shm_quantity(docker) == quantity


def test_constraints_deadline_retries_suspend_priority() -> None:
    spec = {
        **SEED_SPEC,
        "constraints": {"maxWallClockTime": "0.01:30:00", "maxRetryCount": 2},
        "suspend": True,
        "schedulingPriority": "high",
    }
    job = build(spec, config=OperatorConfig(priority_classes={"high": "batchai-high"})).batch_job
    assert job["spec"]["activeDeadlineSeconds"] == 5400
    assert job["spec"]["backoffLimit"] == 2
    assert job["spec"]["suspend"] is True
    assert job["spec"]["template"]["spec"]["priorityClassName"] == "batchai-high"


def test_cluster_selection_agent_pool_spot_and_unknown_sizes() -> None:
    cl = BatchAIClusterSpec.model_validate(
        {"vmSize": "Standard_NC6", "agentPool": "gpupool", "nodeSelector": {"x": "y"}}
    )
    assert node_selector(cl) == {"kubernetes.azure.com/agentpool": "gpupool", "x": "y"}
    pod = build(SEED_SPEC, {"vmSize": "Standard_NC24", "vmPriority": "lowpriority"}).batch_job["spec"][
        "template"
    ]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "4"
    assert any(t["key"] == "kubernetes.azure.com/scalesetpriority" for t in pod["tolerations"])
    with pytest.raises(BuildError) as err:
        build(SEED_SPEC, {"vmSize": "Standard_Foo9"})
    assert err.value.code == "UnknownVmSize"
    pod = build(SEED_SPEC, {"vmSize": "Standard_Foo9", "gpusPerNode": 2}).batch_job["spec"]["template"][
        "spec"
    ]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"


def test_pod_annotations_pass_through_except_tooling_ones() -> None:
    ann = {"sim.batchai.io/exit-code": "3", "kubectl.kubernetes.io/last-applied-configuration": "{}"}
    job = build(SEED_SPEC, annotations=ann).batch_job
    assert job["spec"]["template"]["metadata"]["annotations"] == {"sim.batchai.io/exit-code": "3"}


@pytest.mark.parametrize(
    ("name", "expected"),
    [("cntk-python-1", "cntk-python-1"), ("1job", None), ("a.b", None), ("x" * 200, None)],
)
def test_child_names_are_dns_labels(name: str, expected: str | None) -> None:
    got = child_name(name)
    assert len(got) <= 50 and got[0].isalpha() and all(c.isalnum() or c == "-" for c in got)
    if expected:
        assert got == expected
    assert child_name(name) == got  # stable


def test_hosts() -> None:
    assert hosts("j", 2) == ["j-0.j", "j-1.j"]


def test_user_variables_with_dollar_are_expanded_by_the_launcher() -> None:
    spec = {
        **SEED_SPEC,
        "environmentVariables": [
            {"name": "DATA", "value": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data"},
            {"name": "PLAIN", "value": "x"},
        ],
    }
    assert env_of(build(spec))["BATCHAI_EXPAND_VARS"] == "DATA"


def test_jobs_on_a_cluster_with_a_setup_task_need_a_finished_setup_pod_on_their_node() -> None:
    cluster = {
        "vmSize": "Standard_NC6",
        "nodeSetup": {"setupTask": {"commandLine": "apt-get install -y foo", "stdOutErrPathPrefix": "/logs"}},
    }
    parsed = TrainingJobSpec.model_validate(SEED_SPEC)
    cl = BatchAIClusterSpec.model_validate(cluster)
    pod = build_children(obj(SEED_SPEC), parsed, "nc6", cl, OperatorConfig(), cluster_uid="c-uid").batch_job[
        "spec"
    ]["template"]["spec"]
    (term,) = pod["affinity"]["podAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["labelSelector"]["matchLabels"] == {
        "batchai.io/cluster-uid": "c-uid",
        "batchai.io/role": "setup-task",
        "batchai.io/setup-task-state": "succeeded",
    }
    assert "podAffinity" not in build(SEED_SPEC).batch_job["spec"]["template"]["spec"]["affinity"]


def test_describe_volumes_names_pod_volumes_after_their_batchai_mounts() -> None:
    from batchai_operator.manifests.volumes import describe_volumes

    spec = TrainingJobSpec.model_validate(SEED_SPEC)
    pod = build(SEED_SPEC).batch_job["spec"]["template"]["spec"]
    described = describe_volumes(spec.mount_volumes, "job")
    csi_names = {v["name"] for v in pod["volumes"] if "csi" in v}
    assert set(described) == csi_names
    assert any("Azure Files share logs of acct" in d for d in described.values())


def test_shm_is_capped_by_the_admin() -> None:
    spec = {**SEED_SPEC, "containerSettings": {"imageSourceRegistry": {"image": "x"}, "shmSize": "16tb"}}
    with pytest.raises(BuildError) as err:
        build(spec)
    assert err.value.code == "InvalidShmSize" and "64Gi" in err.value.message
    pod = build(spec, config=OperatorConfig(max_shm_size="20Ti")).batch_job["spec"]["template"]["spec"]
    assert next(v for v in pod["volumes"] if v["name"] == "dshm")["emptyDir"]["sizeLimit"] == "16Ti"
    assert quantity_bytes("64Gi") == 64 * 2**30 and quantity_bytes("1.5G") == 1.5e9


def test_job_resources_are_configurable() -> None:
    config = OperatorConfig(job_resources={"requests": {"cpu": "4"}, "limits": {"memory": "50Gi"}})
    c = build(SEED_SPEC, config=config).batch_job["spec"]["template"]["spec"]["containers"][0]
    assert c["resources"] == {"requests": {"cpu": "4"}, "limits": {"memory": "50Gi", "nvidia.com/gpu": "1"}}


def test_the_operators_own_service_account_is_refused() -> None:
    config = OperatorConfig(operator_service_account=("team-a", "batchai-operator"))
    with pytest.raises(BuildError) as err:
        build({**SEED_SPEC, "serviceAccountName": "batchai-operator"}, config=config)
    assert err.value.code == "ServiceAccountNotAllowed"
    # Another namespace's SA of that name, or another SA here, is fine.
    other = OperatorConfig(operator_service_account=("batchai-system", "batchai-operator"))
    pod = build({**SEED_SPEC, "serviceAccountName": "batchai-operator"}, config=other).batch_job["spec"][
        "template"
    ]
    assert pod["spec"]["serviceAccountName"] == "batchai-operator"
    pod = build({**SEED_SPEC, "serviceAccountName": "trainer"}, config=config).batch_job["spec"]["template"]
    assert pod["spec"]["serviceAccountName"] == "trainer"


def test_the_operators_labels_are_not_copied_from_the_trainingjob() -> None:
    spec = TrainingJobSpec.model_validate(SEED_SPEC)
    body = obj(SEED_SPEC)
    body["metadata"]["labels"] = {
        "team": "vision",
        "batchai.io/role": "setup-task",
        "batchai.io/cluster-uid": "victim",
        "batchai.io/setup-task-state": "succeeded",
        "batchai.io/trainingjob-uid": "someone-else",
        "app.kubernetes.io/managed-by": "Helm",
    }
    cluster = BatchAIClusterSpec.model_validate({"vmSize": "STANDARD_NC6"})
    ch = build_children(body, spec, "nc6", cluster, OperatorConfig())
    for labels in (
        ch.batch_job["metadata"]["labels"],
        ch.batch_job["spec"]["template"]["metadata"]["labels"],
    ):
        assert labels["team"] == "vision"
        assert labels["batchai.io/trainingjob-uid"] == "1111-2222"
        assert labels["app.kubernetes.io/managed-by"] == "batchai-operator"
        assert not {"batchai.io/role", "batchai.io/cluster-uid", "batchai.io/setup-task-state"} & set(labels)


def test_multi_node_jobs_get_a_shared_temp_volume_of_the_configured_class() -> None:
    """AZ_BATCHAI_SHARED_JOB_TEMP (fidelity review M2): a per-job ReadWriteMany claim on multi-node jobs."""
    from batchai_operator.manifests.children import build_children as build

    config = OperatorConfig(shared_temp_storage_class="azurefile-csi", shared_temp_size="2Gi")
    nc6 = BatchAIClusterSpec.model_validate({"vmSize": "Standard_NC6"})
    two = TrainingJobSpec.model_validate(
        {
            "cluster": "nc6",
            "nodeCount": 2,
            "stdOutErrPathPrefix": "/l",
            "caffe2Settings": {"pythonScriptFilePath": "a.py"},
        }
    )
    obj = {"metadata": {"name": "c2", "namespace": "ns", "uid": "u"}}
    children = build(obj, two, "nc6", nc6, config)
    claim = children.shared_temp_claim
    assert claim is not None and claim["metadata"]["name"] == "c2-shared-temp"
    assert claim["spec"] == {
        "accessModes": ["ReadWriteMany"],
        "storageClassName": "azurefile-csi",
        "resources": {"requests": {"storage": "2Gi"}},
    }
    pod = children.batch_job["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    shared = "/mnt/batch/tasks/shared/LS_root/jobs/ns/default/c2/temp/shared"
    assert env["AZ_BATCHAI_SHARED_JOB_TEMP"] == shared
    [mount] = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == shared]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"] == {"claimName": "c2-shared-temp"}
    # Without a class (or on one node): no claim, and no shared temp on more than one node.
    plain = build(obj, two, "nc6", nc6, OperatorConfig())
    assert plain.shared_temp_claim is None
    env = {e["name"] for e in plain.batch_job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "AZ_BATCHAI_SHARED_JOB_TEMP" not in env
