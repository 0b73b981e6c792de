"""Pure: the objects each system is given. All three run the pod template this operator builds (its own
builder, `build_children`), so the pods are the same; only who creates them differs.
"""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

from batchai_operator.api.cluster import BatchAIClusterSpec
from batchai_operator.api.trainingjob import TrainingJobSpec
from batchai_operator.config import OperatorConfig
from batchai_operator.manifests.children import build_children
from observe import JOB_KEY_LABEL

POOL = "benchpool"
CLUSTER_NAME = "bench"
CLUSTER: dict[str, Any] = {"vmSize": "Standard_NC6", "agentPool": POOL}
RUN_FOR = "2s"  # kwok completes each pod this long after it started running
MIXED_RUN_FOR = "10s"  # scenario mixed: long enough that a pod bound without its peers holds its GPU
RUN_FOR_ANNOTATION = "sim.batchai.io/run-for"
BENCH_LABEL = "bench"
# Finished TrainingJobs the bench creates with a terminal status (scenarios history and restart); the
# run's own watch leaves them out.
HISTORY_LABEL = "bench-history"
PEER_CONTAINER = "pytorch"  # the training-operator requires this container name


def trainingjob_spec(nodes_per_job: int) -> dict[str, Any]:
    return {
        "cluster": CLUSTER_NAME,
        "nodeCount": nodes_per_job,
        "stdOutErrPathPrefix": "/tmp/logs",
        "customToolkitSettings": {"commandLine": "python train.py"},
    }


def operator_job(
    namespace: str, name: str, nodes_per_job: int, uid: str | None = None, run_for: str = RUN_FOR
) -> dict[str, Any]:
    """The batch/v1 Job the operator builds for a TrainingJob `name` (with a fresh uid unless given)."""
    obj = {
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": uid or str(uuid.uuid4()),
            "annotations": {RUN_FOR_ANNOTATION: run_for},
        }
    }
    children = build_children(
        obj,
        TrainingJobSpec.model_validate(trainingjob_spec(nodes_per_job)),
        CLUSTER_NAME,
        BatchAIClusterSpec.model_validate(CLUSTER),
        OperatorConfig(),
    )
    return copy.deepcopy(children.batch_job)


def _own_template(job: dict[str, Any], system: str, run_for: str) -> tuple[str, dict[str, Any]]:
    """The operator's pod template, labelled for the bench instead of the operator (whose watches select
    its managed-by label), with the same job-key label the anti-affinity term uses."""
    template = copy.deepcopy(job["spec"]["template"])
    key = template["metadata"]["labels"][JOB_KEY_LABEL]
    template["metadata"]["labels"] = {BENCH_LABEL: system, JOB_KEY_LABEL: key}
    template["metadata"]["annotations"] = {RUN_FOR_ANNOTATION: run_for}
    return key, template


def raw_job(
    namespace: str, name: str, nodes_per_job: int, uid: str | None = None, run_for: str = RUN_FOR
) -> dict[str, Any]:
    """The floor: the same Indexed Job, created directly (no owner, no ConfigMap: kwok mounts nothing)."""
    job = operator_job(namespace, name, nodes_per_job, uid, run_for)
    _, template = _own_template(job, "raw", run_for)
    job["metadata"] = {"name": name, "namespace": namespace, "labels": {BENCH_LABEL: "raw"}}
    job["spec"]["template"] = template
    return job


def pytorch_job(
    namespace: str, name: str, nodes_per_job: int, uid: str | None = None, run_for: str = RUN_FOR
) -> dict[str, Any]:
    """The peer's equivalent: a PyTorchJob, Master (+ Workers for multi-node) on the same pod template,
    the container renamed as the training-operator requires, no retries (the Job's backoffLimit is 0)."""
    job = operator_job(namespace, name, nodes_per_job, uid, run_for)
    _, template = _own_template(job, "training-operator", run_for)
    template["metadata"]["labels"][BENCH_LABEL] = "training-operator"
    template["spec"]["containers"][0]["name"] = PEER_CONTAINER
    replicas = {"Master": {"replicas": 1, "restartPolicy": "Never", "template": template}}
    if nodes_per_job > 1:
        replicas["Worker"] = {
            "replicas": nodes_per_job - 1,
            "restartPolicy": "Never",
            "template": copy.deepcopy(template),
        }
    return {
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": name, "namespace": namespace, "labels": {BENCH_LABEL: "training-operator"}},
        "spec": {
            "runPolicy": {"backoffLimit": job["spec"]["backoffLimit"]},
            "pytorchReplicaSpecs": replicas,
        },
    }


def training_job(
    namespace: str, name: str, nodes_per_job: int, run_for: str = RUN_FOR, history: bool = False
) -> dict[str, Any]:
    job: dict[str, Any] = {
        "apiVersion": "batchai.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {RUN_FOR_ANNOTATION: run_for},
        },
        "spec": trainingjob_spec(nodes_per_job),
    }
    if history:
        job["metadata"]["labels"] = {HISTORY_LABEL: "true"}
    return job


def history_status(
    template: dict[str, Any], template_name: str, template_uid: str, name: str, uid: str
) -> dict[str, Any]:
    """The status the operator wrote for the finished job `template_name`, as it would have written it
    for the job `name`: the same spec, so the same status but for the names and uid in paths."""
    text = json.dumps(template).replace(template_uid, uid).replace(template_name, name)
    out: dict[str, Any] = json.loads(text)
    return out


def batchai_cluster(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "batchai.io/v1alpha1",
        "kind": "BatchAICluster",
        "metadata": {"name": CLUSTER_NAME, "namespace": namespace},
        "spec": CLUSTER,
    }
