"""Admin grants per namespace (config.AllowPolicy, decide/policy.py), the blob mount-option allowlist and
the converter's error messages: the pure parts of "a custom resource gives no more than its namespace has"."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from batchai_operator.api.cluster import BatchAIClusterSpec
from batchai_operator.api.common import AzureBlobFileSystemReference
from batchai_operator.cli.convert.document import ConversionError, load_job_file
from batchai_operator.config import MIGRATE_PRIVILEGED_MOUNTS, AllowPolicy, OperatorConfig, namespace_matches
from batchai_operator.decide.policy import agent_pool_refusal, cluster_refusal
from batchai_operator.scaling import DesiredScale


@pytest.mark.parametrize(
    ("patterns", "namespace", "expected"),
    [
        ([], "team-a", False),
        (["team-a"], "team-a", True),
        (["team-a"], "team-ab", False),
        (["team-*"], "team-ab", True),
        (["team-*"], "xteam-a", False),
        (["*"], "anything", True),
    ],
)
def test_namespace_patterns(patterns: list[str], namespace: str, expected: bool) -> None:
    assert namespace_matches(patterns, namespace) is expected


def test_config_from_the_charts_environment() -> None:
    allow = {
        "setupTasks": ["ml-*"],
        "placement": ["ml-prod"],
        "privilegedMounts": [],
        "agentPools": {
            "ml-prod": [
                {"subscriptionId": "s", "resourceGroup": "rg", "clusterName": "c", "agentPoolName": "p"}
            ]
        },
    }
    cfg = OperatorConfig.from_env(
        {
            "BATCHAI_ALLOW": json.dumps(allow),
            "BATCHAI_OPERATOR_SERVICE_ACCOUNT": "batchai-system/batchai-operator",
            "BATCHAI_JOB_RESOURCES": '{"requests": {"cpu": "2"}}',
            "BATCHAI_MAX_SHM_SIZE": "8Gi",
            "BATCHAI_WATCH_NAMESPACES": '["ml-prod", "ml-dev"]',
        }
    )
    assert cfg.allow.setup_tasks == ["ml-*"] and cfg.allow.pools_for("ml-prod")[0].agent_pool_name == "p"
    assert cfg.allow.pools_for("ml-dev") == []
    assert cfg.operator_service_account == ("batchai-system", "batchai-operator")
    assert cfg.job_resources == {"requests": {"cpu": "2"}} and cfg.max_shm_size == "8Gi"
    assert cfg.watch_namespaces == ["ml-prod", "ml-dev"]
    # Nothing granted by default.
    assert OperatorConfig.from_env({}).allow == AllowPolicy()


def test_the_old_cluster_wide_switch_stops_the_operator_with_the_migration() -> None:
    with pytest.raises(ValueError) as err:
        OperatorConfig.from_env({"BATCHAI_ALLOW_PRIVILEGED_MOUNTS": "true"})
    assert str(err.value) == MIGRATE_PRIVILEGED_MOUNTS and "allow.privilegedMounts" in str(err.value)
    assert OperatorConfig.from_env({"BATCHAI_ALLOW_PRIVILEGED_MOUNTS": "false"}).allow == AllowPolicy()


def test_cluster_refusals_name_the_grant() -> None:
    setup = {"setupTask": {"commandLine": "x", "stdOutErrPathPrefix": "/l"}}
    spec = BatchAIClusterSpec.model_validate({"vmSize": "Standard_NC6", "nodeSetup": setup})
    code, message = cluster_refusal("ns", spec, OperatorConfig()) or ("", "")
    assert code == "SetupTaskNotAllowed" and "allow.setupTasks" in message and "namespace ns" in message
    assert cluster_refusal("ns", spec, OperatorConfig(allow=AllowPolicy(setup_tasks=["ns"]))) is None
    placed = BatchAIClusterSpec.model_validate({"vmSize": "Standard_NC6", "nodeSelector": {"a": "b"}})
    assert (cluster_refusal("ns", placed, OperatorConfig()) or ("",))[0] == "PlacementNotAllowed"
    plain = BatchAIClusterSpec.model_validate({"vmSize": "Standard_NC6", "agentPool": "gpu"})
    assert cluster_refusal("ns", plain, OperatorConfig()) is None


def test_agent_pool_refusal() -> None:
    desired = DesiredScale("sub", "rg", "aks", "gpu", "manual", count=1)
    assert "allow.agentPools" in (agent_pool_refusal("ns", desired, OperatorConfig()) or "")
    pools = {
        "ns": [{"subscriptionId": "SUB", "resourceGroup": "RG", "clusterName": "AKS", "agentPoolName": "gpu"}]
    }
    cfg = OperatorConfig(allow=AllowPolicy.model_validate({"agentPools": pools}))
    assert agent_pool_refusal("ns", desired, cfg) is None
    assert agent_pool_refusal("ns2", desired, cfg) is not None


BLOB = {
    "accountName": "acct",
    "containerName": "data",
    "credentials": {"secretRef": {"name": "s"}},
    "relativeMountPath": "data",
}


@pytest.mark.parametrize(
    "options",
    [
        "-o allow_other --use-https=true -o attr_timeout=240 -o entry_timeout=240 -o negative_timeout=120",
        "--use-https=true -o big_writes -o max_read=131072 -o max_write=131072 -o attr_timeout=240 "
        "-o fsname=blobfuse -o kernel_cache -o entry_timeout=240 -o negative_timeout=120 -o allow_other",
        "-o ro,allow_other --file-cache-timeout-in-seconds=120 --log-level=LOG_WARNING",
    ],
)
def test_batchai_blob_mount_options_are_accepted(options: str) -> None:
    AzureBlobFileSystemReference.model_validate({**BLOB, "mountOptions": options})


@pytest.mark.parametrize(
    "options",
    [
        "--tmp-path=/etc",
        "-o allow_other --config-file=/var/lib/kubelet/x.yaml",
        "--block-cache-path=/",
        "-o allow_other\n--tmp-path=/x",
        "-o allow_other; touch /x",
        "-o fsname=../../x",
        "--container-name=other",
    ],
)
def test_blob_mount_options_reaching_the_host_are_refused(options: str) -> None:
    with pytest.raises(ValidationError) as err:
        AzureBlobFileSystemReference.model_validate({**BLOB, "mountOptions": options})
    assert "only these blobfuse options" in str(err.value)


KEY = "S3cr3tAccountKeyThatMustNotLeak=="


@pytest.mark.parametrize(
    "text",
    [
        '{\n "properties": {\n  "accountKey": "' + KEY + '"\n  "x": 1\n }\n}',
        '{"accountKey": "' + KEY + '",,}',
        "accountKey: " + KEY + ": [\n",
        '{"accountKey": "' + KEY + '" "b": 1}',
    ],
)
def test_parse_errors_never_echo_the_file(text: str) -> None:
    with pytest.raises(ConversionError) as err:
        load_job_file(text)
    assert KEY not in str(err.value) and "line" in str(err.value)


def test_yaml_aliases_and_deep_nesting_are_refused_cleanly() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b]\n"
    with pytest.raises(ConversionError, match="aliases"):
        load_job_file(bomb)
    with pytest.raises(ConversionError, match="nested too deeply"):
        load_job_file("[" * 100_000)
