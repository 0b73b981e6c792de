"""Batch AI job.json -> TrainingJob + Secrets (the converter and `kubectl-batchai job convert`)."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchai_operator.api import TrainingJobSpec
from batchai_operator.cli.convert.document import Conversion, ConversionError, dns_label, load_job_file
from batchai_operator.cli.convert.job import ConvertOptions, convert, convert_file
from batchai_operator.cli.main import main

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "cntk-mnist" / "job.json"
KEY = "c3VwZXItc2VjcmV0LXN0b3JhZ2Uta2V5PT0="  # what a storage key looks like
ARM = "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.BatchAI"
NO_ENV: dict[str, str] = {}


def seed() -> dict[str, Any]:
    return load_job_file(SEED.read_text())


def run(doc: dict[str, Any], environ: dict[str, str] | None = None, **options: Any) -> Conversion:
    options.setdefault("cluster", "nc6")
    options.setdefault("name", "job1")
    return convert(doc, ConvertOptions(**options), NO_ENV if environ is None else environ)


def dumped(result: Conversion) -> str:
    return json.dumps(result.obj) + "\n".join(result.warnings)


def secret(result: Conversion, name: str) -> dict[str, Any]:
    (found,) = [s for s in result.secrets if s["metadata"]["name"] == name]
    return found


def decoded(obj: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in obj["data"].items()}


def assert_no_key_material(result: Conversion, *values: str) -> None:
    text = dumped(result) + result.to_yaml().split("kind: TrainingJob", 1)[1]
    for value in values:
        for form in (value, base64.b64encode(value.encode()).decode()):
            assert form not in text, "key material leaked into the TrainingJob or a warning"


def minimal(**extra: Any) -> dict[str, Any]:
    props: dict[str, Any] = {
        "nodeCount": 1,
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        "customToolkitSettings": {"commandLine": "echo hi"},
    }
    props.update(extra)
    return {
        "$schema": "https://raw.githubusercontent.com/Azure/BatchAI/master/schemas/2018-05-01/job.json",
        "properties": props,
    }


# ---- the seed (2018-03-01 quickstart) ---------------------------------------------------------------


def test_seed_is_the_quickstart_file_verbatim() -> None:
    doc = seed()
    assert doc["$schema"].endswith("/2018-03-01/cntk.json")
    assert "cluster" not in doc["properties"]
    assert (
        doc["properties"]["mountVolumes"]["azureBlobFileSystems"][0]["accountName"]
        == "<YOUR_STORAGE_ACCOUNT>"
    )


def test_seed_with_account_and_key() -> None:
    result = run(
        seed(),
        name="cntk_python_1",
        placeholders={"YOUR_STORAGE_ACCOUNT": "myacct"},
        storage_account_key=KEY,
        experiment="quickstart",
    )
    assert result.api_version == "2018-03-01"
    docs = result.documents()
    assert [d["kind"] for d in docs] == ["Secret", "TrainingJob"]
    job = result.obj
    assert job["apiVersion"] == "batchai.io/v1alpha1"
    assert job["metadata"] == {"name": "cntk-python-1", "annotations": {"batchai.io/name": "cntk_python_1"}}
    spec = job["spec"]
    assert spec["cluster"] == "nc6" and spec["experiment"] == "quickstart"
    assert spec["schedulingPriority"] == "normal"  # the server-side default, written out
    shares = spec["mountVolumes"]["azureFileShares"]
    assert [s["accountName"] for s in shares] == ["myacct", "myacct"]  # from the URL host
    assert shares[0]["azureFileUrl"] == "https://myacct.file.core.windows.net/logs"
    assert shares[0]["fileMode"] == "0777"
    creds = {json.dumps(m["credentials"]) for g in spec["mountVolumes"].values() for m in g}
    assert creds == {json.dumps({"secretRef": {"name": "cntk-python-1-storage-myacct"}})}
    storage = secret(result, "cntk-python-1-storage-myacct")
    assert storage["type"] == "Opaque"
    assert decoded(storage) == {"azurestorageaccountname": "myacct", "azurestorageaccountkey": KEY}
    assert TrainingJobSpec.model_validate(spec).wire() == spec
    assert_no_key_material(result, KEY)
    assert any("cntk_python_1" in w for w in result.warnings)


def test_seed_without_key_references_the_secret_and_says_so() -> None:
    result = run(seed(), placeholders={"YOUR_STORAGE_ACCOUNT": "myacct"})
    assert result.secrets == []
    refs = {
        m["credentials"]["secretRef"]["name"] for g in result.obj["spec"]["mountVolumes"].values() for m in g
    }
    assert refs == {"job1-storage-myacct"}
    (warning,) = [w for w in result.warnings if "no key known" in w]
    assert "job1-storage-myacct" in warning and "kubectl create secret generic" in warning


def test_seed_without_placeholder_value_fails_with_the_flag_to_use() -> None:
    with pytest.raises(ConversionError, match=r"--placeholder YOUR_STORAGE_ACCOUNT=VALUE"):
        run(seed())


def test_seed_without_cluster_asks_for_one() -> None:
    with pytest.raises(ConversionError, match="--cluster"):
        run(seed(), cluster=None, placeholders={"YOUR_STORAGE_ACCOUNT": "myacct"})


def test_seed_name_from_its_directory() -> None:
    opts = ConvertOptions(cluster="nc6", placeholders={"YOUR_STORAGE_ACCOUNT": "myacct"})
    result = convert_file(str(SEED), opts, NO_ENV)
    assert result.obj["metadata"]["name"] == "cntk-mnist"


# ---- az CLI placeholders ----------------------------------------------------------------------------


def cli_placeholders_job() -> dict[str, Any]:
    return minimal(
        mountVolumes={
            "azureFileShares": [
                {
                    "accountName": "<AZURE_BATCHAI_STORAGE_ACCOUNT>",
                    "azureFileUrl": "https://<AZURE_BATCHAI_STORAGE_ACCOUNT>.file.core.windows.net/share",
                    "credentials": {"accountKey": "<AZURE_BATCHAI_STORAGE_KEY>"},
                    "relativeMountPath": "afs",
                }
            ],
            "azureBlobFileSystems": [
                {
                    "accountName": "<AZURE_BATCHAI_STORAGE_ACCOUNT>",
                    "containerName": "data",
                    "credentials": {"accountKey": "<AZURE_BATCHAI_STORAGE_KEY>"},
                    "relativeMountPath": "bfs",
                }
            ],
        }
    )


def test_az_placeholders_from_options() -> None:
    result = run(cli_placeholders_job(), storage_account_name="acct1", storage_account_key=KEY)
    volumes = result.obj["spec"]["mountVolumes"]
    assert volumes["azureFileShares"][0]["azureFileUrl"] == "https://acct1.file.core.windows.net/share"
    assert volumes["azureBlobFileSystems"][0]["accountName"] == "acct1"
    assert decoded(secret(result, "job1-storage-acct1"))["azurestorageaccountkey"] == KEY
    assert_no_key_material(result, KEY)


def test_az_placeholders_from_environment() -> None:
    env = {"AZURE_BATCHAI_STORAGE_ACCOUNT": "envacct", "AZURE_BATCHAI_STORAGE_KEY": KEY}
    result = run(cli_placeholders_job(), environ=env)
    assert decoded(secret(result, "job1-storage-envacct")) == {
        "azurestorageaccountname": "envacct",
        "azurestorageaccountkey": KEY,
    }


def test_options_win_over_environment() -> None:
    env = {"AZURE_BATCHAI_STORAGE_ACCOUNT": "envacct", "AZURE_BATCHAI_STORAGE_KEY": "ZW52"}
    result = run(cli_placeholders_job(), environ=env, storage_account_name="optacct", storage_account_key=KEY)
    assert decoded(secret(result, "job1-storage-optacct"))["azurestorageaccountkey"] == KEY


def test_missing_account_and_key_placeholders() -> None:
    with pytest.raises(ConversionError, match="--storage-account-name"):
        run(cli_placeholders_job())
    with pytest.raises(ConversionError, match="--storage-account-key"):
        run(cli_placeholders_job(), storage_account_name="acct1")


def test_other_placeholders_anywhere() -> None:
    doc = minimal(
        environmentVariables=[{"name": "DATA", "value": "<DATA_DIR>/mnist"}],
        customToolkitSettings={"commandLine": "python <SCRIPT>"},
    )
    result = run(doc, placeholders={"DATA_DIR": "/mnt/data", "SCRIPT": "train.py"})
    spec = result.obj["spec"]
    assert spec["environmentVariables"][0]["value"] == "/mnt/data/mnist"
    assert spec["customToolkitSettings"]["commandLine"] == "python train.py"


def test_unresolved_placeholder_in_account_key() -> None:
    doc = cli_placeholders_job()
    doc["properties"]["mountVolumes"]["azureFileShares"][0]["credentials"]["accountKey"] = "<MY_KEY>"
    del doc["properties"]["mountVolumes"]["azureBlobFileSystems"]
    with pytest.raises(ConversionError, match=r"unresolved placeholder in credentials\.accountKey"):
        run(doc, storage_account_name="acct1")


# ---- credentials and Secrets ------------------------------------------------------------------------


def share(account: str, path: str, **extra: Any) -> dict[str, Any]:
    return {
        "azureFileUrl": f"https://{account}.file.core.windows.net/{path}",
        "relativeMountPath": path,
    } | extra


def test_inline_account_keys_move_into_one_secret_per_account() -> None:
    other = "b3RoZXIta2V5"
    doc = minimal(
        mountVolumes={
            "azureFileShares": [
                share("acct1", "a", credentials={"accountKey": KEY}),
                share("acct2", "b", accountName="acct2", credentials={"accountKey": other}),
                share("acct1", "c"),  # same account, no credentials: reuses the key above
            ]
        }
    )
    result = run(doc)
    assert sorted(s["metadata"]["name"] for s in result.secrets) == [
        "job1-storage-acct1",
        "job1-storage-acct2",
    ]
    assert decoded(secret(result, "job1-storage-acct2"))["azurestorageaccountkey"] == other
    names = [
        m["credentials"]["secretRef"]["name"] for m in result.obj["spec"]["mountVolumes"]["azureFileShares"]
    ]
    assert names == ["job1-storage-acct1", "job1-storage-acct2", "job1-storage-acct1"]
    assert_no_key_material(result, KEY, other)
    TrainingJobSpec.model_validate(result.obj["spec"])


def test_conflicting_keys_for_one_account() -> None:
    doc = minimal(
        mountVolumes={
            "azureFileShares": [
                share("acct1", "a", credentials={"accountKey": KEY}),
                share("acct1", "b", credentials={"accountKey": "ZGlmZmVyZW50"}),
            ]
        }
    )
    with pytest.raises(ConversionError) as info:
        run(doc)
    assert "different key" in str(info.value) and KEY not in str(info.value)


def test_user_given_storage_secret() -> None:
    doc = minimal(mountVolumes={"azureFileShares": [share("acct1", "a")]})
    result = run(doc, storage_secret="team-storage")
    assert result.secrets == []
    assert result.obj["spec"]["mountVolumes"]["azureFileShares"][0]["credentials"] == {
        "secretRef": {"name": "team-storage"}
    }
    assert any("team-storage" in w and "must already exist" in w for w in result.warnings)
    with_key = run(doc, storage_secret="team-storage", storage_account_key=KEY)
    assert decoded(secret(with_key, "team-storage"))["azurestorageaccountname"] == "acct1"


def test_storage_secret_is_ambiguous_with_two_accounts() -> None:
    doc = minimal(mountVolumes={"azureFileShares": [share("acct1", "a"), share("acct2", "b")]})
    with pytest.raises(ConversionError, match="ambiguous"):
        run(doc, storage_secret="s")
    result = run(doc, storage_secret="s", storage_account_name="acct2", storage_account_key=KEY)
    refs = [
        m["credentials"]["secretRef"]["name"] for m in result.obj["spec"]["mountVolumes"]["azureFileShares"]
    ]
    assert refs == ["job1-storage-acct1", "s"]


def test_key_vault_account_key_is_referenced_with_a_warning() -> None:
    kv = {
        "sourceVault": {"id": "/subscriptions/s/vaults/v"},
        "secretUrl": "https://v.vault.azure.net/secrets/k",
    }
    doc = minimal(
        mountVolumes={"azureFileShares": [share("acct1", "a", credentials={"accountKeySecretReference": kv})]}
    )
    result = run(doc)
    assert result.obj["spec"]["mountVolumes"]["azureFileShares"][0]["credentials"] == {
        "secretRef": {"name": "job1-storage-acct1"}
    }
    assert any("Key Vault" in w for w in result.warnings)


def test_existing_secret_ref_kept() -> None:
    doc = minimal(
        mountVolumes={"azureFileShares": [share("acct1", "a", credentials={"secretRef": {"name": "mine"}})]}
    )
    result = run(doc, storage_account_key=KEY)
    assert result.secrets == []
    assert result.obj["spec"]["mountVolumes"]["azureFileShares"][0]["credentials"] == {
        "secretRef": {"name": "mine"}
    }


def test_blob_without_account_name() -> None:
    doc = minimal(
        mountVolumes={"azureBlobFileSystems": [{"containerName": "data", "relativeMountPath": "d"}]}
    )
    with pytest.raises(ConversionError, match="no accountName"):
        run(doc)


def test_secret_values_move_into_a_secret() -> None:
    doc = minimal(
        secrets=[{"name": "API_TOKEN", "value": "hunter2-token"}, {"name": "OTHER", "value": "s3cr3t"}]
    )
    result = run(doc)
    assert decoded(secret(result, "job1-secrets")) == {"API_TOKEN": "hunter2-token", "OTHER": "s3cr3t"}
    assert result.obj["spec"]["secrets"] == [
        {"name": "API_TOKEN", "secretRef": {"name": "job1-secrets", "key": "API_TOKEN"}},
        {"name": "OTHER", "secretRef": {"name": "job1-secrets", "key": "OTHER"}},
    ]
    assert_no_key_material(result, "hunter2-token", "s3cr3t")


def test_key_vault_secret_values_are_referenced_with_a_warning() -> None:
    doc = minimal(
        secrets=[{"name": "T", "valueSecretReference": {"secretUrl": "https://v.vault.azure.net/s/t"}}]
    )
    result = run(doc)
    assert result.secrets == []
    assert result.obj["spec"]["secrets"] == [
        {"name": "T", "secretRef": {"name": "job1-keyvault", "key": "T"}}
    ]
    assert any("job1-keyvault" in w for w in result.warnings)


@pytest.mark.parametrize(
    ("server", "auth_key"), [("myreg.azurecr.io", "myreg.azurecr.io"), (None, "https://index.docker.io/v1/")]
)
def test_registry_password_moves_into_a_dockerconfigjson_secret(server: str | None, auth_key: str) -> None:
    registry: dict[str, Any] = {
        "image": "myreg.azurecr.io/cntk:1",
        "credentials": {"username": "bob", "password": "pw!"},
    }
    if server:
        registry["serverUrl"] = server
    result = run(minimal(containerSettings={"imageSourceRegistry": registry, "shmSize": "8g"}))
    pull = secret(result, "job1-registry")
    assert pull["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(decoded(pull)[".dockerconfigjson"])
    entry = config["auths"][auth_key]
    assert (entry["username"], entry["password"]) == ("bob", "pw!")
    assert base64.b64decode(entry["auth"]).decode() == "bob:pw!"
    creds = result.obj["spec"]["containerSettings"]["imageSourceRegistry"]["credentials"]
    assert creds == {"username": "bob", "secretRef": {"name": "job1-registry"}}
    assert_no_key_material(result, "pw!")


def test_registry_password_needs_a_username() -> None:
    registry = {"image": "x", "credentials": {"password": "pw"}}
    with pytest.raises(ConversionError, match="needs a username"):
        run(minimal(containerSettings={"imageSourceRegistry": registry}))


def test_secrets_come_first_in_yaml() -> None:
    result = run(minimal(secrets=[{"name": "T", "value": "v"}]), namespace="team-a")
    docs = list(yaml.safe_load_all(result.to_yaml()))
    assert [d["kind"] for d in docs] == ["Secret", "TrainingJob"]
    assert {d["metadata"]["namespace"] for d in docs} == {"team-a"}
    listed = json.loads(result.to_json())
    assert listed["kind"] == "List" and [d["kind"] for d in listed["items"]] == ["Secret", "TrainingJob"]


# ---- 2018-03-01 and other shapes --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("priority", "expected"), [(-500, "low"), (0, "normal"), (1, "high"), (1000, "high")]
)
def test_2018_03_01_priority(priority: int, expected: str) -> None:
    doc = minimal(priority=priority)
    doc["$schema"] = "https://raw.githubusercontent.com/Azure/BatchAI/master/schemas/2018-03-01/job.json"
    result = run(doc)
    assert result.api_version == "2018-03-01"
    assert result.obj["spec"]["schedulingPriority"] == expected
    assert "priority" not in result.obj["spec"]


def test_2018_03_01_experiment_cluster_and_output_directories() -> None:
    props = minimal()["properties"] | {
        "experimentName": "my_experiment",
        "cluster": {"id": f"{ARM}/clusters/nc6"},
        "outputDirectories": [
            {
                "id": "MODEL",
                "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/out",
                "type": "model",
                "createNew": True,
            }
        ],
        "priority": 0,
    }
    result = run(props, cluster=None)  # a bare properties object
    assert result.api_version == "2018-03-01"
    spec = result.obj["spec"]
    assert spec["experiment"] == "my_experiment"
    assert spec["cluster"] == f"{ARM}/clusters/nc6"
    assert TrainingJobSpec.model_validate(spec).cluster_name == "nc6"
    assert spec["outputDirectories"] == [{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/out"}]
    assert any("type, createNew" in w for w in result.warnings)


def test_2018_05_01_workspace_cluster_id() -> None:
    doc = minimal(cluster={"id": f"{ARM}/workspaces/ws/clusters/gpu-pool"})
    result = run(doc, cluster=None)
    assert result.api_version == "2018-05-01"
    assert TrainingJobSpec.model_validate(result.obj["spec"]).cluster_name == "gpu-pool"


def test_cluster_option_wins_and_names_are_normalized() -> None:
    doc = minimal(cluster={"id": f"{ARM}/workspaces/ws/clusters/nc6"})
    result = run(doc, cluster="other")
    assert result.obj["spec"]["cluster"] == "other"
    result = run(minimal(cluster={"id": f"{ARM}/workspaces/ws/clusters/My_Cluster"}), cluster=None)
    assert result.obj["spec"]["cluster"] == "my-cluster"
    assert any("My_Cluster" in w for w in result.warnings)


def test_experiment_option_and_normalization() -> None:
    assert run(minimal(), experiment="exp1").obj["spec"]["experiment"] == "exp1"
    assert run(minimal()).obj["spec"]["experiment"] == "default"
    result = run(minimal(), experiment="my exp!")
    assert result.obj["spec"]["experiment"] == "my-exp"


def test_read_only_fields_dropped() -> None:
    doc = minimal(
        toolType="custom",
        executionState="succeeded",
        executionInfo={"exitCode": 0},
        creationTime="2018-06-01T00:00:00Z",
    )
    result = run(doc)
    assert not {"toolType", "executionState", "executionInfo", "creationTime"} & set(result.obj["spec"])
    assert any("read-only" in w for w in result.warnings)


def test_case_normalization() -> None:
    result = run(
        minimal(
            customToolkitSettings=None,
            schedulingPriority="High",
            cntkSettings={"languageType": "brainscript", "configFilePath": "c.cntk"},
        )
    )
    assert result.obj["spec"]["schedulingPriority"] == "high"
    assert result.obj["spec"]["cntkSettings"]["languageType"] == "BrainScript"


def test_brainscript_without_language_type_converts_unchanged() -> None:
    """Batch AI's CNTK-GPU-BrainScript(-Distributed) recipes: configFilePath and commandLineArgs only."""
    cntk = {
        "configFilePath": "$AZ_BATCHAI_INPUT_CONFIG/DistributedConvNet_MNIST.cntk",
        "commandLineArgs": "rootDir=. dataDir=$AZ_BATCHAI_INPUT_DATASET parallelTrain=true",
    }
    doc = minimal(
        nodeCount=2,
        customToolkitSettings=None,
        cntkSettings=copy.deepcopy(cntk),
        inputDirectories=[{"id": "CONFIG", "path": "$AZ_BATCHAI_MOUNT_ROOT/external/cntk_samples"}],
    )
    del doc["properties"]["customToolkitSettings"]
    result = run(doc)
    assert result.obj["spec"]["cntkSettings"] == cntk
    settings = TrainingJobSpec.model_validate(result.obj["spec"]).cntk_settings
    assert settings is not None and settings.is_brainscript
    assert result.warnings == []


def test_fields_batch_ai_does_not_have_are_dropped_with_a_warning() -> None:
    """az batchai job create read job.json with the SDK's deserializer, which ignored unknown keys; older
    recipes carry some (cntkSettings.process_count, chainerSettings.masterCommandLineArgs)."""
    doc = minimal(
        customToolkitSettings=None,
        chainerSettings={"pythonScriptFilePath": "t.py", "masterCommandLineArgs": "-g", "process_count": 2},
        outputDirectories=[{"id": "MODEL", "pathPrefix": "/out", "pathSufix": "typo"}],
        location="eastus",
    )
    del doc["properties"]["customToolkitSettings"]
    result = run(doc)
    spec = result.obj["spec"]
    assert spec["chainerSettings"] == {"pythonScriptFilePath": "t.py"}
    assert spec["outputDirectories"] == [{"id": "MODEL", "pathPrefix": "/out"}]
    assert "location" not in spec
    (warning,) = result.warnings
    for path in (
        "chainerSettings.masterCommandLineArgs",
        "chainerSettings.process_count",
        "outputDirectories[0].pathSufix",
        "location",
    ):
        assert path in warning
    assert "az batchai job create ignored them too" in warning


def test_preview_schema_converts_without_a_warning() -> None:
    """The first recipes name the 2017-09-01-preview schema; its fields are 2018-03-01's."""
    doc = minimal(experimentName="mnist_train", priority=0)
    doc["$schema"] = (
        "https://raw.githubusercontent.com/Azure/BatchAI/master/schemas/2017-09-01-preview/job.json"
    )
    result = run(doc)
    assert result.api_version == "2017-09-01"
    assert result.warnings == []
    assert result.obj["spec"]["experiment"] == "mnist_train"


def test_trailing_commas_are_tolerated() -> None:
    """The TensorFlow-GPU-Distributed recipe's outputDirectories list ends with a comma."""
    text = (
        '{"properties": {"nodeCount": 1, "stdOutErrPathPrefix": "/logs",'
        ' "outputDirectories": [{"id": "MODEL", "pathPrefix": "/logs"},],'
        ' "customToolkitSettings": {"commandLine": "true"}}}'
    )
    spec = run(load_job_file(text)).obj["spec"]
    assert spec["outputDirectories"] == [{"id": "MODEL", "pathPrefix": "/logs"}]


TOOLKITS = {
    "cntkSettings": {"pythonScriptFilePath": "a.py"},
    "tensorFlowSettings": {"pythonScriptFilePath": "a.py", "workerCount": 1, "parameterServerCount": 1},
    "pyTorchSettings": {"pythonScriptFilePath": "a.py", "communicationBackend": "gloo"},
    "caffeSettings": {"configFilePath": "solver.prototxt"},
    "caffe2Settings": {"pythonScriptFilePath": "a.py"},
    "chainerSettings": {"pythonScriptFilePath": "a.py"},
    "horovodSettings": {"pythonScriptFilePath": "a.py"},
    "customMpiSettings": {"commandLine": "hostname"},
    "customToolkitSettings": {"commandLine": "hostname"},
}


@pytest.mark.parametrize("toolkit", sorted(TOOLKITS))
def test_every_toolkit_converts(toolkit: str) -> None:
    props = minimal()["properties"]
    del props["customToolkitSettings"]
    props[toolkit] = copy.deepcopy(TOOLKITS[toolkit])
    spec = run({"properties": props}).obj["spec"]
    assert spec[toolkit] == TOOLKITS[toolkit]


def test_invalid_job_reports_spec_paths() -> None:
    doc = minimal(nodeCount=0, outputDirectories=[{"id": "my-model", "pathPrefix": "x"}])
    with pytest.raises(ConversionError) as info:
        run(doc)
    assert "spec.nodeCount" in str(info.value) and "spec.outputDirectories.0.id" in str(info.value)


def test_not_an_object() -> None:
    with pytest.raises(ConversionError):
        load_job_file("[1, 2]")
    with pytest.raises(ConversionError):
        load_job_file("{not json: [")


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("cntk_python_1", "cntk-python-1"),
        ("Job.Name", "job-name"),
        ("1st", "job-1st"),
        ("x" * 80, "x" * 52),
        ("--a--", "a"),
    ],
)
def test_dns_label(raw: str, name: str) -> None:
    assert dns_label(raw) == name


# ---- the CLI ----------------------------------------------------------------------------------------


def test_cli_convert_seed(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_BATCHAI_STORAGE_KEY", KEY)
    monkeypatch.delenv("AZURE_BATCHAI_STORAGE_ACCOUNT", raising=False)
    code = main(
        [
            "job",
            "convert",
            "-f",
            str(SEED),
            "-n",
            "cntk_python_1",
            "-c",
            "nc6",
            "-e",
            "quickstart",
            "--namespace",
            "ml",
            "--placeholder",
            "YOUR_STORAGE_ACCOUNT=myacct",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    docs = list(yaml.safe_load_all(out))
    assert [d["kind"] for d in docs] == ["Secret", "TrainingJob"]
    assert docs[1]["metadata"] == {
        "name": "cntk-python-1",
        "namespace": "ml",
        "annotations": {"batchai.io/name": "cntk_python_1"},
    }
    assert "warning: job name 'cntk_python_1'" in err
    assert KEY not in err and KEY not in yaml.safe_dump(docs[1])


def test_cli_json_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "j.json"
    path.write_text(json.dumps(minimal()))
    assert main(["job", "convert", "-f", str(path), "-c", "nc6", "-o", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["items"][0]["metadata"]["name"] == "j"


def test_cli_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["job", "convert", "-f", str(tmp_path / "missing.json")]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["job", "convert", "-f", str(SEED), "-c", "nc6"]) == 1
    assert "--placeholder YOUR_STORAGE_ACCOUNT" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        main(["job", "convert", "-f", str(SEED), "--placeholder", "novalue"])
    assert info.value.code == 2
    with pytest.raises(SystemExit):
        main(["job"])


def test_cli_reads_stdin(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(json.dumps(minimal())))
    assert main(["job", "convert", "-f", "-", "-c", "nc6", "-n", "piped"]) == 0
    assert "name: piped" in capsys.readouterr().out


def test_secret_values_are_not_scanned_for_placeholders() -> None:
    """A password may well contain '<FOO>'; it is moved into a Secret, not reported as a placeholder."""
    registry = {"image": "r.io/x:1", "credentials": {"username": "u", "password": "<NOT_A_PLACEHOLDER>"}}
    doc = minimal(
        secrets=[{"name": "T", "value": "<ALSO_NOT>"}], containerSettings={"imageSourceRegistry": registry}
    )
    result = run(doc)
    assert decoded(secret(result, "job1-secrets")) == {"T": "<ALSO_NOT>"}
    assert "<NOT_A_PLACEHOLDER>" in decoded(secret(result, "job1-registry"))[".dockerconfigjson"]
