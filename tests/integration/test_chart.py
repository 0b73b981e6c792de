"""The Helm chart (charts/batchai-operator) against the real local control plane (docs/design.md, "Testing").

1. `helm lint --strict` passes; values.schema.json rejects bad values, naming them.
2. `helm template | kubectl apply --dry-run=server` is accepted by the apiserver (several value sets).
3. `helm install` into a fresh namespace (crds.enabled=false: the session's `crds_installed` owns the
   cluster-scoped CRDs; a crds.enabled=true render is compared with crds/ instead), uninstalled at the
   end with its cluster-scoped objects (ClusterRole/Binding, PriorityClasses) checked gone.
4. RBAC proof: the operator runs with a token of the chart's ServiceAccount (not admin), with the
   Deployment's own args and env (so --all-namespaces, as the chart's default), and runs TrainingJobs
   and a BatchAICluster to success with no 403 in its log; `kubectl auth can-i` shows what it must not do.

Ordering assumption: the SA-token operator watches all namespaces, so no other operator may run
meanwhile (two operators would fight over the same objects). The session `operator` fixture
(tests/integration/operator_process.py, liveness port 18080) is started lazily by the first test that
requests it, and pytest runs modules in file order: test_chart.py sorts before test_cluster.py,
test_control_plane.py, test_crds.py and test_trainingjob.py, and this module never requests `operator`.
`sa_operator` asserts that nothing listens on 18080 (nor on 18081, its own fixed liveness port, which
a concurrent run of this module would hold) before it starts, and fails clearly otherwise; the test
checks 18080 again at its end.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from chart_operator import ChartOperator, as_dict, permission_problems
from devcluster import DevCluster, wait_for
from jobs import (
    GROUP,
    VERSION,
    create_cluster,
    create_storage_secret,
    create_trainingjob,
    events_for,
    get_trainingjob,
    patch_trainingjob,
    trainingjob_pods,
    wait_state,
)
from kubernetes import client
from operator_process import LIVENESS_PORT

from samples import cntk_spec

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "batchai-operator"
AKS_VALUES = REPO / "examples" / "aks" / "values.yaml"
HEALTH_LUA = REPO / "argocd" / "resource_customizations" / "batchai.io"
CLIENT_ID = "0f0e0d0c-0b0a-0908-0706-050403020100"
KUBE_VERSION = "1.37.2"
# The SA-token operator's liveness port: fixed, so a second run of this module at the same time is
# noticed (its port is taken) instead of running a second all-namespaces operator.
SA_LIVENESS_PORT = LIVENESS_PORT + 1
GPU_TAINT = {"key": "sku", "value": "gpu", "effect": "NoSchedule"}


# ---- helpers --------------------------------------------------------------------------------------


def run(*cmd: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(list(cmd), capture_output=True, text=True, input=input, timeout=120)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {out.returncode}:\n{out.stdout}\n{out.stderr}")
    return out


def set_args(values: dict[str, str]) -> list[str]:
    return [a for k, v in values.items() for a in ("--set", f"{k}={v}")]


def helm_template(
    values: dict[str, str] | None = None,
    release: str = "r",
    namespace: str = "default",
    files: tuple[Path, ...] = (),
) -> list[dict[str, Any]]:
    out = run(
        "helm", "template", release, str(CHART), "-n", namespace, "--kube-version", KUBE_VERSION,
        *[a for f in files for a in ("-f", str(f))], *set_args(values or {}),
    ).stdout  # fmt: skip
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def operator_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deploy,) = by_kind(docs, "Deployment")
    (container,) = deploy["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def gone(read: Callable[[], object]) -> bool:
    """True when read() answers 404."""
    try:
        read()
    except client.ApiException as e:
        if e.status == 404:
            return True
        raise
    return False


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


# ---- 1. lint and values.schema.json ---------------------------------------------------------------


def test_helm_lint_strict_passes() -> None:
    out = run("helm", "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION)
    assert "0 chart(s) failed" in out.stdout + out.stderr


@pytest.mark.parametrize(
    ("value", "named", "why"),
    [
        ("jobs.allowPrivilegedMounts=yes", "/jobs/allowPrivilegedMounts", "want boolean"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy", "must be one of"),
        ("logLevel=trace", "/logLevel", "must be one of"),
        ("watchNamespaces={Bad_NS}", "/watchNamespaces/0", "does not match pattern"),
        ("jobs.priorityClasses.high.value=2000000000", "/jobs/priorityClasses/high/value", "maximum"),
        ("watchNamespace={a}", "'watchNamespace' not allowed", "additional properties"),
        ("workloadIdentity.enabled=true", "/workloadIdentity/clientId", "does not match pattern"),
        ("workloadIdentity.clientId=my-identity", "/workloadIdentity/clientId", "does not match pattern"),
        ("argocd.healthChecks=sure", "/argocd/healthChecks", "want boolean"),
        ("allow.setupTasks={Bad_NS}", "/allow/setupTasks/0", "does not match pattern"),
        ("allow.placement={a*b}", "/allow/placement/0", "does not match pattern"),
        ("jobs.maxShmSize=lots", "/jobs/maxShmSize", "does not match pattern"),
    ],
)
def test_schema_rejects_bad_values_naming_them(value: str, named: str, why: str) -> None:
    lint = run(
        "helm", "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, "--set", value, check=False
    )
    assert lint.returncode != 0
    assert named in lint.stdout and why in lint.stdout, lint.stdout
    tmpl = run(
        "helm", "template", "r", str(CHART), "--kube-version", KUBE_VERSION, "--set", value, check=False
    )
    assert tmpl.returncode != 0
    assert named in tmpl.stderr and why in tmpl.stderr, tmpl.stderr


def test_the_removed_cluster_wide_privileged_switch_fails_with_the_migration() -> None:
    out = run(
        "helm", "template", "r", str(CHART), "--kube-version", KUBE_VERSION,
        "--set", "jobs.allowPrivilegedMounts=true", check=False,
    )  # fmt: skip
    assert out.returncode != 0
    assert "allow.privilegedMounts" in out.stderr and "cluster-wide" in out.stderr, out.stderr
    helm_template({"jobs.allowPrivilegedMounts": "false"})


# ---- 2. rendered objects: valid for the apiserver, and what they say --------------------------------


@pytest.mark.parametrize(
    "values",
    [{}, {"crds.enabled": "false"}, {"watchNamespaces": "{NS}"}, {"admissionPolicy.enabled": "false"}],
    ids=["defaults", "crds-disabled", "watch-namespaces", "no-admission-policy"],
)
def test_rendered_chart_passes_server_side_dry_run(namespace: str, values: dict[str, str]) -> None:
    values = {k: v.replace("NS", namespace) for k, v in values.items()}
    rendered = run(
        "helm", "template", "dry", str(CHART), "-n", namespace, "--kube-version", KUBE_VERSION,
        *set_args(values),
    ).stdout  # fmt: skip
    kinds = sorted(d["kind"] for d in yaml.safe_load_all(rendered) if d)
    expected = ["ClusterRole"] * 3 + ["ClusterRoleBinding", "ConfigMap", "Deployment", "ServiceAccount"]
    expected += ["Service"]  # the metrics Service
    expected += ["PriorityClass"] * 3
    if values.get("crds.enabled") != "false":
        expected += ["CustomResourceDefinition"] * 2
    if values.get("admissionPolicy.enabled") != "false":
        expected += ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"] * 2
    if "watchNamespaces" in values:
        expected += ["Role", "RoleBinding"]
    assert kinds == sorted(expected)
    out = run("kubectl", "apply", "--dry-run=server", "-f", "-", input=rendered)
    assert out.stdout.count("(server dry run)") == len(kinds), out.stdout


def operator_role(docs: list[dict[str, Any]], kind: str = "ClusterRole") -> list[dict[str, Any]]:
    """The operator's own (Cluster)Roles: not the user roles aggregated into admin/edit/view."""
    return [d for d in by_kind(docs, kind) if d["metadata"]["name"] == "r-batchai-operator"]


def grants_of(role: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (g, r, v)
        for rule in role["rules"]
        for g in rule["apiGroups"]
        for r in rule["resources"]
        for v in rule["verbs"]
    }


CLUSTER_GRANTS = {("", "nodes", v) for v in ("list", "watch")} | {
    ("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")
}


def test_default_watches_all_namespaces_without_namespace_rbac() -> None:
    docs = helm_template()
    args = operator_container(docs)["args"]
    assert "--all-namespaces" in args and not any(a.startswith("--namespace") for a in args)
    (role,) = operator_role(docs)
    assert not any("namespaces" in r["resources"] for r in role["rules"])
    assert not by_kind(docs, "Role") and not by_kind(docs, "RoleBinding")


def test_watch_namespaces_become_namespace_args_and_namespace_list_watch() -> None:
    docs = helm_template({"watchNamespaces": "{a,b}", "logLevel": "debug"})
    args = operator_container(docs)["args"]
    assert args[:5] == ["run", "--standalone", "--namespace=a", "--namespace=b", "--debug"]
    assert "--all-namespaces" not in args
    (role,) = operator_role(docs)
    assert {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]} in role["rules"]
    env = {e["name"]: e["value"] for e in operator_container(docs)["env"]}
    assert json.loads(env["BATCHAI_WATCH_NAMESPACES"]) == ["a", "b"]


def test_watch_namespaces_give_roles_in_those_namespaces_only() -> None:
    """With watchNamespaces, the ClusterRole keeps only cluster-scoped reads; every namespaced right is a
    Role bound in a watched namespace (no ClusterRoleBinding reaches namespaced objects)."""
    docs = helm_template({"watchNamespaces": "{a,b}"})
    (cluster_role,) = operator_role(docs)
    assert grants_of(cluster_role) == CLUSTER_GRANTS | {("", "namespaces", v) for v in ("list", "watch")}
    roles = operator_role(docs, "Role")
    assert sorted(r["metadata"]["namespace"] for r in roles) == ["a", "b"]
    (default_role,) = operator_role(helm_template())
    for role in roles:
        assert grants_of(role) == grants_of(default_role) - CLUSTER_GRANTS
    bindings = operator_role(docs, "RoleBinding")
    assert sorted((b["metadata"]["namespace"], b["roleRef"]["kind"]) for b in bindings) == [
        ("a", "Role"),
        ("b", "Role"),
    ]
    (crb,) = by_kind(docs, "ClusterRoleBinding")
    assert crb["roleRef"]["name"] == cluster_role["metadata"]["name"]


def test_cluster_role_is_least_privilege() -> None:
    """The exact grant: every verb is justified in templates/_helpers.tpl, and all but two (see
    exercise_every_grant) are used by the RBAC proof below; the chart's own negative checks are there too."""
    (role,) = operator_role(helm_template())
    grants = grants_of(role)
    assert not any("*" in part for grant in grants for part in grant)
    expected = {("batchai.io", "trainingjobs", v) for v in ("list", "watch", "delete")}
    expected |= {("batchai.io", "batchaiclusters", v) for v in ("list", "watch", "patch")}
    expected |= {("batchai.io", f"{p}/status", "patch") for p in ("trainingjobs", "batchaiclusters")}
    expected |= {("batchai.io", f"{p}/finalizers", "update") for p in ("trainingjobs", "batchaiclusters")}
    expected |= {("batch", "jobs", v) for v in ("get", "list", "watch", "create", "patch", "delete")}
    expected |= {("apps", "daemonsets", v) for v in ("get", "list", "watch", "create", "patch", "delete")}
    expected |= {("", r, v) for r in ("pods", "nodes") for v in ("list", "watch")} | {("", "pods", "patch")}
    expected |= {
        ("", "configmaps", "create"),
        ("", "configmaps", "get"),
        ("", "services", "create"),
        ("", "services", "get"),
        ("", "events", "create"),
        ("", "events", "list"),
        ("", "events", "watch"),
    }
    expected |= {("", "secrets", "create")}  # no get: existence is a dry-run create
    expected |= {("", "persistentvolumeclaims", v) for v in ("get", "create")}
    expected |= {("scheduling.k8s.io", r, v) for r in ("workloads", "podgroups") for v in ("get", "create")}
    expected |= {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")}
    assert grants == expected


def test_user_roles_aggregate_into_admin_edit_and_view() -> None:
    docs = helm_template()
    roles = {d["metadata"]["name"]: d for d in by_kind(docs, "ClusterRole")}
    edit, view = roles["r-batchai-operator-edit"], roles["r-batchai-operator-view"]
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert edit["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    assert ("batchai.io", "trainingjobs", "create") in grants_of(edit)
    assert {v for _, _, v in grants_of(view)} == {"get", "list", "watch"}
    off = helm_template({"rbac.aggregateToDefaultRoles": "false"})
    assert [d["metadata"]["name"] for d in by_kind(off, "ClusterRole")] == ["r-batchai-operator"]


def test_priority_classes_do_not_preempt_unless_the_admin_opts_in() -> None:
    assert {p["preemptionPolicy"] for p in by_kind(helm_template(), "PriorityClass")} == {"Never"}
    opted = helm_template({"jobs.priorityClasses.preempt": "true"})
    assert {p["preemptionPolicy"] for p in by_kind(opted, "PriorityClass")} == {"PreemptLowerPriority"}


def test_the_operator_gets_the_grants_and_its_own_identity() -> None:
    docs = helm_template(
        {"allow.setupTasks": "{ml-*}", "jobs.maxShmSize": "8Gi"}, release="r", namespace="ops"
    )
    env = {e["name"]: e["value"] for e in operator_container(docs)["env"]}
    assert json.loads(env["BATCHAI_ALLOW"])["setupTasks"] == ["ml-*"]
    assert env["BATCHAI_OPERATOR_SERVICE_ACCOUNT"] == "ops/r-batchai-operator"
    assert env["BATCHAI_MAX_SHM_SIZE"] == "8Gi"
    assert json.loads(env["BATCHAI_JOB_RESOURCES"]) == {"requests": {"cpu": "500m", "memory": "1Gi"}}
    assert "BATCHAI_ALLOW_PRIVILEGED_MOUNTS" not in env


def test_crd_templates_render_the_committed_crds() -> None:
    committed = {
        d["metadata"]["name"]: d
        for f in sorted((REPO / "crds").glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
        if d
    }
    assert set(committed) == {"trainingjobs.batchai.io", "batchaiclusters.batchai.io"}

    plain = {
        d["metadata"]["name"]: d
        for d in by_kind(helm_template({"crds.keep": "false"}), "CustomResourceDefinition")
    }
    assert plain == committed

    kept = {d["metadata"]["name"]: d for d in by_kind(helm_template(), "CustomResourceDefinition")}
    for name, crd in committed.items():
        expected = copy.deepcopy(crd)
        expected["metadata"]["annotations"] = {"helm.sh/resource-policy": "keep"}
        assert kept[name] == expected

    assert not by_kind(helm_template({"crds.enabled": "false"}), "CustomResourceDefinition")


def test_workload_identity_annotates_the_service_account_and_labels_the_pod() -> None:
    default = helm_template()
    (sa,) = by_kind(default, "ServiceAccount")
    assert "annotations" not in sa["metadata"]
    (deploy,) = by_kind(default, "Deployment")
    assert "azure.workload.identity/use" not in deploy["spec"]["template"]["metadata"]["labels"]

    docs = helm_template(
        {
            "workloadIdentity.enabled": "true",
            "workloadIdentity.clientId": CLIENT_ID,
            "workloadIdentity.tenantId": "11111111-2222-3333-4444-555555555555",
            "serviceAccount.annotations.team": "ml",
            "podLabels.team": "ml",
        }
    )
    (sa,) = by_kind(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {
        "azure.workload.identity/client-id": CLIENT_ID,
        "azure.workload.identity/tenant-id": "11111111-2222-3333-4444-555555555555",
        "team": "ml",
    }
    (deploy,) = by_kind(docs, "Deployment")
    labels = deploy["spec"]["template"]["metadata"]["labels"]
    assert labels["azure.workload.identity/use"] == "true" and labels["team"] == "ml"
    # The selector is unchanged: upgrading into workload identity keeps the Deployment's identity.
    assert deploy["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": "batchai-operator",
        "app.kubernetes.io/instance": "r",
    }


def test_operator_pod_gets_no_gpu_toleration_and_the_aks_example_pins_it_to_the_system_pool() -> None:
    (deploy,) = by_kind(helm_template(), "Deployment")
    assert "tolerations" not in deploy["spec"]["template"]["spec"]
    docs = helm_template({"workloadIdentity.clientId": CLIENT_ID}, files=(AKS_VALUES,))
    (deploy,) = by_kind(docs, "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    assert pod["nodeSelector"] == {"kubernetes.azure.com/mode": "system"}
    assert pod["tolerations"] == [{"key": "CriticalAddonsOnly", "operator": "Exists", "effect": "NoSchedule"}]
    assert not any(t["key"] in ("sku", "nvidia.com/gpu") for t in pod["tolerations"])
    assert pod["serviceAccountName"] == "batchai-operator"
    assert deploy["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    (sa,) = by_kind(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {"azure.workload.identity/client-id": CLIENT_ID}


def test_aks_example_values_pass_lint_and_server_side_dry_run(namespace: str) -> None:
    args = ("-f", str(AKS_VALUES), "--set", f"workloadIdentity.clientId={CLIENT_ID}")
    out = run("helm", "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION, *args)
    assert "0 chart(s) failed" in out.stdout + out.stderr
    rendered = run(
        "helm", "template", "aks", str(CHART), "-n", namespace, "--kube-version", KUBE_VERSION, *args
    ).stdout  # fmt: skip
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    out = run("kubectl", "apply", "--dry-run=server", "-f", "-", input=rendered)
    assert out.stdout.count("(server dry run)") == len(docs), out.stdout


def test_argocd_health_configmap_embeds_the_lua_files_byte_for_byte() -> None:
    (cm,) = by_kind(helm_template(), "ConfigMap")
    assert cm["metadata"]["name"] == "r-batchai-operator-argocd-health"
    assert cm["data"] == {
        f"resource.customizations.health.batchai.io_{kind}": (HEALTH_LUA / kind / "health.lua").read_text()
        for kind in ("TrainingJob", "BatchAICluster")
    }
    assert not by_kind(helm_template({"argocd.healthChecks": "false"}), "ConfigMap")


def test_packaged_chart_carries_the_lua_files_but_not_their_test_fixtures(tmp_path: Path) -> None:
    run("helm", "package", str(CHART), "-d", str(tmp_path))
    (tgz,) = tmp_path.glob("batchai-operator-*.tgz")
    names = run("tar", "-tzf", str(tgz)).stdout.split()
    lua = [n for n in names if "/argocd/" in n]
    assert sorted(lua) == [
        "batchai-operator/argocd/resource_customizations/batchai.io/BatchAICluster/health.lua",
        "batchai-operator/argocd/resource_customizations/batchai.io/TrainingJob/health.lua",
    ]


# ---- 3. helm install ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str
    service_account: str
    priority_classes: dict[str, str]

    @property
    def fullname(self) -> str:
        return f"{self.name}-batchai-operator"


def cluster_scoped_objects(rel: Release) -> list[str]:
    """The release's cluster-scoped objects that exist (kind/name)."""
    kinds = "clusterroles,clusterrolebindings,priorityclasses"
    kinds += ",validatingadmissionpolicies,validatingadmissionpolicybindings"
    out = run(
        "kubectl", "get", kinds, "-l", f"app.kubernetes.io/instance={rel.name}", "-o", "name",
    ).stdout  # fmt: skip
    return out.split()


@pytest.fixture(scope="module")
def release(devcluster: DevCluster, crds_installed: None, core_v1: client.CoreV1Api) -> Iterator[Release]:
    """One install for the module: fresh namespace, unique release (and PriorityClass) names,
    crds.enabled=false since the session's crds_installed applies crds/ (no two owners)."""
    suffix = uuid.uuid4().hex[:6]
    rel = Release(
        name=f"chart-{suffix}",
        namespace=f"it-chart-{suffix}",
        service_account=f"chart-{suffix}-batchai-operator",
        priority_classes={p: f"chart-{suffix}-{p}" for p in ("low", "normal", "high")},
    )
    labels = {"batchai.io/integration-test": "true"}
    core_v1.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=rel.namespace, labels=labels))
    )
    # The session's test namespaces (it-*) may run setup tasks, as exercise_every_grant needs; debug
    # logging, so that the secret scan covers the client's most talkative level.
    values = {"crds.enabled": "false", "allow.setupTasks": "{it-*}", "logLevel": "debug"}
    values |= {f"jobs.priorityClasses.{p}.name": n for p, n in rel.priority_classes.items()}
    try:
        run(
            "helm", "install", rel.name, str(CHART), "-n", rel.namespace, "--wait", "--timeout", "60s",
            *set_args(values),
        )  # fmt: skip
        yield rel
    finally:
        # test_uninstall_* normally did this already; here only as a safety net.
        if rel.name in run("helm", "list", "-n", rel.namespace, "-q").stdout.split():
            run("helm", "uninstall", rel.name, "-n", rel.namespace, "--wait", "--timeout", "60s")
        core_v1.delete_namespace(rel.namespace, propagation_policy="Background")


def test_install_creates_a_running_operator_deployment(release: Release, core_v1: client.CoreV1Api) -> None:
    status = json.loads(run("helm", "status", release.name, "-n", release.namespace, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    deploy = as_dict(client.AppsV1Api().read_namespaced_deployment(release.fullname, release.namespace))
    assert deploy["status"]["availableReplicas"] == 1
    pod_spec = deploy["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == release.service_account
    assert "--all-namespaces" in pod_spec["containers"][0]["args"]
    (pod,) = as_dict(
        core_v1.list_namespaced_pod(
            release.namespace, label_selector=f"app.kubernetes.io/instance={release.name}"
        )
    )["items"]
    assert pod["status"]["phase"] == "Running" and pod["spec"]["nodeName"]  # kwok "runs" it on a fake node
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    core_v1.read_namespaced_service_account(release.service_account, release.namespace)
    rbac = "rbac.authorization.k8s.io"
    policies = [f"{release.fullname}-{k}" for k in ("batchaiclusters", "trainingjobs")]
    assert sorted(cluster_scoped_objects(release)) == sorted(
        [f"clusterrole.{rbac}/{release.fullname}{s}" for s in ("", "-edit", "-view")]
        + [f"clusterrolebinding.{rbac}/{release.fullname}"]
        + [f"priorityclass.scheduling.k8s.io/{n}" for n in release.priority_classes.values()]
        + [f"validatingadmissionpolicy.admissionregistration.k8s.io/{n}" for n in policies]
        + [f"validatingadmissionpolicybinding.admissionregistration.k8s.io/{n}" for n in policies]
    )
    values = {
        pc["metadata"]["name"]: pc["value"]
        for pc in as_dict(
            client.SchedulingV1Api().list_priority_class(
                label_selector=f"app.kubernetes.io/instance={release.name}"
            )
        )["items"]
    }
    assert values == {
        release.priority_classes[p]: v for p, v in (("low", 1000), ("normal", 2000), ("high", 3000))
    }


def test_documented_argocd_cm_merge_adds_the_health_checks_and_keeps_other_keys(
    release: Release, core_v1: client.CoreV1Api
) -> None:
    """The command in the chart's ConfigMap comment (and docs/operations.md) run as written, against an
    argocd-cm standing in for Argo CD's (only the namespace differs: `argocd` -> a fresh one)."""
    manifest = run("helm", "get", "manifest", release.name, "-n", release.namespace).stdout
    (command,) = [
        line.strip().removeprefix("#").strip()
        for line in manifest.splitlines()
        if line.strip().startswith("#   kubectl -n argocd patch configmap argocd-cm")
    ]
    argocd_ns = f"{release.namespace}-argocd"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=argocd_ns)))
    try:
        core_v1.create_namespaced_config_map(
            argocd_ns,
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name="argocd-cm"), data={"url": "https://argocd.example"}
            ),
        )
        run("bash", "-c", command.replace("-n argocd ", f"-n {argocd_ns} ", 1))
        data = core_v1.read_namespaced_config_map("argocd-cm", argocd_ns).data
        assert data == {
            "url": "https://argocd.example",
            **{
                f"resource.customizations.health.batchai.io_{kind}": (
                    HEALTH_LUA / kind / "health.lua"
                ).read_text()
                for kind in ("TrainingJob", "BatchAICluster")
            },
        }
    finally:
        core_v1.delete_namespace(argocd_ns, propagation_policy="Background")


CRD_NAMES = ("trainingjobs.batchai.io", "batchaiclusters.batchai.io")
HELM_OWNER_ANNOTATIONS = ("meta.helm.sh/release-name", "meta.helm.sh/release-namespace")


def crd_meta(name: str) -> dict[str, Any]:
    return cast(
        dict[str, Any], json.loads(run("kubectl", "get", "crd", name, "-o", "json").stdout)["metadata"]
    )


def test_crds_are_upgraded_by_helm_upgrade_and_kept_on_uninstall(
    crds_installed: None, namespace: str, core_v1: client.CoreV1Api
) -> None:
    """A release that owns the CRDs (crds.enabled=true): `helm upgrade` changes them (the keep annotation
    dropped and restored), `helm uninstall` leaves them and every TrainingJob in place. The session's CRDs
    are adopted for this (Helm's ownership labels), and handed back to `kubectl apply` afterwards."""
    rel = f"crds-{uuid.uuid4().hex[:6]}"
    values = ["--set", "jobs.priorityClasses.create=false"]
    sentinel = {"cluster": "nc6", "nodeCount": 1, "customToolkitSettings": {"commandLine": "true"}}
    sentinel |= {"stdOutErrPathPrefix": "/tmp/logs", "suspend": True}
    create_trainingjob(namespace, "survivor", sentinel)
    try:
        for crd in CRD_NAMES:
            run("kubectl", "label", "crd", crd, "app.kubernetes.io/managed-by=Helm", "--overwrite")
            run("kubectl", "annotate", "crd", crd, f"meta.helm.sh/release-name={rel}",
                f"meta.helm.sh/release-namespace={namespace}", "--overwrite")  # fmt: skip
        run("helm", "install", rel, str(CHART), "-n", namespace, *values)
        assert all(crd_meta(c)["annotations"]["helm.sh/resource-policy"] == "keep" for c in CRD_NAMES)

        run("helm", "upgrade", rel, str(CHART), "-n", namespace, *values, "--set", "crds.keep=false")
        assert all("helm.sh/resource-policy" not in crd_meta(c)["annotations"] for c in CRD_NAMES)
        run("helm", "upgrade", rel, str(CHART), "-n", namespace, *values)
        assert all(crd_meta(c)["annotations"]["helm.sh/resource-policy"] == "keep" for c in CRD_NAMES)

        out = run("helm", "uninstall", rel, "-n", namespace, "--wait", "--timeout", "60s")
        assert "kept due to the resource policy" in out.stdout + out.stderr, out.stdout + out.stderr
        for crd in CRD_NAMES:
            assert not crd_meta(crd).get("deletionTimestamp")
        assert get_trainingjob(namespace, "survivor")["spec"]["suspend"] is True
    finally:
        if rel in run("helm", "list", "-n", namespace, "-q").stdout.split():
            run("helm", "uninstall", rel, "-n", namespace)
        for crd in CRD_NAMES:
            run("kubectl", "label", "crd", crd, "app.kubernetes.io/managed-by-", check=False)
            run("kubectl", "annotate", "crd", crd, *(f"{a}-" for a in HELM_OWNER_ANNOTATIONS),
                "helm.sh/resource-policy-", check=False)  # fmt: skip
        run("kubectl", "apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))


# ---- 4. RBAC proof: the operator with the chart's ServiceAccount token ----------------------------


def as_sa(release: Release) -> str:
    return f"--as=system:serviceaccount:{release.namespace}:{release.service_account}"


@pytest.mark.parametrize(
    "verb_resource",
    [
        ("get", "secrets"),
        ("list", "secrets"),
        ("watch", "secrets"),
        ("delete", "pods"),
        ("create", "pods"),
        ("create", "deployments.apps"),
        ("update", "trainingjobs.batchai.io"),
        ("create", "trainingjobs.batchai.io"),
        ("delete", "nodes"),
        ("create", "clusterroles.rbac.authorization.k8s.io"),
    ],
    ids=lambda vr: "-".join(vr),
)
def test_service_account_cannot(release: Release, verb_resource: tuple[str, str]) -> None:
    out = run("kubectl", "auth", "can-i", *verb_resource, "-A", as_sa(release), check=False)
    assert out.stdout.strip() == "no", out.stdout + out.stderr


def test_service_account_has_every_rule_of_the_cluster_role(release: Release) -> None:
    role = json.loads(run("kubectl", "get", "clusterrole", release.fullname, "-o", "json").stdout)
    checked = 0
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for res in rule["resources"]:
                base, _, sub = res.partition("/")
                target = f"{base}.{group}" if group else base
                for verb in rule["verbs"]:
                    cmd = ["kubectl", "auth", "can-i", verb, target, "-A", as_sa(release)]
                    if sub:
                        cmd.append(f"--subresource={sub}")
                    assert run(*cmd, check=False).stdout.strip() == "yes", cmd
                    checked += 1
    assert checked >= 25


def test_watch_namespaces_rbac_reaches_only_the_watched_namespace(namespace: str) -> None:
    """The rendered RBAC of a watchNamespaces install, applied for real: the ServiceAccount acts in the
    watched namespace and nowhere else (kube-system included), and reads no Secret anywhere."""
    name = f"nsrbac-{uuid.uuid4().hex[:6]}"
    rendered = run(
        "helm", "template", name, str(CHART), "-n", namespace, "--kube-version", KUBE_VERSION,
        "--set", f"watchNamespaces={{{namespace}}}",
        "--show-only", "templates/rbac.yaml", "--show-only", "templates/serviceaccount.yaml",
    ).stdout  # fmt: skip
    run("kubectl", "apply", "-f", "-", input=rendered)
    sa = f"--as=system:serviceaccount:{namespace}:{name}-batchai-operator"

    def can(*args: str) -> str:
        return run("kubectl", "auth", "can-i", *args, sa, check=False).stdout.strip()

    try:
        for verb, what in (("create", "jobs.batch"), ("patch", "pods"), ("create", "secrets")):
            assert can(verb, what, "-n", namespace) == "yes", (verb, what)
            assert can(verb, what, "-n", "kube-system") == "no", (verb, what)
            assert can(verb, what, "-A") == "no", (verb, what)
        assert can("get", "secrets", "-n", namespace) == "no"
        assert can("list", "nodes") == "yes" and can("delete", "nodes") == "no"
    finally:
        run("kubectl", "delete", "-f", "-", "--wait=false", input=rendered, check=False)


def sa_operator_for(release: Release, workdir: Path) -> ChartOperator:
    """`kopf run` with the release Deployment's args and env, authenticated as its ServiceAccount."""
    return ChartOperator(
        release.namespace, release.service_account, release.fullname, workdir, SA_LIVENESS_PORT
    )


def test_permission_problems_finds_rbac_denials_only() -> None:
    kopf_retry = (
        "[2026-11-29 11:27:21,661] kopf._core.engines.p [ERROR   ] Request attempt #1/9 failed; will retry: "
        'POST https://127.0.0.1:16443/api/v1/namespaces/x/events -> APIForbiddenError(\'events "kopf-event-" '
        'is forbidden: User "system:serviceaccount:x:sa" cannot create resource "events" in API group ""\')'
    )
    terminating = (
        "[2026-11-29 11:27:21,667] kopf._core.engines.p [ERROR   ] Request attempt #1/9 failed; will retry: "
        "... is forbidden: unable to create new content in namespace y because it is being terminated"
    )
    traceback = (
        "[2026-11-29 11:32:38,992] kopf.objects [ERROR   ] [ns/cntk] Handler 'on_trainingjob' failed with an "
        "exception and will ignore it: (403)\nReason: Forbidden\nHTTP response body: {{{}}}\nTraceback:\n"
        "kubernetes.client.exceptions.ForbiddenException: (403)"
    )
    rbac_traceback = traceback.format('"message":"secrets \\"storage\\" is forbidden: User ... cannot get"')
    terminating_traceback = traceback.format('"message":"namespace y is being terminated"')
    kopf_warning = "[2026-11-29 11:27:21,700] kopf._core.reactor.o [WARNING ] Not enough permissions to watch"
    harmless = (
        "[2026-11-29 11:27:16,403] kopf.objects [INFO    ] [it-7/nc6] Handler 'on_batch_job' succeeded."
    )
    event_404 = (
        "[2026-11-29 11:34:28,054] kopf._core.engines.p [WARNING ] Failed to post an event. Code: 404."
    )
    log = "\n".join(
        [harmless, kopf_retry, terminating, rbac_traceback, terminating_traceback, kopf_warning, event_404]
    )
    assert permission_problems(log + "\n") == [kopf_retry, rbac_traceback, kopf_warning]


def assert_no_other_operator() -> None:
    for port, who in (
        (LIVENESS_PORT, "the session `operator` fixture (or another run's)"),
        (SA_LIVENESS_PORT, "another run of test_chart.py"),
    ):
        if port_open(port):
            pytest.fail(
                f"another operator is live on 127.0.0.1:{port}: {who}. The chart's all-namespaces operator "
                "must not run beside it (both would act on the same objects). test_chart.py relies on "
                "running before any module that requests `operator` (conftest.py sorts it first)"
                " and on no concurrent run."
            )


@pytest.fixture(scope="module")
def sa_operator(release: Release, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChartOperator]:
    assert_no_other_operator()
    op = sa_operator_for(release, tmp_path_factory.mktemp("sa-operator"))
    op.start()
    yield op
    op.stop()


def get_bac(ns: str, name: str) -> dict[str, Any]:
    return cast(
        dict[str, Any],
        client.CustomObjectsApi().get_namespaced_custom_object(GROUP, VERSION, ns, "batchaiclusters", name),
    )


def exercise_every_grant(
    release: Release, namespace: str, fake_node: Callable[..., client.V1Node], core_v1: client.CoreV1Api
) -> None:
    """TrainingJobs and a BatchAICluster run to success, and between them every grant of the ClusterRole
    is used, except these: batchaiclusters patch (the annotation written after an ARM agent-pool update:
    no spec.aks here), */finalizers update (checked only by the OwnerReferencesPermissionEnforcement
    admission plugin, which is off), persistentvolumeclaims (the shared temp of multi-node jobs: off in this
    release), and `get` on jobs, services, daemonsets, workloads and podgroups (the same metadata read
    as on configmaps, exercised below, when a create finds a child's name taken; a PodGroup is also read
    while its gang waits, which no job here does)."""
    custom = client.CustomObjectsApi()
    apps = client.AppsV1Api()

    # A BatchAICluster with a setup task on two fresh nodes of its own agent pool.
    pool = f"chart{uuid.uuid4().hex[:6]}"
    for _ in range(2):
        fake_node(f"aks-{pool}", gpus=1, instance_type="Standard_NC6", agent_pool=pool, taints=[GPU_TAINT])
    setup = {"commandLine": "echo setup", "stdOutErrPathPrefix": "/tmp/setup-logs"}
    bac = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "BatchAICluster",
        "metadata": {"name": "pool", "namespace": namespace},
        "spec": {"vmSize": "Standard_NC6", "agentPool": pool, "nodeSetup": {"setupTask": setup}},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "batchaiclusters", bac)

    # Jobs: single-node CNTK with a storage Secret (get) and a TTL (TrainingJob delete); a 2-node
    # Horovod job created suspended (Job patch), with its ConfigMap, headless Service and SSH Secret.
    create_cluster(namespace)
    create_storage_secret(namespace)
    create_trainingjob(namespace, "cntk", cntk_spec(ttlSecondsAfterFinished=4))
    hvd = {
        "cluster": "nc6",
        "nodeCount": 2,
        "suspend": True,
        "stdOutErrPathPrefix": "/tmp/logs",
        "horovodSettings": {"pythonScriptFilePath": "train.py", "processCount": 2},
    }
    create_trainingjob(namespace, "hvd", hvd, annotations={"sim.batchai.io/run-for": "2s"})
    # Terminated while suspended (no GPU needed): the operator deletes its Job.
    create_trainingjob(namespace, "term", cntk_spec(suspend=True))

    batch = client.BatchV1Api()
    suspended = wait_for(lambda: batch.read_namespaced_job("hvd", namespace), timeout=20, what="Job hvd")
    assert as_dict(suspended)["spec"]["suspend"] is True
    core_v1.read_namespaced_config_map("hvd", namespace)
    core_v1.read_namespaced_service("hvd", namespace)
    hvd_uid = get_trainingjob(namespace, "hvd")["metadata"]["uid"]
    core_v1.read_namespaced_secret(f"hvd-ssh-{hvd_uid[:8]}", namespace)
    patch_trainingjob(namespace, "hvd", {"spec": {"suspend": False}})
    wait_for(lambda: batch.read_namespaced_job("term", namespace), timeout=20, what="Job term")
    patch_trainingjob(namespace, "term", {"spec": {"terminate": True}})

    cntk = wait_state(namespace, "cntk", "succeeded", timeout=40)
    assert cntk["status"]["executionInfo"]["exitCode"] == 0
    wait_for(
        lambda: "Succeeded" in {e.reason for e in events_for(namespace, "cntk")},
        timeout=10,
        what="Events posted with the SA",
    )
    term = wait_state(namespace, "term", "failed", timeout=20)
    assert term["status"]["executionInfo"]["errors"][0]["code"] == "JobTerminated"
    wait_for(
        lambda: gone(lambda: batch.read_namespaced_job("term", namespace)), timeout=10, what="Job deleted"
    )
    # A child name taken by an object that is not the job's (get: whose is it?): the job waits.
    stranger = {
        "metadata": {"name": "taken"},
        "spec": {
            "suspend": True,  # never runs: it only holds the name
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}
            },
        },
    }
    batch.create_namespaced_job(namespace, stranger)
    create_trainingjob(namespace, "taken", cntk_spec())
    wait_for(
        lambda: any(
            c["reason"] == "JobCreationRejected" and "belongs to another object" in c["message"]
            for c in (get_trainingjob(namespace, "taken").get("status") or {}).get("conditions") or []
            if c["status"] == "True"
        ),
        timeout=30,
        what="taken: JobCreationRejected",
    )
    hvd_done = wait_state(namespace, "hvd", "succeeded", timeout=40)
    assert hvd_done["status"]["executionInfo"]["exitCode"] == 0
    pods = trainingjob_pods(namespace, "hvd")
    assert pods and all(
        as_dict(p)["spec"]["priorityClassName"] == release.priority_classes["normal"] for p in pods
    )

    # The cluster: DaemonSet created, setup done on both nodes, steady with 2 idle nodes.
    def steady() -> dict[str, Any] | None:
        st = get_bac(namespace, "pool").get("status") or {}
        counts = st.get("nodeStateCounts") or {}
        ok = st.get("allocationState") == "steady" and st.get("currentNodeCount") == 2
        return st if ok and counts.get("idleNodeCount") == 2 else None

    wait_for(steady, timeout=30, what="BatchAICluster pool steady with 2 idle nodes")

    def setup_revision() -> str:
        ds = as_dict(apps.read_namespaced_daemon_set("pool-setup", namespace))
        return str(ds["metadata"]["annotations"]["batchai.io/setup-task-revision"])

    revision = setup_revision()
    # A changed setup task: the DaemonSet is replaced by a JSON patch; removed: it is deleted.
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "batchaiclusters", "pool",
        {"spec": {"nodeSetup": {"setupTask": {**setup, "commandLine": "echo again"}}}},
    )  # fmt: skip
    wait_for(lambda: setup_revision() != revision, timeout=10, what="setup DaemonSet patched")
    custom.patch_namespaced_custom_object(
        GROUP, VERSION, namespace, "batchaiclusters", "pool", {"spec": {"nodeSetup": None}}
    )
    wait_for(
        lambda: not apps.list_namespaced_daemon_set(namespace).items, timeout=10, what="DaemonSet deleted"
    )
    # Its pods gone too, before the fake nodes are deleted (pods of deleted nodes linger until pod GC).
    uid = get_bac(namespace, "pool")["metadata"]["uid"]
    wait_for(
        lambda: (
            not core_v1.list_namespaced_pod(namespace, label_selector=f"batchai.io/cluster-uid={uid}").items
        ),
        timeout=15,
        what="setup pods deleted",
    )

    # ttlSecondsAfterFinished: the operator deleted the TrainingJob.
    wait_for(
        lambda: gone(lambda: get_trainingjob(namespace, "cntk")),
        timeout=15,
        what="TrainingJob cntk deleted (TTL)",
    )


def test_operator_with_the_chart_rbac_runs_jobs_and_a_cluster(
    sa_operator: ChartOperator,
    release: Release,
    namespace: str,
    fake_node: Callable[..., client.V1Node],
    core_v1: client.CoreV1Api,
) -> None:
    assert "--all-namespaces" in sa_operator.args
    # The operator's kubeconfig is the ServiceAccount's token, not admin.
    env = {**os.environ, "KUBECONFIG": str(sa_operator.kubeconfig)}
    whoami = subprocess.run(
        ["kubectl", "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"],
        env=env, capture_output=True, text=True, check=True, timeout=30,
    ).stdout  # fmt: skip
    assert whoami == f"system:serviceaccount:{release.namespace}:{release.service_account}"
    try:
        exercise_every_grant(release, namespace, fake_node, core_v1)
    except Exception as e:
        problems = sa_operator.permission_problems()
        if problems:
            raise AssertionError("the operator was refused:\n" + "\n".join(problems)) from e
        raise
    assert sa_operator.proc is not None and sa_operator.proc.poll() is None, sa_operator.log_text()[-3000:]
    if port_open(LIVENESS_PORT):
        pytest.fail(
            f"an operator started on 127.0.0.1:{LIVENESS_PORT} during this test: the RBAC proof is void"
        )
    assert sa_operator.permission_problems() == [], "\n".join(sa_operator.permission_problems())


# ---- uninstall (last: the tests above use the release) ---------------------------------------------


def test_uninstall_removes_cluster_scoped_objects_and_keeps_the_crds(release: Release) -> None:
    run("helm", "uninstall", release.name, "-n", release.namespace, "--wait", "--timeout", "60s")
    assert cluster_scoped_objects(release) == []
    run("kubectl", "get", "crd", "trainingjobs.batchai.io", "batchaiclusters.batchai.io")
    assert run("kubectl", "get", "serviceaccount", release.service_account, "-n", release.namespace,
               check=False).returncode != 0  # fmt: skip
