"""`kubectl batchai` end to end: the real `kubectl` runs the plugin against the local control plane and
the operator; job files are read from Azurite (blob) and the Azure Files double. kwok's pods do not
write files, so the tests write them where the job would (under the job's storage location), as the
job's mounts would have.

Walks the seed quickstart's steps after cluster creation, then `job wait`'s exit codes, streaming a
running job's stdout (share and blob), terminate, resize/auto-scale, the errors users hit, a caller who
may not read Secrets, and an Azure login (workload identity) with user-delegation download URLs.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import ssl
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest
from devcluster import wait_for
from jobs import get_trainingjob, patch_trainingjob, wait_state
from kubernetes import client

from batchai_operator.api import TrainingJobSpec
from batchai_operator.config import DEFAULT_IMAGES, IMAGE_CONTENTS
from batchai_operator.manifests.paths import identity
from batchai_operator.storage.locations import StorageLocation, directory_location
from doubles.arm_agentpools import ArmAgentPoolsDouble
from doubles.azure_files import AzureFilesDouble
from storage_services import Blob

REPO = Path(__file__).resolve().parents[2]
SEED_JOB = REPO / "examples" / "cntk-mnist" / "job.json"
SEED_CLUSTER = REPO / "examples" / "cntk-mnist" / "cluster.json"
BIN = str(Path(sys.executable).parent)  # where pip put kubectl-batchai

pytestmark = pytest.mark.integration


def cli_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """kubectl finds the plugin on PATH, as for a user; keys only from what the test passes."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    return {**base, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", **(env or {})}


def cli(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    check: bool = False,
    stdin_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`kubectl batchai ARGS` (no terminal: stdin is empty, or `stdin_text`)."""
    proc = subprocess.run(
        ["kubectl", "batchai", *args],
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin_text if stdin_text is not None else "",
    )
    if check:
        assert proc.returncode == 0, f"kubectl batchai {' '.join(args)}: rc {proc.returncode}\n{proc.stderr}"
    return proc


def storage_env(blob: Blob, files: AzureFilesDouble | None = None) -> dict[str, str]:
    out = {"BATCHAI_STORAGE_BLOB_ENDPOINT": blob.endpoint}
    if files is not None:
        out["BATCHAI_STORAGE_FILE_ENDPOINT"] = files.endpoint
    return out


def location(ns: str, name: str, directory: str) -> StorageLocation:
    """Where the job writes `directory`, as `job file list` and status resolve it."""
    obj = get_trainingjob(ns, name)
    spec = TrainingJobSpec.model_validate(obj["spec"])
    return directory_location(directory, spec, None, identity(obj, spec))


def create_seed_job(
    ns: str, name: str, blob: Blob, *annotations: str, job_file: Path = SEED_JOB, extra: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    args = ["job", "create", "-f", str(job_file), "-n", name, "-c", "nc6", "-e", "quickstart", "-w", ns]
    args += ["--placeholder", f"YOUR_STORAGE_ACCOUNT={blob.account}", *extra]
    for a in annotations:
        args += ["--annotation", a]
    return cli(*args, env={"AZURE_BATCHAI_STORAGE_KEY": blob.key}, check=True)


def create_cluster(ns: str) -> subprocess.CompletedProcess[str]:
    """The seed's `cluster create -n nc6 -s Standard_NC6 -t 1`: the dev cluster's fake nodes are NC6."""
    args = ["-n", "nc6", "-s", "Standard_NC6", "-w", ns, "-o", "table"]
    return cli("cluster", "create", "-f", str(SEED_CLUSTER), *args, check=True)


def fetch(url: str, ca: Path | None = None) -> bytes:
    ctx = ssl.create_default_context(cafile=str(ca)) if ca else None
    with urllib.request.urlopen(url, context=ctx) as r:
        return bytes(r.read())


# ---- the seed quickstart, after cluster creation ----------------------------------------------------


def test_seed_quickstart_steps_with_kubectl_batchai_alone(
    operator: object, namespace: str, azurite: Blob, files_double: AzureFilesDouble
) -> None:
    ns, acct = namespace, azurite.account
    env = storage_env(azurite, files_double)
    created = create_cluster(ns)
    # NC6 is retired on Azure: still served, with one warning naming today's nearest size.
    assert created.stderr.count("retired") == 1 and "Standard_NC4as_T4_v3" in created.stderr, created.stderr
    shown = json.loads(cli("cluster", "show", "-n", "nc6", "-w", ns, check=True).stdout)
    assert shown["vmSize"] == "Standard_NC6" and shown["scaleSettings"]["manual"]["targetNodeCount"] == 1
    assert "nc6" in cli("cluster", "list", "-w", ns, check=True).stdout

    # The storage the seed creates with az storage: shares logs and scripts, container data.
    for share in ("logs", "scripts"):
        files_double.create_share(acct, share)
    files_double.write(acct, "scripts", "cntk/ConvNet_MNIST.py", b"# the training script\n")
    azurite.container("data")

    created = create_seed_job(ns, "cntk-python-1", azurite, "sim.batchai.io/run-for=4s")
    assert f"Job cntk-python-1 created in workspace {ns}" in created.stderr
    assert created.stdout.lstrip().startswith("{"), "az printed the created job as JSON"
    # The storage key went into a Secret owned by the job, never into the job.
    tj = get_trainingjob(ns, "cntk-python-1")
    assert azurite.key not in json.dumps(tj)
    secret = client.CoreV1Api().read_namespaced_secret("cntk-python-1-storage-devstoreaccount1", ns)
    assert secret.metadata.owner_references[0].uid == tj["metadata"]["uid"]

    experiments = cli("experiment", "list", "-w", ns, "-o", "table", check=True).stdout
    assert experiments.splitlines()[2].split()[:3] == ["quickstart", ns, "1"]
    workspaces = json.loads(cli("workspace", "list", "-o", "json", check=True).stdout)
    assert {"name": ns, "clusters": 1, "experiments": 1, "jobs": 1} in workspaces

    waited = cli("job", "wait", "-n", "cntk-python-1", "-w", ns, "--interval", "1")
    assert waited.returncode == 0, waited.stderr
    assert "Job state: succeeded" in waited.stderr and "Job completed at" in waited.stderr

    listed = cli("job", "list", "-w", ns, "-o", "table", check=True).stdout.splitlines()
    assert listed[0].split() == [
        "Name",
        "Kubernetes",
        "Name",
        "Cluster",
        "Workspace",
        "Experiment",
        "Tool",
        "Nodes",
        "State",
        "Exit",
        "code",
    ]
    assert listed[2].split() == [
        "cntk-python-1", "cntk-python-1", "nc6", ns, "quickstart", "cntk", "1", "succeeded", "0"
    ]  # fmt: skip
    segment = json.loads(
        cli(
            "job",
            "show",
            "-n",
            "cntk-python-1",
            "-w",
            ns,
            "--query",
            "jobOutputDirectoryPathSegment",
            check=True,
        ).stdout
    )
    assert segment == f"{ns}/quickstart/cntk-python-1/{tj['metadata']['uid']}"
    # Where is my model: job show says which account, share and path hold each directory.
    shown_job = json.loads(cli("job", "show", "-n", "cntk-python-1", "-w", ns, check=True).stdout)
    assert shown_job["outputDirectories"][0]["storage"] == {
        "accountName": acct, "shareName": "logs", "path": f"{segment}/outputs"
    }  # fmt: skip
    assert shown_job["stdOutErrStorage"] == {
        "accountName": acct,
        "shareName": "logs",
        "path": f"{segment}/stdouterr",
    }
    # The image the job ran: the seed's job has no containerSettings, so cntk's default, stated.
    assert shown_job["image"] == DEFAULT_IMAGES["cntk"]
    assert shown_job["imageContents"] == IMAGE_CONTENTS[DEFAULT_IMAGES["cntk"]]
    nodes = json.loads(
        cli("job", "node", "list", "-j", "cntk-python-1", "-w", ns, "-o", "json", check=True).stdout
    )
    assert [(n["nodeIndex"], n["state"], n["exitCode"]) for n in nodes] == [(0, "Succeeded", 0)]
    assert nodes[0]["nodeName"].startswith("aks-nc6pool-")

    # What the job wrote: stdout/stderr and two models in MODEL, on the logs share.
    std = location(ns, "cntk-python-1", "stdouterr")
    model = location(ns, "cntk-python-1", "MODEL")
    assert (std.container, model.container) == ("logs", "logs")
    files_double.write(
        acct, "logs", f"{std.path}/stdout.txt", b"Final Results: Minibatch[1-11]: errs = 0.62%\n"
    )
    files_double.write(acct, "logs", f"{std.path}/stderr.txt", b"Selected GPU[0] Tesla K80\n")
    weights = {f"ConvNet_MNIST_{i}.dnn": os.urandom(4096 + i) for i in range(2)}
    for file_name, data in weights.items():
        files_double.write(acct, "logs", f"{model.path}/{file_name}", data)

    models = json.loads(
        cli("job", "file", "list", "-j", "cntk-python-1", "-w", ns, "-d", "MODEL", env=env, check=True).stdout
    )
    assert [m["name"] for m in models] == sorted(weights)
    for m in models:
        assert m["fileType"] == "file" and m["contentLength"] == len(weights[m["name"]])
        assert "sp=r" in m["downloadUrl"] and fetch(m["downloadUrl"]) == weights[m["name"]]
    table = cli(
        "job", "file", "list", "-j", "cntk-python-1", "-w", ns, "-o", "table", env=env, check=True
    ).stdout
    assert [line.split()[:3] for line in table.splitlines()[2:]] == [
        ["stderr.txt", "file", "26"],
        ["stdout.txt", "file", "45"],
    ]
    # A finished job's file streams whole (the tail read after the end) and the stream ends.
    streamed = cli(
        "job", "file", "stream", "-j", "cntk-python-1", "-w", ns, "-f", "stdout.txt", env=env, check=True
    )
    assert streamed.stdout == "Final Results: Minibatch[1-11]: errs = 0.62%\n"

    deleted = cli("job", "delete", "-n", "cntk-python-1", "-w", ns, "-y", check=True)
    assert "Job cntk-python-1 deleted" in deleted.stderr
    wait_for(
        lambda: (
            not client.CoreV1Api()
            .list_namespaced_secret(ns, label_selector="batchai.io/job=cntk-python-1")
            .items
        ),
        timeout=60,
        what="the job's Secret garbage-collected",
    )


# ---- job wait's exit codes ------------------------------------------------------------------------


def test_job_wait_exits_with_the_jobs_exit_code(operator: object, namespace: str, azurite: Blob) -> None:
    create_cluster(namespace)
    args = ["job", "create", "-f", str(SEED_JOB), "-n", "fails", "-c", "nc6", "-w", namespace, "--wait"]
    args += ["--interval", "1", "--placeholder", f"YOUR_STORAGE_ACCOUNT={azurite.account}"]
    args += ["--annotation", "sim.batchai.io/exit-code=3", "--annotation", "sim.batchai.io/run-for=2s"]
    proc = cli(*args, env={"AZURE_BATCHAI_STORAGE_KEY": azurite.key})
    assert proc.returncode == 3, proc.stderr
    assert f'The job "fails" in workspace "{namespace}" failed.' in proc.stderr
    assert "Job failed with exit code 3 at" in proc.stderr
    assert "Error message: JobFailed: Job failed with non-zero exit code" in proc.stderr
    again = cli("job", "wait", "-n", "fails", "-w", namespace)
    assert again.returncode == 3


def test_terminate_then_wait_never_exits_0(operator: object, namespace: str, azurite: Blob) -> None:
    create_cluster(namespace)
    create_seed_job(namespace, "long", azurite, "sim.batchai.io/run-for=300s")
    wait_state(namespace, "long", "running", timeout=60)
    term = cli("job", "terminate", "-n", "long", "-w", namespace, "-y")
    assert term.returncode == 0, term.stderr
    assert "Job long terminated: failed" in term.stderr
    status = get_trainingjob(namespace, "long")["status"]
    assert status["executionInfo"]["errors"][0]["code"] == "JobTerminated"
    waited = cli("job", "wait", "-n", "long", "-w", namespace)
    assert waited.returncode == 255, "a failed job without an exit code exits as az's -1 did, not 0"
    assert "Error message: JobTerminated" in waited.stderr
    assert "already failed" in cli("job", "terminate", "-n", "long", "-w", namespace, check=True).stderr


# ---- a second run: stream stdout while the job runs ---------------------------------------------


def blob_logs_job(tmp_path: Path) -> Path:
    """The seed job with its logs on a blob container (mounted at bfs), as CLIREC's job did."""
    doc = json.loads(SEED_JOB.read_text())
    props = doc["properties"]
    props["stdOutErrPathPrefix"] = "$AZ_BATCHAI_JOB_MOUNT_ROOT/bfs/logs"
    props["mountVolumes"]["azureBlobFileSystems"].append(
        {"accountName": "<YOUR_STORAGE_ACCOUNT>", "containerName": "joblogs", "relativeMountPath": "bfs"}
    )
    path = tmp_path / "job.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("kind", ["file", "blob"])
def test_second_run_streams_stdout_while_the_job_runs(
    operator: object, namespace: str, azurite: Blob, files_double: AzureFilesDouble, tmp_path: Path, kind: str
) -> None:
    acct = azurite.account
    create_cluster(namespace)
    files_double.create_share(acct, "logs")
    azurite.container("joblogs")
    job_file = SEED_JOB if kind == "file" else blob_logs_job(tmp_path)
    # The job runs until the test ends it (terminate) right after its last line, so that line lands
    # just before the end, where az's stream lost it.
    create_seed_job(namespace, "run2", azurite, "sim.batchai.io/run-for=600s", job_file=job_file)
    std = location(namespace, "run2", "stdouterr")
    assert std.kind == kind
    lines = [f"Finished Epoch[{i} of 4]: [Training] loss = 0.{i:04d}\n" for i in range(1, 5)]
    last = "Final Results: Minibatch[1-11]: errs = 0.62%\n"
    blob = azurite.service().get_blob_client("joblogs", f"{std.path}/stdout.txt")
    written: list[str] = []

    def write_as_the_job_would(line: str) -> None:
        written.append(line)
        if kind == "file":
            files_double.write(acct, "logs", f"{std.path}/stdout.txt", line.encode(), append=True)
        else:
            blob.upload_blob("".join(written).encode(), overwrite=True)  # blobfuse uploads on flush

    # No key in the environment: the stream reads the key from the job's Secret.
    proc = subprocess.Popen(
        ["kubectl", "batchai", "job", "file", "stream", "-j", "run2", "-w", namespace, "-f", "stdout.txt"],
        env=cli_env(storage_env(azurite, files_double)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    received: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(target=lambda: [received.put(x) for x in proc.stdout or []], daemon=True)
    reader.start()
    try:
        wait_state(namespace, "run2", "running", timeout=120)
        for line in lines:
            write_as_the_job_would(line)
            # Each line shows up while the job runs, before the next one is written.
            assert received.get(timeout=90) == line
        write_as_the_job_would(last)
        patch_trainingjob(namespace, "run2", {"spec": {"terminate": True}})
        proc.wait(timeout=180)
    finally:
        proc.kill()
    err = proc.stderr.read() if proc.stderr else ""
    reader.join(10)
    assert proc.returncode == 0, err
    assert received.get(timeout=5) == last, "the tail written as the job ended was read after the end"
    assert get_trainingjob(namespace, "run2")["status"]["executionState"] == "failed"
    assert 'File "stdout.txt" found in' in err
    if kind == "file":
        reads = [r for r in files_double.recorded() if r.method == "GET" and r.path.endswith("stdout.txt")]
        assert len(reads) >= 5 and all(r.range for r in reads), "followed with ranged reads"


# ---- clusters -------------------------------------------------------------------------------------


def test_cluster_resize_and_auto_scale(operator: object, namespace: str) -> None:
    create_cluster(namespace)
    resized = cli("cluster", "resize", "-n", "nc6", "-t", "3", "-w", namespace, "-o", "json", check=True)
    assert json.loads(resized.stdout)["scaleSettings"] == {
        "manual": {"targetNodeCount": 3, "nodeDeallocationOption": "requeue"}
    }
    auto = cli(
        "cluster", "auto-scale", "-n", "nc6", "--min", "0", "--max", "4", "-w", namespace, "-o", "json"
    )
    assert json.loads(auto.stdout)["scaleSettings"] == {
        "autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 4}
    }
    bad = cli("cluster", "auto-scale", "-n", "nc6", "--min", "5", "--max", "2", "-w", namespace)
    assert (bad.returncode, bad.stderr.strip()) == (1, "error: --min 5 is larger than --max 2")
    missing = cli("cluster", "resize", "-n", "nope", "-t", "1", "-w", namespace)
    assert missing.stderr.strip() == f"error: BatchAICluster nope not found in workspace {namespace}"
    assert missing.returncode == 3  # az's exit code for a resource that does not exist


# ---- errors users hit: one line each --------------------------------------------------------------


def test_errors_users_hit_are_one_clear_line(
    operator: object, namespace: str, azurite: Blob, files_double: AzureFilesDouble, tmp_path: Path
) -> None:
    ns = namespace
    env = storage_env(azurite, files_double)

    def error(*args: str, extra: dict[str, str] | None = None, code: int = 1) -> str:
        proc = cli(*args, "-w", ns, env={**env, **(extra or {})})
        assert proc.returncode == code, proc.stdout + proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
        return lines[0]

    assert (
        error("job", "show", "-n", "nope", code=3) == f"error: TrainingJob nope not found in workspace {ns}"
    )
    assert (
        error("job", "file", "list", "-j", "nope", code=3)
        == f"error: TrainingJob nope not found in workspace {ns}"
    )

    create_cluster(ns)
    files_double.create_share(azurite.account, "logs")
    create_seed_job(ns, "e1", azurite, "sim.batchai.io/run-for=1s")
    wait_state(ns, "e1", "succeeded", timeout=60)
    assert 'the job succeeded without writing "stdout.txt"' in error(
        "job", "file", "stream", "-j", "e1", "-f", "stdout.txt"
    )
    assert "no output directory 'model' (known: stdouterr, MODEL)" in error(
        "job", "file", "list", "-j", "e1", "-d", "model"
    )
    unreachable = error(
        "job",
        "file",
        "list",
        "-j",
        "e1",
        extra={"BATCHAI_STORAGE_FILE_ENDPOINT": "http://127.0.0.1:9/{account}"},
    )
    assert "storage unreachable" in unreachable
    files_double.set_keys(azurite.account, [base64.b64encode(b"rotated").decode()])
    refused = error("job", "file", "list", "-j", "e1")
    assert (
        f"refused the credentials from Secret {ns}/e1-storage-devstoreaccount1 (AuthenticationFailed)"
        in refused
    )

    # Output directories on no mount get az's error.
    doc = json.loads(SEED_JOB.read_text())
    doc["properties"]["stdOutErrPathPrefix"] = "$AZ_BATCHAI_JOB_TEMP_DIR"
    local = tmp_path / "local.json"
    local.write_text(json.dumps(doc))
    create_seed_job(ns, "e2", azurite, job_file=local)
    assert error("job", "file", "list", "-j", "e2").startswith(
        "error: The specified outputDirectoryId stdouterr is not present on a mount root:"
    )

    # A job whose Secret the user created elsewhere and is gone: no key anywhere, nobody at a terminal.
    create_seed_job(ns, "e3", azurite, extra=("--storage-secret", "shared-storage"))
    client.CoreV1Api().delete_namespaced_secret("shared-storage", ns)
    no_creds = error("job", "file", "list", "-j", "e3", "--auth-mode", "key")
    assert no_creds == (
        f"error: no credentials for storage account {azurite.account} (Secret {ns}/shared-storage does not "
        "exist): pass --storage-account-key-file or set AZURE_BATCHAI_STORAGE_KEY"
    )
    create_missing = cli("job", "create", "-f", str(SEED_JOB), "-n", "e4", "-c", "nc6", "-w", ns,
                         "--placeholder", f"YOUR_STORAGE_ACCOUNT={azurite.account}")  # fmt: skip
    assert create_missing.returncode == 1
    assert (
        "Secret" in create_missing.stderr and "does not exist and no key was given" in create_missing.stderr
    )
    refused_key = cli("job", "file", "list", "-j", "e1", "-w", ns, "--storage-account-key", "abc")
    assert (
        refused_key.returncode == 2 and "storage keys are not taken on the command line" in refused_key.stderr
    )


# ---- a caller who may not read Secrets ----------------------------------------------------------


def reader_kubeconfig(ns: str, tmp_path: Path) -> Path:
    """A kubeconfig for a ServiceAccount that may read TrainingJobs and BatchAIClusters, not Secrets."""
    core, rbac = client.CoreV1Api(), client.RbacAuthorizationV1Api()
    core.create_namespaced_service_account(ns, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(
        ns,
        {
            "metadata": {"name": "reader"},
            "rules": [
                {"apiGroups": ["batchai.io"], "resources": ["trainingjobs", "batchaiclusters"],
                 "verbs": ["get", "list", "watch"]},
            ],
        },
    )  # fmt: skip
    rbac.create_namespaced_role_binding(
        ns,
        {
            "metadata": {"name": "reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"},
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns}],
        },
    )
    token = subprocess.run(
        ["kubectl", "create", "token", "reader", "-n", ns], check=True, capture_output=True, text=True
    ).stdout.strip()
    admin = json.loads(
        subprocess.run(
            ["kubectl", "config", "view", "--raw", "-o", "json"], check=True, capture_output=True, text=True
        ).stdout
    )
    cluster = admin["clusters"][0]
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [cluster],
        "users": [{"name": "reader", "user": {"token": token}}],
        "contexts": [
            {"name": "reader", "context": {"cluster": cluster["name"], "user": "reader", "namespace": ns}}
        ],
        "current-context": "reader",
    }
    path = tmp_path / "reader.kubeconfig"
    path.write_text(json.dumps(config))
    return path


def test_a_caller_who_may_not_read_the_secret_gives_the_key_another_way(
    operator: object, namespace: str, azurite: Blob, files_double: AzureFilesDouble, tmp_path: Path
) -> None:
    create_cluster(namespace)
    files_double.create_share(azurite.account, "logs")
    create_seed_job(namespace, "shared", azurite, "sim.batchai.io/run-for=1s")
    wait_state(namespace, "shared", "succeeded", timeout=60)
    std = location(namespace, "shared", "stdouterr")
    files_double.write(azurite.account, "logs", f"{std.path}/stdout.txt", b"done\n")
    env = {**storage_env(azurite, files_double), "KUBECONFIG": str(reader_kubeconfig(namespace, tmp_path))}

    denied = cli("job", "file", "list", "-j", "shared", "--auth-mode", "key", env=env)
    assert denied.returncode == 1
    assert f"(you may not read Secret {namespace}/shared-storage-devstoreaccount1)" in denied.stderr

    key_file = tmp_path / "key"
    key_file.write_text(azurite.key)
    with_file = cli(
        "job", "file", "list", "-j", "shared", "--storage-account-key-file", str(key_file), env=env
    )
    assert with_file.returncode == 0, with_file.stderr
    (entry,) = json.loads(with_file.stdout)
    assert fetch(entry["downloadUrl"]) == b"done\n"
    with_env = cli("job", "file", "stream", "-j", "shared", "-f", "stdout.txt",
                   env={**env, "AZURE_BATCHAI_STORAGE_KEY": azurite.key})  # fmt: skip
    assert (with_env.returncode, with_env.stdout) == (0, "done\n")


# ---- an Azure login: workload identity, user-delegation SAS ---------------------------------------


def test_an_azure_login_lists_blob_outputs_with_user_delegation_urls(
    operator: object, namespace: str, azurite_oauth: Blob, tmp_path: Path
) -> None:
    doc = json.loads(SEED_JOB.read_text())
    props = doc["properties"]
    props["mountVolumes"]["azureBlobFileSystems"].append(
        {"accountName": "<YOUR_STORAGE_ACCOUNT>", "containerName": "models", "relativeMountPath": "bfs"}
    )
    props["outputDirectories"].append(
        {"id": "BLOBS", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/bfs", "pathSuffix": "m"}
    )
    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(doc))
    create_cluster(namespace)
    create_seed_job(namespace, "login", azurite_oauth, "sim.batchai.io/run-for=1s", job_file=job_file)
    out = location(namespace, "login", "BLOBS")
    assert (out.kind, out.container, out.path.endswith("/outputs/m")) == ("blob", "models", True)
    azurite_oauth.container("models")
    azurite_oauth.service().get_blob_client("models", f"{out.path}/model.onnx").upload_blob(b"onnx bytes")

    with ArmAgentPoolsDouble(tmp_path / "entra") as entra:
        bundle = tmp_path / "ca-bundle.pem"
        assert azurite_oauth.ca_file is not None
        bundle.write_bytes(entra.ca_file.read_bytes() + azurite_oauth.ca_file.read_bytes())
        env = {k: v for k, v in entra.env().items() if k != "BATCHAI_ARM_ENDPOINT"}
        env.update({"SSL_CERT_FILE": str(bundle), "REQUESTS_CA_BUNDLE": str(bundle)})
        env.update(storage_env(azurite_oauth))
        proc = cli(
            "job",
            "file",
            "list",
            "-j",
            "login",
            "-w",
            namespace,
            "-d",
            "BLOBS",
            "--auth-mode",
            "login",
            env=env,
        )
        assert proc.returncode == 0, proc.stderr
        token_requests = [r for r in entra.requests if r.path.endswith("/oauth2/v2.0/token")]
        assert token_requests and token_requests[0].body["scope"] == "https://storage.azure.com/.default"
    (entry,) = json.loads(proc.stdout)
    assert entry["name"] == "model.onnx" and "skoid=" in entry["downloadUrl"], "a user-delegation SAS"
    assert fetch(entry["downloadUrl"], azurite_oauth.ca_file) == b"onnx bytes"
