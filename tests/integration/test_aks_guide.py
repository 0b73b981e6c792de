"""docs/aks.md as written, on the local control plane: every step that does not call `az` runs verbatim
(the commands below are checked to be the guide's own lines), with what `az` would have given in
variables: the install with examples/aks/values.yaml, the storage Secret, examples/aks/cluster.yaml,
the seed's job.json to `succeeded`, and the GPU pool scaled through the ARM double
(tests/doubles/arm_agentpools.py, a test double, not Azure). And the chart refuses no file it ships:
every example values file passes `helm lint --strict`, every example cluster passes the chart's
admission policy in a server-side dry run (which does refuse the AKS cluster in a namespace not granted).

The operator is the chart's Deployment run here (chart_operator.py: its args and env, its
ServiceAccount's token, the double's endpoints); kwok plays the system pool that "runs" its pod and the
GPU pool's nodes. The release watches all namespaces, so this module runs before any module that starts
the session's operator (conftest.py sorts it first) and checks that none is live.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import secret_scan
import yaml
from chart_operator import ChartOperator
from devcluster import DevCluster, create_fake_node, delete_node, wait_for
from jobs import SECRET_KEY_VALUE, get_trainingjob, wait_state
from kubernetes import client
from operator_process import LIVENESS_PORT

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from doubles.arm_agentpools import ArmAgentPoolsDouble

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "aks.md"
CHART = REPO / "charts" / "batchai-operator"
KUBE_VERSION = "1.37.2"
RELEASE, OPERATOR_NS, JOBS_NS = "batchai-operator", "batchai-system", "team-a"
PLACEHOLDER_SUB = "00000000-0000-0000-0000-000000000000"
GPU_TAINT = {"key": "sku", "value": "gpu", "effect": "NoSchedule"}
PORT = LIVENESS_PORT + 2  # this module's operator; test_chart.py's uses +1, metrics +7

# What the guide's `az` steps leave in the shell (step 4: CLIENT_ID; 5: ACR; 6: SUB; 7: ACCT, KEY).
AZ_OUTPUT = {
    "SUB": str(uuid.uuid4()),
    "CLIENT_ID": "0f0e0d0c-0b0a-0908-0706-050403020100",
    "ACR": "batchaiacr",
    "ACCT": "batchaiacct",
    "KEY": SECRET_KEY_VALUE,
}
# docs/aks.md steps 6, 7 and 8 without their az lines, in the guide's order.
INSTALL = [
    f'sed -i "s/{PLACEHOLDER_SUB}/$SUB/" examples/aks/values.yaml examples/aks/cluster.yaml',
    "helm install batchai-operator charts/batchai-operator -n batchai-system --create-namespace -f "
    'examples/aks/values.yaml --set workloadIdentity.clientId="$CLIENT_ID" --set '
    "image.repository=$ACR.azurecr.io/batchai-operator --set image.tag=0.1.0",
    "kubectl -n batchai-system rollout status deployment/batchai-operator",
]
FIRST_JOB = [
    "kubectl create namespace team-a",
    "kubectl -n team-a create secret generic batchai-storage --from-literal=azurestorageaccountname=$ACCT "
    '--from-literal=azurestorageaccountkey="$KEY"',
    "kubectl -n team-a apply -f examples/aks/cluster.yaml",
    "kubectl-batchai job convert -f examples/cntk-mnist/job.json -n cntk-python-1 -c t4 --placeholder "
    "YOUR_STORAGE_ACCOUNT=$ACCT --storage-secret batchai-storage | kubectl -n team-a apply -f -",
]


def guide_commands() -> list[str]:
    """The commands of the guide's bash blocks, continuation lines joined."""
    blocks = re.findall(r"```bash\n(.*?)```", GUIDE.read_text(), re.DOTALL)
    text = "\n".join(blocks).replace("\\\n", " ")
    return [re.sub(r"\s+", " ", line).strip() for line in text.splitlines() if line.strip()]


def test_the_commands_run_here_are_the_guides_own() -> None:
    commands = guide_commands()
    for command in [*INSTALL, *FIRST_JOB]:
        assert command in commands, f"docs/aks.md no longer has: {command}"
    # Every other line of the guide's steps 6-8 calls az (or only reads): nothing the test leaves out.
    start = commands.index("SUB=$(az account show --query id -o tsv)")
    rest = [c for c in commands[start:] if c not in INSTALL + FIRST_JOB]
    assert all(
        "az " in c or c.startswith(("python3 ", "kubectl -n team-a get", "kubectl batchai job wait"))
        for c in rest
    ), rest


def run(*cmd: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=180, **kw)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the files the guide uses (its sed edits them in place)."""
    root = tmp_path_factory.mktemp("aks-guide")
    for part in ("charts", "examples"):
        shutil.copytree(REPO / part, root / part)
    return root


def shell(workdir: Path, command: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **AZ_OUTPUT, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return run("bash", "-euo", "pipefail", "-c", command, cwd=workdir, env=env)


def namespace_gone(core: client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespace(name)
    except client.ApiException as e:
        if e.status == 404:
            return True
        raise
    return False


def clean(core: client.CoreV1Api) -> None:
    """No release or namespace of an earlier run in the way (the guide's names are fixed)."""
    if RELEASE in run("helm", "list", "-n", OPERATOR_NS, "-q").stdout.split():
        run("helm", "uninstall", RELEASE, "-n", OPERATOR_NS, "--wait", "--timeout", "60s")
    for ns in (JOBS_NS, OPERATOR_NS):
        if not namespace_gone(core, ns):
            core.delete_namespace(ns)
        wait_for(lambda ns=ns: namespace_gone(core, ns), timeout=90, what=f"namespace {ns} gone")


CRDS = ("trainingjobs.batchai.io", "batchaiclusters.batchai.io")


@pytest.fixture(scope="module")
def arm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ArmAgentPoolsDouble]:
    with ArmAgentPoolsDouble(tmp_path_factory.mktemp("arm-double")) as double:
        yield double


@pytest.fixture(scope="module")
def installed(
    devcluster: DevCluster, crds_installed: None, core_v1: client.CoreV1Api, workdir: Path
) -> Iterator[None]:
    """Step 6 as written. The dev cluster has the CRDs already (the session's, applied with kubectl),
    where a fresh AKS cluster has none: they are handed to the release for the install and back after."""
    clean(core_v1)
    for crd in CRDS:
        run("kubectl", "label", "crd", crd, "app.kubernetes.io/managed-by=Helm", "--overwrite")
        run("kubectl", "annotate", "crd", crd, f"meta.helm.sh/release-name={RELEASE}",
            f"meta.helm.sh/release-namespace={OPERATOR_NS}", "--overwrite")  # fmt: skip
    # The AKS system pool, where examples/aks/values.yaml puts the operator's pod (kwok "runs" it).
    system = f"aks-nodepool1-{uuid.uuid4().hex[:6]}"
    create_fake_node(core_v1, system, labels={"kubernetes.azure.com/mode": "system"}, agent_pool="nodepool1")
    try:
        for command in INSTALL:
            shell(workdir, command)
        yield
    finally:
        if RELEASE in run("helm", "list", "-n", OPERATOR_NS, "-q").stdout.split():
            run("helm", "uninstall", RELEASE, "-n", OPERATOR_NS, "--wait", "--timeout", "60s")
        for crd in CRDS:
            run("kubectl", "label", "crd", crd, "app.kubernetes.io/managed-by-", check=False)
            annotations = ("meta.helm.sh/release-name-", "meta.helm.sh/release-namespace-")
            run("kubectl", "annotate", "crd", crd, *annotations, "helm.sh/resource-policy-", check=False)
        run("kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
        delete_node(core_v1, system)
        for ns in (JOBS_NS, OPERATOR_NS):
            if not namespace_gone(core_v1, ns):
                core_v1.delete_namespace(ns, propagation_policy="Background")


@pytest.fixture(scope="module")
def chart_operator(
    installed: None, arm: ArmAgentPoolsDouble, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChartOperator]:
    """The release's operator, its ARM and Entra endpoints the double's (the AKS webhook would inject
    the real ones for the ServiceAccount's client id)."""
    if (
        LIVENESS_PORT
        and run("bash", "-c", f"exec 3<>/dev/tcp/127.0.0.1/{LIVENESS_PORT}", check=False).returncode == 0
    ):
        pytest.fail(f"an operator is live on 127.0.0.1:{LIVENESS_PORT}: the release's must not run beside it")
    extra = {**arm.env(), "BATCHAI_METRICS_PORT": str(PORT + 1)}
    op = ChartOperator(OPERATOR_NS, RELEASE, RELEASE, tmp_path_factory.mktemp("aks-operator"), PORT, extra)
    op.start()
    yield op
    op.stop()


def test_every_example_values_file_passes_the_charts_schema() -> None:
    for values in sorted((REPO / "examples").rglob("values.yaml")):
        out = run("helm", "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, "-f", str(values),
                  "--set", f"workloadIdentity.clientId={AZ_OUTPUT['CLIENT_ID']}", check=False)  # fmt: skip
        assert out.returncode == 0 and "0 chart(s) failed" in out.stdout, (
            f"{values}:\n{out.stdout}{out.stderr}"
        )


def test_the_guide_installs_the_operator_with_the_example_values(installed: None) -> None:
    deploy = client.AppsV1Api().read_namespaced_deployment(RELEASE, OPERATOR_NS)
    assert deploy.status.available_replicas == 1
    assert deploy.spec.template.spec.node_selector == {"kubernetes.azure.com/mode": "system"}
    env = {e.name: e.value for e in deploy.spec.template.spec.containers[0].env}
    pools = yaml.safe_load(env["BATCHAI_ALLOW"])["agentPools"][JOBS_NS]
    assert pools == [{"subscriptionId": AZ_OUTPUT["SUB"], "resourceGroup": "batchai-rg",
                      "clusterName": "batchai-aks", "agentPoolName": "gput4"}]  # fmt: skip


def test_the_guide_runs_the_first_job_and_scales_the_pool(
    chart_operator: ChartOperator,
    arm: ArmAgentPoolsDouble,
    workdir: Path,
    fake_node: Callable[..., client.V1Node],
) -> None:
    path = arm.add_pool(AZ_OUTPUT["SUB"], "batchai-rg", "batchai-aks", "gput4", count=1)
    for _ in range(2):  # the pool gput4 of step 2, two Standard_NC4as_T4_v3 nodes
        fake_node("aks-gput4", gpus=1, instance_type="Standard_NC4as_T4_v3", agent_pool="gput4",
                  taints=[GPU_TAINT])  # fmt: skip
    try:
        for command in FIRST_JOB:
            shell(workdir, command)
        job = wait_state(JOBS_NS, "cntk-python-1", "succeeded", timeout=90)
        assert job["status"]["executionInfo"]["exitCode"] == 0
        assert job["spec"]["cluster"] == "t4"
        wait_for(lambda: len(arm.puts(path)) == 1, timeout=30, what="the agent-pool PUT")
        assert arm.puts(path)[0]["properties"]["count"] == 2
        assert all(r.authorized for r in arm.pool_requests())
        assert chart_operator.permission_problems() == []
        assert get_trainingjob(JOBS_NS, "cntk-python-1")["status"]["toolType"] == "cntk"
    finally:
        secret_scan.check_namespace(JOBS_NS)


def test_the_chart_admits_every_example_cluster_and_refuses_ungranted_pools(
    installed: None, workdir: Path, core_v1: client.CoreV1Api
) -> None:
    """Server-side dry runs in the granted namespace go through the release's admission policy."""
    if namespace_gone(core_v1, JOBS_NS):
        core_v1.create_namespace({"metadata": {"name": JOBS_NS}})
    clusters = sorted((workdir / "examples").rglob("cluster.yaml"))
    assert len(clusters) >= 6
    for path in clusters:
        out = run("kubectl", "-n", JOBS_NS, "apply", "--dry-run=server", "-f", str(path), check=False)
        assert out.returncode == 0 and "(server dry run)" in out.stdout, f"{path}: {out.stderr}"
    other = f"it-{uuid.uuid4().hex[:8]}"
    core_v1.create_namespace({"metadata": {"name": other}})
    try:
        aks = workdir / "examples" / "aks" / "cluster.yaml"
        out = run("kubectl", "-n", other, "apply", "--dry-run=server", "-f", str(aks), check=False)
        assert out.returncode != 0 and "allow.agentPools" in out.stderr, out.stderr
        assert PLACEHOLDER_SUB not in aks.read_text()  # the guide's sed put the subscription in
    finally:
        core_v1.delete_namespace(other, propagation_policy="Background")
