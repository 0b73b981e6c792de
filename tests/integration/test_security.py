"""A custom resource gives a user no more than they already had (issue 11), on the local control plane.

The user is `alice`: a ServiceAccount token with the built-in `edit` ClusterRole bound in one tenant
namespace (the chart's user roles aggregate TrainingJobs and BatchAIClusters into it). For each power the
admin did not grant her namespace (chart values `allow.*`), she is refused twice over:
- by the chart's ValidatingAdmissionPolicies at the apiserver (rendered from the chart and applied here,
  with the session operator's grants: it-* namespaces may run setup tasks and set placement);
- by the operator itself, in a tenant namespace the policy binding skips (label
  batchai.io/test-without-admission-policy), where her objects are accepted and get a status error.
Either way nothing changes outside her namespace. Forged Jobs, pods and Events, in her namespace or in
the victim's, do not change another TrainingJob's status.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import secret_scan
import yaml
from devcluster import wait_for
from jobs import (
    GROUP,
    VERSION,
    create_cluster,
    create_storage_secret,
    create_trainingjob,
    get_trainingjob,
    trainingjob_pods,
    wait_state,
)
from kubernetes import client
from operator_process import OPERATOR_HOME, OPERATOR_SA, TEST_ALLOW

from samples import cntk_spec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("operator")]

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "batchai-operator"
SKIP_POLICY = "batchai.io/test-without-admission-policy"
SETUP = {"setupTask": {"commandLine": "echo root", "stdOutErrPathPrefix": "/tmp/setup"}}
UNMANAGED = {
    "unmanagedFileSystems": [{"mountCommand": "mount -t glusterfs 10.0.0.4:/gv0", "relativeMountPath": "g"}]
}
FOREIGN_POOL = {
    "subscriptionId": "s-1",
    "resourceGroup": "rg-prod",
    "clusterName": "aks-prod",
    "agentPoolName": "system",
}


def kubectl(*args: str, input: str | None = None) -> str:
    out = subprocess.run(["kubectl", *args], capture_output=True, text=True, input=input, timeout=60)
    assert out.returncode == 0, f"kubectl {' '.join(args)}: {out.stderr}"
    return out.stdout


SKIPPED_NAMESPACES = {
    "enabled": True,
    "namespaceSelector": {"matchExpressions": [{"key": SKIP_POLICY, "operator": "DoesNotExist"}]},
}


@pytest.fixture(scope="module")
def admission_policy(crds_installed: None) -> Iterator[None]:
    """The chart's ValidatingAdmissionPolicies and user roles, with the session operator's grants and
    identity (its ServiceAccount batchai-operator in OPERATOR_HOME)."""
    release = f"sec-{uuid.uuid4().hex[:6]}"
    values = [
        "--set-json", f"allow={json.dumps(TEST_ALLOW)}",
        "--set", f"serviceAccount.name={OPERATOR_SA}",
        "--set-json", f"admissionPolicy={json.dumps(SKIPPED_NAMESPACES)}",
    ]  # fmt: skip
    rendered = helm(
        "template", release, str(CHART), "-n", OPERATOR_HOME, "--kube-version", "1.37.2", *values,
        "--show-only", "templates/admission-policy.yaml", "--show-only", "templates/user-roles.yaml",
    )  # fmt: skip
    kubectl("apply", "-f", "-", input=rendered)
    yield
    kubectl("delete", "-f", "-", "--wait=false", input=rendered)


def helm(*args: str) -> str:
    out = subprocess.run(["helm", *args], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


@dataclass
class Tenant:
    namespace: str
    api: client.ApiClient  # alice's

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def create(
        self, plural: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None
    ) -> Any:
        kind = {"trainingjobs": "TrainingJob", "batchaiclusters": "BatchAICluster"}[plural]
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels or {}},
            "spec": spec,
        }
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.namespace, plural, body)

    def refused(self, plural: str, name: str, spec: dict[str, Any], **kw: Any) -> str:
        with pytest.raises(client.ApiException) as err:
            self.create(plural, name, spec, **kw)
        assert err.value.status in (403, 422), err.value.body
        return str(err.value.body)


def make_tenant(core: client.CoreV1Api, name: str, labels: dict[str, str] | None = None) -> Tenant:
    """Namespace `name` (created if missing), ServiceAccount alice with `edit` in it, her API client."""
    try:
        core.create_namespace(
            client.V1Namespace(
                metadata=client.V1ObjectMeta(
                    name=name, labels={"batchai.io/integration-test": "true", **(labels or {})}
                )
            )
        )
    except client.ApiException as e:
        if e.status != 409:
            raise
    wait_for(lambda: core.read_namespaced_service_account("default", name), timeout=30, what="default SA")
    core.create_namespaced_service_account(
        name, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="alice"))
    )
    client.RbacAuthorizationV1Api().create_namespaced_role_binding(
        name,
        {
            "metadata": {"name": "alice-edit"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
            "subjects": [{"kind": "ServiceAccount", "name": "alice", "namespace": name}],
        },
    )
    token = kubectl("create", "token", "alice", "-n", name, "--duration=1h").strip()
    admin = client.Configuration.get_default_copy()
    cfg = client.Configuration()
    cfg.host, cfg.ssl_ca_cert, cfg.verify_ssl = admin.host, admin.ssl_ca_cert, True
    cfg.api_key = {"authorization": f"Bearer {token}"}
    tenant = Tenant(name, client.ApiClient(cfg))
    # The aggregated edit role includes our kinds (the chart's user roles), and alice is not admin.
    who = f"--as=system:serviceaccount:{name}:alice"

    def can(*args: str) -> bool:
        out = subprocess.run(["kubectl", "auth", "can-i", *args, who], capture_output=True, text=True)
        return out.stdout.strip() == "yes"

    wait_for(lambda: can("create", "trainingjobs.batchai.io", "-n", name), timeout=30, what="edit aggregated")
    assert not can("create", "pods", "-n", "kube-system") and not can("create", "nodes")
    return tenant


@pytest.fixture
def tenant(admission_policy: None, core_v1: client.CoreV1Api) -> Iterator[Tenant]:
    """alice's namespace, under the admission policy."""
    t = make_tenant(core_v1, f"tenant-{uuid.uuid4().hex[:8]}")
    yield t
    secret_scan.check_namespace(t.namespace)
    core_v1.delete_namespace(t.namespace, propagation_policy="Background")


@pytest.fixture
def bare_tenant(admission_policy: None, core_v1: client.CoreV1Api) -> Iterator[Tenant]:
    """alice's namespace, skipped by the admission policy: the operator's own checks."""
    t = make_tenant(core_v1, f"tenant-{uuid.uuid4().hex[:8]}", {SKIP_POLICY: "true"})
    yield t
    secret_scan.check_namespace(t.namespace)
    core_v1.delete_namespace(t.namespace, propagation_policy="Background")


# ---- nothing outside the namespace changes -----------------------------------------------------------

WATCHED = ("pods", "jobs.batch", "daemonsets.apps", "configmaps", "secrets", "services", "serviceaccounts")
CLUSTER_KINDS = ("nodes", "priorityclasses", "clusterroles", "clusterrolebindings", "namespaces")


def snapshot(outside: str) -> set[tuple[str, str]]:
    """(kind/namespace/name, uid) of every object that could show a leak, outside namespace `outside`."""
    items = yaml.safe_load(kubectl("get", ",".join(WATCHED + CLUSTER_KINDS), "-A", "-o", "yaml"))["items"]
    out = set()
    for it in items:
        meta = it["metadata"]
        if meta.get("namespace") == outside or (it["kind"] == "Namespace" and meta["name"] == outside):
            continue
        out.add((f"{it['kind']}/{meta.get('namespace', '')}/{meta['name']}", meta["uid"]))
    return out


@pytest.fixture
def unchanged_outside() -> Callable[[str], Callable[[], None]]:
    """Take a snapshot now; the returned check fails if anything was created outside the namespace."""

    def start(namespace: str) -> Callable[[], None]:
        before = snapshot(namespace)

        def check() -> None:
            created = snapshot(namespace) - before
            # Other tests' namespaces may still be being deleted: only creations count.
            assert not created, f"created outside {namespace}: {sorted(created)}"

        return check

    return start


def status_error(t: Tenant, plural: str, name: str) -> dict[str, Any]:
    def errors() -> dict[str, Any] | None:
        obj = t.custom.get_namespaced_custom_object(GROUP, VERSION, t.namespace, plural, name)
        st = obj.get("status") or {}
        errs = st.get("errors") or (st.get("executionInfo") or {}).get("errors") or []
        return errs[0] if errs else None

    return wait_for(errors, timeout=30, what=f"{plural}/{name} status error")


# ---- the positive control: alice can run an ordinary job -----------------------------------------------


def test_an_editor_runs_ordinary_jobs(tenant: Tenant) -> None:
    tenant.create("batchaiclusters", "nc6", {"vmSize": "Standard_NC6"})
    create_storage_secret(tenant.namespace)
    tenant.create("trainingjobs", "plain", cntk_spec())
    done = wait_state(tenant.namespace, "plain", "succeeded", timeout=60)
    assert done["status"]["executionInfo"]["exitCode"] == 0


# ---- admin-only powers -----------------------------------------------------------------------------------


def test_cannot_run_a_setup_task_as_root_on_nodes(
    tenant: Tenant, bare_tenant: Tenant, unchanged_outside: Any
) -> None:
    spec = {"vmSize": "Standard_NC6", "nodeSetup": SETUP}
    check = unchanged_outside(bare_tenant.namespace)
    assert "allow.setupTasks" in tenant.refused("batchaiclusters", "root", spec)
    bare_tenant.create("batchaiclusters", "root", spec)
    err = status_error(bare_tenant, "batchaiclusters", "root")
    assert err["code"] == "SetupTaskNotAllowed" and "allow.setupTasks" in err["message"]
    time.sleep(2)
    assert not client.AppsV1Api().list_namespaced_daemon_set(bare_tenant.namespace).items
    check()


@pytest.mark.parametrize(
    "placement",
    [{"tolerations": [{"operator": "Exists"}]}, {"nodeSelector": {"kubernetes.azure.com/mode": "system"}}],
    ids=["tolerations", "nodeSelector"],
)
def test_cannot_place_pods_on_other_nodes(
    tenant: Tenant, bare_tenant: Tenant, unchanged_outside: Any, placement: dict[str, Any]
) -> None:
    spec = {"vmSize": "Standard_NC6", **placement}
    check = unchanged_outside(bare_tenant.namespace)
    assert "allow.placement" in tenant.refused("batchaiclusters", "anywhere", spec)
    bare_tenant.create("batchaiclusters", "anywhere", spec)
    err = status_error(bare_tenant, "batchaiclusters", "anywhere")
    assert err["code"] == "PlacementNotAllowed"
    # A job on that cluster waits, saying why; no pod is created.
    create_storage_secret(bare_tenant.namespace)
    bare_tenant.create("trainingjobs", "job", {**cntk_spec(), "cluster": "anywhere"})

    def waiting() -> str | None:
        conds = (get_trainingjob(bare_tenant.namespace, "job").get("status") or {}).get("conditions") or []
        queued = next((c for c in conds if c["type"] == "Queued" and c["status"] == "True"), None)
        return queued["message"] if queued and queued["reason"] == "ClusterInvalid" else None

    assert "allow.placement" in wait_for(waiting, timeout=30, what="queued ClusterInvalid")
    assert not trainingjob_pods(bare_tenant.namespace, "job")
    check()


def test_cannot_scale_an_agent_pool_that_is_not_mapped_to_the_namespace(
    tenant: Tenant, bare_tenant: Tenant, unchanged_outside: Any
) -> None:
    spec = {
        "vmSize": "Standard_NC6",
        "aks": FOREIGN_POOL,
        "scaleSettings": {"manual": {"targetNodeCount": 0}},
    }
    check = unchanged_outside(bare_tenant.namespace)
    assert "allow.agentPools" in tenant.refused("batchaiclusters", "zero", spec)
    bare_tenant.create("batchaiclusters", "zero", spec)
    err = status_error(bare_tenant, "batchaiclusters", "zero")
    # Refused before any ARM call (no credential was even asked for: that would be ScaleFailed).
    assert err["code"] == "AgentPoolNotAllowed" and "aks-prod" in err["message"]
    check()


@pytest.mark.parametrize("plural", ["trainingjobs", "batchaiclusters"])
def test_cannot_run_privileged_pods_through_unmanaged_mounts(
    tenant: Tenant, bare_tenant: Tenant, unchanged_outside: Any, plural: str
) -> None:
    if plural == "trainingjobs":
        spec: dict[str, Any] = {**cntk_spec(), "mountVolumes": UNMANAGED}
    else:
        spec = {"vmSize": "Standard_NC6", "nodeSetup": {"mountVolumes": UNMANAGED}}
    check = unchanged_outside(bare_tenant.namespace)
    assert "allow.privilegedMounts" in tenant.refused(plural, "priv", spec)
    if plural == "batchaiclusters":
        bare_tenant.create(plural, "nc6", spec)
        create_storage_secret(bare_tenant.namespace)
        bare_tenant.create("trainingjobs", "priv", cntk_spec())  # gets the cluster's mounts
    else:
        bare_tenant.create("batchaiclusters", "nc6", {"vmSize": "Standard_NC6"})
        bare_tenant.create(plural, "priv", spec)
    st = wait_state(bare_tenant.namespace, "priv", "failed", timeout=30)["status"]
    assert st["executionInfo"]["errors"][0]["code"] == "UnmanagedFileSystemNotAllowed"
    assert not client.BatchV1Api().list_namespaced_job(bare_tenant.namespace).items
    check()


def test_cannot_run_a_job_as_the_operators_service_account(
    core_v1: client.CoreV1Api, admission_policy: None
) -> None:
    home = make_tenant(core_v1, OPERATOR_HOME)
    try:
        core_v1.create_namespaced_service_account(
            OPERATOR_HOME, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=OPERATOR_SA))
        )
        create_cluster(OPERATOR_HOME)
        create_storage_secret(OPERATOR_HOME)
        spec = {**cntk_spec(), "serviceAccountName": OPERATOR_SA}
        assert "operator's own ServiceAccount" in home.refused("trainingjobs", "as-operator", spec)
        # Without the policy, the operator refuses it itself.
        core_v1.patch_namespace(OPERATOR_HOME, {"metadata": {"labels": {SKIP_POLICY: "true"}}})
        wait_for(lambda: _created(home, spec), timeout=15, what="created without the policy")
        st = wait_state(OPERATOR_HOME, "as-operator", "failed", timeout=30)["status"]
        assert st["executionInfo"]["errors"][0]["code"] == "ServiceAccountNotAllowed"
        assert not client.BatchV1Api().list_namespaced_job(OPERATOR_HOME).items
    finally:
        core_v1.delete_namespace(OPERATOR_HOME, propagation_policy="Background")


def _created(t: Tenant, spec: dict[str, Any]) -> bool:
    try:
        t.create("trainingjobs", "as-operator", spec)
        return True
    except client.ApiException as e:
        if e.status == 403:
            return False  # the policy's binding has not seen the namespace label yet
        raise


FORGED_LABELS = {
    "batchai.io/role": "setup-task",
    "batchai.io/cluster-uid": "victim-cluster",
    "batchai.io/setup-task-state": "succeeded",
}


def test_cannot_set_the_operators_labels_through_a_trainingjob(tenant: Tenant, bare_tenant: Tenant) -> None:
    body = tenant.refused("trainingjobs", "forger", cntk_spec(), labels=FORGED_LABELS)
    assert "batchai.io/role" in body and "operator's own bookkeeping" in body
    tenant.refused(
        "trainingjobs", "forger", cntk_spec(), labels={"app.kubernetes.io/managed-by": "batchai-operator"}
    )
    # Without the policy: accepted, and the children do not carry them.
    bare_tenant.create("batchaiclusters", "nc6", {"vmSize": "Standard_NC6"})
    create_storage_secret(bare_tenant.namespace)
    bare_tenant.create("trainingjobs", "forger", cntk_spec(), labels={**FORGED_LABELS, "team": "vision"})
    wait_state(bare_tenant.namespace, "forger", "succeeded", timeout=60)
    (job,) = client.BatchV1Api().list_namespaced_job(bare_tenant.namespace).items
    for labels in (job.metadata.labels, job.spec.template.metadata.labels):
        assert labels["team"] == "vision" and not set(FORGED_LABELS) & set(labels)


def test_cannot_pass_blob_options_that_reach_the_host(tenant: Tenant) -> None:
    blob = {
        "accountName": "acct",
        "containerName": "data",
        "credentials": {"secretRef": {"name": "storage"}},
        "relativeMountPath": "data",
        "mountOptions": "-o allow_other --tmp-path=/etc",
    }
    spec = {**cntk_spec(), "mountVolumes": {"azureBlobFileSystems": [blob]}}
    assert "--tmp-path" in tenant.refused("trainingjobs", "blob", spec)
    cluster = {"vmSize": "Standard_NC6", "nodeSetup": {"mountVolumes": {"azureBlobFileSystems": [blob]}}}
    assert "only these blobfuse options" in tenant.refused("batchaiclusters", "blob", cluster)


# ---- children are ours: forged Jobs, pods and Events change nothing ------------------------------------


def forged_objects(t: Tenant, victim: dict[str, Any], suffix: str) -> None:
    """As alice in t.namespace: a Job and a pod carrying the victim's labels (and, for the Job, a
    controller reference to it), the pod failing to pull its image, and a kubelet-looking FailedMount."""
    uid = victim["metadata"]["uid"]
    labels = {"app.kubernetes.io/managed-by": "batchai-operator", "batchai.io/trainingjob-uid": uid}
    owner = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TrainingJob",
        "name": victim["metadata"]["name"],
        "uid": uid,
        "controller": True,
    }
    container = {"name": "main", "image": "sim.batchai.io/image-pull-failure"}
    batch, core = client.BatchV1Api(t.api), client.CoreV1Api(t.api)
    batch.create_namespaced_job(
        t.namespace,
        {
            "metadata": {"name": f"forged-{suffix}", "labels": labels, "ownerReferences": [owner]},
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"restartPolicy": "Never", "containers": [container]},
                },
            },
        },
    )
    pod_labels = {**labels, "batch.kubernetes.io/job-completion-index": "0"}
    pod = core.create_namespaced_pod(
        t.namespace,
        {
            "metadata": {"name": f"forged-{suffix}", "labels": pod_labels},
            "spec": {"restartPolicy": "Never", "containers": [container]},
        },
    )
    core.create_namespaced_event(
        t.namespace,
        {
            "metadata": {"generateName": "forged-"},
            "involvedObject": {
                "kind": "Pod",
                "namespace": t.namespace,
                "name": pod.metadata.name,
                "uid": pod.metadata.uid,
            },
            "reason": "FailedMount",
            "type": "Warning",
            "message": "MountVolume.SetUp failed: forged",
            "count": 99,
            "source": {"component": "kubelet"},
        },
    )


def test_forged_children_and_events_do_not_change_another_jobs_status(
    namespace: str, tenant: Tenant, core_v1: client.CoreV1Api
) -> None:
    """The victim runs in `namespace`; alice forges from her own namespace, and bob (an editor of the
    victim's namespace) forges beside it: the victim still succeeds with exit code 0 and no error."""
    create_cluster(namespace)
    create_storage_secret(namespace)
    victim = create_trainingjob(
        namespace, "victim", cntk_spec(), annotations={"sim.batchai.io/run-for": "12s"}
    )
    wait_state(namespace, "victim", "running", timeout=30)
    forged_objects(tenant, victim, "elsewhere")
    bob = make_tenant(core_v1, namespace)  # an editor of the victim's own namespace
    forged_objects(bob, victim, "beside")
    (real_pod,) = [
        p for p in trainingjob_pods(namespace, "victim") if not p.metadata.name.startswith("forged")
    ]
    # Events naming the victim's real pod: not from the kubelet, or about an older pod of that name.
    for source, uid in (
        ("mallory", real_pod.metadata.uid),
        ("kubelet", "00000000-0000-0000-0000-000000000000"),
    ):
        client.CoreV1Api(bob.api).create_namespaced_event(
            namespace,
            {
                "metadata": {"generateName": "forged-"},
                "involvedObject": {
                    "kind": "Pod",
                    "namespace": namespace,
                    "name": real_pod.metadata.name,
                    "uid": uid,
                },
                "reason": "FailedMount",
                "type": "Warning",
                "message": "MountVolume.SetUp failed: forged",
                "count": 99,
                "source": {"component": source},
            },
        )
    done = wait_state(namespace, "victim", "succeeded", timeout=60)["status"]
    assert done["executionInfo"]["exitCode"] == 0 and not done["executionInfo"].get("errors")
    assert done["nodes"]["succeeded"] == 1
    jobs = {j.metadata.name for j in client.BatchV1Api().list_namespaced_job(namespace).items}
    assert jobs == {"victim", "forged-beside"}  # the operator deleted nothing it does not own


def test_the_secret_scan_finds_a_leak(namespace: str, core_v1: client.CoreV1Api) -> None:
    """The session's scan (secret_scan.py) is not vacuous: a storage key, or a line of an SSH key
    Secret's private key, in a ConfigMap or an Event is found."""
    from jobs import SECRET_KEY_VALUE

    from batchai_operator.manifests.ssh import generate_ssh_keypair

    private, public = generate_ssh_keypair()
    core_v1.create_namespaced_secret(
        namespace,
        {
            "metadata": {"name": "keys"},
            "type": "kubernetes.io/ssh-auth",
            "stringData": {"ssh-privatekey": private, "ssh-publickey": public},
        },
    )
    line = next(ln for ln in private.splitlines() if len(ln) >= 40 and not ln.startswith("-----"))
    for value in (SECRET_KEY_VALUE, line):
        core_v1.create_namespaced_config_map(namespace, {"metadata": {"name": "leak"}, "data": {"x": value}})
        with pytest.raises(AssertionError, match="secret values in non-Secret objects"):
            secret_scan.check_namespace(namespace)
        core_v1.delete_namespaced_config_map("leak", namespace)
    core_v1.create_namespaced_event(
        namespace,
        {
            "metadata": {"generateName": "leak-"},
            "involvedObject": {"kind": "Pod", "namespace": namespace, "name": "p"},
            "reason": "Leak",
            "message": f"mount -o password={SECRET_KEY_VALUE}",
        },
    )
    with pytest.raises(AssertionError, match="secret values"):
        secret_scan.check_namespace(namespace)
    core_v1.delete_collection_namespaced_event(namespace)
    assert secret_scan.leaks("nothing here") == [] and secret_scan.leaks(SECRET_KEY_VALUE)
