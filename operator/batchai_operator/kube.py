"""The operator's one door to the Kubernetes API (besides kopf's own watches).

Uses the official `kubernetes` client in worker threads: kopf brings no client of its own, and the
synchronous client is the best-kept one. Every call is idempotent: create treats 409 as done, delete
treats 404 as done.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

import kubernetes
import kubernetes.watch
from kubernetes.client.exceptions import ApiException

from . import GROUP, VERSION

log = logging.getLogger(__name__)
# Ask the apiserver for an object's metadata only (used for Secrets: their values never reach us).
PARTIAL_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"


def api_message(e: ApiException) -> str:
    """The apiserver's own message from an error response (never a request body)."""
    try:
        return str(json.loads(e.body or "{}").get("message") or e.reason)
    except (ValueError, AttributeError):
        return f"{e.status} {e.reason}"


class Kube:
    """Thin async wrapper over the kubernetes client."""

    def __init__(self, api_client: kubernetes.client.ApiClient | None = None) -> None:
        self.api = api_client or kubernetes.client.ApiClient()
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.batch = kubernetes.client.BatchV1Api(self.api)
        self.apps = kubernetes.client.AppsV1Api(self.api)
        self.custom = kubernetes.client.CustomObjectsApi(self.api)

    @staticmethod
    def load() -> Kube:
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        return Kube()

    async def create(self, manifest: dict[str, Any]) -> bool:
        """Create the object; False when it already existed."""
        ns = manifest["metadata"]["namespace"]
        kind = manifest["kind"]
        creators: dict[str, Callable[..., Any]] = {
            "Job": self.batch.create_namespaced_job,
            "ConfigMap": self.core.create_namespaced_config_map,
            "Secret": self.core.create_namespaced_secret,
            "Service": self.core.create_namespaced_service,
            "DaemonSet": self.apps.create_namespaced_daemon_set,
        }
        fn = creators[kind]
        try:
            await asyncio.to_thread(fn, ns, manifest)
            return True
        except ApiException as e:
            if e.status == 409:
                return False
            raise

    async def delete(self, kind: str, namespace: str, name: str) -> None:
        deleters: dict[str, Callable[..., Any]] = {
            "Job": self.batch.delete_namespaced_job,
            "DaemonSet": self.apps.delete_namespaced_daemon_set,
        }
        fn = deleters[kind]
        try:
            await asyncio.to_thread(fn, name, namespace, propagation_policy="Background")
        except ApiException as e:
            if e.status != 404:
                raise

    async def patch_json(self, kind: str, namespace: str, name: str, ops: list[dict[str, Any]]) -> bool:
        """Apply a JSON patch (RFC 6902, a "test" op may guard it); False when gone or the test failed."""
        fn: Any = {"DaemonSet": self.apps.patch_namespaced_daemon_set}[kind]
        try:
            await asyncio.to_thread(fn, name, namespace, ops)
            return True
        except ApiException as e:
            if e.status in (404, 409, 422):
                return False
            raise

    async def patch_custom(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """Merge-patch one of our custom objects' metadata (the spec is the user's). 404: gone, fine."""
        try:
            await asyncio.to_thread(
                self.custom.patch_namespaced_custom_object, GROUP, VERSION, namespace, plural, name, patch
            )
        except ApiException as e:
            if e.status != 404:
                raise

    async def label_pod(self, namespace: str, name: str, labels: dict[str, str]) -> None:
        """Merge labels into a pod (404: it is gone, fine)."""
        try:
            await asyncio.to_thread(
                self.core.patch_namespaced_pod, name, namespace, {"metadata": {"labels": labels}}
            )
        except ApiException as e:
            if e.status != 404:
                raise

    async def patch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        await asyncio.to_thread(self.batch.patch_namespaced_job, name, namespace, patch)

    async def secret_exists(self, namespace: str, name: str) -> bool:
        """Whether a Secret exists. Asks for its metadata only, so no secret value is ever transferred."""
        try:
            await asyncio.to_thread(self._secret_metadata, namespace, name)
            return True
        except ApiException as e:
            if e.status == 404:
                return False
            raise

    def _secret_metadata(self, namespace: str, name: str) -> bytes:
        resp: Any = self.core.read_namespaced_secret(
            name, namespace, _headers={"Accept": PARTIAL_METADATA}, _preload_content=False
        )
        # Read the (metadata-only) body to the end so the pooled connection stays usable.
        data: bytes = resp.read()
        if b'"PartialObjectMetadata"' not in data:
            raise RuntimeError("the apiserver did not honour the metadata-only request for a Secret")
        return data

    def watch_failed_mounts(self, on_event: Callable[[dict[str, Any]], None], stop: threading.Event) -> None:
        """Blocking: stream the kubelets' FailedMount Events for pods, in all namespaces, until `stop`.

        A field-selected watch, not kopf's: kopf cannot filter by field, and watching every Event of a
        busy cluster to find the rare FailedMount would cost far more than this one narrow stream.
        """
        selector = "reason=FailedMount,involvedObject.kind=Pod"
        version: str | None = None
        while not stop.is_set():
            w = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for item in w.stream(  # type: ignore[no-untyped-call]
                    self.core.list_event_for_all_namespaces,
                    field_selector=selector,
                    resource_version=version,
                    timeout_seconds=60,
                ):
                    if stop.is_set():
                        break
                    obj = self.api.sanitize_for_serialization(item["object"])  # type: ignore[no-untyped-call]
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if item.get("type") in ("ADDED", "MODIFIED"):
                        on_event(obj)
            except ApiException as e:
                if e.status == 410:  # our resourceVersion is too old: start from now
                    version = None
                else:
                    log.warning("FailedMount watch: %s; retrying", api_message(e))
                    stop.wait(5)
            except Exception as e:  # network trouble: retry, never give up the watch
                log.warning("FailedMount watch: %s; retrying", e)
                stop.wait(5)
            finally:
                w.stop()  # type: ignore[no-untyped-call]

    async def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge-patch the status subresource of one of our custom objects (404: it is gone, fine)."""
        try:
            await asyncio.to_thread(
                self.custom.patch_namespaced_custom_object_status,
                GROUP,
                VERSION,
                namespace,
                plural,
                name,
                {"status": status},
            )
        except ApiException as e:
            if e.status != 404:
                raise

    async def delete_custom(self, plural: str, namespace: str, name: str) -> None:
        try:
            await asyncio.to_thread(
                self.custom.delete_namespaced_custom_object, GROUP, VERSION, namespace, plural, name
            )
        except ApiException as e:
            if e.status != 404:
                raise
