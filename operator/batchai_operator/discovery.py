"""What the cluster serves, asked once when the operator starts (API discovery): whether the Workload API
and Kueue are there decides the gang mechanism of multi-node jobs (decide/gang.py).

Discovery needs no RBAC grant: every authenticated client may read it (system:discovery).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from .decide.gang import ServedApis

WORKLOAD_API = "/apis/scheduling.k8s.io/v1beta1"
KUEUE_API = "/apis/kueue.x-k8s.io"
REQUEST_TIMEOUT = (10, 30)


def workload_api_served(resources: Iterable[str] | None) -> bool:
    """Both kinds the gang needs are in scheduling.k8s.io/v1beta1's resource list."""
    return resources is not None and {"workloads", "podgroups"} <= set(resources)


async def served_apis(api: kubernetes.client.ApiClient) -> ServedApis:
    workload, kueue = await asyncio.gather(
        asyncio.to_thread(_get, api, WORKLOAD_API), asyncio.to_thread(_get, api, KUEUE_API)
    )
    names = [r.get("name", "") for r in workload.get("resources") or []] if workload is not None else None
    return ServedApis(workload=workload_api_served(names), kueue=kueue is not None)


def _get(api: kubernetes.client.ApiClient, path: str) -> dict[str, Any] | None:
    """A discovery document, or None when the group or version is not served (404)."""
    request = api.param_serialize(
        method="GET",
        resource_path=path,
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request, _request_timeout=REQUEST_TIMEOUT)
    body = response.read()  # type: ignore[no-untyped-call]
    if response.status == 404:
        return None
    if not 200 <= response.status <= 299:
        raise ApiException.from_response(http_resp=response, body=None, data=None)
    parsed: dict[str, Any] = json.loads(body)
    return parsed
