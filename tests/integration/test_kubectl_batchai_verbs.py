"""`kubectl batchai`'s az batchai verbs against the local control plane and the operator (kwok nodes): the
seed's command forms (workspace create, cluster create from flags, experiment create, a Batch AI job
name), workspaces and experiments end to end, cluster delete/node list/file list, resize that cannot
act, list-usages, file servers, --ids, -o and --query, and az's exit codes. Exec and port forwarding
need a real kubelet: tests/e2e/test_node_exec.py.
"""

from __future__ import annotations

import json
import uuid

import pytest
from devcluster import wait_for
from kubernetes import client
from test_kubectl_batchai import SEED_JOB, cli, storage_env

from doubles.azure_files import AzureFilesDouble
from storage_services import Blob

pytestmark = pytest.mark.integration

ARM = "/subscriptions/0000/resourceGroups/batchai.quickstart/providers/Microsoft.BatchAI/workspaces"
SEED_CLUSTER_FLAGS = ("-s", "Standard_NC6", "-i", "UbuntuDSVM", "-t", "1", "--generate-ssh-keys")


def create_seed_cluster(ns: str, *extra: str) -> dict[str, object]:
    proc = cli(
        "cluster", "create", "-n", "nc6", "-g", "batchai.quickstart", "-w", ns, *SEED_CLUSTER_FLAGS, *extra
    )
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def test_workspace_create_show_list_delete(operator: object, namespace: str) -> None:
    name = f"ws_{uuid.uuid4().hex[:6]}"  # a Batch AI name that is not a namespace name
    k8s_name = name.replace("_", "-")
    created = cli("workspace", "create", "-g", "batchai.quickstart", "-n", name, "-l", "eastus", check=True)
    ws = json.loads(created.stdout)
    assert (ws["name"], ws["kubernetesName"], ws["resourceGroup"], ws["location"]) == (
        name, k8s_name, "batchai.quickstart", "eastus"
    )  # fmt: skip
    again = cli("workspace", "create", "-g", "batchai.quickstart", "-n", name, check=True)  # az's PUT
    assert json.loads(again.stdout)["kubernetesName"] == k8s_name
    shown = cli("workspace", "show", "-n", name, "--query", "resourceGroup", "-o", "tsv", check=True)
    assert shown.stdout == "batchai.quickstart\n"
    assert k8s_name in [w["name"] for w in json.loads(cli("workspace", "list", check=True).stdout)]

    # A namespace kubectl batchai did not create is not deleted without --force.
    foreign = cli("workspace", "delete", "-n", namespace, "-y")
    assert foreign.returncode == 1 and "pass --force" in foreign.stderr
    asks = cli("workspace", "delete", "-n", name)  # no terminal: az refused to prompt
    assert asks.returncode == 1 and "pass -y/--yes" in asks.stderr
    deleted = cli("workspace", "delete", "-n", name, "-y", timeout=180, check=True)
    assert f"Workspace {name} deleted" in deleted.stderr
    missing = cli("workspace", "show", "-n", name)
    assert missing.returncode == 3 and "not found" in missing.stderr


def test_experiment_create_show_list_delete(operator: object, namespace: str, azurite: Blob) -> None:
    ns = namespace
    created = json.loads(cli("experiment", "create", "-g", "rg", "-w", ns, "-n", "exp1", check=True).stdout)
    assert (created["name"], created["workspace"], created["jobs"]) == ("exp1", ns, 0)
    assert cli("experiment", "show", "-w", ns, "-n", "exp1", "--query", "jobs", check=True).stdout == "0\n"
    create_seed_cluster(ns)
    job = cli(
        "job", "create", "-n", "in_exp1", "-c", "nc6", "-w", ns, "-e", "exp1", "-f", str(SEED_JOB),
        "--storage-account-name", azurite.account, "--placeholder", f"YOUR_STORAGE_ACCOUNT={azurite.account}",
        env={"AZURE_BATCHAI_STORAGE_KEY": azurite.key},
    )  # fmt: skip
    assert job.returncode == 0, job.stderr
    listed = json.loads(cli("experiment", "list", "-w", ns, check=True).stdout)
    assert [(e["name"], e["jobs"]) for e in listed] == [("exp1", 1)]
    exp_id = f"{ARM}/{ns}/experiments/exp1"
    assert cli("experiment", "show", "--ids", exp_id, "--query", "jobs", check=True).stdout == "1\n"
    refused = cli("experiment", "delete", "-w", ns, "-n", "exp1")
    assert refused.returncode == 1 and "pass -y/--yes" in refused.stderr
    cli("experiment", "delete", "--ids", exp_id, "-y", timeout=120, check=True)
    assert cli("job", "list", "-w", ns, check=True).stdout == "[]\n"
    gone = cli("experiment", "show", "-w", ns, "-n", "exp1")
    assert gone.returncode == 3


def test_the_seed_cluster_from_flags_and_a_resize_that_cannot_act(operator: object, namespace: str) -> None:
    ns = namespace
    created = cli("cluster", "create", "-n", "nc6", "-g", "batchai.quickstart", "-w", ns, *SEED_CLUSTER_FLAGS)
    assert created.returncode == 0, created.stderr
    cluster = json.loads(created.stdout)
    assert cluster["vmSize"] == "Standard_NC6"
    assert cluster["scaleSettings"]["manual"]["targetNodeCount"] == 1
    assert cluster["virtualMachineConfiguration"]["imageReference"]["offer"] == "linux-data-science-vm-ubuntu"
    # Said at once: nothing will move the node count.
    assert "no AKS agent pool binding (spec.aks)" in created.stderr
    assert "--generate-ssh-keys: no key is generated" in created.stderr

    # The dev cluster's 4 Standard_NC6 kwok nodes against a target of 1: steady, and Ready says why.
    def settled() -> dict[str, object] | None:
        shown = json.loads(cli("cluster", "show", "-n", "nc6", "-w", ns, check=True).stdout)
        ready = {c["type"]: c for c in shown.get("conditions") or []}.get("Ready") or {}
        return shown if ready.get("reason") == "ScaleNotApplied" else None

    shown = wait_for(settled, timeout=30, what="ScaleNotApplied")
    assert shown["allocationState"] == "steady"
    resized = cli("cluster", "resize", "-n", "nc6", "-w", ns, "-t", "2", "-o", "none")
    assert resized.returncode == 0 and resized.stdout == "" and "no AKS agent pool binding" in resized.stderr

    nodes = json.loads(cli("cluster", "node", "list", "-c", "nc6", "-w", ns, check=True).stdout)
    pool = [n for n in nodes if n["nodeId"].startswith("aks-nc6pool-")]
    assert len(pool) == 4 and {n["state"] for n in pool} == {"idle"}  # kwok nodes have no InternalIP
    table = cli("cluster", "node", "list", "-c", "nc6", "-w", ns, "-o", "table", check=True).stdout
    assert table.splitlines()[0].split() == ["Node", "Id", "IP", "State", "Job", "Pods"]

    cluster_id = f"{ARM}/{ns}/clusters/nc6"
    by_id = cli("cluster", "show", "--ids", cluster_id, "--query", "name", "-o", "tsv", check=True)
    assert by_id.stdout == "nc6\n"
    cli("cluster", "delete", "--ids", cluster_id, "-y", timeout=60, check=True)
    missing = cli("cluster", "show", "-n", "nc6", "-w", ns)
    assert (
        missing.returncode == 3
        and missing.stderr.strip() == f"error: BatchAICluster nc6 not found in workspace {ns}"
    )


def test_a_batchai_job_name_works_in_every_verb(operator: object, namespace: str, azurite: Blob) -> None:
    ns = namespace
    create_seed_cluster(ns)
    created = cli(
        "job", "create", "-n", "cntk_python_1", "-c", "nc6", "-g", "batchai.quickstart", "-w", ns, "-e",
        "quickstart", "-f", str(SEED_JOB), "--storage-account-name", azurite.account,
        "--placeholder", f"YOUR_STORAGE_ACCOUNT={azurite.account}",
        "--annotation", "sim.batchai.io/run-for=3s",
        env={"AZURE_BATCHAI_STORAGE_KEY": azurite.key},
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    job = json.loads(created.stdout)
    assert (job["name"], job["kubernetesName"]) == ("cntk_python_1", "cntk-python-1")
    assert f"Job cntk_python_1 (TrainingJob cntk-python-1) created in workspace {ns}" in created.stderr

    waited = cli("job", "wait", "-n", "cntk_python_1", "-w", ns, "-e", "quickstart", "--interval", "1")
    assert waited.returncode == 0, waited.stderr
    tsv = cli("job", "list", "-w", ns, "--query", "[].[name, kubernetesName, executionState]", "-o", "tsv")
    assert tsv.stdout == "cntk_python_1\tcntk-python-1\tsucceeded\n"
    table = cli("job", "list", "-w", ns, "-o", "table", check=True).stdout.splitlines()
    assert table[2].split()[:2] == ["cntk_python_1", "cntk-python-1"]
    yml = cli(
        "job", "show", "-n", "cntk-python-1", "-w", ns, "-o", "yaml", "--query", "{n: name}", check=True
    )
    assert yml.stdout == "n: cntk_python_1\n"
    wrong_exp = cli("job", "show", "-n", "cntk_python_1", "-w", ns, "-e", "other")
    assert wrong_exp.returncode == 3 and "not found in experiment other" in wrong_exp.stderr
    job_id = f"{ARM}/{ns}/experiments/quickstart/jobs/cntk_python_1"
    by_id = cli("job", "show", "--ids", job_id, "--query", "executionState", check=True)
    assert by_id.stdout == '"succeeded"\n'
    nodes = json.loads(cli("job", "node", "list", "-j", "cntk_python_1", "-w", ns, check=True).stdout)
    assert [n["state"] for n in nodes] == ["Succeeded"]
    done = cli("job", "terminate", "-n", "cntk_python_1", "-w", ns, "-y", check=True)
    assert "already succeeded; nothing to terminate" in done.stderr
    cli("job", "delete", "--ids", job_id, "-y", timeout=60, check=True)
    assert cli("job", "show", "--ids", job_id).returncode == 3


def test_terminate_asks_as_az_did(operator: object, namespace: str, azurite: Blob) -> None:
    ns = namespace
    create_seed_cluster(ns)
    cli(
        "job", "create", "-n", "long_one", "-c", "nc6", "-w", ns, "-f", str(SEED_JOB),
        "--placeholder", f"YOUR_STORAGE_ACCOUNT={azurite.account}",
        "--annotation", "sim.batchai.io/run-for=300s",
        env={"AZURE_BATCHAI_STORAGE_KEY": azurite.key}, check=True,
    )  # fmt: skip
    asks = cli("job", "terminate", "-n", "long_one", "-w", ns)
    assert asks.returncode == 1 and "pass -y/--yes" in asks.stderr
    ended = cli("job", "terminate", "-n", "long_one", "-w", ns, "-y", timeout=120, check=True)
    assert "Job long_one terminated: failed" in ended.stderr


def test_cluster_file_list_shows_the_setup_tasks_output(
    operator: object, namespace: str, azurite: Blob, files_double: AzureFilesDouble
) -> None:
    ns, acct = namespace, azurite.account
    files_double.create_share(acct, "logs")
    created = create_seed_cluster(
        ns,
        "--afs-name", "logs", "--storage-account-name", acct,
        "--setup-task", "echo set up", "--setup-task-output", "$AZ_BATCHAI_MOUNT_ROOT/afs",
    )  # fmt: skip
    assert created["nodeSetup"]["mountVolumes"]["azureFileShares"][0]["relativeMountPath"] == "afs"
    uid = client.CustomObjectsApi().get_namespaced_custom_object(
        "batchai.io", "v1alpha1", ns, "batchaiclusters", "nc6"
    )["metadata"]["uid"]
    # Where the setup task writes (kwok runs no setup task): <prefix>/<workspace>/clusters/<name>/<uid>.
    files_double.write(acct, "logs", f"{ns}/clusters/nc6/{uid}/stdout-aks-nc6pool-0.txt", b"set up\n")
    env = {**storage_env(azurite, files_double), "AZURE_BATCHAI_STORAGE_KEY": azurite.key}
    listed = cli("cluster", "file", "list", "-c", "nc6", "-w", ns, env=env)
    assert listed.returncode == 0, listed.stderr
    assert [(f["name"], f["contentLength"]) for f in json.loads(listed.stdout)] == [
        ("stdout-aks-nc6pool-0.txt", 7)
    ]

    no_setup = cli("cluster", "create", "-n", "plain", "-w", ns, "-s", "Standard_NC6", "-t", "1", check=True)
    assert no_setup.returncode == 0
    none = cli("cluster", "file", "list", "-c", "plain", "-w", ns)
    assert none.returncode == 1 and "has no setup task" in none.stderr


def test_list_usages_counts_gpus_by_family_capped_by_quota(operator: object, namespace: str) -> None:
    ns = namespace
    create_seed_cluster(ns)
    usages = json.loads(cli("list-usages", "-w", ns, "-l", "eastus", check=True).stdout)
    nc = next(u for u in usages if u["name"]["value"] == "standardNCFamily")
    assert nc["currentValue"] == 0 and nc["limit"] >= 4 and nc["unit"] == "Count"
    client.CoreV1Api().create_namespaced_resource_quota(
        ns, {"metadata": {"name": "gpus"}, "spec": {"hard": {"requests.nvidia.com/gpu": "2"}}}
    )
    capped = cli(
        "list-usages", "-w", ns, "--query", "[?name.value=='standardNCFamily'].limit | [0]", check=True
    )
    assert capped.stdout == "2\n"


def test_file_servers_and_fileservers_mounts_say_what_to_use_on_aks(operator: object, namespace: str) -> None:
    for verb in ("create", "list", "show", "delete"):
        proc = cli("file-server", verb, "-n", "nfs", "-g", "rg", "-w", namespace)
        assert proc.returncode == 1 and "Azure NetApp Files" in proc.stderr, proc.stderr
    doc = json.loads(SEED_JOB.read_text())
    arm_fs = f"{ARM}/{namespace}/fileServers/nfs1"
    doc["properties"]["mountVolumes"] = {
        "fileServers": [{"fileServer": {"id": arm_fs}, "relativeMountPath": "nfs", "mountOptions": "rw,hard"}]
    }
    converted = cli(
        "job", "convert", "-f", "-", "-c", "nc6", "-w", namespace, check=False, stdin_text=json.dumps(doc)
    )
    assert converted.returncode == 0, converted.stderr
    assert "the NFS host is taken from the file server's ARM id ('nfs1')" in converted.stderr
    assert "mount options rw,hard are dropped" in converted.stderr
    assert f"namespace: {namespace}" in converted.stdout
