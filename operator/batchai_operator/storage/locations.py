"""Where a job's stdouterr and output directories are in Azure Storage (pure).

Batch AI's `listOutputFiles` mapped a directory the job wrote to the Azure Files share or blob container
mounted at that path; a directory on no such mount failed with "The specified outputDirectoryId ... is
not present on a mount root". This module does the mapping for the CLI and for `status`: expand the
path's variables as the pod's shell would, take the mount with the longest mount path that contains it
(job mounts under $AZ_BATCHAI_JOB_MOUNT_ROOT, cluster mounts under $AZ_BATCHAI_MOUNT_ROOT), and keep the
part of the path below the mount point (az's own cluster file listing dropped it; this does not).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ..api.common import AzureBlobFileSystemReference, AzureFileShareReference, MountVolumes
from ..api.trainingjob import TrainingJobSpec
from ..manifests.paths import MOUNT_ROOT, TrainingJobIdentity, output_directories, stdouterr_dir

STDOUTERR = "stdouterr"

StorageKind = Literal["file", "blob"]
MountRef = AzureFileShareReference | AzureBlobFileSystemReference

_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
# User variables may refer to each other; a few rounds settle any sane chain.
_MAX_EXPANSIONS = 8


class NotOnMount(ValueError):
    """The directory is not on an Azure Files share or blob container the job mounts."""


@dataclass(frozen=True)
class MountPoint:
    """A volume the job's pods see at `path`."""

    path: str  # absolute, normalised
    scope: Literal["job", "cluster"]
    description: str  # what a user recognises, for messages
    ref: MountRef | None  # None for NFS and unmanaged file systems


@dataclass(frozen=True)
class StorageLocation:
    """A directory in Azure Storage: a path in an Azure Files share or a blob container."""

    kind: StorageKind
    account_name: str
    container: str  # share name (file) or container name (blob)
    path: str  # below the share/container root, no leading or trailing '/'; '' is the root
    ref: MountRef  # the mount it was found on (credentials, share URL)

    def child(self, relative: str) -> StorageLocation:
        """The location of `relative` (az's -p) below this one; '..' may not leave it."""
        parts: list[str] = []
        for part in relative.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if not parts:
                    raise NotOnMount(f"path {relative!r} leaves the directory")
                parts.pop()
            else:
                parts.append(part)
        path = "/".join(p for p in (self.path, *parts) if p)
        return StorageLocation(self.kind, self.account_name, self.container, path, self.ref)

    def wire(self) -> dict[str, str]:
        """The status form: accountName, shareName or containerName, path."""
        key = "shareName" if self.kind == "file" else "containerName"
        return {"accountName": self.account_name, key: self.container, "path": self.path}

    def __str__(self) -> str:
        kind = "share" if self.kind == "file" else "container"
        return f"{kind} {self.container} of storage account {self.account_name}, path /{self.path}"


def mount_points(
    spec: TrainingJobSpec, cluster_mounts: MountVolumes | None, ident: TrainingJobIdentity
) -> list[MountPoint]:
    """Every volume of the job's pods: job mounts and the cluster's mounts."""
    return [
        *scope_mount_points("job", ident.job_mount_root, spec.mount_volumes),
        *scope_mount_points("cluster", MOUNT_ROOT, cluster_mounts),
    ]


def scope_mount_points(
    scope: Literal["job", "cluster"], root: str, mv: MountVolumes | None
) -> list[MountPoint]:
    """The volumes of one MountVolumes under `root` (a job's mount root, or the cluster's)."""
    out: list[MountPoint] = []
    if mv is None:
        return out
    for afs in mv.azure_file_shares or []:
        desc = f"Azure Files share {afs.share_name} of {afs.account_name}"
        out.append(MountPoint(_join(root, afs.relative_mount_path), scope, desc, afs))
    for bfs in mv.azure_blob_file_systems or []:
        desc = f"blob container {bfs.container_name} of {bfs.account_name}"
        out.append(MountPoint(_join(root, bfs.relative_mount_path), scope, desc, bfs))
    for nfs in mv.file_servers or []:
        desc = f"NFS file server {nfs.host}"
        out.append(MountPoint(_join(root, nfs.relative_mount_path), scope, desc, None))
    for ufs in mv.unmanaged_file_systems or []:
        out.append(MountPoint(_join(root, ufs.relative_mount_path), scope, "an unmanaged file system", None))
    return out


def _join(root: str, relative: str) -> str:
    return posixpath.normpath(f"{root}/{relative.strip('/')}")


def job_variables(spec: TrainingJobSpec, ident: TrainingJobIdentity) -> dict[str, str]:
    """Variables a path may use: the job's environmentVariables, then Batch AI's mount roots (which win,
    as the launcher sets them last)."""
    env = {v.name: v.value for v in spec.environment_variables or []}
    env["AZ_BATCHAI_MOUNT_ROOT"] = MOUNT_ROOT
    env["AZ_BATCHAI_JOB_MOUNT_ROOT"] = ident.job_mount_root
    return env


def expand(path: str, variables: Mapping[str, str]) -> str:
    """`path` with $VAR / ${VAR} replaced; NotOnMount when a variable is not known here (secrets, the
    node's own environment)."""
    out = path
    for _ in range(_MAX_EXPANSIONS):
        unknown = [
            m.group(1) or m.group(2)
            for m in _VAR.finditer(out)
            if (m.group(1) or m.group(2)) not in variables
        ]
        if unknown:
            raise NotOnMount(f"{path!r} uses ${unknown[0]}, which is only known on the node")
        new = _VAR.sub(lambda m: variables[m.group(1) or m.group(2)], out)
        if new == out:
            return out
        out = new
    raise NotOnMount(f"{path!r}: variables refer to each other in a loop")


def resolve(path: str, points: list[MountPoint], variables: Mapping[str, str]) -> StorageLocation:
    """The storage location of a directory path as the job's pods see it (variables unexpanded)."""
    absolute = expand(path, variables)
    if not absolute.startswith("/"):
        raise NotOnMount(f"{path!r} is not an absolute path")
    absolute = posixpath.normpath(absolute)
    best: MountPoint | None = None
    for mp in points:
        if (absolute == mp.path or absolute.startswith(mp.path + "/")) and (
            best is None or len(mp.path) > len(best.path)
        ):
            best = mp
    if best is None:
        raise NotOnMount(f"{path!r} is on no Azure Files share or blob container the job mounts")
    if best.ref is None:
        raise NotOnMount(f"{path!r} is on {best.description}, not on an Azure Files share or blob container")
    below = absolute[len(best.path) :].strip("/")
    ref = best.ref
    if isinstance(ref, AzureFileShareReference):
        return StorageLocation("file", ref.account_name, ref.share_name, below, ref)
    return StorageLocation("blob", ref.account_name, ref.container_name, below, ref)


def directory_paths(spec: TrainingJobSpec, ident: TrainingJobIdentity) -> dict[str, str]:
    """Directory id -> path as the pods see it: 'stdouterr' and every output directory id."""
    out = {STDOUTERR: stdouterr_dir(spec, ident)}
    for out_id, path in output_directories(spec, ident):
        out.setdefault(out_id, path)
    return out


def directory_location(
    directory: str, spec: TrainingJobSpec, cluster_mounts: MountVolumes | None, ident: TrainingJobIdentity
) -> StorageLocation:
    """The location of 'stdouterr' or an output directory id (az's -d), or NotOnMount saying why."""
    paths = directory_paths(spec, ident)
    if directory not in paths:
        known = ", ".join(paths)
        raise NotOnMount(f"the job has no output directory {directory!r} (known: {known})")
    try:
        return resolve(
            paths[directory], mount_points(spec, cluster_mounts, ident), job_variables(spec, ident)
        )
    except NotOnMount as exc:
        raise NotOnMount(
            f"The specified outputDirectoryId {directory} is not present on a mount root: {exc}"
        ) from None


def storage_status(
    spec: TrainingJobSpec, cluster_mounts: MountVolumes | None, ident: TrainingJobIdentity
) -> dict[str, Any]:
    """Status fields telling where outputs are in storage: `stdOutErrStorage` and `outputDirectories`
    (id, path, and `storage` when the directory is on an Azure Files share or blob container)."""
    points = mount_points(spec, cluster_mounts, ident)
    variables = job_variables(spec, ident)

    def where(path: str) -> dict[str, str] | None:
        try:
            return resolve(path, points, variables).wire()
        except NotOnMount:
            return None

    status: dict[str, Any] = {}
    std = where(stdouterr_dir(spec, ident))
    if std is not None:
        status["stdOutErrStorage"] = std
    outputs = []
    for out_id, path in output_directories(spec, ident):
        entry: dict[str, Any] = {"id": out_id, "path": path}
        loc = where(path)
        if loc is not None:
            entry["storage"] = loc
        outputs.append(entry)
    status["outputDirectories"] = outputs
    return status
