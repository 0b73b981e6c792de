"""Property test of the builders (hypothesis): any valid TrainingJob spec yields children that the real
apiserver accepts (a server-side dry run of every one), with valid names and within the size limits."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from kubernetes import client
from pydantic import ValidationError

from batchai_operator.api.cluster import BatchAIClusterSpec
from batchai_operator.api.trainingjob import TrainingJobSpec
from batchai_operator.config import OperatorConfig
from batchai_operator.manifests.children import build_children
from batchai_operator.manifests.errors import BuildError
from batchai_operator.manifests.ssh import generate_ssh_keypair

NC24 = BatchAIClusterSpec.model_validate({"vmSize": "Standard_NC24"})
CONFIG = OperatorConfig(shared_temp_storage_class="azurefile-csi")
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
KEY = st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True)
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
ENV_NAME = st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True).filter(
    lambda n: not n.startswith("BATCHAI_")
)
SCRIPT = st.from_regex(r"\$AZ_BATCHAI_JOB_MOUNT_ROOT/[a-z]{1,8}/[a-z_]{1,10}\.py", fullmatch=True)


@st.composite
def toolkit(draw: st.DrawFn, nodes: int) -> dict[str, Any]:
    kind = draw(st.sampled_from(["custom", "cntk", "tensorflow", "pytorch", "horovod", "caffe2", "mpi"]))
    script = draw(SCRIPT)
    args = draw(TEXT)
    if kind == "custom":
        return {"customToolkitSettings": {"commandLine": draw(TEXT.filter(str.strip))}}
    if kind == "cntk":
        return {"cntkSettings": {"pythonScriptFilePath": script, "commandLineArgs": args}}
    if kind == "tensorflow":
        settings = {"pythonScriptFilePath": script, "workerCount": draw(st.integers(1, nodes * 4))}
        settings["parameterServerCount"] = draw(st.integers(1, nodes))
        return {"tensorFlowSettings": settings}
    if kind == "pytorch":
        backend = draw(st.sampled_from(["gloo", "nccl", "mpi"]))
        return {
            "pyTorchSettings": {
                "pythonScriptFilePath": script,
                "commandLineArgs": args,
                "processCount": draw(st.integers(1, nodes * 4)),
                "communicationBackend": backend,
            }
        }
    if kind == "horovod":
        return {
            "horovodSettings": {
                "pythonScriptFilePath": script,
                "processCount": draw(st.integers(1, nodes * 4)),
            }
        }
    if kind == "caffe2":
        return {"caffe2Settings": {"pythonScriptFilePath": script, "commandLineArgs": args}}
    return {"customMpiSettings": {"commandLine": draw(TEXT.filter(str.strip)), "processCount": nodes}}


@st.composite
def specs(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    name = draw(st.from_regex(r"[a-z]([-a-z0-9]{0,40}[a-z0-9])?", fullmatch=True))
    nodes = draw(st.integers(1, 3))
    spec: dict[str, Any] = {
        "cluster": "nc24",
        "nodeCount": nodes,
        "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
        **draw(toolkit(nodes)),
    }
    names = draw(st.lists(ENV_NAME, max_size=4, unique=True))
    spec["environmentVariables"] = [{"name": n, "value": draw(TEXT)} for n in names]
    paths = draw(st.lists(st.tuples(KEY, st.none() | KEY), max_size=3, unique_by=lambda p: p[0]))
    spec["mountVolumes"] = {
        "azureFileShares": [
            {
                "accountName": "acct",
                "azureFileUrl": f"https://acct.file.core.windows.net/{first}",
                "credentials": {"secretRef": {"name": "storage"}},
                "relativeMountPath": first if sub is None else f"{first}/{sub}",
            }
            for first, sub in paths
        ]
    }
    ids = draw(st.lists(st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True), max_size=3, unique=True))
    spec["outputDirectories"] = [
        {"id": i, "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs", "pathSuffix": draw(st.none() | KEY)}
        for i in ids
    ]
    if draw(st.booleans()):
        spec["jobPreparation"] = {"commandLine": draw(TEXT.filter(str.strip))}
    spec["constraints"] = {
        "maxWallClockTime": draw(st.sampled_from(["1:00:00", "7.00:00:00", "PT90M", "2 days, 3:00:00"]))
    }
    return name, spec


def dry_run(namespace: str, manifest: dict[str, Any]) -> None:
    core, batch = client.CoreV1Api(), client.BatchV1Api()
    create = {
        "Job": batch.create_namespaced_job,
        "ConfigMap": core.create_namespaced_config_map,
        "Service": core.create_namespaced_service,
        "Secret": core.create_namespaced_secret,
        "PersistentVolumeClaim": core.create_namespaced_persistent_volume_claim,
    }[manifest["kind"]]
    try:
        create(namespace, manifest, dry_run="All")
    except client.ApiException as e:
        raise AssertionError(f"{manifest['kind']} refused: {e.body}") from None


def test_any_valid_spec_builds_children_the_apiserver_accepts(crds_installed: None, namespace: str) -> None:
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(specs())
    def check(drawn: tuple[str, dict[str, Any]]) -> None:
        name, raw = drawn
        try:
            spec = TrainingJobSpec.model_validate(raw)
        except ValidationError:
            assume(False)
            return
        obj = {
            "apiVersion": "batchai.io/v1alpha1",
            "metadata": {"name": name, "namespace": namespace, "uid": "0f7c6a4e-0000-4000-8000-000000000001"},
        }
        try:
            children = build_children(obj, spec, "nc24", NC24, CONFIG, cluster_uid="c-uid")
        except BuildError as e:  # a spec too large to run is refused with its code, never a crash
            assert e.code in ("JobTooLarge", "InvalidWorkerCount"), e
            return
        manifests = children.owned(generate_ssh_keypair)
        if children.launcher_config_map is not None:
            manifests.append(children.launcher_config_map)
        for manifest in manifests:
            assert DNS_LABEL.match(manifest["metadata"]["name"]), manifest["metadata"]["name"]
            dry_run(namespace, manifest)
        # Pod host names are '<job>-<index>': a DNS label too.
        assert DNS_LABEL.match(f"{children.batch_job['metadata']['name']}-{spec.node_count - 1}")

    check()
