"""Real mounts on the real nodes: Azure Files shares (the Files double's directories, bind-mounted by the
file.csi.azure.com double) and blob containers of Azurite (mounted with rclone's FUSE file system by the
blob.csi.azure.com stand-in), through the real kubelets' CSI calls.

All jobs are submitted together (single node, no GPU) and each test checks one. Mount failures come from
the kubelets' own FailedMount Events, carrying the texts the plugins return (the upstream drivers' texts);
no test posts an Event.
"""

from __future__ import annotations

from typing import Any

import pytest
from devcluster import wait_for
from jobs import create_trainingjob, trainingjob_pods, wait_state
from kubernetes import client

from storage_services import Blob, running_azurite

from .realnodes import REAL_NODES, cluster_body, job_spec, share_path

pytestmark = pytest.mark.e2e

CLUSTER = "real-cpu"
ROOT = "$AZ_BATCHAI_JOB_MOUNT_ROOT"
INPUTS = ("alpha.txt", "beta.txt", "gamma.txt")


def wrong(key: str) -> str:
    """The key with one character in the middle changed (one near the end can decode to the same bytes)."""
    i = len(key) // 2
    return key[:i] + ("A" if key[i] != "A" else "B") + key[i + 1 :]


def custom(command: str, **extra: Any) -> dict[str, Any]:
    return job_spec(CLUSTER, customToolkitSettings={"commandLine": command}, **extra)


def share_ref(account: str, share: str, secret: str, rel: str = "logs") -> dict[str, Any]:
    return {
        "accountName": account,
        "azureFileUrl": f"https://{account}.file.core.windows.net/{share}",
        "credentials": {"secretRef": {"name": secret}},
        "relativeMountPath": rel,
    }


def blob_ref(account: str, container: str, secret: str, rel: str = "data") -> dict[str, Any]:
    return {
        "accountName": account,
        "containerName": container,
        "credentials": {"secretRef": {"name": secret}},
        "relativeMountPath": rel,
    }


def storage_secret(ns: str, name: str, account: str, key: str) -> None:
    client.CoreV1Api().create_namespaced_secret(
        ns,
        {
            "metadata": {"name": name},
            "stringData": {"azurestorageaccountname": account, "azurestorageaccountkey": key},
        },
    )


@pytest.fixture(scope="module")
def blob() -> Blob:
    return running_azurite()


@pytest.fixture(scope="module")
def submitted(module_namespace: str, blob: Blob) -> str:
    ns, account = module_namespace, blob.account
    client.CustomObjectsApi().create_namespaced_custom_object(
        "batchai.io", "v1alpha1", ns, "batchaiclusters", cluster_body(ns, CLUSTER, gpus=False)
    )
    storage_secret(ns, "storage", account, blob.key)
    storage_secret(ns, "wrong-key", account, wrong(blob.key))
    storage_secret(ns, "not-base64", account, blob.key.replace("/", "%"))
    # A share for the jobs' stdout and a container with an input directory, uploaded before the jobs.
    share_path(account, ns).mkdir(parents=True)
    blob.container(ns)
    container = blob.service().get_container_client(ns)
    for name in INPUTS:
        container.upload_blob(f"inputs/{name}", f"{name}\n".encode())
    logs = {"stdOutErrPathPrefix": f"{ROOT}/logs"}

    def mounts(*blobs: dict[str, Any], secret: str = "storage") -> dict[str, Any]:
        return {"azureFileShares": [share_ref(account, ns, secret)], "azureBlobFileSystems": list(blobs)}

    # Lists its input directory first thing (upstream's default --cancel-list-on-mount-seconds=10 would
    # show it empty), and shows how its volumes are mounted inside the container.
    create_trainingjob(
        ns,
        "listing",
        custom(
            f'ls -1 {ROOT}/data/inputs; grep -E " {ROOT}/(data|logs) " /proc/mounts | cut -d" " -f2,3',
            mountVolumes=mounts(blob_ref(account, ns, "storage")),
            **logs,
        ),
    )
    create_trainingjob(
        ns,
        "outputs",
        custom(
            "echo trained > $AZ_BATCHAI_OUTPUT_MODEL/model.txt && mkdir -p $AZ_BATCHAI_OUTPUT_MODEL/ckpt"
            " && echo step-1 > $AZ_BATCHAI_OUTPUT_MODEL/ckpt/1.txt",
            mountVolumes=mounts(blob_ref(account, ns, "storage")),
            outputDirectories=[{"id": "MODEL", "pathPrefix": f"{ROOT}/data", "pathSuffix": "runs/final"}],
            **logs,
        ),
    )
    share_only = {"azureFileShares": [share_ref(account, ns, "wrong-key")]}
    create_trainingjob(ns, "wrongkey-share", custom("true", mountVolumes=share_only))
    create_trainingjob(
        ns, "wrongkey-blob", custom("true", mountVolumes=mounts(blob_ref(account, ns, "wrong-key")))
    )
    create_trainingjob(
        ns, "notbase64", custom("true", mountVolumes=mounts(blob_ref(account, ns, "not-base64")))
    )
    create_trainingjob(
        ns, "nocontainer", custom("true", mountVolumes=mounts(blob_ref(account, f"absent-{ns}", "storage")))
    )
    return ns


def status_path(tj: dict[str, Any], path: str, rel: str) -> str:
    """A path the status gives ($AZ_BATCHAI_JOB_MOUNT_ROOT/<rel>/...) relative to the volume at rel."""
    prefix = f"{ROOT}/{rel}/"
    assert path.startswith(prefix), path
    return path.removeprefix(prefix)


def stdout_of(ns: str, tj: dict[str, Any], account: str) -> str:
    directory = status_path(tj, tj["status"]["stdOutErrDirectory"], "logs")
    return share_path(account, ns, directory + "/stdout.txt").read_text()


def mount_error(tj: dict[str, Any]) -> tuple[str, str, str]:
    """(code, Batch AI's message, the kubelet's message in Info) of a job that would not mount."""
    info = tj["status"]["executionInfo"]
    (err,) = info["errors"]
    detail = err["details"][0]["value"]
    print(f"--- {tj['metadata']['name']}: exit code {info.get('exitCode')}, {err['code']}: {detail}")
    return err["code"], err["message"], detail


def kubelet_events(ns: str, job: str) -> list[client.CoreV1Event]:
    events = client.CoreV1Api().list_namespaced_event(ns, field_selector="reason=FailedMount").items
    return [e for e in events if e.involved_object.name.startswith(f"{job}-")]


def assert_from_real_kubelets(ns: str, job: str) -> None:
    events = kubelet_events(ns, job)
    assert events and {(e.source.component, e.source.host in REAL_NODES) for e in events} == {
        ("kubelet", True)
    }


def test_input_directory_on_the_blob_mount_is_listed_at_once(submitted: str, blob: Blob) -> None:
    tj = wait_state(submitted, "listing", "succeeded", timeout=240)
    out = stdout_of(submitted, tj, blob.account).splitlines()
    assert out[: len(INPUTS)] == list(INPUTS), out
    # Inside the container: the container is a FUSE mount (rclone), the share the double's directory.
    mounts = {path.rsplit("/", 1)[-1]: fstype for path, fstype in (ln.split() for ln in out[len(INPUTS) :])}
    assert mounts.keys() == {"data", "logs"}, out
    assert mounts["data"] == "fuse.rclone" and mounts["logs"] not in ("fuse.rclone", "tmpfs", "overlay"), out
    (pod,) = trainingjob_pods(submitted, "listing")
    (attrs,) = [
        v.csi.volume_attributes for v in pod.spec.volumes if v.csi and v.csi.driver == "blob.csi.azure.com"
    ]
    assert "--cancel-list-on-mount-seconds=0" in attrs["mountOptions"].split(",")
    assert attrs["server"] == blob.url


def test_output_directory_with_path_suffix_lands_in_the_container(submitted: str, blob: Blob) -> None:
    tj = wait_state(submitted, "outputs", "succeeded", timeout=240)
    (out,) = tj["status"]["outputDirectories"]
    segment = tj["status"]["jobOutputDirectoryPathSegment"]
    prefix = status_path(tj, out["path"], "data")
    assert prefix == f"{segment}/outputs/runs/final"
    container = blob.service().get_container_client(submitted)

    def blobs() -> dict[str, Any] | None:
        found = {b.name: b for b in container.list_blobs(name_starts_with=segment, include=["metadata"])}
        return found if f"{prefix}/ckpt/1.txt" in found else None

    # Uploaded when the file is closed (and before the kubelet's unmount completes).
    found = wait_for(blobs, timeout=60, what="the job's outputs in Azurite")
    assert container.download_blob(f"{prefix}/model.txt").readall() == b"trained\n"
    assert container.download_blob(f"{prefix}/ckpt/1.txt").readall() == b"step-1\n"
    # Directories the job made are marker blobs with hdi_isfolder=true (rclone names them with a slash).
    marker = found[f"{prefix}/ckpt/"]
    assert marker.size == 0 and (marker.metadata or {}).get("hdi_isfolder") == "true"


def test_wrong_key_for_the_share_is_an_azf_mount_error(submitted: str) -> None:
    tj = wait_state(submitted, "wrongkey-share", "failed", timeout=240)
    code, message, detail = mount_error(tj)
    assert (code, message) == ("AZFMountError", "Unable to mount Azure File")
    assert tj["status"]["executionInfo"]["exitCode"] == -1
    assert f"Azure Files share {submitted} of " in detail
    assert "mount error(13): Permission denied" in detail and "aka.ms/filemounterror" in detail
    assert "Mounting arguments" not in detail  # the mount command line stays out of the status
    assert_from_real_kubelets(submitted, "wrongkey-share")


def test_wrong_key_for_the_container_is_a_bfs_mount_error(submitted: str, blob: Blob) -> None:
    tj = wait_state(submitted, "wrongkey-blob", "failed", timeout=240)
    code, message, detail = mount_error(tj)
    assert (code, message) == ("BFSMountError", "unable to mount blob fuse file system")
    assert tj["status"]["executionInfo"]["exitCode"] == 1
    assert f"blob container {submitted} of {blob.account}" in detail
    assert (
        "Mount failed with error: exit status 1, output: Error: failed to initialize new pipeline "
        "[failed to authenticate azstorage credentials with error [BlockBlob::TestPipeline : "
        "[AuthorizationFailure]]]"
    ) in detail
    assert "aka.ms/blobmounterror" in detail
    assert wrong(blob.key) not in detail and blob.key not in detail
    assert_from_real_kubelets(submitted, "wrongkey-blob")


def test_key_that_is_not_base64_is_a_bfs_mount_error(submitted: str) -> None:
    tj = wait_state(submitted, "notbase64", "failed", timeout=240)
    code, _, detail = mount_error(tj)
    assert code == "BFSMountError"
    assert (
        "Error: failed to initialize new pipeline [decode account key: illegal base64 data at input byte"
        in detail
    )


def test_missing_container_is_a_bfs_mount_error(submitted: str) -> None:
    tj = wait_state(submitted, "nocontainer", "failed", timeout=240)
    code, _, detail = mount_error(tj)
    assert code == "BFSMountError"
    assert "blob container absent-" in detail
    assert "[BlockBlob::TestPipeline : [ContainerNotFound]]]" in detail
    assert_from_real_kubelets(submitted, "nocontainer")
    # Nothing was created in its place.
    assert not running_azurite().service().get_container_client(f"absent-{submitted}").exists()
