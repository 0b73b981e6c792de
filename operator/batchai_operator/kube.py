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

from .names import GROUP, VERSION

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

    async def controller_uid(self, kind: str, namespace: str, name: str) -> str | None:
        """The uid of the controller of an existing child (metadata only); None: it has none, or is gone."""
        readers: dict[str, Callable[..., Any]] = {
            "Job": self.batch.read_namespaced_job,
            "ConfigMap": self.core.read_namespaced_config_map,
            "Service": self.core.read_namespaced_service,
            "DaemonSet": self.apps.read_namespaced_daemon_set,
        }
        try:
            data = await asyncio.to_thread(self._metadata, readers[kind], namespace, name)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        refs = (data.get("metadata") or {}).get("ownerReferences") or []
        return next((str(r.get("uid")) for r in refs if r.get("controller")), None)

    def _metadata(self, read: Callable[..., Any], namespace: str, name: str) -> dict[str, Any]:
        resp: Any = read(name, namespace, _headers={"Accept": PARTIAL_METADATA}, _preload_content=False)
        # Read the (metadata-only) body to the end so the pooled connection stays usable.
        data: bytes = resp.read()
        if b'"PartialObjectMetadata"' not in data:
            raise RuntimeError("the apiserver did not honour a metadata-only request")
        result: dict[str, Any] = json.loads(data)
        return result

    async def secret_exists(self, namespace: str, name: str) -> bool:
        """Whether a Secret exists, asked without reading it: a server-side dry run of creating an empty
        Secret of that name answers 409 AlreadyExists when it exists (nothing is stored either way). So
        the operator needs no `get` on Secrets (which would let it read any), only `create`.

        When admission refuses the dry run (a full Secret quota, a policy), existence cannot be told:
        True, and the job's pods will say whether the Secret is missing.
        """
        body: Any = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque"}
        try:
            await asyncio.to_thread(self.core.create_namespaced_secret, namespace, body, dry_run="All")
            return False
        except ApiException as e:
            if e.status == 409:
                return True
            if e.status in (400, 403, 422):
                log.warning("cannot tell whether Secret %s/%s exists: %s", namespace, name, api_message(e))
                return True
            raise

    def watch_failed_mounts(
        self,
        on_event: Callable[[dict[str, Any]], None],
        stop: threading.Event,
        namespace: str | None = None,
        server_timeout: int = 60,
        client_timeout: float = 90.0,
        retry_seconds: float = 5.0,
    ) -> None:
        """Blocking: stream the kubelets' FailedMount Events for pods (in `namespace`, or all) until `stop`.

        A field-selected watch, not kopf's: kopf cannot filter by field, and watching every Event of a
        busy cluster to find the rare FailedMount would cost far more than this one narrow stream.

        It starts from a fresh list's resourceVersion, so a (re)start does not replay old Events (the
        kubelet posts again on its next attempt), and again after a 410. Every request has a client-side
        timeout, so a half-open connection ends in a retry instead of a silent stall.
        """
        selector = "reason=FailedMount,involvedObject.kind=Pod"
        version: str | None = None
        while not stop.is_set():
            w = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
            try:
                if version is None:
                    version = self._events_version(namespace, selector, client_timeout)
                if namespace is None:
                    lister: Callable[..., Any] = self.core.list_event_for_all_namespaces
                    args: tuple[Any, ...] = ()
                else:
                    lister, args = self.core.list_namespaced_event, (namespace,)
                for item in w.stream(  # type: ignore[no-untyped-call]
                    lister,
                    *args,
                    field_selector=selector,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=server_timeout,
                    _request_timeout=client_timeout,
                ):
                    if stop.is_set():
                        break
                    obj = item.get("raw_object") or {}
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if item.get("type") in ("ADDED", "MODIFIED"):
                        on_event(obj)
            except ApiException as e:
                if e.status == 410:  # our resourceVersion is too old: list again, from now on
                    version = None
                else:
                    log.warning("FailedMount watch: %s; retrying", api_message(e))
                    stop.wait(retry_seconds)
            except Exception as e:  # network trouble, a client timeout: retry, never give up the watch
                log.warning("FailedMount watch: %s: %s; retrying", type(e).__name__, e)
                stop.wait(retry_seconds)
            finally:
                w.stop()  # type: ignore[no-untyped-call]

    def _events_version(self, namespace: str | None, selector: str, timeout: float) -> str:
        """The resourceVersion of a fresh (one-item) list of the Events the watch selects."""
        if namespace is None:
            resp = self.core.list_event_for_all_namespaces(
                field_selector=selector, limit=1, _request_timeout=timeout
            )
        else:
            resp = self.core.list_namespaced_event(
                namespace, field_selector=selector, limit=1, _request_timeout=timeout
            )
        meta = resp.metadata
        if meta is None or not meta.resource_version:
            raise RuntimeError("the Event list has no resourceVersion")
        return str(meta.resource_version)

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
