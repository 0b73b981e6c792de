"""Applies a planned scale to an AKS agent pool through Azure Resource Manager.

Credentials: azure-identity's WorkloadIdentityCredential only (the AZURE_CLIENT_ID / AZURE_TENANT_ID /
AZURE_FEDERATED_TOKEN_FILE the workload identity webhook injects into the operator's pod), unless a
credential is passed in. Never DefaultAzureCredential: its chain ends in the node's managed identity
(IMDS), which would let the operator act with the node's rights when workload identity is missing.
The ARM endpoint is BATCHAI_ARM_ENDPOINT when set (tests point it at a local double), else the SDK's
default cloud endpoint.

Errors never carry tokens: they are reduced to the HTTP status and ARM's error code and message, and
anything shaped like a bearer token or JWT is blanked out.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .plan import DesiredScale, updated_properties

# The Azure SDK is imported where it is used: only clusters that scale an AKS pool need it, and importing
# it costs the operator about 8 MB of memory for as long as it runs.
if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential

ENV_ENDPOINT = "BATCHAI_ARM_ENDPOINT"
ARM_SCOPE = "https://management.azure.com/.default"
_MAX_MESSAGE = 400
_SECRETS = [
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.?[A-Za-z0-9_-]*"),  # JWTs
    re.compile(r"(?i)(bearer\s+)[^\s,;\"']+"),
    re.compile(
        r"(?i)((?:access_token|client_assertion|client_secret|sig|password)[\"']?\s*[=:]\s*[\"']?)[^\s&,;\"']+"
    ),
]


def redact(text: str) -> str:
    """text with anything token-like replaced by ***, on one line, shortened."""
    for pattern in _SECRETS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + "***", text)
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


class ScaleError(Exception):
    """An agent-pool update failed; message is safe to show in status and Events."""

    def __init__(self, message: str, status_code: int | None = None, arm_code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.arm_code = arm_code


def describe_token_error(exc: BaseException) -> ScaleError:
    """A ScaleError for a credential that could not get a token."""
    from azure.core.exceptions import AzureError

    text = exc.message if isinstance(exc, AzureError) else str(exc)
    lines = str(text or "").splitlines()
    first = lines[0] if lines else ""
    return ScaleError(redact(f"could not get an Azure token ({type(exc).__name__}): {first}"))


def describe(exc: BaseException) -> ScaleError:
    """A ScaleError for an exception from the SDK."""
    from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError

    if isinstance(exc, ClientAuthenticationError) and exc.status_code is None:
        return describe_token_error(exc)
    if isinstance(exc, HttpResponseError):
        code = exc.error.code if exc.error is not None else None
        text = exc.error.message if exc.error is not None and exc.error.message else (exc.reason or "")
        status = exc.status_code
        head = f"HTTP {status}" + (f" {code}" if code else "")
        return ScaleError(redact(f"{head}: {text}"), status_code=status, arm_code=code)
    if isinstance(exc, AzureError):
        return ScaleError(redact(f"{type(exc).__name__}: {exc.message}"))
    return ScaleError(redact(f"{type(exc).__name__}: {exc}"))


@dataclass
class ScaleResult:
    """What an apply did: changed is False when the pool already had the settings (no PUT)."""

    changed: bool
    properties: dict[str, Any] = field(default_factory=dict)


class AgentPoolScaler:
    """Reads and updates AKS agent pools. Pass `credential` (and client keyword arguments such as
    connection_verify) to replace the defaults, e.g. in tests."""

    def __init__(
        self,
        credential: AsyncTokenCredential | None = None,
        endpoint: str | None = None,
        scope: str = ARM_SCOPE,
        **client_kwargs: Any,
    ) -> None:
        self.scope = scope
        self._credential = credential
        self._owns_credential = credential is None
        self.endpoint = endpoint if endpoint is not None else (os.environ.get(ENV_ENDPOINT) or None)
        self._client_kwargs = client_kwargs

    def _get_credential(self) -> AsyncTokenCredential:
        if self._credential is None:
            from azure.identity.aio import WorkloadIdentityCredential

            self._credential = WorkloadIdentityCredential()
        return self._credential

    async def apply(self, desired: DesiredScale, first_time: bool) -> ScaleResult:
        """GET the agent pool and PUT it with the desired scale when it differs; wait for the LRO."""
        try:
            credential = self._get_credential()
        except ValueError as exc:  # the webhook's variables are missing: no workload identity
            raise ScaleError(
                "workload identity is not configured for the operator (AZURE_CLIENT_ID, AZURE_TENANT_ID and "
                f"AZURE_FEDERATED_TOKEN_FILE): {redact(str(exc).splitlines()[0] if str(exc) else '')}"
            ) from None
        try:
            # A token first, so that credential failures are told apart from ARM's (the credential caches
            # it for the client's requests).
            await credential.get_token(self.scope)
        except Exception as exc:  # any credential failure; its text may hold secrets
            raise describe_token_error(exc) from None
        from azure.mgmt.containerservice.aio import ContainerServiceClient
        from azure.mgmt.containerservice.models import AgentPool

        try:
            async with ContainerServiceClient(
                credential,
                desired.subscription_id,
                base_url=self.endpoint,
                credential_scopes=[self.scope],
                **self._client_kwargs,
            ) as client:
                ops = client.agent_pools
                pool = await ops.get(desired.resource_group, desired.cluster_name, desired.agent_pool_name)
                props = dict(pool.as_dict(exclude_readonly=True).get("properties") or {})
                new = updated_properties(props, desired, first_time)
                if new is None:
                    return ScaleResult(False, props)
                poller = await ops.begin_create_or_update(
                    desired.resource_group,
                    desired.cluster_name,
                    desired.agent_pool_name,
                    AgentPool({"properties": new}),
                )
                result = await poller.result()
                return ScaleResult(True, dict(result.as_dict().get("properties") or {}))
        except ScaleError:
            raise
        except Exception as exc:  # every failure becomes a status error; the cause may hold secrets
            raise describe(exc) from None

    async def close(self) -> None:
        if self._owns_credential and self._credential is not None:
            await self._credential.close()
            self._credential = None
