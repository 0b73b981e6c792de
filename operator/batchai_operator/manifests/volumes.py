"""Batch AI mountVolumes as pod volumes: CSI inline volumes for Azure Files and Blob, nfs for file servers.

Job mounts live under $AZ_BATCHAI_JOB_MOUNT_ROOT, cluster mounts under $AZ_BATCHAI_MOUNT_ROOT.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from ..api.common import MountVolumes, StorageCredentials
from ..names import ERR_INVALID_CREDENTIALS, ERR_UNMANAGED_FS_NOT_ALLOWED
from .errors import BuildError

# Batch AI's blobfuse defaults, written as users write blobfuse options.
DEFAULT_BLOB_MOUNT_OPTIONS = (
    "-o allow_other --use-https=true -o attr_timeout=240 -o entry_timeout=240 -o negative_timeout=120"
)
# The Blob CSI driver adds --cancel-list-on-mount-seconds=10 unless given: every directory listing would be
# empty for the first 10 s after the mount (tests/k8s/README.md, "Real mounts"), which Batch AI's
# blobfuse never did.
CANCEL_LIST_FLAG = "--cancel-list-on-mount-seconds"
NO_LISTING_DELAY = f"{CANCEL_LIST_FLAG}=0"


def blob_csi_mount_options(options: str | None) -> str:
    """Blobfuse options (space-separated, `-o a,b` lists; validated by the API's allowlist) as the Blob CSI
    driver's `mountOptions` attribute of an inline volume: comma-separated, one blobfuse2 argument each
    (`-o NAME` per libfuse option), plus --cancel-list-on-mount-seconds=0 unless the options set it.

    The driver splits the attribute on commas, joins the pieces with spaces and splits them again on
    spaces, so `-o allow_other` stays two arguments and a `-o a,b` list must not reach it whole.
    """
    tokens = (options if options is not None else DEFAULT_BLOB_MOUNT_OPTIONS).split()
    items: list[str] = []
    i = 0
    while i < len(tokens):
        if tokens[i] == "-o" and i + 1 < len(tokens):
            items.extend(f"-o {opt}" for opt in tokens[i + 1].split(",") if opt)
            i += 2
        else:
            items.append(tokens[i])
            i += 1
    if not any(item.startswith(CANCEL_LIST_FLAG) for item in items):
        items.append(NO_LISTING_DELAY)
    return ",".join(items)


@dataclass
class PodVolumes:
    """Volumes and the main container's mounts, plus unmanaged mount commands for the launcher."""

    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)
    unmanaged: list[tuple[str, str]] = field(default_factory=list)  # (mountCommand, path)

    def extend(self, other: PodVolumes) -> None:
        self.volumes.extend(other.volumes)
        self.mounts.extend(other.mounts)
        self.unmanaged.extend(other.unmanaged)


def volume_name(scope: str, kind: str, rel: str) -> str:
    # Volume names are DNS labels; the relative path may hold anything, so a short hash keeps them unique.
    return f"{scope}-{kind}-{hashlib.sha256(rel.encode()).hexdigest()[:10]}"


def _credential_attributes(creds: StorageCredentials, account: str) -> dict[str, str]:
    if creds.secret_ref is not None:
        return {"secretName": creds.secret_ref.name}
    if creds.workload_identity is not None:
        return {
            "storageAccount": account,
            "clientID": creds.workload_identity.client_id,
            "mountWithWorkloadIdentityToken": "true",
        }
    raise BuildError(ERR_INVALID_CREDENTIALS, f"storage account {account}: no secretRef or workloadIdentity")


def describe_volumes(mv: MountVolumes | None, scope: str) -> dict[str, str]:
    """Pod volume name -> what a user recognises ("Azure Files share logs at <rel>"), for error messages."""
    out: dict[str, str] = {}
    if mv is None:
        return out
    for afs in mv.azure_file_shares or []:
        where = f"relativeMountPath {afs.relative_mount_path}"
        out[volume_name(scope, "afs", afs.relative_mount_path)] = (
            f"Azure Files share {afs.share_name} of {afs.account_name} ({where})"
        )
    for bfs in mv.azure_blob_file_systems or []:
        where = f"relativeMountPath {bfs.relative_mount_path}"
        out[volume_name(scope, "bfs", bfs.relative_mount_path)] = (
            f"blob container {bfs.container_name} of {bfs.account_name} ({where})"
        )
    for nfs in mv.file_servers or []:
        out[volume_name(scope, "nfs", nfs.relative_mount_path)] = (
            f"NFS {nfs.host}:{nfs.source_directory or '/'} (relativeMountPath {nfs.relative_mount_path})"
        )
    return out


def blob_server(endpoint_template: str | None, account: str) -> dict[str, str]:
    """The Blob CSI driver's `server` attribute (the endpoint, used verbatim) when this installation's blob
    endpoint is not Azure's default <account>.blob.core.windows.net (Azurite, sovereign clouds)."""
    if not endpoint_template:
        return {}
    return {"server": endpoint_template.replace("{account}", account).rstrip("/")}


def build_volumes(
    mv: MountVolumes | None,
    root: str,
    scope: str,
    namespace: str,
    allow_privileged: bool,
    blob_endpoint: str | None = None,
) -> PodVolumes:
    """Volumes for one MountVolumes block mounted under root; scope ('job'/'cluster') prefixes names.
    allow_privileged: the admin let `namespace` use unmanagedFileSystems (privileged pods).
    blob_endpoint: the installation's blob endpoint template ({account}), None for Azure's default."""
    out = PodVolumes()
    if mv is None:
        return out

    def add(kind: str, rel: str, source: dict[str, Any]) -> None:
        name = volume_name(scope, kind, rel)
        out.volumes.append({"name": name, **source})
        out.mounts.append({"name": name, "mountPath": f"{root}/{rel.strip('/')}"})

    for afs in mv.azure_file_shares or []:
        attrs = {
            "shareName": afs.share_name,
            "mountOptions": f"dir_mode={afs.directory_mode},file_mode={afs.file_mode},actimeo=30,nosharesock",
            **_credential_attributes(afs.credentials, afs.account_name),
        }
        add(
            "afs",
            afs.relative_mount_path,
            {"csi": {"driver": "file.csi.azure.com", "volumeAttributes": attrs}},
        )

    for bfs in mv.azure_blob_file_systems or []:
        attrs = {
            "containerName": bfs.container_name,
            "protocol": "fuse2",
            "mountOptions": blob_csi_mount_options(bfs.mount_options or None),
            **blob_server(blob_endpoint, bfs.account_name),
            **_credential_attributes(bfs.credentials, bfs.account_name),
        }
        add(
            "bfs",
            bfs.relative_mount_path,
            {"csi": {"driver": "blob.csi.azure.com", "volumeAttributes": attrs}},
        )

    for nfs in mv.file_servers or []:
        # Inline nfs volumes take no mount options; readOnly is the one Batch AI option that maps.
        read_only = "ro" in (nfs.mount_options or "").split(",")
        add(
            "nfs",
            nfs.relative_mount_path,
            {"nfs": {"server": nfs.host, "path": nfs.source_directory or "/", "readOnly": read_only}},
        )

    for ufs in mv.unmanaged_file_systems or []:
        if not allow_privileged:
            raise BuildError(
                ERR_UNMANAGED_FS_NOT_ALLOWED,
                f"unmanagedFileSystems ({ufs.relative_mount_path}) need privileged pods, which namespace "
                f"{namespace} may not run (an admin grants it in the chart value allow.privilegedMounts)",
            )
        out.unmanaged.append((ufs.mount_command, f"{root}/{ufs.relative_mount_path.strip('/')}"))
    return out
