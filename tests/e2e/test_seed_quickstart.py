"""The seed's quickstart end to end on a real node: every `az batchai` command line of the seed, verbatim
with `kubectl batchai` for `az batchai` (what `make demo` runs), its script on the `scripts` share and a
generated MNIST-like data set in the `data` container, the seed's job.json with the storage account's name
filled in (as the seed tells its reader to), stderr streamed while it trains, the model files listed with
URLs that download them, and the output path segment. The shares are the Azure Files double's directories
(bind-mounted into the pod, served by its REST double); the container is Azurite's, mounted with FUSE.

The seed's workspace is `quickstart`: the e2e operator serves that namespace too (conftest.py).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from devcluster import wait_for
from kubernetes import client

from doubles.azure_files import AzureFilesDouble
from storage_services import Blob, running_azurite

from .realnodes import REAL_POOL, share_path

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "cntk-mnist"
BIN = str(Path(sys.executable).parent)  # where pip put kubectl-batchai
# The seed's command lines (2018-05-01 CLI), `az batchai` -> `kubectl batchai`, nothing else changed; the
# reader puts their storage account's name for <storage account name>.
SEED_LINES = """
kubectl batchai workspace create -g batchai.quickstart -n quickstart
kubectl batchai cluster create -n nc6 -g batchai.quickstart -w quickstart -s Standard_NC6 -i UbuntuDSVM -t 1 --generate-ssh-keys
kubectl batchai experiment create -g batchai.quickstart -w quickstart -n quickstart
kubectl batchai job create -n cntk_python_1 -c nc6 -g batchai.quickstart -w quickstart -e quickstart  -f job.json --storage-account-name <storage account name>
kubectl batchai job file stream -j cntk_python_1 -g batchai.quickstart -w quickstart -e quickstart -f stderr.txt
kubectl batchai job file list -j cntk_python_1 -w quickstart -e quickstart -g batchai.quickstart -d MODEL
kubectl batchai job show -n cntk_python_1 -g batchai.quickstart -w quickstart -e quickstart --query jobOutputDirectoryPathSegment
""".strip().splitlines()  # noqa: E501
WORKSPACE = "quickstart"


def run(
    argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    return subprocess.run(
        argv,
        env={**base, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
    )


@pytest.fixture(scope="module")
def files() -> Iterator[AzureFilesDouble]:
    blob = running_azurite()
    root = Path(os.environ["BATCHAI_AZURE_FILES_ROOT"])
    with AzureFilesDouble(root, {blob.account: [blob.key]}) as double:
        yield double


@pytest.fixture(scope="module")
def storage(files: AzureFilesDouble) -> dict[str, str]:
    blob = running_azurite()
    return {"BATCHAI_STORAGE_BLOB_ENDPOINT": blob.endpoint, "BATCHAI_STORAGE_FILE_ENDPOINT": files.endpoint}


def deploy_data(blob: Blob, work: Path) -> None:
    """The quickstart's `az storage` steps: shares logs and scripts, the script, the data in `data`."""
    share_path(blob.account, "logs").mkdir(parents=True, exist_ok=True)
    script = share_path(blob.account, "scripts", "cntk/ConvNet_MNIST.py")
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_bytes((SEED / "ConvNet_MNIST.py").read_bytes())
    subprocess.run([sys.executable, str(SEED / "make_mnist_like.py"), str(work)], check=True)
    blob.container("data")
    container = blob.service().get_container_client("data")
    for name in ("Train-28x28_cntk_text.txt", "Test-28x28_cntk_text.txt"):
        container.upload_blob(f"mnist_cntk/{name}", (work / name).read_bytes(), overwrite=True)


@pytest.fixture
def seed_workspace(core_v1: client.CoreV1Api, operator: object) -> Iterator[str]:
    """No `quickstart` namespace before (a demo run may have left one), none after."""

    def delete() -> None:
        try:
            core_v1.delete_namespace(WORKSPACE)
        except client.ApiException as exc:
            if exc.status == 404:
                return
            raise
        wait_for(lambda: not _exists(core_v1), timeout=180, what=f"namespace {WORKSPACE} deleted")

    delete()
    yield WORKSPACE
    delete()


def _exists(core_v1: client.CoreV1Api) -> bool:
    try:
        core_v1.read_namespace(WORKSPACE)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def test_the_seed_command_lines_verbatim_train_on_a_real_node(
    seed_workspace: str, storage: dict[str, str], tmp_path: Path
) -> None:
    blob = running_azurite()
    deploy_data(blob, tmp_path / "data")
    # The reader's job.json: the seed's, with their storage account's name in it.
    job_json = (SEED / "job.json").read_text().replace("<YOUR_STORAGE_ACCOUNT>", blob.account)
    (tmp_path / "job.json").write_text(job_json)
    # As a user who is not logged in to Azure gives az the key; Standard_NC6 (retired) is mapped to the
    # dev cluster's GPU pool, as an AKS user maps it to theirs.
    env = {
        **storage,
        "AZURE_BATCHAI_STORAGE_KEY": blob.key,
        "BATCHAI_VM_SIZE_POOLS": f"Standard_NC6={REAL_POOL}",
    }
    transcript: list[str] = []
    seed: list[subprocess.CompletedProcess[str]] = []  # in SEED_LINES' order
    for line in SEED_LINES:
        line = line.replace("<storage account name>", blob.account)
        proc = run(shlex.split(line), env, tmp_path)
        transcript += [f"$ {line}", proc.stderr.rstrip(), proc.stdout.rstrip()]
        seed.append(proc)
        assert proc.returncode == 0, "\n".join(transcript)
    workspace_create, cluster_create, _, job_create, _, file_list, job_show = seed

    # The job succeeded, on a real node, under its Batch AI name.
    query = "{name: name, kubernetesName: kubernetesName, executionState: executionState, "
    query += "exitCode: executionInfo.exitCode}"
    checks = []
    for argv in (
        ["kubectl", "batchai", "job", "show", "-n", "cntk_python_1", "-w", WORKSPACE, "--query", query],
        ["kubectl", "batchai", "job", "node", "list", "-j", "cntk_python_1", "-w", WORKSPACE, "-o", "table"],
    ):
        proc = run(argv, env, tmp_path)
        transcript += [f"$ {shlex.join(argv)}", proc.stderr.rstrip(), proc.stdout.rstrip()]
        checks.append(proc)
    print("\n".join(t for t in transcript if t))
    job = json.loads(checks[0].stdout)
    nodes = checks[1].stdout.splitlines()[2:]
    assert job["executionState"] == "succeeded" and job["exitCode"] == 0
    assert nodes and all(line.split()[2].startswith("real-") for line in nodes)
    assert (job["name"], job["kubernetesName"]) == ("cntk_python_1", "cntk-python-1")

    workspace = json.loads(workspace_create.stdout)
    assert (workspace["name"], workspace["resourceGroup"]) == ("quickstart", "batchai.quickstart")
    cluster = json.loads(cluster_create.stdout)
    assert (cluster["name"], cluster["vmSize"], cluster["agentPool"]) == ("nc6", "Standard_NC6", REAL_POOL)
    assert "--generate-ssh-keys: no key is generated" in cluster_create.stderr
    created = json.loads(job_create.stdout)
    assert (created["name"], created["kubernetesName"], created["experiment"]) == (
        "cntk_python_1",
        "cntk-python-1",
        "quickstart",
    )
    assert blob.key not in json.dumps(created)
    # stderr.txt streamed until the job ended; the training's own lines are in stdout.txt.
    stream = ["kubectl", "batchai", "job", "file", "stream", "-j", "cntk_python_1", "-w", WORKSPACE]
    stdout_txt = run([*stream, "-f", "stdout.txt"], env, tmp_path).stdout
    assert "Finished Epoch[10 of 10]: [Training]" in stdout_txt
    final = [ln for ln in stdout_txt.splitlines() if ln.startswith("Final Results")]
    assert final and float(final[0].split("errs = ")[1].split("%")[0]) < 20  # it really learned

    models = {f["name"]: f for f in json.loads(file_list.stdout)}
    assert sorted(models) == sorted(f"ConvNet_MNIST_{i}.dnn" for i in range(10))
    with urllib.request.urlopen(models["ConvNet_MNIST_9.dnn"]["downloadUrl"]) as r:
        downloaded = r.read()
    assert len(downloaded) == models["ConvNet_MNIST_9.dnn"]["contentLength"] > 1000
    # `--query jobOutputDirectoryPathSegment` prints a JSON string, as az did:
    # <workspace>/<experiment>/<job>/<uid>.
    segment = json.loads(job_show.stdout)
    uid = client.CustomObjectsApi().get_namespaced_custom_object(
        "batchai.io", "v1alpha1", WORKSPACE, "trainingjobs", "cntk-python-1"
    )["metadata"]["uid"]
    assert segment == f"quickstart/quickstart/cntk-python-1/{uid}"
