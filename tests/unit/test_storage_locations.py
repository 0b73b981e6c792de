"""Where stdouterr and output directories are in Azure Storage (storage/locations.py)."""

from __future__ import annotations

from typing import Any

import pytest

from batchai_operator.api import TrainingJobSpec
from batchai_operator.api.common import MountVolumes
from batchai_operator.api.trainingjob import TrainingJobStatus
from batchai_operator.manifests.paths import TrainingJobIdentity
from batchai_operator.storage.locations import (
    NotOnMount,
    StorageLocation,
    directory_location,
    expand,
    storage_status,
)
from samples import cntk_spec

IDENT = TrainingJobIdentity(namespace="ws", name="cntk-python-1", uid="0f1e", experiment="quickstart")
SEG = "ws/quickstart/cntk-python-1/0f1e"
CREDS = {"secretRef": {"name": "storage"}}


def spec(**extra: Any) -> TrainingJobSpec:
    return TrainingJobSpec.model_validate(cntk_spec(**extra))


def blob(rel: str, container: str = "out", account: str = "acct") -> dict[str, Any]:
    return {
        "accountName": account,
        "containerName": container,
        "credentials": CREDS,
        "relativeMountPath": rel,
    }


def share(rel: str, name: str, account: str = "acct") -> dict[str, Any]:
    return {
        "accountName": account,
        "azureFileUrl": f"https://{account}.file.core.windows.net/{name}",
        "credentials": CREDS,
        "relativeMountPath": rel,
    }


def test_seed_job_stdouterr_and_model_are_on_the_logs_share() -> None:
    s = spec()
    std = directory_location("stdouterr", s, None, IDENT)
    assert (std.kind, std.account_name, std.container, std.path) == (
        "file",
        "acct",
        "logs",
        f"{SEG}/stdouterr",
    )
    model = directory_location("MODEL", s, None, IDENT)
    assert (model.kind, model.container, model.path) == ("file", "logs", f"{SEG}/outputs")
    assert model.ref.relative_mount_path == "logs"


def test_path_suffix_and_blob_mount_keep_the_part_below_the_mount_point() -> None:
    mv = cntk_spec()["mountVolumes"]
    mv["azureBlobFileSystems"].append(blob("bfs"))
    s = spec(
        mountVolumes=mv,
        outputDirectories=[
            {"id": "OUTPUT", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/bfs/runs", "pathSuffix": "output"}
        ],
    )
    loc = directory_location("OUTPUT", s, None, IDENT)
    assert loc.wire() == {"accountName": "acct", "containerName": "out", "path": f"runs/{SEG}/outputs/output"}


def test_longest_mount_path_wins_for_nested_mounts() -> None:
    mv = {"azureFileShares": [share("logs", "outer"), share("logs/inner", "inner")]}
    s = spec(mountVolumes=mv, stdOutErrPathPrefix="${AZ_BATCHAI_JOB_MOUNT_ROOT}/logs/inner/x")
    loc = directory_location("stdouterr", s, None, IDENT)
    assert (loc.container, loc.path) == ("inner", f"x/{SEG}/stdouterr")
    # A sibling whose name merely starts with the mount path is not inside it.
    s2 = spec(mountVolumes=mv, stdOutErrPathPrefix="$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/innerx")
    assert directory_location("stdouterr", s2, None, IDENT).container == "outer"


def test_cluster_mounts_and_literal_paths_and_user_variables() -> None:
    cluster = MountVolumes.model_validate({"azureFileShares": [share("afs", "clustershare")]})
    s = spec(
        stdOutErrPathPrefix="$AZ_BATCHAI_MOUNT_ROOT/afs/logs",
        outputDirectories=[
            {"id": "A", "pathPrefix": "/mnt/batch/tasks/shared/LS_root/mounts/afs"},
            {"id": "B", "pathPrefix": "$OUT"},
        ],
        environmentVariables=[
            {"name": "OUT", "value": "$BASE/models"},
            {"name": "BASE", "value": "$AZ_BATCHAI_MOUNT_ROOT/afs"},
        ],
    )
    assert directory_location("stdouterr", s, cluster, IDENT).path == f"logs/{SEG}/stdouterr"
    assert directory_location("A", s, cluster, IDENT).path == f"{SEG}/outputs"
    assert directory_location("B", s, cluster, IDENT).path == f"models/{SEG}/outputs"
    # Without the cluster's mounts, the same path is on no mount.
    with pytest.raises(NotOnMount, match="not present on a mount root"):
        directory_location("A", s, None, IDENT)


@pytest.mark.parametrize(
    ("prefix", "reason"),
    [
        ("$AZ_BATCHAI_JOB_TEMP_DIR/logs", r"\$AZ_BATCHAI_JOB_TEMP_DIR, which is only known on the node"),
        ("/tmp/logs", "is on no Azure Files share or blob container"),
        ("$AZ_BATCHAI_JOB_MOUNT_ROOT/nfs/logs", "NFS file server"),
        ("logs", "not an absolute path"),
    ],
)
def test_directories_not_on_azure_storage_say_why(prefix: str, reason: str) -> None:
    mv = cntk_spec()["mountVolumes"]
    mv["fileServers"] = [{"fileServer": {"id": "/x/fileServers/nfs1"}, "relativeMountPath": "nfs"}]
    s = spec(mountVolumes=mv, stdOutErrPathPrefix=prefix)
    with pytest.raises(NotOnMount, match="outputDirectoryId stdouterr is not present on a mount root") as exc:
        directory_location("stdouterr", s, None, IDENT)
    assert exc.match(reason)


def test_unknown_directory_id_lists_the_known_ones() -> None:
    with pytest.raises(NotOnMount, match=r"no output directory 'model' \(known: stdouterr, MODEL\)"):
        directory_location("model", spec(), None, IDENT)


def test_child_paths_stay_below_the_directory() -> None:
    loc = directory_location("MODEL", spec(), None, IDENT)
    assert loc.child("checkpoints/./epoch1/").path == f"{SEG}/outputs/checkpoints/epoch1"
    assert loc.child(".").path == loc.path
    assert loc.child("a/../b").path == f"{SEG}/outputs/b"
    with pytest.raises(NotOnMount, match="leaves the directory"):
        loc.child("../../other-job")


def test_variable_loops_are_refused() -> None:
    with pytest.raises(NotOnMount, match="loop"):
        expand("$A", {"A": "$B", "B": "$A"})


def test_storage_status_validates_against_the_status_model() -> None:
    mv = cntk_spec()["mountVolumes"]
    mv["azureBlobFileSystems"].append(blob("bfs"))
    s = spec(
        mountVolumes=mv,
        outputDirectories=[
            {"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"},
            {"id": "BLOBS", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/bfs"},
            {"id": "LOCAL", "pathPrefix": "$AZ_BATCHAI_JOB_TEMP"},
        ],
    )
    status = storage_status(s, None, IDENT)
    assert status["stdOutErrStorage"] == {
        "accountName": "acct",
        "shareName": "logs",
        "path": f"{SEG}/stdouterr",
    }
    by_id = {d["id"]: d for d in status["outputDirectories"]}
    assert by_id["MODEL"]["storage"] == {"accountName": "acct", "shareName": "logs", "path": f"{SEG}/outputs"}
    assert by_id["BLOBS"]["storage"]["containerName"] == "out"
    assert "storage" not in by_id["LOCAL"]
    assert by_id["LOCAL"]["path"] == f"$AZ_BATCHAI_JOB_TEMP/{SEG}/outputs"
    parsed = TrainingJobStatus.model_validate(status)
    assert parsed.wire() == status


def test_location_text_names_the_share_and_account() -> None:
    loc = directory_location("stdouterr", spec(), None, IDENT)
    assert isinstance(loc, StorageLocation)
    assert str(loc) == f"share logs of storage account acct, path /{SEG}/stdouterr"
