"""The seed's quickstart end to end on a real node: every `az batchai` command line of the seed, verbatim
with `kubectl batchai` for `az batchai` (what `make demo` runs), its CNTK script
(examples/cntk-mnist/ConvNet_MNIST.py) on the `scripts` share and a generated MNIST-like data set in the
`data` container, the seed's job.json with the storage account's name filled in (as the seed tells its
reader to), stderr.txt streamed while CNTK trains, the CNTK model files listed with URLs that download
them, and the output path segment. The job runs in the CNTK image (cntk-cpu: CNTK 2.7 from PyPI), the dev
cluster's image for the cntk toolkit. Then the model the job wrote is loaded with `cntk.load_model` in a
pod of that image on a real node and evaluated on the test set; and the same job.json with two nodes and
two MPI ranks trains data-parallel across real-0 and real-1.

The shares are the Azure Files double's directories (bind-mounted into the pods, served by its REST
double); the container is Azurite's, mounted with FUSE. The seed's workspace is `quickstart`: the e2e
operator serves that namespace too (conftest.py).
"""

from __future__ import annotations

import json
import os
import re
import shlex
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
from jobs import get_trainingjob
from kubernetes import client

from doubles.azure_files import AzureFilesDouble
from storage_services import Blob, running_azurite

from .realnodes import LOCAL_IMAGES, REAL_NODES, REAL_POOL, PodRecorder, cluster_body, share_path

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "cntk-mnist"
EVALUATE = Path(__file__).parent / "jobs" / "evaluate_cntk_model.py"
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
TWO_NODES = "cntk-2-nodes"
CNTK_IMAGE = LOCAL_IMAGES["cntk"]
TEST_SAMPLES = 100  # make_mnist_like.py's default test set
MODELS = sorted(f"ConvNet_MNIST_{i}.dnn" for i in range(10))


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


def _exists(core_v1: client.CoreV1Api) -> bool:
    try:
        core_v1.read_namespace(WORKSPACE)
    except client.ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _delete_workspace(core_v1: client.CoreV1Api) -> None:
    try:
        core_v1.delete_namespace(WORKSPACE)
    except client.ApiException as exc:
        if exc.status == 404:
            return
        raise
    wait_for(lambda: not _exists(core_v1), timeout=180, what=f"namespace {WORKSPACE} deleted")


@dataclass(frozen=True)
class SeedRun:
    seed: list[subprocess.CompletedProcess[str]]  # in SEED_LINES' order
    checks: list[subprocess.CompletedProcess[str]]  # `job show` of the job's state, `job node list`
    data: Path  # the generated data set, as uploaded to data/mnist_cntk
    account: str
    key: str

    @property
    def streamed(self) -> str:
        """`job file stream -f stderr.txt`: what the script and CNTK wrote while it trained."""
        return self.seed[4].stdout

    @property
    def models(self) -> dict[str, dict[str, Any]]:
        """`job file list -d MODEL` by name."""
        return {f["name"]: f for f in json.loads(self.seed[5].stdout)}


@pytest.fixture(scope="module")
def seed_run(
    core_v1: client.CoreV1Api,
    operator: object,
    storage: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SeedRun]:
    """The seed's command lines, run once for this module's tests, in a `quickstart` workspace of their
    own (a demo run may have left one: deleted before, and after)."""
    _delete_workspace(core_v1)
    work = tmp_path_factory.mktemp("seed")
    blob = running_azurite()
    deploy_data(blob, work / "data")
    # The reader's job.json: the seed's, with their storage account's name in it.
    job_json = (SEED / "job.json").read_text().replace("<YOUR_STORAGE_ACCOUNT>", blob.account)
    (work / "job.json").write_text(job_json)
    # As a user who is not logged in to Azure gives az the key; Standard_NC6 (retired) is mapped to the
    # dev cluster's GPU pool, as an AKS user maps it to theirs.
    env = {
        **storage,
        "AZURE_BATCHAI_STORAGE_KEY": blob.key,
        "BATCHAI_VM_SIZE_POOLS": f"Standard_NC6={REAL_POOL}",
    }
    transcript: list[str] = []
    seed: list[subprocess.CompletedProcess[str]] = []
    for line in SEED_LINES:
        line = line.replace("<storage account name>", blob.account)
        proc = run(shlex.split(line), env, work)
        transcript += [f"$ {line}", proc.stderr.rstrip(), proc.stdout.rstrip()]
        seed.append(proc)
        assert proc.returncode == 0, "\n".join(transcript)
    query = "{name: name, kubernetesName: kubernetesName, executionState: executionState, "
    query += "exitCode: executionInfo.exitCode}"
    checks = []
    for argv in (
        ["kubectl", "batchai", "job", "show", "-n", "cntk_python_1", "-w", WORKSPACE, "--query", query],
        ["kubectl", "batchai", "job", "node", "list", "-j", "cntk_python_1", "-w", WORKSPACE, "-o", "table"],
    ):
        proc = run(argv, env, work)
        transcript += [f"$ {shlex.join(argv)}", proc.stderr.rstrip(), proc.stdout.rstrip()]
        checks.append(proc)
    print("\n".join(t for t in transcript if t))
    yield SeedRun(seed, checks, work / "data", blob.account, blob.key)
    _delete_workspace(core_v1)


def evaluation_error(text: str) -> float:
    """The test-set error CNTK's ProgressPrinter reported, in percent."""
    m = re.search(
        rf"^Finished Evaluation \[1\]: Minibatch\[1-\d+\]: metric = (\S+)% \* {TEST_SAMPLES};$", text, re.M
    )
    assert m, text
    return float(m.group(1))


def test_the_seed_command_lines_verbatim_train_with_cntk_on_a_real_node(seed_run: SeedRun) -> None:
    workspace_create, cluster_create, _, job_create, _, _, job_show = seed_run.seed

    # The job succeeded, on a real node, under its Batch AI name.
    job = json.loads(seed_run.checks[0].stdout)
    nodes = seed_run.checks[1].stdout.splitlines()[2:]
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
    assert seed_run.key not in json.dumps(created)

    # stderr.txt, streamed until the job ended: CNTK's own output (its device choice, its build, its
    # parameter count, its ProgressPrinter's lines) and the script's.
    out = seed_run.streamed
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

    models = seed_run.models
    assert sorted(models) == MODELS
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


def on_share(url: str) -> Path:
    """Where a file that `job file list` gives a download URL for is in the Azure Files double's tree."""
    account, share, path = urllib.parse.urlparse(url).path.lstrip("/").split("/", 2)
    return share_path(account, share, path)


def test_the_model_the_job_wrote_loads_in_cntk_and_beats_chance(
    seed_run: SeedRun, module_namespace: str, core_v1: client.CoreV1Api
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
            "nodeSelector": {"kubernetes.azure.com/agentpool": REAL_POOL},
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
                host_dir("data", seed_run.data),
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
    seed_run: SeedRun,
    module_namespace: str,
    storage: dict[str, str],
    recorder: PodRecorder,
    tmp_path: Path,
) -> None:
    """The seed's job.json with nodeCount 2 and processCount 2, in a workspace of its own on a cluster
    that requests no GPUs (so it may run beside another job): the launcher's mpirun on node 0 starts one
    rank on each node over ssh, each reads its own partition of the training data (the seed's, already
    deployed), and CNTK's data_parallel_distributed_learner averages their gradients over Open MPI (TCP
    between the pods)."""
    ns = module_namespace
    client.CustomObjectsApi().create_namespaced_custom_object(
        "batchai.io", "v1alpha1", ns, "batchaiclusters", cluster_body(ns, "nc6", gpus=False)
    )
    job = json.loads((SEED / "job.json").read_text().replace("<YOUR_STORAGE_ACCOUNT>", seed_run.account))
    job["properties"]["nodeCount"] = 2
    job["properties"]["cntkSettings"]["processCount"] = 2
    (tmp_path / "job.json").write_text(json.dumps(job))
    env = {**storage, "AZURE_BATCHAI_STORAGE_KEY": seed_run.key}

    def batchai(args: str) -> subprocess.CompletedProcess[str]:
        proc = run(["kubectl", "batchai", *shlex.split(args)], env, tmp_path)
        assert proc.returncode == 0, f"kubectl batchai {args}\n{proc.stderr}{proc.stdout}"
        return proc

    batchai(f"job create -n {TWO_NODES} -c nc6 -w {ns} -e quickstart -f job.json")
    # mpirun merges both ranks' output into node 0's stderr.txt, streamed until the job ends.
    out = batchai(f"job file stream -j {TWO_NODES} -w {ns} -f stderr.txt").stdout
    print(f"--- {TWO_NODES}: stderr.txt\n{out}")
    batchai(f"job wait -n {TWO_NODES} -w {ns}")
    listed = batchai(f"job file list -j {TWO_NODES} -d MODEL -w {ns}")

    tj = get_trainingjob(ns, TWO_NODES)
    assert tj["status"]["executionState"] == "succeeded"
    assert tj["status"]["executionInfo"]["exitCode"] == 0
    seen = wait_for(lambda: len(recorder.of_job(TWO_NODES)) == 2 and recorder.of_job(TWO_NODES), timeout=10)
    print("\n".join(f"pod {p.name} (node index {p.index}) on {p.node}, {p.ip}" for p in seen.values()))
    assert {p.node for p in seen.values()} == set(REAL_NODES), "one pod on each real node"
    # CNTK's MPI layer saw both ranks, on different hosts.
    for rank in (0, 1):
        assert (
            "requestnodes [MPIWrapperMpi]: using 2 out of 2 MPI nodes on multiple hosts (2 requested); "
            f"we ({rank}) are in (participating)"
        ) in out
    samples, checksums = {}, {}
    for rank in (0, 1):
        # Each rank names its own pod.
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
    assert sorted(f["name"] for f in json.loads(listed.stdout)) == MODELS
