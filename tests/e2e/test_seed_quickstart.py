"""The seed's quickstart end to end on a real node, with `kubectl batchai` alone (what `make demo` shows):
its script on the `scripts` share and a generated MNIST-like data set in the `data` container, the seed's
job.json unchanged, stdout streamed while it trains, `job wait`, and the model files listed with URLs that
download them. The shares are the Azure Files double's directories (bind-mounted into the pod, served by
its REST double); the container is Azurite's, mounted with FUSE.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client

from doubles.azure_files import AzureFilesDouble
from storage_services import Blob, running_azurite

from .realnodes import cluster_body, share_path

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "cntk-mnist"
BIN = str(Path(sys.executable).parent)  # where pip put kubectl-batchai
JOB = "cntk-python-1"


def cli(*args: str, env: dict[str, str], timeout: float = 240) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    return subprocess.run(
        ["kubectl", "batchai", *args],
        env={**base, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
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


def test_the_seed_job_json_trains_on_a_real_node(
    module_namespace: str, storage: dict[str, str], tmp_path: Path
) -> None:
    ns, blob = module_namespace, running_azurite()
    client.CustomObjectsApi().create_namespaced_custom_object(
        "batchai.io", "v1alpha1", ns, "batchaiclusters", cluster_body(ns, "nc6", gpus=False)
    )
    deploy_data(blob, tmp_path)
    created = cli(
        *("job", "create", "-f", str(SEED / "job.json"), "-n", JOB, "-c", "nc6", "-e", "quickstart"),
        *("-w", ns, "--placeholder", f"YOUR_STORAGE_ACCOUNT={blob.account}", "-o", "table"),
        env={"AZURE_BATCHAI_STORAGE_KEY": blob.key},
    )
    assert created.returncode == 0, created.stderr

    # Streams stdout.txt from the logs share while the script trains, until the job ends.
    streamed = cli("job", "file", "stream", "-j", JOB, "-f", "stdout.txt", "-w", ns, env=storage)
    assert streamed.returncode == 0, streamed.stderr
    print(streamed.stdout)
    assert "Data directory /mnt/batch/tasks/shared/LS_root/jobs/" in streamed.stdout
    assert "Train-28x28_cntk_text.txt" in streamed.stdout
    assert "Finished Epoch[10 of 10]: [Training]" in streamed.stdout
    final = [ln for ln in streamed.stdout.splitlines() if ln.startswith("Final Results")]
    assert final and float(final[0].split("errs = ")[1].split("%")[0]) < 20  # it really learned

    waited = cli("job", "wait", "-n", JOB, "-w", ns, env=storage)
    assert waited.returncode == 0, waited.stderr + waited.stdout

    listed = cli("job", "file", "list", "-j", JOB, "-d", "MODEL", "-w", ns, env=storage)
    assert listed.returncode == 0, listed.stderr
    models = {f["name"]: f for f in json.loads(listed.stdout)}
    assert sorted(models) == sorted(f"ConvNet_MNIST_{i}.dnn" for i in range(10))
    with urllib.request.urlopen(models["ConvNet_MNIST_9.dnn"]["downloadUrl"]) as r:
        downloaded = r.read()
    assert len(downloaded) == models["ConvNet_MNIST_9.dnn"]["contentLength"] > 1000
