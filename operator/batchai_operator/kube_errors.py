"""The apiserver's own words for a failed request: one helper for the operator and the CLI.

Its own module (not kube.py) so that the CLI can use it without importing the operator's client and its
Prometheus metrics.
"""

from __future__ import annotations

import json

from kubernetes.client.exceptions import ApiException


def api_message(e: ApiException) -> str:
    """The message of the apiserver's Status body (never a request body), else the HTTP reason or code."""
    try:
        message = json.loads(e.body or "{}").get("message")
    except (ValueError, AttributeError):
        message = None
    return str(message or e.reason or e.status)
