"""The generated CRDs on the real apiserver: they install, the seed's job.json converted is accepted
and reads back unchanged, `kubectl explain` teaches the API, and invalid objects are rejected with
messages that name the offending field."""

from __future__ import annotations

import base64
import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from devcluster import DevCluster, wait_for
from kubernetes import client

from batchai_operator import GROUP, VERSION
from batchai_operator.api import BatchAIClusterSpec, TrainingJobSpec
from batchai_operator.cli.convert.job import ConvertOptions, convert_file

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CRDS = REPO / "crds"
SEED = REPO / "examples" / "cntk-mnist" / "job.json"
CLUSTER_EXAMPLE = REPO / "examples" / "cntk-mnist" / "cluster.yaml"
KEY = "c3VwZXItc2VjcmV0LXN0b3JhZ2Uta2V5PT0="
DELETE = object()  # in an override: remove the key


def kubectl(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["kubectl", *args], input=stdin, capture_output=True, text=True, timeout=120)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
    return result


@pytest.fixture(scope="module", autouse=True)
def crds(devcluster: DevCluster) -> None:
    """Server-side apply crds/ and wait until both kinds are Established and served."""
    kubectl(
        "apply", "--server-side", "--force-conflicts", "--field-manager=batchai-crd-tests", "-f", str(CRDS)
    )
    kubectl(
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        f"crd/trainingjobs.{GROUP}",
        f"crd/batchaiclusters.{GROUP}",
    )
    wait_for(
        lambda: kubectl("get", "tj,bac", "-A", check=False).returncode == 0, timeout=30, what="kinds served"
    )


@pytest.fixture(scope="module")
def api(crds: None) -> client.CustomObjectsApi:
    return client.CustomObjectsApi()


# ---- helpers ----------------------------------------------------------------------------------------


def merged(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if value is DELETE:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def manifest(kind: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": kind, "metadata": {"name": name}, "spec": spec}


def plural(kind: str) -> str:
    return {"TrainingJob": "trainingjobs", "BatchAICluster": "batchaiclusters"}[kind]


def create(api: client.CustomObjectsApi, namespace: str, body: dict[str, Any], dry_run: bool = False) -> Any:
    kwargs = {"dry_run": "All"} if dry_run else {}
    return api.create_namespaced_custom_object(
        GROUP, VERSION, namespace, plural(body["kind"]), body, **kwargs
    )


def rejection(api: client.CustomObjectsApi, namespace: str, body: dict[str, Any]) -> str:
    """Create (dry run) and return the apiserver's error message; fail if it was accepted."""
    try:
        create(api, namespace, body, dry_run=True)
    except client.ApiException as exc:
        assert exc.status == 422, exc.body
        status = json.loads(exc.body)
        causes = "\n".join(
            f"{c.get('field')}: {c.get('message')}" for c in status.get("details", {}).get("causes", [])
        )
        return f"{status['message']}\n{causes}"
    raise AssertionError(f"the apiserver accepted an invalid {body['kind']}: {json.dumps(body['spec'])}")


# A valid TrainingJob spec to break one rule at a time (CEL rules only run once the schema's own
# checks pass, so each case carries exactly one mistake).
BASE_JOB: dict[str, Any] = {
    "cluster": "nc6",
    "nodeCount": 2,
    "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
    "mountVolumes": {
        "azureFileShares": [
            {
                "accountName": "myacct",
                "azureFileUrl": "https://myacct.file.core.windows.net/logs",
                "credentials": {"secretRef": {"name": "storage"}},
                "relativeMountPath": "logs",
            }
        ],
        "azureBlobFileSystems": [
            {
                "accountName": "myacct",
                "containerName": "data",
                "credentials": {"secretRef": {"name": "storage"}},
                "relativeMountPath": "data",
            }
        ],
    },
    "outputDirectories": [{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}],
    "cntkSettings": {"pythonScriptFilePath": "$AZ_BATCHAI_JOB_MOUNT_ROOT/scripts/train.py"},
}
TF = {"pythonScriptFilePath": "tf.py", "workerCount": 2, "parameterServerCount": 1}
SHARE = BASE_JOB["mountVolumes"]["azureFileShares"][0]
BLOB = BASE_JOB["mountVolumes"]["azureBlobFileSystems"][0]

INVALID_JOBS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("no-toolkit", {"cntkSettings": DELETE}, ["spec:", "set exactly one toolkit"]),
    ("two-toolkits", {"tensorFlowSettings": TF}, ["spec:", "set exactly one toolkit"]),
    ("node-count-zero", {"nodeCount": 0}, ["spec.nodeCount", "greater than or equal to 1"]),
    (
        "brainscript-without-config",
        {"cntkSettings": {"languageType": "BrainScript", "pythonScriptFilePath": DELETE}},
        ["spec.cntkSettings.configFilePath", "configFilePath is required when languageType is BrainScript"],
    ),
    (
        "cntk-config-and-script-without-language",
        {"cntkSettings": {"configFilePath": "c.cntk"}},
        ["spec.cntkSettings.languageType", "both configFilePath and pythonScriptFilePath are set"],
    ),
    (
        "cntk-neither-config-nor-script",
        {"cntkSettings": {"pythonScriptFilePath": DELETE, "processCount": 2}},
        ["spec.cntkSettings", "set pythonScriptFilePath (a Python job) or configFilePath"],
    ),
    (
        "cntk-python-with-config",
        {"cntkSettings": {"languageType": "Python", "configFilePath": "c.cntk"}},
        ["spec.cntkSettings.configFilePath", "for BrainScript jobs only"],
    ),
    (
        "worker-count-over-any-cluster",
        {"cntkSettings": DELETE, "tensorFlowSettings": dict(TF, workerCount=129)},
        ["spec.tensorFlowSettings.workerCount", "must not exceed nodeCount x GPUs per VM"],
    ),
    (
        "launcher-variable",
        {"environmentVariables": [{"name": "BATCHAI_SSH_DIR", "value": "/tmp"}]},
        ["spec.environmentVariables[0].name", "reserved for the operator's launcher"],
    ),
    (
        "caffe-config-and-script",
        {
            "cntkSettings": DELETE,
            "caffeSettings": {"configFilePath": "s.prototxt", "pythonScriptFilePath": "t.py"},
        },
        ["spec.caffeSettings", "exactly one of configFilePath or pythonScriptFilePath"],
    ),
    (
        "caffe-neither",
        {"cntkSettings": DELETE, "caffeSettings": {"commandLineArgs": "-gpu all"}},
        ["spec.caffeSettings", "exactly one of configFilePath or pythonScriptFilePath"],
    ),
    ("process-count-zero", {"cntkSettings": {"processCount": 0}}, ["spec.cntkSettings.processCount"]),
    (
        "worker-count-zero",
        {"cntkSettings": DELETE, "tensorFlowSettings": dict(TF, workerCount=0)},
        ["spec.tensorFlowSettings.workerCount", "greater than or equal to 1"],
    ),
    (
        "parameter-servers-over-node-count",
        {"cntkSettings": DELETE, "tensorFlowSettings": dict(TF, parameterServerCount=3)},
        ["spec.tensorFlowSettings.parameterServerCount", "must not exceed nodeCount"],
    ),
    (
        "output-ids-repeated",
        {"outputDirectories": [{"id": "MODEL", "pathPrefix": "a"}, {"id": "MODEL", "pathPrefix": "b"}]},
        ["spec.outputDirectories", "ids must be unique"],
    ),
    (
        "output-id-not-an-env-suffix",
        {"outputDirectories": [{"id": "my-model", "pathPrefix": "a"}]},
        ["spec.outputDirectories[0].id", "my-model"],
    ),
    (
        "mount-path-with-dotdot",
        {"mountVolumes": {"azureFileShares": [dict(SHARE, relativeMountPath="logs/../../etc")]}},
        ["spec.mountVolumes.azureFileShares[0].relativeMountPath", "must not contain '..'"],
    ),
    (
        "mount-path-absolute",
        {"mountVolumes": {"azureBlobFileSystems": [dict(BLOB, relativeMountPath="/etc")]}},
        ["spec.mountVolumes.azureBlobFileSystems[0].relativeMountPath", "must not start with '/'"],
    ),
    (
        "mount-paths-repeated",
        {"mountVolumes": {"azureBlobFileSystems": [dict(BLOB, relativeMountPath="logs")]}},
        ["spec.mountVolumes", "relativeMountPath values must be unique"],
    ),
    (
        "inline-account-key",
        {"mountVolumes": {"azureFileShares": [dict(SHARE, credentials={"accountKey": KEY})]}},
        [
            "spec.mountVolumes.azureFileShares[0].credentials",
            "inline storage keys are not accepted",
            "Secret",
        ],
    ),
    (
        "no-credentials",
        {"mountVolumes": {"azureBlobFileSystems": [dict(BLOB, credentials={})]}},
        [
            "spec.mountVolumes.azureBlobFileSystems[0].credentials",
            "exactly one of secretRef or workloadIdentity",
        ],
    ),
    (
        "registry-password",
        {
            "containerSettings": {
                "imageSourceRegistry": {
                    "image": "r.io/cntk:1",
                    "credentials": {"username": "u", "password": "p"},
                }
            }
        },
        [
            "spec.containerSettings.imageSourceRegistry.credentials",
            "registry passwords are not accepted inline",
        ],
    ),
    (
        "secret-value-inline",
        {"secrets": [{"name": "TOKEN", "value": "hunter2"}]},
        ["spec.secrets[0]", "secret values are not accepted inline", "secretRef"],
    ),
    (
        "environment-names-repeated",
        {"environmentVariables": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]},
        ["spec.environmentVariables", "names must be unique"],
    ),
    (
        "bad-wall-clock-time",
        {"constraints": {"maxWallClockTime": "7d"}},
        ["spec.constraints.maxWallClockTime", "7d"],
    ),
    ("bad-priority", {"schedulingPriority": "urgent"}, ["spec.schedulingPriority", "Unsupported value"]),
    ("no-stdouterr-prefix", {"stdOutErrPathPrefix": DELETE}, ["spec.stdOutErrPathPrefix", "Required value"]),
    ("cluster-not-a-kubernetes-name", {"cluster": "NC_6"}, ["spec.cluster", "NC_6"]),
    (
        "unresolved-placeholder-account",
        {"mountVolumes": {"azureBlobFileSystems": [dict(BLOB, accountName="<YOUR_STORAGE_ACCOUNT>")]}},
        ["spec.mountVolumes.azureBlobFileSystems[0].accountName"],
    ),
    ("experiment-not-a-label", {"experiment": "-exp-"}, ["spec.experiment"]),
]

BASE_CLUSTER: dict[str, Any] = yaml.safe_load(CLUSTER_EXAMPLE.read_text())["spec"]
INVALID_CLUSTERS: list[tuple[str, dict[str, Any], list[str]]] = [
    (
        "manual-and-autoscale",
        {"scaleSettings": {"autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 2}}},
        ["spec.scaleSettings", "exactly one of manual or autoScale"],
    ),
    (
        "autoscale-min-over-max",
        {"scaleSettings": {"manual": DELETE, "autoScale": {"minimumNodeCount": 3, "maximumNodeCount": 2}}},
        ["spec.scaleSettings.autoScale.minimumNodeCount", "must not exceed maximumNodeCount"],
    ),
    ("no-vm-size", {"vmSize": DELETE}, ["spec.vmSize", "Required value"]),
    ("bad-vm-priority", {"vmPriority": "spot"}, ["spec.vmPriority", "Unsupported value"]),
    (
        "negative-target",
        {"scaleSettings": {"manual": {"targetNodeCount": -1}}},
        ["spec.scaleSettings.manual"],
    ),
    (
        "admin-password",
        {"userAccountSettings": {"adminUserName": "azureuser", "adminUserPassword": "P@ssw0rd"}},
        ["spec.userAccountSettings", "passwords are not accepted"],
    ),
    (
        "cluster-mount-inline-key",
        {"nodeSetup": {"mountVolumes": {"azureFileShares": [dict(SHARE, credentials={"accountKey": KEY})]}}},
        [
            "spec.nodeSetup.mountVolumes.azureFileShares[0].credentials",
            "inline storage keys are not accepted",
        ],
    ),
    (
        "setup-task-secret-value",
        {
            "nodeSetup": {
                "setupTask": {
                    "commandLine": "true",
                    "stdOutErrPathPrefix": "$AZ_BATCHAI_MOUNT_ROOT/logs",
                    "secrets": [{"name": "T", "value": "v"}],
                }
            }
        },
        ["spec.nodeSetup.setupTask.secrets[0]", "secret values are not accepted inline"],
    ),
    (
        "app-insights-key",
        {
            "nodeSetup": {
                "performanceCountersSettings": {
                    "appInsightsReference": {
                        "component": {"id": "/x/components/ai"},
                        "instrumentationKey": "k",
                    }
                }
            }
        },
        ["spec.nodeSetup.performanceCountersSettings.appInsightsReference", "keys are not accepted inline"],
    ),
]


# ---- tests ------------------------------------------------------------------------------------------


def test_the_bases_are_valid(api: client.CustomObjectsApi, namespace: str) -> None:
    # A job may choose its MPI and task shell (launcher settings, the only BATCHAI_* names it may set).
    settings = [
        {"name": "BATCHAI_MPI_FLAVOUR", "value": "intelmpi"},
        {"name": "BATCHAI_TASK_SHELL", "value": "plain"},
    ]
    create(
        api,
        namespace,
        manifest("TrainingJob", "settings", {**BASE_JOB, "environmentVariables": settings}),
        True,
    )
    TrainingJobSpec.model_validate(BASE_JOB)
    BatchAIClusterSpec.model_validate(BASE_CLUSTER)
    create(api, namespace, manifest("TrainingJob", "base", BASE_JOB), dry_run=True)
    create(api, namespace, manifest("BatchAICluster", "nc6", BASE_CLUSTER), dry_run=True)


@pytest.mark.parametrize(("case", "override", "fragments"), INVALID_JOBS, ids=[c[0] for c in INVALID_JOBS])
def test_invalid_trainingjob_rejected(
    api: client.CustomObjectsApi, namespace: str, case: str, override: dict[str, Any], fragments: list[str]
) -> None:
    message = rejection(api, namespace, manifest("TrainingJob", case, merged(BASE_JOB, override)))
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


@pytest.mark.parametrize(
    ("case", "override", "fragments"), INVALID_CLUSTERS, ids=[c[0] for c in INVALID_CLUSTERS]
)
def test_invalid_batchaicluster_rejected(
    api: client.CustomObjectsApi, namespace: str, case: str, override: dict[str, Any], fragments: list[str]
) -> None:
    message = rejection(api, namespace, manifest("BatchAICluster", case, merged(BASE_CLUSTER, override)))
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in:\n{message}"


def test_enough_rejection_cases() -> None:
    assert len(INVALID_JOBS) >= 15 and len(INVALID_CLUSTERS) >= 5


@pytest.mark.parametrize(
    ("name", "fragment"),
    [("1st-job", "metadata.name"), ("a" * 53, "metadata.name"), ("cntk_python_1", "metadata.name")],
)
def test_trainingjob_names(api: client.CustomObjectsApi, namespace: str, name: str, fragment: str) -> None:
    assert fragment in rejection(api, namespace, manifest("TrainingJob", name, BASE_JOB))


def test_seed_job_json_converted_is_accepted_and_reads_back_unchanged(
    api: client.CustomObjectsApi, core_v1: client.CoreV1Api, namespace: str
) -> None:
    options = ConvertOptions(
        # the quickstart ran `az batchai job create -n cntk_python_1 -c nc6 -e quickstart -f job.json`
        name="cntk_python_1",
        cluster="nc6",
        experiment="quickstart",
        namespace=namespace,
        placeholders={"YOUR_STORAGE_ACCOUNT": "myacct"},
        storage_account_key=KEY,
    )
    result = convert_file(str(SEED), options, environ={})
    applied = kubectl("apply", "--server-side", "-f", "-", stdin=result.to_yaml())
    assert "trainingjob.batchai.io/cntk-python-1 serverside-applied" in applied.stdout

    stored = api.get_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", "cntk-python-1")
    assert stored["spec"] == result.obj["spec"]
    assert TrainingJobSpec.model_validate(stored["spec"]).wire() == stored["spec"]
    assert KEY not in json.dumps(stored) and base64.b64encode(KEY.encode()).decode() not in json.dumps(stored)

    storage = core_v1.read_namespaced_secret("cntk-python-1-storage-myacct", namespace)
    assert base64.b64decode(storage.data["azurestorageaccountkey"]).decode() == KEY
    assert base64.b64decode(storage.data["azurestorageaccountname"]).decode() == "myacct"


def test_server_defaults_equal_model_defaults(api: client.CustomObjectsApi, namespace: str) -> None:
    """What the apiserver fills in is exactly what the models fill in (the CRD keeps their defaults)."""
    raw = copy.deepcopy(BASE_JOB)
    raw["constraints"] = {}
    stored = create(api, namespace, manifest("TrainingJob", "defaults", raw))
    assert stored["spec"]["schedulingPriority"] == "normal"
    assert stored["spec"]["experiment"] == "default"
    assert stored["spec"]["constraints"] == {"maxWallClockTime": "7.00:00:00"}
    assert stored["spec"]["mountVolumes"]["azureFileShares"][0]["fileMode"] == "0777"
    assert stored["spec"] == TrainingJobSpec.model_validate(raw).wire()

    cluster = {"vmSize": "STANDARD_NC6", "scaleSettings": {"manual": {}}}
    stored = create(api, namespace, manifest("BatchAICluster", "defaults", cluster))
    assert stored["spec"] == BatchAIClusterSpec.model_validate(cluster).wire()
    assert stored["spec"]["scaleSettings"]["manual"] == {
        "targetNodeCount": 0,
        "nodeDeallocationOption": "requeue",
    }


def test_explicit_nulls_are_dropped(api: client.CustomObjectsApi, namespace: str) -> None:
    raw = merged(BASE_JOB, {"jobPreparation": None, "cntkSettings": {"pythonInterpreterPath": None}})
    stored = create(api, namespace, manifest("TrainingJob", "nulls", raw))
    assert "jobPreparation" not in stored["spec"]
    assert "pythonInterpreterPath" not in stored["spec"]["cntkSettings"]


def test_spec_is_immutable_but_terminate_is_one_way(api: client.CustomObjectsApi, namespace: str) -> None:
    create(api, namespace, manifest("TrainingJob", "running", BASE_JOB))
    ns = ["-n", namespace]
    out = kubectl(
        "patch", "tj", "running", *ns, "--type=merge", "-p", '{"spec":{"nodeCount":4}}', check=False
    )
    assert out.returncode != 0 and "spec is immutable" in out.stderr
    kubectl(
        "patch",
        "tj",
        "running",
        *ns,
        "--type=merge",
        "-p",
        '{"spec":{"suspend":true,"ttlSecondsAfterFinished":60}}',
    )
    kubectl("patch", "tj", "running", *ns, "--type=merge", "-p", '{"spec":{"terminate":true}}')
    out = kubectl(
        "patch", "tj", "running", *ns, "--type=merge", "-p", '{"spec":{"terminate":false}}', check=False
    )
    assert out.returncode != 0 and "spec.terminate" in out.stderr and "cannot be reverted" in out.stderr


def explain(path: str) -> str:
    def run() -> str | None:
        out = kubectl("explain", path, check=False)
        return out.stdout if out.returncode == 0 else None

    return wait_for(run, timeout=60, what=f"kubectl explain {path}")


def test_kubectl_explain_prints_descriptions() -> None:
    text = explain("trainingjob.spec.cntkSettings")
    assert "CNTK toolkit" in text
    for field, description in [
        ("pythonScriptFilePath", "Python script to run."),
        ("configFilePath", "BrainScript configuration file"),
        ("processCount", "passed to the MPI runtime"),
        ("languageType", "BrainScript or Python"),
    ]:
        assert field in text and description in text, f"{field}: {description!r} not in\n{text}"
    cluster_text = " ".join(explain("batchaicluster.spec").split())
    assert "Accepted so Batch AI cluster.json files apply unchanged, and ignored" in cluster_text
    assert "credentials" in explain("tj.spec.mountVolumes.azureFileShares")


def test_category_short_names_and_columns(api: client.CustomObjectsApi, namespace: str) -> None:
    kubectl("apply", "--server-side", "-n", namespace, "-f", str(CLUSTER_EXAMPLE))
    create(api, namespace, manifest("TrainingJob", "listed", BASE_JOB))
    names = kubectl("get", "batchai", "-n", namespace, "-o", "name").stdout.split()
    assert "batchaicluster.batchai.io/nc6" in names
    assert "trainingjob.batchai.io/listed" in names

    header = kubectl("get", "tj", "-n", namespace).stdout.splitlines()[0].split()
    assert header == ["NAME", "STATE", "EXIT", "CODE", "TOOL", "NODES", "CLUSTER", "AGE"]
    header = kubectl("get", "bac", "-n", namespace).stdout.splitlines()[0].split()
    assert header == [
        "NAME",
        "VM",
        "SIZE",
        "STATE",
        "IDLE",
        "RUNNING",
        "PREPARING",
        "LEAVING",
        "UNUSABLE",
        "AGE",
    ]
    row = kubectl("get", "bac", "nc6", "-n", namespace, "--no-headers").stdout.split()
    assert row[:2] == ["nc6", BASE_CLUSTER["vmSize"]]


def test_crds_are_what_the_cluster_serves(api: client.CustomObjectsApi) -> None:
    ext = client.ApiextensionsV1Api()
    for path in sorted(CRDS.glob("*.yaml")):
        want = yaml.safe_load(path.read_text())
        got = ext.read_custom_resource_definition(want["metadata"]["name"])
        served = client.ApiClient().sanitize_for_serialization(got)
        assert served["spec"]["names"]["categories"] == ["batchai"]
        assert (
            served["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
            == want["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        )
