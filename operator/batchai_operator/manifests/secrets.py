"""Which Kubernetes Secrets a job's pods reference: they must exist before the pods are created."""

from __future__ import annotations

from ..api.cluster import BatchAIClusterSpec
from ..api.common import MountVolumes
from ..api.trainingjob import TrainingJobSpec


def _mount_secrets(mv: MountVolumes | None) -> set[str]:
    if mv is None:
        return set()
    credentials = [v.credentials for v in mv.azure_file_shares or []]
    credentials += [v.credentials for v in mv.azure_blob_file_systems or []]
    out = {c.secret_ref.name for c in credentials if c.secret_ref is not None}
    return out


def referenced_secrets(spec: TrainingJobSpec, cluster: BatchAIClusterSpec) -> set[str]:
    """Names of the Secrets the job's pods reference: storage keys, secret variables, pull secret."""
    names = _mount_secrets(spec.mount_volumes)
    if cluster.node_setup is not None:
        names |= _mount_secrets(cluster.node_setup.mount_volumes)
    names |= {s.secret_ref.name for s in spec.secrets or [] if s.secret_ref is not None}
    cs = spec.container_settings
    if cs and cs.image_source_registry.credentials and cs.image_source_registry.credentials.secret_ref:
        names.add(cs.image_source_registry.credentials.secret_ref.name)
    return names
