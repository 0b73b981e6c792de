"""Batch AI job.json files of every toolkit family, shaped like Batch AI's public recipes (job_files/,
written for these tests, not copied: CNTK BrainScript without languageType, CNTK over Intel MPI installed
by jobPreparation, distributed TensorFlow with a trailing comma, PyTorch Gloo, Caffe2 on a shared temp,
Chainer, Horovod, mpirun in a custom toolkit on the 2017 preview schema, Keras on TensorFlow, custom MPI,
Caffe).

Each one is converted with only the az placeholders filled, accepted by the apiserver (server-side dry
run), run by the operator on the local control plane (kwok) to success, and its pods get the environment
Batch AI gave (docs/migration.md): mount roots, temp, stdouterr, input/output directories, hostfile,
GPUs, host lists, TensorFlow and PyTorch variables, the jobPreparation, ssh between the nodes of every
multi-node job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from devcluster import wait_for
from jobs import (
    GROUP,
    VERSION,
    create_cluster,
    custom,
    get_trainingjob,
    task_files,
    trainingjob_pods,
    wait_state,
)
from kubernetes import client

from batchai_operator.api.trainingjob import TrainingJobSpec
from batchai_operator.cli.convert.document import Conversion, load_job_file
from batchai_operator.cli.convert.job import ConvertOptions, convert

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("operator")]

MOUNT_ROOT = "/mnt/batch/tasks/shared/LS_root/mounts"
JOB_TEMP_DIR = "/mnt/batch/tasks/shared/LS_root/jobs"
ACCOUNT = "fidelitystore"
KEY = "ZmlkZWxpdHktdGVzdC1rZXk="  # what a storage key looks like; the converter puts it in a Secret
# Clusters as the recipes' instructions made them: Standard_NC6 (1 GPU) with the shares the preview-era
# recipes mount at cluster level, and a 4-GPU size for the InfiniBand recipes.
CLUSTER_SHARES = ("external", "afs", "scriptsandoutputs")
CLUSTER_BLOBS = ("bfs", "data")
GPUS = {"nc6": 1, "nc24": 4}


# ---- the job files ---------------------------------------------------------------------------------
# tests/integration/job_files/<name>.json, as users kept them: 2018-05-01 or the 2017-09-01 preview schema,
# <AZURE_BATCHAI_STORAGE_ACCOUNT> placeholders, job- or cluster-level mounts. The TensorFlow one keeps the
# recipe's trailing comma after the last output directory (az's strict JSON would refuse it).
JOB_FILES = Path(__file__).with_name("job_files")
# The cluster each runs on: the InfiniBand recipes ran on 4-GPU nodes.
CLUSTER_OF = {"cntk-python-intelmpi": "nc24"}


@dataclass(frozen=True)
class Case:
    name: str
    text: str
    cluster: str


CASES = [Case(f.stem, f.read_text(), CLUSTER_OF.get(f.stem, "nc6")) for f in sorted(JOB_FILES.glob("*.json"))]


def test_every_toolkit_family_has_a_job_file() -> None:
    tools = {TrainingJobSpec.model_validate(convert_case(c).obj["spec"]).tool_type for c in CASES}
    assert tools == {
        "cntk", "tensorflow", "pytorch", "caffe", "caffe2", "chainer", "horovod", "mpi", "custom"
    }  # fmt: skip


def convert_case(case: Case, namespace: str | None = None, name: str | None = None) -> Conversion:
    """As `kubectl batchai job convert -f job.json -c <cluster> --storage-account-name/-key`: only the
    az placeholders are filled."""
    options = ConvertOptions(
        name=name or case.name,
        namespace=namespace,
        cluster=case.cluster,
        storage_account_name=ACCOUNT,
        storage_account_key=KEY,
    )
    return convert(load_job_file(case.text), options, {})


# ---- running a job file ------------------------------------------------------------------------------


@dataclass
class Ran:
    spec: TrainingJobSpec
    obj: dict[str, Any]
    pods: list[client.V1Pod]
    config_map: dict[str, str]


def create_clusters(namespace: str) -> None:
    """nc6 and nc24, with the cluster-level mounts of the preview-era recipes, and their storage Secret."""
    client.CoreV1Api().create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "cluster-storage"},
            "stringData": {"azurestorageaccountname": ACCOUNT, "azurestorageaccountkey": KEY},
        },
    )
    creds = {"secretRef": {"name": "cluster-storage"}}
    mounts = {
        "azureFileShares": [
            {
                "accountName": ACCOUNT,
                "azureFileUrl": f"https://{ACCOUNT}.file.core.windows.net/{share}",
                "credentials": creds,
                "relativeMountPath": share,
            }
            for share in CLUSTER_SHARES
        ],
        "azureBlobFileSystems": [
            {"accountName": ACCOUNT, "containerName": blob, "credentials": creds, "relativeMountPath": blob}
            for blob in CLUSTER_BLOBS
        ],
    }
    for name, size in (("nc6", "Standard_NC6"), ("nc24", "Standard_NC24")):
        create_cluster(namespace, name, vmSize=size, nodeSetup={"mountVolumes": mounts})


def run_job_file(namespace: str, case: Case, name: str | None = None, timeout: float = 120) -> Ran:
    """Convert, dry-run the TrainingJob on the apiserver, create everything and wait until the job
    succeeded."""
    name = name or case.name
    result = convert_case(case, namespace, name)
    for secret in result.secrets:
        client.CoreV1Api().create_namespaced_secret(namespace, secret)
    body = result.obj
    custom().create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", body, dry_run="All")
    custom().create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", body)
    spec = TrainingJobSpec.model_validate(body["spec"])
    pods = wait_for(
        lambda: (
            trainingjob_pods(namespace, name)
            if len(trainingjob_pods(namespace, name)) == spec.node_count
            else None
        ),
        timeout=60,
        what=f"{spec.node_count} pods of {name}",
    )
    obj = wait_state(namespace, name, "succeeded", timeout=timeout)
    return Ran(spec, obj, sorted(pods, key=lambda p: p.metadata.name), task_files(namespace, name))


def env_of(pod: client.V1Pod) -> dict[str, str]:
    """The container's literal variables (an empty value reads back as none: it is set to "")."""
    return {e.name: e.value or "" for e in pod.spec.containers[0].env if e.value_from is None}


def batchai_env_problems(ran: Ran, gpus: int) -> list[str]:
    """How the pods' environment differs from what Batch AI gave the job (empty: it does not)."""
    spec, meta, status = ran.spec, ran.obj["metadata"], ran.obj["status"]
    seg = f"{meta['namespace']}/{spec.experiment}/{meta['name']}/{meta['uid']}"
    problems: list[str] = []

    def check(env: dict[str, str], name: str, want: str | None, node: int) -> None:
        got = env.get(name)
        if (want is None and got is None) or (want is not None and got != want):
            problems.append(f"node {node}: {name}={got!r}, want {want if want is not None else 'set'}")

    hosts = (
        ["localhost"]
        if spec.node_count == 1
        else [f"{meta['name']}-{i}.{meta['name']}" for i in range(spec.node_count)]
    )
    for node, pod in enumerate(ran.pods):
        env = env_of(pod)
        check(env, "AZ_BATCHAI_MOUNT_ROOT", MOUNT_ROOT, node)
        check(
            env,
            "AZ_BATCHAI_JOB_MOUNT_ROOT",
            f"{JOB_TEMP_DIR}/{meta['namespace']}/{spec.experiment}/{meta['name']}/mounts",
            node,
        )
        check(env, "AZ_BATCHAI_JOB_TEMP_DIR", JOB_TEMP_DIR, node)
        if not env.get("AZ_BATCHAI_JOB_TEMP", "").startswith(JOB_TEMP_DIR + "/"):
            problems.append(f"node {node}: AZ_BATCHAI_JOB_TEMP={env.get('AZ_BATCHAI_JOB_TEMP')!r}")
        check(env, "AZ_BATCHAI_STDOUTERR_DIR", f"{spec.std_out_err_path_prefix}/{seg}/stdouterr", node)
        check(env, "AZ_BATCHAI_MPI_HOST_FILE", None, node)
        check(env, "AZ_BATCHAI_NUM_GPUS", str(gpus), node)
        check(env, "AZ_BATCH_HOST_LIST", ",".join(hosts), node)
        for d in spec.input_directories or []:
            check(env, f"AZ_BATCHAI_INPUT_{d.id}", d.path, node)
        for o in spec.output_directories or []:
            path = f"{o.path_prefix}/{seg}/outputs" + (f"/{o.path_suffix}" if o.path_suffix else "")
            check(env, f"AZ_BATCHAI_OUTPUT_{o.id}", path, node)
        for v in spec.environment_variables or []:
            check(env, v.name, v.value, node)
        if spec.job_preparation is not None:
            check(env, "BATCHAI_JOB_PREPARATION", spec.job_preparation.command_line, node)
        if spec.tensor_flow_settings is not None:
            # Batch AI's PS list is empty on a single node (no parameter server).
            check(env, "AZ_BATCHAI_PS_HOSTS", "" if spec.node_count == 1 else None, node)
            check(env, "AZ_BATCHAI_WORKER_HOSTS", None, node)
        if (p := spec.py_torch_settings) is not None:
            check(env, "AZ_BATCHAI_PYTORCH_BACKEND", p.communication_backend or "gloo", node)
            check(env, "AZ_BATCHAI_PYTORCH_INIT_METHOD", None, node)
        if spec.node_count > 1:
            # Password-less ssh between the nodes of every multi-node job, whatever the toolkit.
            check(env, "BATCHAI_SSH_DIR", None, node)
        else:
            check(env, "AZ_BATCHAI_SHARED_JOB_TEMP", None, node)
    # Per-task variables live in the tasks files: TF_CONFIG and AZ_BATCHAI_TASK_INDEX.
    tasks = "".join(text for key, text in ran.config_map.items() if key.startswith("tasks-"))
    if spec.tensor_flow_settings is not None and (
        "TF_CONFIG=" not in tasks or "AZ_BATCHAI_TASK_INDEX=" not in tasks
    ):
        problems.append("tasks files lack TF_CONFIG / AZ_BATCHAI_TASK_INDEX")
    if (spec.caffe2_settings or spec.py_torch_settings) and "AZ_BATCHAI_TASK_INDEX=" not in tasks:
        problems.append("tasks files lack AZ_BATCHAI_TASK_INDEX")
    if status.get("toolType") != spec.tool_type or status["executionInfo"].get("exitCode") != 0:
        problems.append(f"status: {status.get('toolType')} exit {status['executionInfo'].get('exitCode')}")
    return problems  # fmt: skip


# ---- tests -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_job_file_runs_as_batch_ai_ran_it(namespace: str, case: Case) -> None:
    create_clusters(namespace)
    ran = run_job_file(namespace, case)
    assert batchai_env_problems(ran, GPUS[case.cluster]) == []
    if ran.spec.node_count > 1:
        # The job's ssh key pair: `<job>-ssh-<uid prefix>`, so a re-created job never reuses an old key.
        secrets = client.CoreV1Api().list_namespaced_secret(namespace).items
        assert [s for s in secrets if s.metadata.name.startswith(f"{case.name}-ssh-")], "no ssh Secret"


def test_brainscript_without_language_type_runs_cntk(namespace: str) -> None:
    create_clusters(namespace)
    (case,) = [c for c in CASES if c.name == "cntk-brainscript"]
    ran = run_job_file(namespace, case, "bs")
    assert "languageType" not in get_trainingjob(namespace, "bs")["spec"]["cntkSettings"]
    tasks0 = ran.config_map["tasks-0.sh"]
    assert "batchai_mpirun 2 cntk configFile=$AZ_BATCHAI_INPUT_CFG/Distributed_LeNet.cntk" in tasks0
    assert re.search(r"^wait_for_nodes$", tasks0, re.MULTILINE)
    assert re.search(r"^serve_ssh$", ran.config_map["tasks-1.sh"], re.MULTILINE)
