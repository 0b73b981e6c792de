"""Scaling AKS agent pools: the pure plan, and the ARM client against the local ARM double
(tests/doubles/arm_agentpools.py), with azure-identity's workload identity credential exchanging a
federated token at the double's token endpoint, as on AKS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.identity.aio import WorkloadIdentityCredential

from batchai_operator.api.cluster import BatchAIClusterSpec
from batchai_operator.scaling import (
    AgentPoolScaler,
    DesiredScale,
    ScaleError,
    desired_scale,
    updated_properties,
)
from batchai_operator.scaling.arm import redact

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doubles.arm_agentpools import ArmAgentPoolsDouble

AKS = {"subscriptionId": "sub-1", "resourceGroup": "rg-ml", "clusterName": "aks-ml", "agentPoolName": "gpu"}


def spec(**extra: Any) -> BatchAIClusterSpec:
    return BatchAIClusterSpec.model_validate({"vmSize": "Standard_NC6", **extra})


def manual(n: int) -> DesiredScale:
    return DesiredScale("sub-1", "rg-ml", "aks-ml", "gpu", mode="manual", count=n)


def auto(lo: int, hi: int, initial: int | None = None) -> DesiredScale:
    return DesiredScale(
        "sub-1", "rg-ml", "aks-ml", "gpu", mode="autoScale", min_count=lo, max_count=hi, initial_count=initial
    )


# ---- plan ----------------------------------------------------------------------------------------


def test_desired_scale_needs_aks_and_scale_settings() -> None:
    assert desired_scale(spec(scaleSettings={"manual": {"targetNodeCount": 2}})) is None
    assert desired_scale(spec(aks=AKS)) is None
    d = desired_scale(spec(aks=AKS, scaleSettings={"manual": {"targetNodeCount": 2}}))
    assert d == manual(2)
    d = desired_scale(
        spec(
            aks=AKS,
            scaleSettings={
                "autoScale": {"minimumNodeCount": 1, "maximumNodeCount": 5, "initialNodeCount": 2}
            },
        )
    )
    assert d == auto(1, 5, 2)
    assert d.pool_path == (
        "/subscriptions/sub-1/resourceGroups/rg-ml/providers/Microsoft.ContainerService/"
        "managedClusters/aks-ml/agentPools/gpu"
    )


def test_key_changes_with_settings_and_pool() -> None:
    assert manual(2).key() == manual(2).key()
    assert (
        len(
            {
                manual(2).key(),
                manual(3).key(),
                auto(2, 2).key(),
                DesiredScale("sub-1", "rg-ml", "aks-ml", "other", mode="manual", count=2).key(),
            }
        )
        == 4
    )


POOL = {
    "count": 2,
    "vmSize": "Standard_NC6",
    "enableAutoScaling": False,
    "mode": "User",
    "provisioningState": "Succeeded",
    "nodeImageVersion": "x",
    "orchestratorVersion": "1.33",
}


def test_manual_update_disables_autoscaler() -> None:
    props = updated_properties(
        {**POOL, "enableAutoScaling": True, "minCount": 1, "maxCount": 9}, manual(4), False
    )
    assert props is not None
    assert (props["count"], props["enableAutoScaling"]) == (4, False)
    assert "minCount" not in props and "maxCount" not in props
    assert "provisioningState" not in props and "nodeImageVersion" not in props
    assert props["vmSize"] == "Standard_NC6" and props["orchestratorVersion"] == "1.33"


def test_no_update_when_pool_matches() -> None:
    assert updated_properties(POOL, manual(2), False) is None
    assert (
        updated_properties(
            {**POOL, "enableAutoScaling": True, "minCount": 1, "maxCount": 3}, auto(1, 3), False
        )
        is None
    )
    assert updated_properties(
        {**POOL, "enableAutoScaling": True, "minCount": 1, "maxCount": 3}, manual(2), False
    )


@pytest.mark.parametrize(
    ("count", "first", "initial", "expected"),
    [
        (2, False, None, 2),
        (0, False, None, 1),
        (9, False, None, 5),
        (2, True, 4, 4),
        (2, False, 4, 2),
        (2, True, 9, 5),
    ],
)
def test_autoscale_count_is_clamped(count: int, first: bool, initial: int | None, expected: int) -> None:
    props = updated_properties({**POOL, "count": count}, auto(1, 5, initial), first)
    assert props is not None
    assert (props["enableAutoScaling"], props["minCount"], props["maxCount"], props["count"]) == (
        True,
        1,
        5,
        expected,
    )


def test_redact() -> None:
    jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"
    text = redact(f"failed with Bearer abc.def and token {jwt} client_assertion=xyz&x=1 sig=SECRET\n more")
    assert "abc.def" not in text and jwt not in text and "xyz" not in text and "SECRET" not in text
    assert "\n" not in text
    assert len(redact("x" * 5000)) == 400


# ---- the ARM client against the double ---------------------------------------------------------


@pytest.fixture
def arm(tmp_path: Path) -> Iterator[ArmAgentPoolsDouble]:
    with ArmAgentPoolsDouble(tmp_path) as double:
        double.add_pool("sub-1", "rg-ml", "aks-ml", "gpu", count=2)
        yield double


@pytest.fixture
async def scaler(arm: ArmAgentPoolsDouble) -> AsyncIterator[AgentPoolScaler]:
    credential = WorkloadIdentityCredential(
        tenant_id=arm.tenant_id,
        client_id=arm.client_id,
        token_file_path=str(arm.token_file),
        authority=arm.url,
        connection_verify=str(arm.ca_file),
    )
    s = AgentPoolScaler(credential=credential, endpoint=arm.url, connection_verify=str(arm.ca_file))
    yield s
    await credential.close()


async def test_manual_then_autoscale_then_nothing(arm: ArmAgentPoolsDouble, scaler: AgentPoolScaler) -> None:
    path = arm.pool_path("sub-1", "rg-ml", "aks-ml", "gpu")
    r = await scaler.apply(manual(3), first_time=True)
    assert r.changed and r.properties["count"] == 3 and r.properties["provisioningState"] == "Succeeded"
    r = await scaler.apply(auto(1, 5), first_time=False)
    assert r.changed
    r = await scaler.apply(auto(1, 5), first_time=False)
    assert not r.changed
    puts = [b["properties"] for b in arm.puts(path)]
    assert [(p["count"], p["enableAutoScaling"], p.get("minCount"), p.get("maxCount")) for p in puts] == [
        (3, False, None, None),
        (3, True, 1, 5),
    ]
    assert arm.pool(path)["provisioningState"] == "Succeeded"
    # Every ARM request carried the token the token endpoint issued for the federated credential.
    assert all(r.authorized for r in arm.pool_requests())
    # The long-running operation was polled until it succeeded.
    assert any("/operations/" in r.path for r in arm.requests)


async def test_arm_error_is_a_safe_scale_error(arm: ArmAgentPoolsDouble, scaler: AgentPoolScaler) -> None:
    arm.fail(
        "PUT",
        "/agentPools/gpu",
        403,
        "AuthorizationFailed",
        "The client '0000' does not have authorization; token Bearer eyJabc.eyJdef.ghi was rejected",
    )
    with pytest.raises(ScaleError) as err:
        await scaler.apply(manual(5), first_time=False)
    e = err.value
    assert e.status_code == 403 and e.arm_code == "AuthorizationFailed"
    assert e.message.startswith("HTTP 403 AuthorizationFailed: The client '0000' does not have authorization")
    assert "eyJ" not in e.message
    for token in arm.issued_tokens:
        assert token not in e.message
    assert e.__cause__ is None and e.__suppress_context__


async def test_missing_pool(arm: ArmAgentPoolsDouble, scaler: AgentPoolScaler) -> None:
    with pytest.raises(ScaleError) as err:
        await scaler.apply(DesiredScale("sub-1", "rg-ml", "aks-ml", "nope", mode="manual", count=1), False)
    assert "404" in err.value.message and "ResourceNotFound" in err.value.message
    assert arm.puts() == []


async def test_rejected_federated_token(arm: ArmAgentPoolsDouble, tmp_path: Path) -> None:
    bad = tmp_path / "bad-token"
    bad.write_text("not-the-federated-token")
    credential = WorkloadIdentityCredential(
        tenant_id=arm.tenant_id,
        client_id=arm.client_id,
        token_file_path=str(bad),
        authority=arm.url,
        connection_verify=str(arm.ca_file),
    )
    s = AgentPoolScaler(credential=credential, endpoint=arm.url, connection_verify=str(arm.ca_file))
    with pytest.raises(ScaleError) as err:
        await s.apply(manual(1), False)
    await credential.close()
    assert "token" in err.value.message.lower()
    assert "not-the-federated-token" not in err.value.message
    assert arm.pool_requests() == []


def test_default_credential_from_the_environment(arm: ArmAgentPoolsDouble) -> None:
    """The operator's own path: DefaultAzureCredential (workload identity from AZURE_* variables),
    BATCHAI_ARM_ENDPOINT and SSL_CERT_FILE, in a fresh process as the operator would run."""
    script = textwrap.dedent("""
        import asyncio, json
        from batchai_operator.scaling import AgentPoolScaler, DesiredScale
        async def main():
            s = AgentPoolScaler()
            r = await s.apply(DesiredScale("sub-1", "rg-ml", "aks-ml", "gpu", mode="manual", count=4), False)
            await s.close()
            print(json.dumps({"changed": r.changed, "count": r.properties["count"]}))
        asyncio.run(main())
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "MSI_", "IDENTITY_"))}
    env.update(arm.env())
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {"changed": True, "count": 4}
    token_posts = [r for r in arm.requests if r.path.endswith("/oauth2/v2.0/token")]
    assert token_posts and token_posts[0].body["client_assertion"] == "***"
    assert [b["properties"]["count"] for b in arm.puts()] == [4]
