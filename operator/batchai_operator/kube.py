"""The operator's one door to the Kubernetes API (besides kopf's own watches).

Uses the official `kubernetes` client in worker threads: kopf brings no client of its own, and the
synchronous client is the best-kept one. Every call has a client-side timeout and is idempotent: create
treats 409 as done (reconcile/children.py checks who owns what exists), delete treats 404 as done.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote

import kubernetes
import kubernetes.watch
from kubernetes.client.exceptions import ApiException

from .decide.gang import ServedApis, workload_api_served
from .kube_errors import api_message
from .metrics import API_ERRORS
from .names import GROUP, VERSION
from .observe.views import controller_uid

log = logging.getLogger(__name__)
# Ask the apiserver for an object's metadata only (used for Secrets: their values never reach us).
PARTIAL_METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
# (connect, read) seconds for every request: a hung connection must not hold a sync forever.
REQUEST_TIMEOUT = (10, 30)
# Watches: the server ends each one after WATCH_SECONDS; the client gives up a silent one a bit later.
WATCH_SECONDS = 60
# Where each kind of child is created: (API path prefix, plural).
COLLECTIONS: dict[str, tuple[str, str]] = {
    "Job": ("/apis/batch/v1", "jobs"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims"),
    "Secret": ("/api/v1", "secrets"),
    "Service": ("/api/v1", "services"),
    "DaemonSet": ("/apis/apps/v1", "daemonsets"),
    "Workload": ("/apis/scheduling.k8s.io/v1beta1", "workloads"),
    "PodGroup": ("/apis/scheduling.k8s.io/v1beta1", "podgroups"),
}
JSON = "application/json"
# Discovery of the gang mechanisms (decide/gang.py): the Workload API's group version, and Kueue's group.
WORKLOAD_API = "/apis/scheduling.k8s.io/v1beta1"
KUEUE_API = "/apis/kueue.x-k8s.io"
MERGE_PATCH = "application/merge-patch+json"


class KubeClient(Protocol):
    """What the syncs ask of the API (besides kopf's watches): `Kube` below; in unit tests, a recording
    stand-in (tests/recording_kube.py) that mypy holds to this same protocol."""

    async def create(self, manifest: dict[str, Any]) -> bool: ...
    async def delete(self, kind: str, namespace: str, name: str, foreground: bool = False) -> None: ...
    async def patch_json(self, kind: str, namespace: str, name: str, ops: list[dict[str, Any]]) -> bool: ...
    async def patch_custom(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None: ...
    async def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None: ...
    async def delete_custom(self, plural: str, namespace: str, name: str) -> None: ...
    async def label_pod(self, namespace: str, name: str, labels: dict[str, str]) -> None: ...
    async def patch_batch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...
    async def controller_uid(self, kind: str, namespace: str, name: str) -> str | None: ...
    async def secret_exists(self, namespace: str, name: str) -> bool: ...
    async def read_pod_group(self, namespace: str, name: str) -> dict[str, Any] | None: ...


class Kube(KubeClient):
    """Thin async wrapper over the kubernetes client."""

    def __init__(self, api_client: kubernetes.client.ApiClient | None = None) -> None:
        self.api = api_client or kubernetes.client.ApiClient()
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.batch = kubernetes.client.BatchV1Api(self.api)
        self.apps = kubernetes.client.AppsV1Api(self.api)
        self.custom = kubernetes.client.CustomObjectsApi(self.api)
        self.scheduling = kubernetes.client.SchedulingV1beta1Api(self.api)

    @staticmethod
    def load() -> Kube:
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        config = kubernetes.client.Configuration.get_default_copy()
        # As many pooled connections as the threads the calls run in (reconcile/lifecycle.py): with the
        # default 10, bursts of jobs discard connections and pay new TLS handshakes.
        config.connection_pool_maxsize = 32
        return Kube(kubernetes.client.ApiClient(config))

    async def _call(
        self, fn: Callable[..., Any], *args: Any, ok: tuple[int, ...] = (), **kwargs: Any
    ) -> bool:
        """Run one client call in a worker thread with the request timeout; False when it failed with a
        status in `ok` (e.g. 404 on delete), True when it succeeded."""
        try:
            await asyncio.to_thread(fn, *args, _request_timeout=REQUEST_TIMEOUT, **kwargs)
            return True
        except ApiException as e:
            if e.status in ok:
                return False
            API_ERRORS.labels(str(e.status)).inc()
            raise

    def _write(self, method: str, path: str, body: Any, content_type: str, **_: Any) -> None:
        """One write whose reply is not read, through the client's ApiClient (its host, auth, TLS,
        User-Agent and connection pool) but not through the generated method: in kubernetes 37 those
        validate the body into the client's pydantic models and parse the reply back into them, about a
        twentieth of the operator's CPU at 2000 jobs (in threads that hold the GIL the event loop needs)
        and 8 MB of validators. Non-2xx raises ApiException, as the generated methods do."""
        request = self.api.param_serialize(
            method=method,
            resource_path=path,
            header_params={"Content-Type": content_type, "Accept": JSON},
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request, _request_timeout=REQUEST_TIMEOUT)
        response.read()  # type: ignore[no-untyped-call]  # to the end: the pooled connection stays usable
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=None, data=None)

    async def create(self, manifest: dict[str, Any]) -> bool:
        """Create the object; False when one of that name already exists."""
        prefix, plural = COLLECTIONS[manifest["kind"]]
        path = f"{prefix}/namespaces/{quote(manifest['metadata']['namespace'], safe='')}/{plural}"
        return await self._call(self._write, "POST", path, manifest, JSON, ok=(409,))

    async def delete(self, kind: str, namespace: str, name: str, foreground: bool = False) -> None:
        """Delete with its dependents; `foreground`: the object stays until they are all gone."""
        deleters: dict[str, Callable[..., Any]] = {
            "Job": self.batch.delete_namespaced_job,
            "DaemonSet": self.apps.delete_namespaced_daemon_set,
        }
        policy = "Foreground" if foreground else "Background"
        await self._call(deleters[kind], name, namespace, propagation_policy=policy, ok=(404,))

    async def patch_json(self, kind: str, namespace: str, name: str, ops: list[dict[str, Any]]) -> bool:
        """Apply a JSON patch (RFC 6902, a "test" op may guard it); False when gone or the test failed."""
        fn: Any = {"DaemonSet": self.apps.patch_namespaced_daemon_set}[kind]
        return await self._call(fn, name, namespace, ops, ok=(404, 409, 422))

    async def patch_custom(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """Merge-patch one of our custom objects' metadata (the spec is the user's). 404: gone, fine."""
        fn = self.custom.patch_namespaced_custom_object
        await self._call(fn, GROUP, VERSION, namespace, plural, name, patch, ok=(404,))

    async def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge-patch the status subresource of one of our custom objects (404: it is gone, fine)."""
        ns, obj = quote(namespace, safe=""), quote(name, safe="")
        path = f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{plural}/{obj}/status"
        await self._call(self._write, "PATCH", path, {"status": status}, MERGE_PATCH, ok=(404,))

    async def delete_custom(self, plural: str, namespace: str, name: str) -> None:
        fn = self.custom.delete_namespaced_custom_object
        await self._call(fn, GROUP, VERSION, namespace, plural, name, ok=(404,))

    async def label_pod(self, namespace: str, name: str, labels: dict[str, str]) -> None:
        """Merge labels into a pod (404: it is gone, fine)."""
        await self._call(
            self.core.patch_namespaced_pod, name, namespace, {"metadata": {"labels": labels}}, ok=(404,)
        )

    async def patch_batch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        await self._call(self.batch.patch_namespaced_job, name, namespace, patch, ok=(404,))

    async def controller_uid(self, kind: str, namespace: str, name: str) -> str | None:
        """The uid of the controller of an existing child (metadata only); None: it has none, or is gone."""
        readers: dict[str, Callable[..., Any]] = {
            "Job": self.batch.read_namespaced_job,
            "ConfigMap": self.core.read_namespaced_config_map,
            "PersistentVolumeClaim": self.core.read_namespaced_persistent_volume_claim,
            "Service": self.core.read_namespaced_service,
            "DaemonSet": self.apps.read_namespaced_daemon_set,
            "Workload": self.scheduling.read_namespaced_workload,
            "PodGroup": self.scheduling.read_namespaced_pod_group,
        }
        try:
            data = await asyncio.to_thread(self._metadata, readers[kind], namespace, name)
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        return controller_uid(data.get("metadata") or {})

    async def secret_exists(self, namespace: str, name: str) -> bool:
        """Whether a Secret exists, asked without reading it: a server-side dry run of creating an empty
        Secret of that name answers 409 AlreadyExists when it exists (nothing is stored either way). So
        the operator needs no `get` on Secrets (which would let it read any), only `create`.

        When admission refuses the dry run (a full Secret quota, a policy), existence cannot be told:
        True, and the job's pods will say whether the Secret is missing.
        """
        body: Any = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque"}
        try:
            await self._call(self.core.create_namespaced_secret, namespace, body, dry_run="All")
            return False
        except ApiException as e:
            if e.status == 409:
                return True
            if e.status in (400, 403, 422):
                log.warning("cannot tell whether Secret %s/%s exists: %s", namespace, name, api_message(e))
                return True
            raise

    async def read_pod_group(self, namespace: str, name: str) -> dict[str, Any] | None:
        """A PodGroup as the apiserver sends it (its status says why its gang waits); None when gone."""

        def read() -> dict[str, Any]:
            resp: Any = self.scheduling.read_namespaced_pod_group(
                name, namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            )
            result: dict[str, Any] = json.loads(resp.read())
            return result

        try:
            return await asyncio.to_thread(read)
        except ApiException as e:
            if e.status == 404:
                return None
            API_ERRORS.labels(str(e.status)).inc()
            raise

    async def served_apis(self) -> ServedApis:
        """What the cluster serves of the gang mechanisms (API discovery, which needs no RBAC grant)."""
        workload, kueue = await asyncio.gather(
            asyncio.to_thread(self._discover, WORKLOAD_API), asyncio.to_thread(self._discover, KUEUE_API)
        )
        names = [r.get("name", "") for r in workload.get("resources") or []] if workload is not None else None
        return ServedApis(workload=workload_api_served(names), kueue=kueue is not None)

    def _discover(self, path: str) -> dict[str, Any] | None:
        """A discovery document, or None when the group or version is not served (404)."""
        request = self.api.param_serialize(
            method="GET", resource_path=path, header_params={"Accept": JSON}, auth_settings=["BearerToken"]
        )
        response = self.api.call_api(*request, _request_timeout=REQUEST_TIMEOUT)
        body = response.read()  # type: ignore[no-untyped-call]
        if response.status == 404:
            return None
        if not 200 <= response.status <= 299:
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        document: dict[str, Any] = json.loads(body)
        return document

    def _metadata(self, read: Callable[..., Any], namespace: str, name: str) -> dict[str, Any]:
        resp: Any = read(
            name,
            namespace,
            _headers={"Accept": PARTIAL_METADATA},
            _preload_content=False,
            _request_timeout=REQUEST_TIMEOUT,
        )
        # Read the (metadata-only) body to the end so the pooled connection stays usable.
        data: bytes = resp.read()
        if b'"PartialObjectMetadata"' not in data:
            raise RuntimeError("the apiserver did not honour a metadata-only request")
        result: dict[str, Any] = json.loads(data)
        return result

    def watch_events(
        self,
        field_selector: str,
        on_event: Callable[[dict[str, Any]], None],
        stop: threading.Event,
        namespace: str | None = None,
        server_timeout: int = WATCH_SECONDS,
        client_timeout: float = WATCH_SECONDS + 15,
        retry_seconds: float = 5.0,
    ) -> None:
        """Blocking: stream the Events matching a field selector (in `namespace`, or all) until `stop`.

        A field-selected watch of our own, not kopf's: kopf cannot filter by field, and watching every
        Event of a busy cluster to find rare ones (reconcile/trainingjob.py's EVENT_WATCHES) would cost
        far more. It
        starts from a fresh list's resourceVersion, so a (re)start does not replay old Events (a kubelet or
        controller posts again on its next attempt), and again after a 410. Every request has a client-side
        timeout, so a half-open connection ends in a retry instead of a silent stall.
        """
        version: str | None = None
        if namespace is None:
            lister: Callable[..., Any] = self.core.list_event_for_all_namespaces
            args: tuple[Any, ...] = ()
        else:
            lister, args = self.core.list_namespaced_event, (namespace,)
        while not stop.is_set():
            w = kubernetes.watch.Watch()  # type: ignore[no-untyped-call]
            try:
                if version is None:
                    listed = lister(
                        *args, field_selector=field_selector, limit=1, _request_timeout=client_timeout
                    )
                    if listed.metadata is None or not listed.metadata.resource_version:
                        raise RuntimeError("the Event list has no resourceVersion")
                    version = str(listed.metadata.resource_version)
                for item in w.stream(  # type: ignore[no-untyped-call]
                    lister,
                    *args,
                    field_selector=field_selector,
                    resource_version=version,
                    allow_watch_bookmarks=True,
                    timeout_seconds=server_timeout,
                    _request_timeout=client_timeout,
                ):
                    if stop.is_set():
                        break
                    obj = self.api.sanitize_for_serialization(item["object"])  # type: ignore[no-untyped-call]
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if item.get("type") in ("ADDED", "MODIFIED"):
                        on_event(obj)
            except ApiException as e:
                if e.status == 410:  # our resourceVersion is too old: list again, from now on
                    version = None
                else:
                    log.warning("watch of Events (%s): %s; retrying", field_selector, api_message(e))
                    stop.wait(retry_seconds)
            except Exception as e:  # network trouble, a client timeout: retry, never give up the watch
                log.warning("watch of Events (%s): %s: %s; retrying", field_selector, type(e).__name__, e)
                stop.wait(retry_seconds)
            finally:
                w.stop()  # type: ignore[no-untyped-call]
