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
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

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
# Lists come in pages of this many objects: thousands of pods are never one answer held whole.
LIST_PAGE = 500
# Where each kind of child is created: (API path prefix, plural).
COLLECTIONS: dict[str, tuple[str, str]] = {
    "Job": ("/apis/batch/v1", "jobs"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims"),
    "Secret": ("/api/v1", "secrets"),
    "Service": ("/api/v1", "services"),
    "DaemonSet": ("/apis/apps/v1", "daemonsets"),
    "Pod": ("/api/v1", "pods"),
    "Workload": ("/apis/scheduling.k8s.io/v1beta1", "workloads"),
    "PodGroup": ("/apis/scheduling.k8s.io/v1beta1", "podgroups"),
}
JSON = "application/json"
# Discovery of the gang mechanisms (decide/gang.py): the Workload API's group version, and Kueue's group.
WORKLOAD_API = "/apis/scheduling.k8s.io/v1beta1"
KUEUE_API = "/apis/kueue.x-k8s.io"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class KubeClient(Protocol):
    """What the syncs ask of the API (besides kopf's watches): `Kube` below; in unit tests, a recording
    stand-in (tests/recording_kube.py) that mypy holds to this same protocol."""

    async def create(self, manifest: dict[str, Any]) -> bool: ...
    async def post_event(self, manifest: dict[str, Any]) -> None: ...
    async def delete(self, kind: str, namespace: str, name: str, foreground: bool = False) -> None: ...
    async def patch_json(self, kind: str, namespace: str, name: str, ops: list[dict[str, Any]]) -> bool: ...
    async def patch_custom(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None: ...
    async def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None: ...
    async def delete_custom(self, plural: str, namespace: str, name: str) -> None: ...
    async def label_pod(self, namespace: str, name: str, labels: dict[str, str]) -> None: ...
    async def exists(self, kind: str, namespace: str, name: str) -> bool: ...
    async def patch_batch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...
    async def controller_uid(self, kind: str, namespace: str, name: str) -> str | None: ...
    async def secret_exists(self, namespace: str, name: str) -> bool: ...
    async def read_pod_group(self, namespace: str, name: str) -> dict[str, Any] | None: ...


class Kube(KubeClient):
    """Thin async wrapper over the kubernetes client's ApiClient: its host, auth, TLS, User-Agent and
    connection pool, but none of its generated API classes. In kubernetes 37 those import a pydantic model
    per API type on first use (CoreV1Api alone: 270 modules, 21 MB of the idle operator's RSS), validate
    request bodies into the models and parse replies back (a twentieth of the CPU at 2000 jobs, in
    threads that hold the GIL the event loop needs). The operator reads only what it asks for, as JSON."""

    def __init__(self, api_client: kubernetes.client.ApiClient | None = None) -> None:
        self.api = api_client or kubernetes.client.ApiClient()

    @staticmethod
    def load(connections: int) -> Kube:
        """The client of the operator's configuration, keeping up to `connections` open."""
        try:
            kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
        except kubernetes.config.ConfigException:
            kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
        config = kubernetes.client.Configuration.get_default_copy()
        # With fewer pooled connections than requests at once (urllib3's default is 10), bursts of jobs
        # discard connections and pay new TLS handshakes.
        config.connection_pool_maxsize = connections
        return Kube(kubernetes.client.ApiClient(config))

    async def _call(
        self, fn: Callable[..., Any], *args: Any, ok: tuple[int, ...] = (), **kwargs: Any
    ) -> bool:
        """Run one client call in a worker thread; False when it failed with a status in `ok` (e.g. 404
        on delete), True when it succeeded."""
        try:
            await asyncio.to_thread(fn, *args, **kwargs)
            return True
        except ApiException as e:
            if e.status in ok:
                return False
            API_ERRORS.labels(str(e.status)).inc()
            raise

    def _open(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = JSON,
        query: list[tuple[str, Any]] | None = None,
        accept: str = JSON,
        timeout: Any = REQUEST_TIMEOUT,
    ) -> Any:
        """Send one request; the response, unread (its `.response` is urllib3's, for streaming). Non-2xx
        raises ApiException, as the generated methods do."""
        headers = {"Accept": accept}
        if body is not None:
            headers["Content-Type"] = content_type
        request = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request, _request_timeout=timeout)
        if not 200 <= response.status <= 299:
            response.read()  # type: ignore[no-untyped-call]
            raise ApiException.from_response(http_resp=response, body=None, data=None)
        return response

    def _request(
        self, method: str, path: str, body: Any = None, content_type: str = JSON, **kw: Any
    ) -> bytes:
        """One request, read to the end (so the pooled connection stays usable); the body of the reply."""
        data: bytes = self._open(method, path, body, content_type, **kw).read()
        return data

    async def create(self, manifest: dict[str, Any]) -> bool:
        """Create the object; False when one of that name already exists."""
        prefix, plural = COLLECTIONS[manifest["kind"]]
        path = f"{prefix}/namespaces/{quote(manifest['metadata']['namespace'], safe='')}/{plural}"
        return await self._call(self._request, "POST", path, manifest, ok=(409,))

    async def post_event(self, manifest: dict[str, Any]) -> None:
        """Create an Event (named by the apiserver from its generateName)."""
        path = collection_path("/api/v1", "events", manifest["metadata"]["namespace"])
        await self._call(self._request, "POST", path, manifest)

    async def delete(self, kind: str, namespace: str, name: str, foreground: bool = False) -> None:
        """Delete with its dependents; `foreground`: the object stays until they are all gone."""
        body = {"propagationPolicy": "Foreground" if foreground else "Background"}
        await self._call(self._request, "DELETE", _path(kind, namespace, name), body, ok=(404,))

    async def patch_json(self, kind: str, namespace: str, name: str, ops: list[dict[str, Any]]) -> bool:
        """Apply a JSON patch (RFC 6902, a "test" op may guard it); False when gone or the test failed."""
        path = _path(kind, namespace, name)
        return await self._call(self._request, "PATCH", path, ops, JSON_PATCH, ok=(404, 409, 422))

    async def patch_custom(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """Merge-patch one of our custom objects' metadata (the spec is the user's). 404: gone, fine."""
        path = _custom_path(plural, namespace, name)
        await self._call(self._request, "PATCH", path, patch, MERGE_PATCH, ok=(404,))

    async def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Merge-patch the status subresource of one of our custom objects (404: it is gone, fine)."""
        path = _custom_path(plural, namespace, name) + "/status"
        await self._call(self._request, "PATCH", path, {"status": status}, MERGE_PATCH, ok=(404,))

    async def delete_custom(self, plural: str, namespace: str, name: str) -> None:
        path = _custom_path(plural, namespace, name)
        await self._call(self._request, "DELETE", path, ok=(404,))

    async def label_pod(self, namespace: str, name: str, labels: dict[str, str]) -> None:
        """Merge labels into a pod (404: it is gone, fine)."""
        body = {"metadata": {"labels": labels}}
        await self._call(self._request, "PATCH", _path("Pod", namespace, name), body, MERGE_PATCH, ok=(404,))

    async def patch_batch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        await self._call(self._request, "PATCH", _path("Job", namespace, name), patch, MERGE_PATCH, ok=(404,))

    async def controller_uid(self, kind: str, namespace: str, name: str) -> str | None:
        """The uid of the controller of an existing child (metadata only); None: it has none, or is gone."""
        meta = await self._metadata(kind, namespace, name)
        return controller_uid(meta) if meta is not None else None

    async def exists(self, kind: str, namespace: str, name: str) -> bool:
        """Whether an object of ours exists (a metadata-only read)."""
        return await self._metadata(kind, namespace, name) is not None

    async def _metadata(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            data = await asyncio.to_thread(
                self._request, "GET", _path(kind, namespace, name), accept=PARTIAL_METADATA
            )
        except ApiException as e:
            if e.status == 404:
                return None
            raise
        if b'"PartialObjectMetadata"' not in data:
            raise RuntimeError("the apiserver did not honour a metadata-only request")
        meta: dict[str, Any] = json.loads(data).get("metadata") or {}
        return meta

    async def secret_exists(self, namespace: str, name: str) -> bool:
        """Whether a Secret exists, asked without reading it: a server-side dry run of creating an empty
        Secret of that name answers 409 AlreadyExists when it exists (nothing is stored either way). So
        the operator needs no `get` on Secrets (which would let it read any), only `create`.

        When admission refuses the dry run (a full Secret quota, a policy), existence cannot be told:
        True, and the job's pods will say whether the Secret is missing.
        """
        body: Any = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque"}
        path = f"/api/v1/namespaces/{quote(namespace, safe='')}/secrets"
        try:
            await self._call(self._request, "POST", path, body, query=[("dryRun", "All")])
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
        try:
            data = await asyncio.to_thread(self._request, "GET", _path("PodGroup", namespace, name))
            result: dict[str, Any] = json.loads(data)
            return result
        except ApiException as e:
            if e.status == 404:
                return None
            API_ERRORS.labels(str(e.status)).inc()
            raise

    async def selection_refused(self, plural: str, namespace: str | None, field_selector: str) -> str | None:
        """Why the apiserver refuses to list our `plural` by `field_selector` (400: its CRD does not declare
        the field selectable), or None when it lists."""
        scope = f"/namespaces/{quote(namespace, safe='')}" if namespace else ""
        query = [("fieldSelector", field_selector), ("limit", 1)]
        try:
            await asyncio.to_thread(
                self._request, "GET", f"/apis/{GROUP}/{VERSION}{scope}/{plural}", query=query
            )
        except ApiException as e:
            if e.status != 400:
                raise
            return api_message(e)
        return None

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
        far more. It starts from now (a fresh list's resourceVersion), so a (re)start does not replay old
        Events (a kubelet or controller posts again on its next attempt), and again after a 410.
        """

        def posted(kind: str, obj: dict[str, Any]) -> None:
            if kind in ("ADDED", "MODIFIED"):
                on_event(obj)

        self.list_and_watch(
            collection_path("/api/v1", "events", namespace),
            ("fieldSelector", field_selector),
            None,
            posted,
            stop,
            what=f"Events ({field_selector})",
            server_timeout=server_timeout,
            client_timeout=client_timeout,
            retry_seconds=retry_seconds,
        )

    def list_and_watch(
        self,
        path: str,
        selector: tuple[str, str],
        on_list: Callable[[list[dict[str, Any]]], None] | None,
        on_event: Callable[[str, dict[str, Any]], None],
        stop: threading.Event,
        what: str = "",
        server_timeout: int = WATCH_SECONDS,
        client_timeout: float = WATCH_SECONDS + 15,
        retry_seconds: float = 5.0,
    ) -> None:
        """Blocking, until `stop`: list the collection at `path` by `selector` (("labelSelector", ...) or
        ("fieldSelector", ...)), hand every object to `on_list` at once, then stream its changes to
        `on_event` (ADDED, MODIFIED, DELETED) from the list's resourceVersion, with bookmarks; list again
        whenever the apiserver says that version is gone (410), so nothing between is missed. `on_list`
        None starts from now: the list only gives the version (Events: old ones are not wanted).

        Our own rather than kopf's for the busiest children (reconcile/own_watches.py): kopf's machinery
        around each watch event cost more than the operator's syncs (py-spy in make bench); and rather than
        the client's Watch, which neither lists in pages nor relists on 410. Every request has a
        client-side timeout, so a half-open connection ends in a retry instead of a silent stall."""
        version: str | None = None
        what = what or f"{path} ({selector[1]})"  # in the log lines
        while not stop.is_set():
            response: Any = None
            try:
                if version is None:
                    version = self._list(path, selector, on_list, client_timeout)
                query = [
                    selector,
                    ("watch", "true"),
                    ("resourceVersion", version),
                    ("allowWatchBookmarks", "true"),
                    ("timeoutSeconds", server_timeout),
                ]
                response = self._open("GET", path, query=query, timeout=client_timeout)
                for line in iter_resp_lines(response.response):  # type: ignore[no-untyped-call]
                    if stop.is_set():
                        break
                    if not line:
                        continue
                    event = json.loads(line)
                    kind, obj = event.get("type"), event.get("object") or {}
                    if kind == "ERROR":
                        if obj.get("code") == 410:  # our resourceVersion is too old: list again
                            version = None
                            break
                        raise RuntimeError(f"watch error {obj.get('code')}: {obj.get('message')}")
                    version = (obj.get("metadata") or {}).get("resourceVersion") or version
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        on_event(kind, obj)
            except ApiException as e:
                if e.status == 410:
                    version = None
                else:
                    log.warning("watch of %s: %s; retrying", what, api_message(e))
                    stop.wait(retry_seconds)
            except Exception as e:  # network trouble, a client timeout: retry, never give up the watch
                log.warning("watch of %s: %s: %s; retrying", what, type(e).__name__, e)
                stop.wait(retry_seconds)
            finally:
                if response is not None:
                    response.response.release_conn()

    def _list(
        self,
        path: str,
        selector: tuple[str, str],
        on_list: Callable[[list[dict[str, Any]]], None] | None,
        timeout: float,
    ) -> str:
        """List in pages (all of them to `on_list`, or one object when it is None); the list's version."""
        items: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            query: list[tuple[str, Any]] = [selector, ("limit", 1 if on_list is None else LIST_PAGE)]
            if token:
                query.append(("continue", token))
            listed = json.loads(self._request("GET", path, query=query, timeout=timeout))
            meta = listed.get("metadata") or {}
            items.extend(listed.get("items") or [])
            token = meta.get("continue")
            if on_list is None or not token:
                break
        version = meta.get("resourceVersion")
        if not version:
            raise RuntimeError(f"the list of {path} has no resourceVersion")
        if on_list is not None:
            on_list(items)
        return str(version)


def collection_path(prefix: str, plural: str, namespace: str | None) -> str:
    """A collection's path, in one namespace or in all."""
    if namespace is None:
        return f"{prefix}/{plural}"
    return f"{prefix}/namespaces/{quote(namespace, safe='')}/{plural}"


def _path(kind: str, namespace: str, name: str) -> str:
    prefix, plural = COLLECTIONS[kind]
    return f"{prefix}/namespaces/{quote(namespace, safe='')}/{plural}/{quote(name, safe='')}"


def _custom_path(plural: str, namespace: str, name: str) -> str:
    ns, obj = quote(namespace, safe=""), quote(name, safe="")
    return f"/apis/{GROUP}/{VERSION}/namespaces/{ns}/{plural}/{obj}"
