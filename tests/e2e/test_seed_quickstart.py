"""The seed's quickstart end to end on a real node, with `kubectl batchai` alone (what `make demo` shows):
its CNTK script (examples/cntk-mnist/ConvNet_MNIST.py) on the `scripts` share and a generated MNIST-like
data set in the `data` container, the seed's job.json unchanged, stderr.txt streamed while CNTK trains,
`job wait`, and the model files listed with URLs that download them. The job runs in the CNTK image
(cntk-cpu: CNTK 2.7 from PyPI), the dev cluster's image for the cntk toolkit. Then the model the job wrote
is loaded with `cntk.load_model` in a pod of that image on a real node and evaluated on the test set; and
the same job.json with two nodes and two MPI ranks trains data-parallel across real-0 and real-1.

The shares are the Azure Files double's directories (bind-mounted into the pods, served by its REST
double); the container is Azurite's, mounted with FUSE.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from devcluster import wait_for
from jobs import get_job
from kubernetes import client

from doubles.azure_files import AzureFilesDouble
from storage_services import Blob, running_azurite

from .realnodes import LOCAL_IMAGES, REAL_NODES, PodRecorder, cluster_body, share_path

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "cntk-mnist"
EVALUATE = Path(__file__).parent / "jobs" / "evaluate_cntk_model.py"
BIN = str(Path(sys.executable).parent)  # where pip put kubectl-batchai
JOB = "cntk-python-1"
TWO_NODES = "cntk-2-nodes"
CNTK_IMAGE = LOCAL_IMAGES["cntk"]
TEST_SAMPLES = 100  # make_mnist_like.py's default test set
MODELS = sorted(f"ConvNet_MNIST_{i}.dnn" for i in range(10))


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


@pytest.fixture(scope="module")
def deployed(module_namespace: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cluster nc6 (no GPUs requested: the 2-node job may run beside another) and the deployed data;
    returns the directory of the generated data set (the files uploaded to `data/mnist_cntk`)."""
    ns = module_namespace
    client.CustomObjectsApi().create_namespaced_custom_object(
        "batchai.io", "v1alpha1", ns, "batchaiclusters", cluster_body(ns, "nc6", gpus=False)
    )
    work = tmp_path_factory.mktemp("mnist_cntk")
    deploy_data(running_azurite(), work)
    return work


@dataclass(frozen=True)
class Run:
    streamed: str  # `job file stream -f stderr.txt`
    models: dict[str, dict[str, Any]]  # `job file list -d MODEL` by name


def run_job(ns: str, name: str, job_json: Path, storage: dict[str, str]) -> Run:
    """The quickstart's submit, stream, wait and list steps for one job."""
    blob = running_azurite()
    created = cli(
        *("job", "create", "-f", str(job_json), "-n", name, "-c", "nc6", "-e", "quickstart"),
        *("-w", ns, "--placeholder", f"YOUR_STORAGE_ACCOUNT={blob.account}", "-o", "table"),
        env={"AZURE_BATCHAI_STORAGE_KEY": blob.key},
    )
    assert created.returncode == 0, created.stderr
    # Streams stderr.txt (the script reports there, as the seed's did) from the logs share while the
    # script trains, until the job ends.
    streamed = cli("job", "file", "stream", "-j", name, "-f", "stderr.txt", "-w", ns, env=storage)
    assert streamed.returncode == 0, streamed.stderr
    print(f"--- {name}: stderr.txt\n{streamed.stdout}")
    waited = cli("job", "wait", "-n", name, "-w", ns, env=storage)
    assert waited.returncode == 0, waited.stderr + waited.stdout
    listed = cli("job", "file", "list", "-j", name, "-d", "MODEL", "-w", ns, env=storage)
    assert listed.returncode == 0, listed.stderr
    return Run(streamed.stdout, {f["name"]: f for f in json.loads(listed.stdout)})


@pytest.fixture(scope="module")
def seed_run(module_namespace: str, deployed: Path, storage: dict[str, str]) -> Run:
    return run_job(module_namespace, JOB, SEED / "job.json", storage)


def evaluation_error(text: str) -> float:
    """The test-set error CNTK's ProgressPrinter reported, in percent."""
    m = re.search(
        rf"^Finished Evaluation \[1\]: Minibatch\[1-\d+\]: metric = (\S+)% \* {TEST_SAMPLES};$", text, re.M
    )
    assert m, text
    return float(m.group(1))


def test_the_seed_job_json_trains_with_cntk_on_a_real_node(seed_run: Run) -> None:
    out = seed_run.streamed
    # CNTK's own output: its device choice, its build, its parameter count, its ProgressPrinter's lines.
    assert "Selected CPU as the process wide default device." in out
    assert "Build target: CPU-only" in out
    assert re.search(r"^Training \d+ parameters in \d+ parameter tensors\.$", out, re.M), out
    m = re.search(r"^rank 0 of 1 on \S+: data directory (\S+): (.*)$", out, re.M)
    assert m, out
    assert m.group(1).startswith("/mnt/batch/tasks/shared/LS_root/jobs/")
    assert m.group(1).endswith("/mounts/data/mnist_cntk")
    assert m.group(2) == "Test-28x28_cntk_text.txt Train-28x28_cntk_text.txt"
    epochs = re.findall(
        r"^Finished Epoch\[(\d+) of 10\]: \[Training\] loss = \S+ \* 500, metric = \S+% \* 500", out, re.M
    )
    assert epochs == [str(i) for i in range(1, 11)], out
    assert evaluation_error(out) < 20  # it really learned (chance: 90%)

    assert sorted(seed_run.models) == MODELS
    with urllib.request.urlopen(seed_run.models["ConvNet_MNIST_9.dnn"]["downloadUrl"]) as r:
        downloaded = r.read()
    assert len(downloaded) == seed_run.models["ConvNet_MNIST_9.dnn"]["contentLength"] > 1000


def on_share(url: str) -> Path:
    """Where a file that `job file list` gives a download URL for is in the Azure Files double's tree."""
    account, share, path = urllib.parse.urlparse(url).path.lstrip("/").split("/", 2)
    return share_path(account, share, path)


def test_the_model_the_job_wrote_loads_in_cntk_and_beats_chance(
    seed_run: Run, deployed: Path, module_namespace: str, core_v1: client.CoreV1Api
) -> None:
    """cntk.load_model on ConvNet_MNIST_9.dnn, as the job left it on the logs share, in a pod of the CNTK
    image on a real node (the share's directory, the test set and the script as read-only host paths:
    the real nodes run on this machine); every test sample is evaluated."""
    ns, name = module_namespace, "evaluate-model"
    model = on_share(seed_run.models["ConvNet_MNIST_9.dnn"]["downloadUrl"])
    assert model.is_file(), model

    def host_dir(volume: str, path: Path) -> dict[str, Any]:
        return {"name": volume, "hostPath": {"path": str(path), "type": "Directory"}}

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"kubernetes.azure.com/agentpool": "real"},
            "tolerations": [{"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
            "containers": [
                {
                    "name": "evaluate",
                    "image": CNTK_IMAGE,
                    "command": ["python", "-W", "ignore", f"/eval/{EVALUATE.name}"],
                    "args": [f"/model/{model.name}", "/data/Test-28x28_cntk_text.txt"],
                    "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                    "volumeMounts": [
                        {"name": "model", "mountPath": "/model", "readOnly": True},
                        {"name": "data", "mountPath": "/data", "readOnly": True},
                        {"name": "eval", "mountPath": "/eval", "readOnly": True},
                    ],
                }
            ],
            "volumes": [
                host_dir("model", model.parent),
                host_dir("data", deployed),
                host_dir("eval", EVALUATE.parent),
            ],
        },
    }
    core_v1.create_namespaced_pod(ns, pod)

    def ended() -> client.V1Pod | None:
        p = core_v1.read_namespaced_pod(name, ns)
        return p if p.status.phase in ("Succeeded", "Failed") else None

    ended_pod = wait_for(ended, timeout=180, interval=1, what=f"pod {ns}/{name} to end")
    logs = core_v1.read_namespaced_pod_log(name, ns)
    print(f"--- {name} on {ended_pod.spec.node_name} ({CNTK_IMAGE})\n{logs}")
    assert ended_pod.spec.node_name in REAL_NODES
    assert ended_pod.status.phase == "Succeeded", logs
    assert f"loaded /model/{model.name}: input features (1, 28, 28), output (10,)" in logs
    m = re.search(r"^accuracy: (\d+) of (\d+) = (\S+)%$", logs, re.M)
    assert m, logs
    assert int(m.group(2)) == TEST_SAMPLES
    assert float(m.group(3)) > 80  # chance is 10%
    # The job's own evaluation of the same model agrees.
    assert float(m.group(3)) == pytest.approx(100 - evaluation_error(seed_run.streamed))


@pytest.fixture(scope="module")
def recorder(module_namespace: str) -> Iterator[PodRecorder]:
    rec = PodRecorder(module_namespace)
    yield rec
    rec.stop()


def test_the_seed_job_on_two_nodes_trains_data_parallel_across_both_real_nodes(
    seed_run: Run,
    module_namespace: str,
    storage: dict[str, str],
    recorder: PodRecorder,
    tmp_path: Path,
) -> None:
    """The seed's job.json with nodeCount 2 and processCount 2: the launcher's mpirun on node 0 starts one
    rank on each node over ssh, each reads its own partition of the training data, and CNTK's
    data_parallel_distributed_learner averages their gradients over Open MPI (TCP between the pods)."""
    ns = module_namespace
    job = json.loads((SEED / "job.json").read_text())
    job["properties"]["nodeCount"] = 2
    job["properties"]["cntkSettings"]["processCount"] = 2
    job_json = tmp_path / "job.json"
    job_json.write_text(json.dumps(job))
    run = run_job(ns, TWO_NODES, job_json, storage)

    tj = get_job(ns, TWO_NODES)
    assert tj["status"]["executionState"] == "succeeded"
    assert tj["status"]["executionInfo"]["exitCode"] == 0
    seen = wait_for(lambda: len(recorder.of_job(TWO_NODES)) == 2 and recorder.of_job(TWO_NODES), timeout=10)
    assert {p.node for p in seen.values()} == set(REAL_NODES), "one pod on each real node"
    out = run.streamed
    # CNTK's MPI layer saw both ranks, on different hosts.
    for rank in (0, 1):
        assert (
            "requestnodes [MPIWrapperMpi]: using 2 out of 2 MPI nodes on multiple hosts (2 requested); "
            f"we ({rank}) are in (participating)"
        ) in out
    samples, checksums = {}, {}
    for rank in (0, 1):
        # mpirun merged both ranks' output into node 0's stderr.txt; each rank names its own pod.
        assert re.search(rf"^rank {rank} of 2 on {TWO_NODES}-{rank}: data directory ", out, re.M), out
        m = re.search(
            rf"^rank {rank} of 2: trained on (\d+) samples of its partition; parameter checksum (\S+)$",
            out,
            re.M,
        )
        assert m, out
        samples[rank], checksums[rank] = int(m.group(1)), m.group(2)
    assert samples[0] > 0 and samples[1] > 0, "each rank trained on its own part of the data"
    assert samples[0] + samples[1] == 10 * 500, "together 10 epochs of the 500 training samples"
    assert checksums[0] == checksums[1], "both ranks end with the same weights"
    assert "Finished Epoch[10 of 10]: [Training] loss = " in out  # sample counts are over both ranks
    assert evaluation_error(out) < 20
    assert sorted(run.models) == MODELS
