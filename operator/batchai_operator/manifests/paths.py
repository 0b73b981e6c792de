"""Batch AI's paths and the AZ_BATCHAI_* environment
(docs/migration.md, "Paths, hosts and temp directories")."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..api.cluster import SetupTask
from ..api.trainingjob import TrainingJobSpec

MOUNT_ROOT = "/mnt/batch/tasks/shared/LS_root/mounts"
JOB_TEMP_DIR = "/mnt/batch/tasks/shared/LS_root/jobs"
CONFIG_DIR = "/etc/batchai"
SSH_DIR = "/etc/batchai-ssh"


@dataclass(frozen=True)
class TrainingJobIdentity:
    """Who a TrainingJob is: the inputs of every path rule."""

    namespace: str
    name: str
    uid: str
    experiment: str

    @property
    def segment(self) -> str:
        """jobOutputDirectoryPathSegment: <namespace>/<experiment>/<job>/<uid> (workspace = namespace)."""
        return f"{self.namespace}/{self.experiment}/{self.name}/{self.uid}"

    @property
    def job_root(self) -> str:
        return f"{JOB_TEMP_DIR}/{self.namespace}/{self.experiment}/{self.name}"

    @property
    def job_mount_root(self) -> str:
        return f"{self.job_root}/mounts"

    @property
    def job_temp(self) -> str:
        return f"{self.job_root}/temp"

    @property
    def shared_job_temp(self) -> str:
        return f"{self.job_root}/temp/shared"


def identity(obj: Mapping[str, Any], spec: TrainingJobSpec) -> TrainingJobIdentity:
    """The identity of a TrainingJob object as read from the API."""
    meta = obj["metadata"]
    return TrainingJobIdentity(
        namespace=meta["namespace"], name=meta["name"], uid=meta["uid"], experiment=spec.experiment
    )


def stdouterr_dir(spec: TrainingJobSpec, ident: TrainingJobIdentity) -> str:
    """<stdOutErrPathPrefix>/<segment>/stdouterr, $VARS left for the pod's shell to expand."""
    return f"{spec.std_out_err_path_prefix.rstrip('/')}/{ident.segment}/stdouterr"


def setup_stdouterr_dir(setup: SetupTask, namespace: str, cluster_name: str, uid: str) -> str:
    """A cluster's setup task: <stdOutErrPathPrefix>/<namespace>/clusters/<cluster>/<uid>, $VARS left for
    the pod's shell."""
    return f"{setup.std_out_err_path_prefix.rstrip('/')}/{namespace}/clusters/{cluster_name}/{uid}"


def output_directories(spec: TrainingJobSpec, ident: TrainingJobIdentity) -> list[tuple[str, str]]:
    """(id, path) per output directory: <pathPrefix>/<segment>/outputs[/<pathSuffix>]."""
    out = []
    for d in spec.output_directories or []:
        path = f"{d.path_prefix.rstrip('/')}/{ident.segment}/outputs"
        if d.path_suffix:
            path += "/" + d.path_suffix.strip("/")
        out.append((d.id, path))
    return out


def batchai_env(
    spec: TrainingJobSpec, ident: TrainingJobIdentity, gpus_per_node: int, shared_temp: bool = False
) -> dict[str, str]:
    """The AZ_BATCHAI_* variables every pod of the job gets (toolkit variables come from the launcher)."""
    env = {
        "AZ_BATCHAI_MOUNT_ROOT": MOUNT_ROOT,
        "AZ_BATCHAI_JOB_MOUNT_ROOT": ident.job_mount_root,
        "AZ_BATCHAI_JOB_TEMP_DIR": JOB_TEMP_DIR,
        "AZ_BATCHAI_JOB_TEMP": ident.job_temp,
        "AZ_BATCHAI_STDOUTERR_DIR": stdouterr_dir(spec, ident),
        # Where Batch AI put it (the launcher writes it there, in the format of the image's MPI).
        "AZ_BATCHAI_MPI_HOST_FILE": f"{ident.job_temp}/hostfile",
        "AZ_BATCHAI_NUM_GPUS": str(gpus_per_node),
    }
    # One node shares its pod-local temp with itself; a multi-node job needs a volume every node sees
    # (manifests/shared_temp.py): without one, the variable is left unset rather than untrue.
    if spec.node_count == 1 or shared_temp:
        env["AZ_BATCHAI_SHARED_JOB_TEMP"] = ident.shared_job_temp
    for d in spec.input_directories or []:
        env[f"AZ_BATCHAI_INPUT_{d.id}"] = d.path
    for out_id, path in output_directories(spec, ident):
        env[f"AZ_BATCHAI_OUTPUT_{out_id}"] = path
    return env
