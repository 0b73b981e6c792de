"""The pydantic API models: every toolkit, every mount type, the rules they mirror from the CRD's CEL."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from batchai_operator.api import BatchAIClusterSpec, BatchAIClusterStatus, TrainingJobSpec, TrainingJobStatus
from batchai_operator.api.common import MountVolumes
from batchai_operator.api.toolkits import TOOLKIT_FIELDS
from batchai_operator.api.trainingjob import TrainingJob

SECRET = {"secretRef": {"name": "storage"}}

# Minimal valid settings for each of the nine toolkits, keyed by camelCase field.
TOOLKITS: dict[str, dict[str, Any]] = {
    "cntkSettings": {"pythonScriptFilePath": "train.py", "commandLineArgs": "--epochs 3", "processCount": 2},
    "tensorFlowSettings": {
        "pythonScriptFilePath": "tf.py",
        "masterCommandLineArgs": "--job_name=worker --task_index=0",
        "workerCommandLineArgs": "--job_name=worker",
        "parameterServerCommandLineArgs": "--job_name=ps",
        "workerCount": 2,
        "parameterServerCount": 1,
    },
    "pyTorchSettings": {
        "pythonScriptFilePath": "torch.py",
        "communicationBackend": "gloo",
        "processCount": 2,
    },
    "caffeSettings": {"configFilePath": "solver.prototxt", "processCount": 1},
    "caffe2Settings": {"pythonScriptFilePath": "resnet50_trainer.py", "commandLineArgs": "--num_gpus 1"},
    "chainerSettings": {"pythonScriptFilePath": "train_mnist.py", "processCount": 2},
    "horovodSettings": {"pythonScriptFilePath": "tensorflow_mnist.py", "processCount": 4},
    "customMpiSettings": {"commandLine": "mpirun hostname", "processCount": 2},
    "customToolkitSettings": {"commandLine": "echo hello"},
}
TOOL_TYPES = {
    "cntkSettings": "cntk",
    "tensorFlowSettings": "tensorflow",
    "pyTorchSettings": "pytorch",
    "caffeSettings": "caffe",
    "caffe2Settings": "caffe2",
    "chainerSettings": "chainer",
    "horovodSettings": "horovod",
    "customMpiSettings": "mpi",
    "customToolkitSettings": "custom",
}

MOUNTS: dict[str, dict[str, Any]] = {
    "azureFileShares": {
        "accountName": "acct",
        "azureFileUrl": "https://acct.file.core.windows.net/logs",
        "credentials": SECRET,
        "relativeMountPath": "logs",
    },
    "azureBlobFileSystems": {
        "accountName": "acct",
        "containerName": "data",
        "credentials": SECRET,
        "relativeMountPath": "data",
        "mountOptions": "-o attr_timeout=240",
    },
    "fileServers": {
        "fileServer": {
            "id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.BatchAI/fileServers/nfs1"
        },
        "relativeMountPath": "nfs",
        "mountOptions": "rw",
    },
    "unmanagedFileSystems": {
        "mountCommand": "mount -t glusterfs 10.0.0.4:/gv0",
        "relativeMountPath": "gluster",
    },
}


def job(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "cluster": "nc6",
        "nodeCount": 2,
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "cntkSettings": {"pythonScriptFilePath": "train.py"},
    }
    spec.update(extra)
    return spec


def rejected(spec: dict[str, Any], *fragments: str, model: Any = TrainingJobSpec) -> str:
    with pytest.raises(ValidationError) as info:
        model.model_validate(spec)
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text, text
    return text


# ---- toolkits ---------------------------------------------------------------------------------------


def test_toolkit_table_covers_every_toolkit_field() -> None:
    toolkit_fields = {n for n in TrainingJobSpec.model_fields if n.endswith("_settings")} - {
        "container_settings"
    }
    assert set(TOOLKIT_FIELDS) == toolkit_fields
    assert len(TOOLKIT_FIELDS) == 9


@pytest.mark.parametrize("field", sorted(TOOLKITS))
def test_every_toolkit(field: str) -> None:
    spec = {k: v for k, v in job().items() if k != "cntkSettings"} | {field: TOOLKITS[field]}
    parsed = TrainingJobSpec.model_validate(spec)
    assert parsed.tool_type == TOOL_TYPES[field]
    assert parsed.wire()[field] == TOOLKITS[field]


def test_no_toolkit_rejected() -> None:
    spec = job()
    del spec["cntkSettings"]
    rejected(spec, "exactly one toolkit")


@pytest.mark.parametrize("other", ["tensorFlowSettings", "customToolkitSettings"])
def test_two_toolkits_rejected(other: str) -> None:
    rejected(job(**{other: TOOLKITS[other]}), "exactly one toolkit")


def test_cntk_brainscript_needs_config_file() -> None:
    rejected(job(cntkSettings={"languageType": "BrainScript"}), "configFilePath is required")
    ok = TrainingJobSpec.model_validate(
        job(cntkSettings={"languageType": "BrainScript", "configFilePath": "c.cntk"})
    )
    assert ok.cntk_settings is not None and ok.cntk_settings.is_brainscript


def test_cntk_python_needs_script_and_brainscript_takes_none() -> None:
    rejected(job(cntkSettings={"languageType": "Python"}), "pythonScriptFilePath is required")
    rejected(job(cntkSettings={"commandLineArgs": "x"}), "set pythonScriptFilePath", "or configFilePath")
    rejected(
        job(cntkSettings={"languageType": "Python", "pythonScriptFilePath": "p.py", "configFilePath": "c"}),
        "configFilePath is for BrainScript jobs only",
    )
    rejected(
        job(
            cntkSettings={
                "languageType": "BrainScript",
                "configFilePath": "c",
                "pythonScriptFilePath": "p.py",
            }
        ),
        "for Python jobs only",
    )
    rejected(job(cntkSettings={"languageType": "Lua", "pythonScriptFilePath": "p"}), "languageType")


@pytest.mark.parametrize(
    ("settings", "language"),
    [
        # Batch AI's BrainScript recipes set configFilePath (and commandLineArgs) only.
        (
            {"configFilePath": "$AZ_BATCHAI_INPUT_CONFIG/ConvNet_MNIST.cntk", "commandLineArgs": "a=1"},
            "BrainScript",
        ),
        ({"pythonScriptFilePath": "p.py", "pythonInterpreterPath": "python3"}, "Python"),
        ({"languageType": "BrainScript", "configFilePath": "c.cntk"}, "BrainScript"),
        ({"languageType": "Python", "pythonScriptFilePath": "p.py"}, "Python"),
    ],
    ids=["config-only", "script-only", "explicit-brainscript", "explicit-python"],
)
def test_cntk_language_given_or_inferred(settings: dict[str, str], language: str) -> None:
    spec = TrainingJobSpec.model_validate(job(cntkSettings=settings))
    assert spec.cntk_settings is not None
    assert spec.cntk_settings.language == language
    assert spec.cntk_settings.is_brainscript is (language == "BrainScript")
    # The language is inferred, not written: the object reads back as given.
    assert spec.wire()["cntkSettings"] == settings


@pytest.mark.parametrize(
    ("settings", "fragment"),
    [
        # Only a spec whose fields do not say the language is refused.
        ({"configFilePath": "c.cntk", "pythonScriptFilePath": "p.py"}, "set languageType"),
        ({"processCount": 2}, "set pythonScriptFilePath (a Python job) or configFilePath"),
        # A config file alone means BrainScript, which takes no interpreter.
        ({"configFilePath": "c.cntk", "pythonInterpreterPath": "python3"}, "for Python jobs only"),
    ],
    ids=["both", "neither", "config-with-interpreter"],
)
def test_cntk_language_cannot_be_inferred(settings: dict[str, Any], fragment: str) -> None:
    rejected(job(cntkSettings=settings), fragment)


def test_worker_count_cap_without_the_cluster() -> None:
    tf = {"pythonScriptFilePath": "tf.py"}
    TrainingJobSpec.model_validate(job(cntkSettings=None, tensorFlowSettings=dict(tf, workerCount=128)))
    rejected(
        job(cntkSettings=None, tensorFlowSettings=dict(tf, workerCount=129)),
        "workerCount must not exceed nodeCount x GPUs per VM (at most nodeCount x 64)",
    )


@pytest.mark.parametrize(
    "settings",
    [{}, {"configFilePath": "s.prototxt", "pythonScriptFilePath": "t.py"}],
    ids=["neither", "both"],
)
def test_caffe_exactly_one_of_config_or_script(settings: dict[str, str]) -> None:
    rejected(
        job(cntkSettings=None, caffeSettings=settings),
        "exactly one of configFilePath or pythonScriptFilePath",
    )


def test_caffe_interpreter_needs_script() -> None:
    rejected(
        job(
            cntkSettings=None,
            caffeSettings={"configFilePath": "s", "pythonInterpreterPath": "/usr/bin/python3"},
        ),
        "pythonInterpreterPath needs pythonScriptFilePath",
    )
    TrainingJobSpec.model_validate(
        job(
            cntkSettings=None,
            caffeSettings={"pythonScriptFilePath": "t.py", "pythonInterpreterPath": "python3"},
        )
    )


@pytest.mark.parametrize(
    "field",
    [
        "cntkSettings",
        "pyTorchSettings",
        "caffeSettings",
        "chainerSettings",
        "horovodSettings",
        "customMpiSettings",
    ],
)
def test_process_count_at_least_one(field: str) -> None:
    spec = job(cntkSettings=None) | {field: dict(TOOLKITS[field], processCount=0)}
    rejected(spec, "processCount", "greater than or equal to 1")


def test_tensorflow_counts() -> None:
    tf = TOOLKITS["tensorFlowSettings"]
    rejected(job(cntkSettings=None, tensorFlowSettings=dict(tf, workerCount=0)), "workerCount")
    rejected(
        job(cntkSettings=None, tensorFlowSettings=dict(tf, parameterServerCount=-1)), "parameterServerCount"
    )
    rejected(
        job(cntkSettings=None, tensorFlowSettings=dict(tf, parameterServerCount=3)),
        "parameterServerCount must not exceed nodeCount",
    )
    ok = TrainingJobSpec.model_validate(
        job(cntkSettings=None, tensorFlowSettings=dict(tf, parameterServerCount=2))
    )
    assert ok.tensor_flow_settings is not None and ok.tensor_flow_settings.parameter_server_count == 2


@pytest.mark.parametrize("backend", ["gloo", "Gloo", "TCP", "mpi", "nccl"])
def test_pytorch_backend_any_case(backend: str) -> None:
    TrainingJobSpec.model_validate(
        job(
            cntkSettings=None,
            pyTorchSettings={"pythonScriptFilePath": "t.py", "communicationBackend": backend},
        )
    )


def test_pytorch_bad_backend() -> None:
    rejected(
        job(
            cntkSettings=None,
            pyTorchSettings={"pythonScriptFilePath": "t.py", "communicationBackend": "smoke"},
        ),
        "communicationBackend",
    )


def test_node_count_at_least_one() -> None:
    rejected(job(nodeCount=0), "nodeCount")


# ---- mounts -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("group", sorted(MOUNTS))
def test_every_mount_type(group: str) -> None:
    spec = TrainingJobSpec.model_validate(job(mountVolumes={group: [MOUNTS[group]]}))
    assert spec.mount_volumes is not None
    assert spec.mount_volumes.relative_paths() == [MOUNTS[group]["relativeMountPath"]]


def test_mount_defaults_and_helpers() -> None:
    volumes = MountVolumes.model_validate({g: [m] for g, m in MOUNTS.items()})
    share = volumes.azure_file_shares[0] if volumes.azure_file_shares else None
    assert share is not None and share.share_name == "logs"
    assert (share.file_mode, share.directory_mode) == ("0777", "0777")
    assert volumes.file_servers is not None and volumes.file_servers[0].host == "nfs1"
    wire = volumes.wire()
    assert wire["azureFileShares"][0]["fileMode"] == "0777"
    assert "fileMode" not in wire["azureBlobFileSystems"][0]


def test_file_server_explicit_host() -> None:
    ref = dict(MOUNTS["fileServers"], server="10.0.0.5", sourceDirectory="/exports/data")
    volumes = MountVolumes.model_validate({"fileServers": [ref]})
    assert volumes.file_servers is not None and volumes.file_servers[0].host == "10.0.0.5"


@pytest.mark.parametrize("path", ["/abs", "a/../b", "..", "../x", "x/.."])
def test_relative_mount_path_rejected(path: str) -> None:
    mount = dict(MOUNTS["unmanagedFileSystems"], relativeMountPath=path)
    rejected(job(mountVolumes={"unmanagedFileSystems": [mount]}), "relativeMountPath")


@pytest.mark.parametrize("path", ["logs", "a/b", "a..b", "..a", "deep/er/path"])
def test_relative_mount_path_accepted(path: str) -> None:
    mount = dict(MOUNTS["unmanagedFileSystems"], relativeMountPath=path)
    TrainingJobSpec.model_validate(job(mountVolumes={"unmanagedFileSystems": [mount]}))


def test_relative_mount_paths_unique_across_mount_types() -> None:
    blob = dict(MOUNTS["azureBlobFileSystems"], relativeMountPath="logs")
    rejected(
        job(mountVolumes={"azureFileShares": [MOUNTS["azureFileShares"]], "azureBlobFileSystems": [blob]}),
        "must be unique",
        "logs",
    )


def test_file_url_and_account_name_checked() -> None:
    share = dict(MOUNTS["azureFileShares"], azureFileUrl="https://acct.file.core.windows.net")
    rejected(job(mountVolumes={"azureFileShares": [share]}), "azureFileUrl")
    share = dict(MOUNTS["azureFileShares"], accountName="<YOUR_STORAGE_ACCOUNT>")
    rejected(job(mountVolumes={"azureFileShares": [share]}), "accountName")


# ---- credentials and secrets ------------------------------------------------------------------------


def with_credentials(credentials: dict[str, Any]) -> dict[str, Any]:
    return job(mountVolumes={"azureFileShares": [dict(MOUNTS["azureFileShares"], credentials=credentials)]})


def test_inline_account_key_rejected_pointing_to_a_secret() -> None:
    text = rejected(
        with_credentials({"accountKey": "a2V5"}), "inline storage keys are not accepted", "Secret"
    )
    assert "kubectl batchai job convert" in text


def test_key_vault_account_key_rejected() -> None:
    ref = {
        "sourceVault": {"id": "/subscriptions/s/.../vaults/v"},
        "secretUrl": "https://v.vault.azure.net/secrets/k",
    }
    rejected(with_credentials({"accountKeySecretReference": ref}), "Key Vault references are not supported")


def test_credentials_exactly_one_of_secret_or_identity() -> None:
    rejected(with_credentials({}), "exactly one of secretRef or workloadIdentity")
    rejected(
        with_credentials({"secretRef": {"name": "s"}, "workloadIdentity": {"clientId": "c"}}),
        "exactly one of secretRef or workloadIdentity",
    )
    TrainingJobSpec.model_validate(with_credentials({"workloadIdentity": {"clientId": "1234"}}))
    TrainingJobSpec.model_validate(with_credentials({"secretRef": {"name": "my-storage", "key": "k"}}))


def test_secret_values_only_by_reference() -> None:
    rejected(
        job(secrets=[{"name": "TOKEN", "value": "hunter2"}]), "not accepted inline", "secrets[].secretRef"
    )
    rejected(job(secrets=[{"name": "TOKEN"}]), "secrets[].secretRef is required")
    rejected(
        job(secrets=[{"name": "TOKEN", "valueSecretReference": {"secretUrl": "https://v/secrets/t"}}]),
        "Key Vault references are not supported",
    )
    ok = TrainingJobSpec.model_validate(
        job(secrets=[{"name": "TOKEN", "secretRef": {"name": "s", "key": "t"}}])
    )
    assert ok.secrets is not None and ok.secrets[0].secret_ref is not None


def test_registry_password_rejected() -> None:
    registry = {"image": "myreg.azurecr.io/cntk:1", "serverUrl": "myreg.azurecr.io"}
    rejected(
        job(
            containerSettings={
                "imageSourceRegistry": dict(registry, credentials={"username": "u", "password": "p"})
            }
        ),
        "registry passwords are not accepted inline",
    )
    rejected(
        job(
            containerSettings={
                "imageSourceRegistry": dict(
                    registry, credentials={"passwordSecretReference": {"secretUrl": "x"}}
                )
            }
        ),
        "Key Vault references are not supported",
    )
    ok = TrainingJobSpec.model_validate(
        job(
            containerSettings={
                "imageSourceRegistry": dict(
                    registry, credentials={"username": "u", "secretRef": {"name": "pull"}}
                ),
                "shmSize": "16gb",
            }
        )
    )
    assert ok.container_settings is not None and ok.container_settings.shm_size == "16gb"


@pytest.mark.parametrize("size", ["16g", "512m", "1.5gb", "1024", "2GB"])
def test_shm_size_docker_format(size: str) -> None:
    TrainingJobSpec.model_validate(
        job(containerSettings={"imageSourceRegistry": {"image": "x"}, "shmSize": size})
    )


def test_bad_shm_size() -> None:
    rejected(job(containerSettings={"imageSourceRegistry": {"image": "x"}, "shmSize": "lots"}), "shmSize")


# ---- directories, environment, names ----------------------------------------------------------------


def test_output_directory_ids_unique_and_env_suffixes() -> None:
    out = {"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/out"}
    rejected(job(outputDirectories=[out, dict(out, pathSuffix="x")]), "ids must be unique", "MODEL")
    rejected(job(outputDirectories=[dict(out, id="my-model")]), "outputDirectories.0.id")
    rejected(job(outputDirectories=[dict(out, id="1MODEL")]), "outputDirectories.0.id")
    ok = TrainingJobSpec.model_validate(job(outputDirectories=[out, dict(out, id="model_2", pathSuffix="m")]))
    assert [d.id for d in ok.output_directories or []] == ["MODEL", "model_2"]


def test_input_directories_and_environment_unique() -> None:
    inp = {"id": "DATA", "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/data"}
    rejected(job(inputDirectories=[inp, inp]), "inputDirectories: ids must be unique")
    env = {"name": "EPOCHS", "value": "3"}
    rejected(job(environmentVariables=[env, env]), "environmentVariables: names must be unique")
    rejected(job(environmentVariables=[{"name": "BAD-NAME", "value": "x"}]), "environmentVariables.0.name")
    ref = {"name": "TOKEN", "secretRef": {"name": "s"}}
    rejected(job(secrets=[ref, ref]), "secrets: names must be unique")


@pytest.mark.parametrize(
    ("cluster", "name"),
    [
        ("nc6", "nc6"),
        (
            "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/ws/clusters/nc6",
            "nc6",
        ),
        ("/subscriptions/0000/resourceGroups/rg/providers/Microsoft.BatchAI/clusters/gpu-pool", "gpu-pool"),
        (
            "/subscriptions/0000/resourceGroups/RG/providers/Microsoft.BatchAI/workspaces/WS/clusters/a.b",
            "a.b",
        ),
    ],
)
def test_cluster_by_name_or_arm_id(cluster: str, name: str) -> None:
    spec = TrainingJobSpec.model_validate(job(cluster=cluster))
    assert spec.cluster_name == name
    assert spec.cluster == cluster


@pytest.mark.parametrize(
    "cluster",
    [
        "NC6",
        "nc_6",
        "/subscriptions/s/resourceGroups/rg/providers/Microsoft.BatchAI/workspaces/w/clusters/NC6",
        "a/b",
    ],
)
def test_cluster_must_name_a_kubernetes_object(cluster: str) -> None:
    rejected(job(cluster=cluster), "cluster")


@pytest.mark.parametrize("experiment", ["quickstart", "my_exp", "Exp-1", "a"])
def test_experiment_ok(experiment: str) -> None:
    assert TrainingJobSpec.model_validate(job(experiment=experiment)).experiment == experiment


@pytest.mark.parametrize("experiment", ["-x", "x_", "a b", "x" * 64, ""])
def test_experiment_must_be_a_label_value(experiment: str) -> None:
    rejected(job(experiment=experiment), "experiment")


def test_scheduling_priority() -> None:
    for p in ("low", "normal", "high"):
        assert TrainingJobSpec.model_validate(job(schedulingPriority=p)).scheduling_priority == p
    rejected(job(schedulingPriority="urgent"), "schedulingPriority")


# ---- defaults and wire form -------------------------------------------------------------------------


def test_defaults_are_filled_in() -> None:
    spec = TrainingJobSpec.model_validate(job())
    wire = spec.wire()
    assert wire["schedulingPriority"] == "normal"
    assert wire["experiment"] == "default"
    assert "constraints" not in wire
    assert spec.effective_constraints.max_wall_clock_seconds == 7 * 24 * 3600
    assert TrainingJobSpec.model_validate(wire).wire() == wire  # idempotent


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7.00:00:00", 604800),
        ("1 day, 2:03:04", 93784),
        ("PT1H30M", 5400),
        ("P1DT2H", 93600),
        ("0:00:01.5", 2),
    ],
)
def test_max_wall_clock_time(text: str, seconds: int) -> None:
    spec = TrainingJobSpec.model_validate(job(constraints={"maxWallClockTime": text}))
    assert spec.effective_constraints.max_wall_clock_seconds == seconds
    assert spec.wire()["constraints"]["maxWallClockTime"] == text


@pytest.mark.parametrize("text", ["7d", "P", "PT", "P1DT", "1:2:3", "forever", "1 days 0:00:00"])
def test_bad_max_wall_clock_time(text: str) -> None:
    rejected(job(constraints={"maxWallClockTime": text}), "maxWallClockTime")


def test_unknown_fields_rejected_in_spec_ignored_in_status() -> None:
    rejected(job(priorty="high"), "priorty")
    status = TrainingJobStatus.model_validate({"executionState": "running", "somethingNew": 1})
    assert status.execution_state == "running"
    BatchAIClusterStatus.model_validate({"allocationState": "steady", "future": True})


def test_trainingjob_resource_parses_metadata_and_ignores_status() -> None:
    obj = {
        "apiVersion": "batchai.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "j", "namespace": "ns"},
        "spec": job(),
        "status": {"executionState": "queued"},
    }
    parsed = TrainingJob.model_validate(obj)
    assert parsed.metadata["name"] == "j" and parsed.spec.tool_type == "cntk"


# ---- BatchAICluster ---------------------------------------------------------------------------------

CLUSTER: dict[str, Any] = {
    "vmSize": "STANDARD_NC6",
    "vmPriority": "lowpriority",
    "scaleSettings": {"autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 4, "initialNodeCount": 1}},
    "nodeSetup": {
        "setupTask": {
            "commandLine": "apt-get install -y jq",
            "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/logs",
            "environmentVariables": [{"name": "A", "value": "1"}],
            "secrets": [{"name": "B", "secretRef": {"name": "setup"}}],
        },
        "mountVolumes": {g: [m] for g, m in MOUNTS.items()},
        "performanceCountersSettings": {
            "appInsightsReference": {"component": {"id": "/subs/x/components/ai"}}
        },
    },
    "userAccountSettings": {"adminUserName": "azureuser", "adminUserSshPublicKey": "ssh-rsa AAAA"},
    "virtualMachineConfiguration": {
        "imageReference": {"publisher": "Canonical", "offer": "UbuntuServer", "sku": "16.04-LTS"}
    },
    "agentPool": "gpu",
    "nodeSelector": {"accelerator": "nvidia"},
    "tolerations": [{"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
    "gpusPerNode": 1,
    "images": {"cntk": "microsoft/cntk:2.5.1-gpu-python3.5-cuda9.0-cudnn7.0"},
    "aks": {"subscriptionId": "0000", "resourceGroup": "rg", "clusterName": "aks", "agentPoolName": "gpu"},
}


def test_full_cluster() -> None:
    spec = BatchAIClusterSpec.model_validate(CLUSTER)
    assert spec.vm_priority == "lowpriority"
    assert spec.node_setup is not None and spec.node_setup.mount_volumes is not None
    assert len(spec.node_setup.mount_volumes.relative_paths()) == 4


def test_cluster_defaults() -> None:
    spec = BatchAIClusterSpec.model_validate({"vmSize": "STANDARD_NC6", "scaleSettings": {"manual": {}}})
    wire = spec.wire()
    assert wire["vmPriority"] == "dedicated"
    assert wire["scaleSettings"]["manual"] == {"targetNodeCount": 0, "nodeDeallocationOption": "requeue"}


def cluster_with(path: list[str], value: Any) -> dict[str, Any]:
    spec = copy.deepcopy(CLUSTER)
    node = spec
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return spec


@pytest.mark.parametrize(
    ("path", "value", "fragment"),
    [
        (
            ["scaleSettings"],
            {"manual": {}, "autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 1}},
            "exactly one",
        ),
        (["scaleSettings"], {}, "exactly one of manual or autoScale"),
        (["scaleSettings", "autoScale", "minimumNodeCount"], 5, "must not exceed maximumNodeCount"),
        (["userAccountSettings", "adminUserPassword"], "p@ss", "passwords are not accepted"),
        (
            ["nodeSetup", "performanceCountersSettings", "appInsightsReference", "instrumentationKey"],
            "k",
            "keys are not accepted inline",
        ),
        (["nodeSetup", "setupTask", "secrets"], [{"name": "B", "value": "v"}], "not accepted inline"),
        (["vmPriority"], "spot", "vmPriority"),
        (["tolerations"], [{"operator": "Maybe"}], "operator"),
        (["scaleSettings"], {"manual": {"targetNodeCount": -1}}, "targetNodeCount"),
    ],
)
def test_bad_clusters(path: list[str], value: Any, fragment: str) -> None:
    rejected(cluster_with(path, value), fragment, model=BatchAIClusterSpec)


def test_cluster_needs_vm_size() -> None:
    spec = dict(CLUSTER)
    del spec["vmSize"]
    rejected(spec, "vmSize", model=BatchAIClusterSpec)


def test_batchai_names_are_the_launchers_except_its_settings() -> None:
    for name in ("BATCHAI_MPI_FLAVOUR", "BATCHAI_TASK_SHELL"):
        TrainingJobSpec.model_validate(job(environmentVariables=[{"name": name, "value": "intelmpi"}]))
    rejected(
        job(environmentVariables=[{"name": "BATCHAI_SSH_DIR", "value": "/tmp"}]),
        "BATCHAI_ are reserved for the operator's launcher",
        "(except BATCHAI_MPI_FLAVOUR and BATCHAI_TASK_SHELL)",
    )


@pytest.mark.parametrize("name", ["AZ_BATCHAI_OUTPUT_MODEL", "AZ_BATCHAI_JOB_MOUNT_ROOT", "AZ_BATCHAI_X"])
def test_variables_batchai_sets_are_refused_naming_them(name: str) -> None:
    """A job's own AZ_BATCHAI_* variable would lose to the operator's or replace it (issue 28): refused,
    in environmentVariables, in secrets, and in a cluster's setup task, with the variable named."""
    said = f"{name}: environment variable names starting with AZ_BATCHAI_ are set by Batch AI itself"
    rejected(job(environmentVariables=[{"name": name, "value": "/tmp"}]), said)
    rejected(job(secrets=[{"name": name, "secretRef": {"name": "s"}}]), said)
    variables = [{"name": name, "value": "x"}]
    setup_env = cluster_with(["nodeSetup", "setupTask", "environmentVariables"], variables)
    rejected(setup_env, said, model=BatchAIClusterSpec)
    # Names that only contain it, or differ in case, are the job's own.
    TrainingJobSpec.model_validate(job(environmentVariables=[{"name": f"MY_{name}", "value": "1"}]))
    TrainingJobSpec.model_validate(job(environmentVariables=[{"name": name.lower(), "value": "1"}]))


def test_secret_variables_may_not_take_the_launchers_names_either() -> None:
    rejected(
        job(secrets=[{"name": "BATCHAI_TASKS", "secretRef": {"name": "s"}}]),
        "BATCHAI_TASKS: environment variable names starting with BATCHAI_ are reserved",
    )
