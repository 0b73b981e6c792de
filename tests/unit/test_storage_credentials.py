"""Which credentials `job file list/stream` use (storage/credentials.py), and Batch AI cluster.json
conversion for `cluster create` (convert.py)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from batchai_operator.api.common import AzureBlobFileSystemReference
from batchai_operator.cli.convert.cluster import ClusterOptions, convert_cluster_file, scale_settings
from batchai_operator.cli.convert.document import ConversionError
from batchai_operator.storage.credentials import CredentialSources, SecretRead
from batchai_operator.storage.errors import NoCredentials

KEY = "c2VjcmV0LXN0b3JhZ2Uta2V5"


def ref(secret: str | None = "storage", account: str = "acct") -> AzureBlobFileSystemReference:
    creds: dict[str, Any] = (
        {"secretRef": {"name": secret}} if secret else {"workloadIdentity": {"clientId": "c"}}
    )
    return AzureBlobFileSystemReference.model_validate(
        {"accountName": account, "containerName": "data", "credentials": creds, "relativeMountPath": "d"}
    )


class Token:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.scopes: list[str] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        self.scopes.extend(scopes)
        if self.fail:
            raise RuntimeError(
                "DefaultAzureCredential failed to retrieve a token from the included credentials."
            )
        return ("token", 0)


def sources(secrets: dict[str, SecretRead] | None = None, **kw: Any) -> CredentialSources:
    table = secrets or {}
    kw.setdefault("environ", {})
    return CredentialSources(
        namespace="ws",
        read_secret=lambda n: table.get(n, SecretRead(None, f"Secret ws/{n} does not exist")),
        **kw,
    )


def test_a_key_file_comes_first(tmp_path: Path) -> None:
    f = tmp_path / "key"
    f.write_text(KEY + "\n")
    s = sources({"storage": SecretRead({"azurestorageaccountkey": "other"})}, key_file=f)
    cred = s.resolve(ref())
    assert (cred.key, cred.source) == (KEY, f"--storage-account-key-file {f}")


def test_the_environment_key_applies_to_its_account_only() -> None:
    env = {"AZURE_BATCHAI_STORAGE_KEY": KEY, "AZURE_BATCHAI_STORAGE_ACCOUNT": "acct"}
    assert sources(environ=env).resolve(ref()).source == "AZURE_BATCHAI_STORAGE_KEY"
    with pytest.raises(NoCredentials, match="no credentials for storage account other"):
        sources(environ=env).resolve(ref(account="other"))


def test_the_jobs_secret_when_readable() -> None:
    s = sources({"storage": SecretRead({"azurestorageaccountname": "acct", "azurestorageaccountkey": KEY})})
    cred = s.resolve(ref())
    assert (cred.key, cred.source) == (KEY, "Secret ws/storage")
    sas = sources({"storage": SecretRead({"azurestorageaccountsastoken": "?sv=1&sig=x"})}).resolve(ref())
    assert (sas.key, sas.sas_token) == (None, "?sv=1&sig=x")


def test_a_secret_for_another_account_is_not_used() -> None:
    s = sources({"storage": SecretRead({"azurestorageaccountname": "else", "azurestorageaccountkey": KEY})})
    with pytest.raises(NoCredentials, match="Secret ws/storage is for storage account else"):
        s.resolve(ref())


def test_unreadable_secret_falls_back_to_the_login() -> None:
    token = Token()
    s = sources({"storage": SecretRead(None, "you may not read Secret ws/storage")}, login=lambda: token)
    cred = s.resolve(ref())
    assert cred.token is token and cred.key is None
    assert token.scopes == ["https://storage.azure.com/.default"]


def test_no_login_then_the_prompt() -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return KEY

    s = sources(login=lambda: Token(fail=True), prompt=prompt)
    cred = s.resolve(ref())
    assert (cred.key, cred.source) == (KEY, "the key typed at the prompt")
    assert asked == ["Key of storage account acct: "]


def test_nothing_found_says_what_was_tried_in_one_line() -> None:
    s = sources(
        {"storage": SecretRead(None, "you may not read Secret ws/storage")}, login=lambda: Token(fail=True)
    )
    with pytest.raises(NoCredentials) as exc:
        s.resolve(ref())
    text = str(exc.value)
    assert "\n" not in text
    assert text.startswith(
        "no credentials for storage account acct (you may not read Secret ws/storage; no Azure"
    )
    assert text.endswith("set AZURE_BATCHAI_STORAGE_KEY, or sign in to Azure (az login)")


def test_auth_modes() -> None:
    token = Token()
    both = {"storage": SecretRead({"azurestorageaccountkey": KEY})}
    assert sources(both, login=lambda: token, auth_mode="login").resolve(ref()).token is token
    assert sources(both, login=lambda: token, auth_mode="key").resolve(ref()).key == KEY
    with pytest.raises(NoCredentials, match="sign in to Azure"):
        sources(both, login=lambda: Token(fail=True), auth_mode="login", prompt=lambda t: KEY).resolve(ref())


def test_workload_identity_mounts_use_the_login() -> None:
    token = Token()
    assert sources(login=lambda: token).resolve(ref(secret=None)).token is token


# ---- cluster.json --------------------------------------------------------------------------------


def cluster_file(tmp_path: Path, props: dict[str, Any]) -> str:
    path = tmp_path / "cluster.json"
    path.write_text(json.dumps({"$schema": "https://.../2018-05-01/cluster.json", "properties": props}))
    return str(path)


def test_cluster_json_with_mounts_setup_task_and_flags(tmp_path: Path) -> None:
    props = {
        "vmSize": "STANDARD_NC6",
        "vmPriority": "dedicated",
        "scaleSettings": {"manual": {"targetNodeCount": 1}},
        "userAccountSettings": {"adminUserName": "me", "adminUserPassword": "hunter2"},
        "nodeSetup": {
            "mountVolumes": {
                "azureFileShares": [
                    {"azureFileUrl": "https://<AZURE_BATCHAI_STORAGE_ACCOUNT>.file.core.windows.net/afs",
                     "relativeMountPath": "afs"}
                ]
            },
            "setupTask": {
                "commandLine": "echo hi",
                "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/afs",
                "secrets": [{"name": "TOKEN", "value": "s3cret"}],
            },
        },
        "allocationState": "steady",
        "currentNodeCount": 1,
    }  # fmt: skip
    opts = ClusterOptions(name="NC6", namespace="ws", min_nodes=0, max_nodes=4, target=1,
                          storage_account_name="acct", storage_account_key=KEY)  # fmt: skip
    result = convert_cluster_file(cluster_file(tmp_path, props), opts, environ={})
    cluster = result.obj
    assert cluster["kind"] == "BatchAICluster"
    assert cluster["metadata"] == {
        "name": "nc6",
        "namespace": "ws",
        "annotations": {"batchai.io/name": "NC6"},
    }
    spec = cluster["spec"]
    assert spec["scaleSettings"] == {
        "autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 4, "initialNodeCount": 1}
    }
    assert spec["userAccountSettings"] == {"adminUserName": "me"}
    afs = spec["nodeSetup"]["mountVolumes"]["azureFileShares"][0]
    assert afs["accountName"] == "acct"
    assert afs["credentials"] == {"secretRef": {"name": "nc6-cluster-storage-acct"}}
    assert spec["nodeSetup"]["setupTask"]["secrets"] == [
        {"name": "TOKEN", "secretRef": {"name": "nc6-cluster-secrets", "key": "TOKEN"}}
    ]
    by_name = {s["metadata"]["name"]: s for s in result.secrets}
    assert (
        base64.b64decode(by_name["nc6-cluster-storage-acct"]["data"]["azurestorageaccountkey"]).decode()
        == KEY
    )
    assert by_name["nc6-cluster-secrets"]["metadata"]["labels"]["batchai.io/cluster"] == "nc6"
    text = json.dumps(cluster) + " ".join(result.warnings)
    assert "hunter2" not in text and "s3cret" not in text and KEY not in text
    assert any("adminUserPassword dropped" in w for w in result.warnings)
    assert any("allocationState" in w for w in result.warnings)


def test_cluster_json_must_make_a_valid_cluster(tmp_path: Path) -> None:
    path = cluster_file(tmp_path, {"scaleSettings": {"manual": {"targetNodeCount": 1}}})
    with pytest.raises(ConversionError, match=r"the cluster needs a VM size: pass -s/--vm-size"):
        convert_cluster_file(path, ClusterOptions(name="c"), environ={})


@pytest.mark.parametrize(
    ("target", "lo", "hi", "expected"),
    [
        (None, None, None, None),
        (2, None, None, {"manual": {"targetNodeCount": 2}}),
        (None, 3, 3, {"manual": {"targetNodeCount": 3}}),
        (1, 0, 4, {"autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 4, "initialNodeCount": 1}}),
    ],
)
def test_scale_settings_follow_azs_rule(
    target: int | None, lo: int | None, hi: int | None, expected: Any
) -> None:
    assert scale_settings(target, lo, hi) == expected


def test_scale_settings_refuse_half_or_inverted_bounds() -> None:
    with pytest.raises(ConversionError, match="go together"):
        scale_settings(None, 1, None)
    with pytest.raises(ConversionError, match="larger than --max"):
        scale_settings(None, 5, 2)
