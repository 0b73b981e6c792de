"""RecordingKube: stands in for batchai_operator.kube.Kube (the operator's own client wrapper, not the
apiserver) in unit tests of the syncs. It records every call, in order, so a test asserts the exact writes
a sync makes (mpi-operator's expect*Action fixture). The apiserver itself is only ever the real one.

It implements the same protocol as Kube (kube.KubeClient), and mypy checks it against it (pyproject's
[tool.mypy] files), so a change to what the syncs ask of the API changes this double too."""

from __future__ import annotations

from typing import Any

from batchai_operator.kube import KubeClient


class RecordingKube(KubeClient):
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.existing: dict[tuple[str, str], str | None] = {}  # (kind, name) -> controller uid: create -> 409
        self.secrets: set[str] = set()
        self.pod_groups: dict[str, dict[str, Any]] = {}  # name -> PodGroup (its status)

    async def create(self, manifest: dict[str, Any]) -> bool:
        self.calls.append(("create", manifest))
        return (manifest["kind"], manifest["metadata"]["name"]) not in self.existing

    async def post_event(self, manifest: dict[str, Any]) -> None:
        self.calls.append(("event", manifest))

    async def controller_uid(self, kind: str, namespace: str, name: str) -> str | None:
        return self.existing.get((kind, name))

    async def exists(self, kind: str, namespace: str, name: str) -> bool:
        return (kind, name) in self.existing

    async def patch_json(self, kind: str, namespace: str, name: str, ops: list[dict[str, Any]]) -> bool:
        self.calls.append(("json-patch", (kind, namespace, name, ops)))
        return True

    async def delete(self, kind: str, namespace: str, name: str, foreground: bool = False) -> None:
        self.calls.append(("delete-foreground" if foreground else "delete", (kind, namespace, name)))

    async def patch_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        self.calls.append(("status", status))

    async def patch_custom(self, plural: str, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append(("custom", patch))

    async def patch_batch_job(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self.calls.append(("patch-batch-job", (name, patch)))

    async def delete_custom(self, plural: str, namespace: str, name: str) -> None:
        self.calls.append(("delete-custom", (plural, name)))

    async def label_pod(self, namespace: str, name: str, labels: dict[str, str]) -> None:
        self.calls.append(("label-pod", (name, labels)))

    async def secret_exists(self, namespace: str, name: str) -> bool:
        return name in self.secrets

    async def read_pod_group(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("read-pod-group", name))
        return self.pod_groups.get(name)

    def of(self, what: str) -> list[Any]:
        return [c[1] for c in self.calls if c[0] == what]

    def kinds(self) -> list[str]:
        """The calls in order, as 'verb Kind' (creates and deletes) or the verb."""
        out: list[str] = []
        for verb, arg in self.calls:
            if verb == "create":
                out.append(f"create {arg['kind']}")
            elif verb == "delete":
                out.append(f"delete {arg[0]}")
            else:
                out.append(verb)
        return out


def _implements_every_method() -> KubeClient:
    return RecordingKube()  # mypy: an unimplemented method of the protocol makes this abstract
