"""The CLI's Kubernetes access (kubeconfig, as kubectl): TrainingJobs, BatchAIClusters, workspaces
(namespaces), experiments (ConfigMaps), Secrets, pods, nodes and ResourceQuotas.

Every API failure becomes a CliError with one line: what was not found, not allowed, invalid (the
apiserver's own message, e.g. a CEL rule), or that the API server cannot be reached.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import urllib3
from kubernetes import client
from kubernetes import config as _config
from kubernetes import watch as _watch
from kubernetes.config.config_exception import ConfigException

from ..kube_errors import api_message
from ..names import CLUSTER_PLURAL as CLUSTERS
from ..names import GROUP, VERSION
from ..names import TRAININGJOB_PLURAL as JOBS
from ..storage.credentials import SecretRead
from .errors import CliError, NotFound
from .naming import is_named, kubernetes_name

FIELD_MANAGER = "kubectl-batchai"
MERGE_PATCH = "application/merge-patch+json"
T = TypeVar("T")
# The kubernetes package's config and watch modules are untyped; its API classes are strictly typed
# but return `object`. The CLI reads plain dicts, so it holds them as Any.
config: Any = _config
watch: Any = _watch


class CliKube:
    """Typed calls for the CLI, with one-line errors."""

    def __init__(self, context: str | None = None, namespace: str | None = None) -> None:
        try:
            config.load_kube_config(context=context)
            _, active = config.list_kube_config_contexts()
        except (ConfigException, FileNotFoundError, OSError) as exc:
            try:
                config.load_incluster_config()
                active = {}
            except ConfigException:
                raise CliError(
                    f"no Kubernetes configuration: {exc} (set KUBECONFIG or use --context)"
                ) from None
        if context:
            contexts, _ = config.list_kube_config_contexts()
            active = next((c for c in contexts if c.get("name") == context), active)
        self.namespace = namespace or (active or {}).get("context", {}).get("namespace") or "default"
        self.api: Any = client.ApiClient()
        self.custom: Any = client.CustomObjectsApi(self.api)
        self.core: Any = client.CoreV1Api(self.api)
        self.server = str(self.api.configuration.host)

    # ---- plumbing -----------------------------------------------------------------------------------

    def call(self, what: str, fn: Callable[[], T], verb: str = "get") -> T:
        """Run an API call; failures become a CliError naming `what`."""
        try:
            return fn()
        except client.ApiException as exc:
            if exc.status == 404:
                raise NotFound(f"{what} not found") from None
            if exc.status in (401, 403):
                raise CliError(f"not allowed to {verb} {what}: {api_message(exc)}") from None
            if exc.status == 409:
                raise CliError(f"{what} already exists") from None
            raise CliError(f"cannot {verb} {what}: {api_message(exc)}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise CliError(f"cannot reach the Kubernetes API server at {self.server}: {reason}") from None

    # ---- custom resources (TrainingJob, BatchAICluster) --------------------------------------------

    def _get(self, plural: str, kind: str, ns: str, name: str) -> dict[str, Any]:
        return self.call(
            f"{kind} {name} in namespace {ns}",
            lambda: self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name),
        )

    def _list(self, plural: str, kind: str, ns: str | None, selector: str) -> list[dict[str, Any]]:
        what = f"{kind}s in namespace {ns}" if ns else f"{kind}s in all namespaces"
        if ns:
            out = self.call(
                what,
                lambda: self.custom.list_namespaced_custom_object(
                    GROUP, VERSION, ns, plural, label_selector=selector
                ),
                verb="list",
            )
        else:
            out = self.call(
                what,
                lambda: self.custom.list_cluster_custom_object(
                    GROUP, VERSION, plural, label_selector=selector
                ),
                verb="list",
            )
        return list(out.get("items") or [])

    def _create(self, plural: str, kind: str, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.call(
            f"{kind} {body['metadata']['name']} in namespace {ns}",
            lambda: self.custom.create_namespaced_custom_object(
                GROUP, VERSION, ns, plural, body, field_manager=FIELD_MANAGER
            ),
            verb="create",
        )

    def _patch(self, plural: str, kind: str, ns: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.call(
            f"{kind} {name} in namespace {ns}",
            lambda: self.custom.patch_namespaced_custom_object(
                GROUP,
                VERSION,
                ns,
                plural,
                name,
                patch,
                field_manager=FIELD_MANAGER,
                _content_type=MERGE_PATCH,
            ),
            verb="update",
        )

    def get_trainingjob(self, ns: str, name: str) -> dict[str, Any]:
        return self._get(JOBS, "TrainingJob", ns, name)

    def list_trainingjobs(self, ns: str | None, selector: str = "") -> list[dict[str, Any]]:
        return self._list(JOBS, "TrainingJob", ns, selector)

    def experiment_trainingjobs(self, ns: str | None, experiment: str) -> list[dict[str, Any]]:
        """The TrainingJobs of an experiment (spec.experiment; TrainingJobs carry no experiment label)."""
        return [
            j
            for j in self.list_trainingjobs(ns)
            if (j.get("spec") or {}).get("experiment", "default") == experiment
        ]

    def create_trainingjob(self, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._create(JOBS, "TrainingJob", ns, body)

    def patch_trainingjob(self, ns: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self._patch(JOBS, "TrainingJob", ns, name, patch)

    def _delete(self, plural: str, kind: str, ns: str, name: str) -> None:
        self.call(
            f"{kind} {name} in namespace {ns}",
            lambda: self.custom.delete_namespaced_custom_object(
                GROUP, VERSION, ns, plural, name, propagation_policy="Background"
            ),
            verb="delete",
        )

    def delete_trainingjob(self, ns: str, name: str) -> None:
        self._delete(JOBS, "TrainingJob", ns, name)

    def watch_trainingjob(
        self, ns: str, name: str, resource_version: str, seconds: int
    ) -> Iterator[dict[str, Any]]:
        """Watch events ({type, object}) of one TrainingJob for up to `seconds`. Ends early, without an
        error, when the watch expires (410): the caller reads the object again."""
        what = f"TrainingJob {name} in namespace {ns}"
        stream = watch.Watch().stream(
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            JOBS,
            field_selector=f"metadata.name={name}",
            resource_version=resource_version,
            timeout_seconds=max(1, seconds),
        )
        while True:
            try:
                event = self.call(what, lambda: next(stream, None))
            except CliError as exc:
                if "Expired" in str(exc) or "too old resource version" in str(exc):
                    return
                raise
            if event is None:
                return
            yield event

    def get_cluster(self, ns: str, name: str) -> dict[str, Any]:
        return self._get(CLUSTERS, "BatchAICluster", ns, name)

    def resolve(self, kind: str, ns: str, name: str) -> dict[str, Any]:
        """The TrainingJob or BatchAICluster a Batch AI name (`cntk_python_1`) or Kubernetes name names:
        the derived Kubernetes name first (one GET), else the one whose annotation holds the name."""
        plural = JOBS if kind == "TrainingJob" else CLUSTERS
        derived = kubernetes_name(kind, name)
        try:
            found: dict[str, Any] = self.call(
                f"{kind} {name}",
                lambda: self.custom.get_namespaced_custom_object(GROUP, VERSION, ns, plural, derived),
            )
            if is_named(found, name):
                return found
        except NotFound:
            pass
        for obj in self._list(plural, kind, ns, ""):
            if is_named(obj, name):
                return obj
        raise NotFound(f"{kind} {name} not found in workspace {ns}")

    def resolve_trainingjob(self, ns: str, name: str) -> dict[str, Any]:
        return self.resolve("TrainingJob", ns, name)

    def resolve_cluster(self, ns: str, name: str) -> dict[str, Any]:
        return self.resolve("BatchAICluster", ns, name)

    def delete_cluster(self, ns: str, name: str) -> None:
        self._delete(CLUSTERS, "BatchAICluster", ns, name)

    def find_cluster(self, ns: str, name: str) -> dict[str, Any] | None:
        """The cluster, or None when it does not exist (a job may name a cluster not created yet)."""
        try:
            found: dict[str, Any] = self.custom.get_namespaced_custom_object(
                GROUP, VERSION, ns, CLUSTERS, name
            )
            return found
        except client.ApiException as exc:
            if exc.status in (403, 404):
                return None
            raise CliError(
                f"cannot get BatchAICluster {name} in namespace {ns}: {api_message(exc)}"
            ) from None

    def list_clusters(self, ns: str | None) -> list[dict[str, Any]]:
        return self._list(CLUSTERS, "BatchAICluster", ns, "")

    def create_cluster(self, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._create(CLUSTERS, "BatchAICluster", ns, body)

    def patch_cluster(self, ns: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self._patch(CLUSTERS, "BatchAICluster", ns, name, patch)

    # ---- Secrets, pods, nodes -----------------------------------------------------------------------

    def read_secret(self, ns: str, name: str) -> SecretRead:
        """A Secret's decoded data; when it cannot be read, why (missing, or RBAC forbids it)."""
        try:
            secret = self.core.read_namespaced_secret(name, ns)
        except client.ApiException as exc:
            if exc.status == 404:
                return SecretRead(None, f"Secret {ns}/{name} does not exist")
            if exc.status in (401, 403):
                return SecretRead(None, f"you may not read Secret {ns}/{name}")
            raise CliError(f"cannot read Secret {ns}/{name}: {api_message(exc)}") from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise CliError(f"cannot reach the Kubernetes API server at {self.server}: {exc}") from None
        data = {k: base64.b64decode(v).decode(errors="replace") for k, v in (secret.data or {}).items()}
        return SecretRead(data)

    def secret_exists(self, ns: str, name: str) -> bool | None:
        """True/False, or None when the caller may not look."""
        try:
            self.core.read_namespaced_secret(name, ns)
            return True
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            if exc.status in (401, 403):
                return None
            raise CliError(f"cannot read Secret {ns}/{name}: {api_message(exc)}") from None

    def apply_secret(self, ns: str, body: dict[str, Any]) -> None:
        """Create the Secret, or replace its data when it exists (server-side apply, owned by the CLI)."""
        name = body["metadata"]["name"]
        body = {**body, "metadata": {**body["metadata"], "namespace": ns}}
        self.call(
            f"Secret {name} in namespace {ns}",
            lambda: self.core.patch_namespaced_secret(
                name,
                ns,
                body,
                field_manager=FIELD_MANAGER,
                force=True,
                _content_type="application/apply-patch+yaml",
            ),
            verb="create",
        )

    def own_secret(self, ns: str, name: str, owner: dict[str, Any]) -> None:
        """Make the Secret owned by `owner`, so it is garbage-collected with it."""
        self.call(
            f"Secret {name} in namespace {ns}",
            lambda: self.core.patch_namespaced_secret(name, ns, {"metadata": {"ownerReferences": [owner]}}),
            verb="update",
        )

    def delete_secrets(self, ns: str, selector: str) -> list[str]:
        secrets = self.call(
            f"Secrets in namespace {ns}",
            lambda: self.core.list_namespaced_secret(ns, label_selector=selector),
            verb="list",
        )
        names = [s.metadata.name for s in secrets.items]
        for name in names:
            try:
                self.core.delete_namespaced_secret(name, ns)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise CliError(f"cannot delete Secret {ns}/{name}: {api_message(exc)}") from None
        return names

    def list_pods(self, ns: str, selector: str) -> list[Any]:
        out = self.call(
            f"pods in namespace {ns}",
            lambda: self.core.list_namespaced_pod(ns, label_selector=selector),
            verb="list",
        )
        return list(out.items)

    def list_batch_jobs(self, ns: str, selector: str) -> list[dict[str, Any]]:
        """batch/v1 Jobs (a TrainingJob's child), as the API's JSON."""
        out = self.call(
            f"Jobs in namespace {ns}",
            lambda: client.BatchV1Api(self.api).list_namespaced_job(ns, label_selector=selector),
            verb="list",
        )
        return [self.api.sanitize_for_serialization(j) for j in out.items]

    def list_namespaces(self, selector: str = "") -> list[Any]:
        return list(
            self.call(
                "namespaces", lambda: self.core.list_namespace(label_selector=selector), verb="list"
            ).items
        )

    def read_namespace(self, name: str) -> dict[str, Any]:
        ns = self.call(f"workspace (namespace) {name}", lambda: self.core.read_namespace(name))
        return dict(self.api.sanitize_for_serialization(ns))

    def create_namespace(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        ns = self.call(
            f"workspace (namespace) {name}",
            lambda: self.core.create_namespace(body, field_manager=FIELD_MANAGER),
            verb="create",
        )
        return dict(self.api.sanitize_for_serialization(ns))

    def delete_namespace(self, name: str) -> None:
        self.call(f"workspace (namespace) {name}", lambda: self.core.delete_namespace(name), verb="delete")

    def config_maps(self, ns: str, selector: str) -> list[dict[str, Any]]:
        out = self.call(
            f"ConfigMaps in namespace {ns}",
            lambda: self.core.list_namespaced_config_map(ns, label_selector=selector),
            verb="list",
        )
        return [dict(self.api.sanitize_for_serialization(c)) for c in out.items]

    def create_config_map(self, ns: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        created = self.call(
            f"ConfigMap {name} in namespace {ns}",
            lambda: self.core.create_namespaced_config_map(ns, body, field_manager=FIELD_MANAGER),
            verb="create",
        )
        return dict(self.api.sanitize_for_serialization(created))

    def delete_config_map(self, ns: str, name: str) -> None:
        self.call(
            f"ConfigMap {name} in namespace {ns}",
            lambda: self.core.delete_namespaced_config_map(name, ns),
            verb="delete",
        )

    def list_nodes(self, selector: str = "") -> list[dict[str, Any]]:
        out = self.call("nodes", lambda: self.core.list_node(label_selector=selector), verb="list")
        return [dict(self.api.sanitize_for_serialization(n)) for n in out.items]

    def list_pods_dicts(self, ns: str | None, selector: str = "", field: str = "") -> list[dict[str, Any]]:
        """Pods as plain dicts: of one namespace, or of all (ns None)."""
        if ns:
            out = self.call(
                f"pods in namespace {ns}",
                lambda: self.core.list_namespaced_pod(ns, label_selector=selector, field_selector=field),
                verb="list",
            )
        else:
            out = self.call(
                "pods in all namespaces",
                lambda: self.core.list_pod_for_all_namespaces(label_selector=selector, field_selector=field),
                verb="list",
            )
        return [dict(self.api.sanitize_for_serialization(p)) for p in out.items]

    def resource_quotas(self, ns: str) -> list[dict[str, Any]]:
        out = self.call(
            f"ResourceQuotas in namespace {ns}",
            lambda: self.core.list_namespaced_resource_quota(ns),
            verb="list",
        )
        return [dict(self.api.sanitize_for_serialization(q)) for q in out.items]
