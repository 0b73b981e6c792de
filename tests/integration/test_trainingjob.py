"""The TrainingJob reconciler against the real local control plane, with kwok running the pods."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from devcluster import wait_for
from jobs import (
    GROUP,
    SECRET_KEY_VALUE,
    VERSION,
    create_cluster,
    create_storage_secret,
    create_trainingjob,
    custom,
    events_for,
    get_trainingjob,
    patch_trainingjob,
    trainingjob_event_reasons,
    trainingjob_pods,
    wait_state,
)
from kubernetes import client

from batchai_operator.kube import Kube
from batchai_operator.reconcile.lifecycle import NOT_SETTLED, crd_too_old
from samples import cntk_spec, job_spec

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("operator")]


def failed_condition(status: dict[str, Any]) -> dict[str, Any]:
    """The Failed condition: it names the node that decided (errors[] keep Batch AI's own text)."""
    return next(c for c in status["conditions"] if c["type"] == "Failed")


def env_of(pod: client.V1Pod) -> dict[str, str]:
    return {e.name: e.value for e in pod.spec.containers[0].env if e.value is not None}


def test_single_node_cntk_job_succeeds_with_batchai_paths(namespace: str) -> None:
    create_cluster(namespace)
    create_storage_secret(namespace)
    created = create_trainingjob(namespace, "cntk-python-1", cntk_spec())
    done = wait_state(namespace, "cntk-python-1", "succeeded")
    st = done["status"]
    assert st["executionInfo"]["exitCode"] == 0
    assert st["executionInfo"]["startTime"] <= st["executionInfo"]["endTime"]
    assert st["toolType"] == "cntk"
    assert st["nodes"]["succeeded"] == 1
    seg = f"{namespace}/default/cntk-python-1/{created['metadata']['uid']}"
    assert st["jobOutputDirectoryPathSegment"] == seg
    # Where the model is, as a path in the pod and in storage (the share mounted at logs).
    assert st["outputDirectories"] == [
        {
            "id": "MODEL",
            "path": f"$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/{seg}/outputs",
            "storage": {"accountName": "acct", "shareName": "logs", "path": f"{seg}/outputs"},
        }
    ]
    (pod,) = trainingjob_pods(namespace, "cntk-python-1")
    env = env_of(pod)
    assert env["AZ_BATCHAI_OUTPUT_MODEL"] == f"$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/{seg}/outputs"
    assert env["AZ_BATCHAI_JOB_MOUNT_ROOT"] == (
        f"/mnt/batch/tasks/shared/LS_root/jobs/{namespace}/default/cntk-python-1/mounts"
    )
    node = client.CoreV1Api().read_node(pod.spec.node_name)
    assert node.metadata.labels["node.kubernetes.io/instance-type"] == "Standard_NC6"
    wait_for(
        lambda: (
            # No Event for a job being created or starting: its status says so (a write less per job each).
            trainingjob_event_reasons(namespace, "cntk-python-1") == ["Succeeded"]
        ),
        timeout=15,
        what="one Succeeded Event and no other",
    )
    conds = {c["type"]: c["status"] for c in st["conditions"]}
    assert conds["Succeeded"] == "True" and conds["Failed"] == "False"
    assert st["observedGeneration"] == done["metadata"]["generation"]


def test_exit_code_three_fails_the_job_with_job_failed(namespace: str) -> None:
    create_cluster(namespace)
    create_storage_secret(namespace)
    create_trainingjob(namespace, "fails", cntk_spec(), annotations={"sim.batchai.io/exit-code": "3"})
    st = wait_state(namespace, "fails", "failed")["status"]
    assert st["executionInfo"]["exitCode"] == 3
    # Batch AI's error text; the Failed condition (and Event) name the exit code and node.
    assert st["executionInfo"]["errors"] == [
        {"code": "JobFailed", "message": "Job failed with non-zero exit code"}
    ]
    assert "exit code 3 on node 0" in failed_condition(st)["message"]
    # Events are posted asynchronously: poll for the Warning.
    wait_for(
        lambda: any(
            e.type == "Warning" and e.reason == "Failed" and "exit code 3" in e.message
            for e in events_for(namespace, "fails")
        ),
        timeout=15,
        what="Warning event naming exit code 3",
    )


def test_two_node_horovod_spreads_over_gpu_nodes_with_hostfile(namespace: str) -> None:
    create_cluster(namespace)
    spec = job_spec(
        nodes=2,
        horovodSettings={"pythonScriptFilePath": "train.py", "processCount": 2},
    )
    create_trainingjob(namespace, "hvd", spec, annotations={"sim.batchai.io/run-for": "3s"})
    pods = wait_for(
        lambda: (
            [p for p in trainingjob_pods(namespace, "hvd") if p.spec.node_name]
            if len([p for p in trainingjob_pods(namespace, "hvd") if p.spec.node_name]) == 2
            else None
        ),
        timeout=30,
        what="2 scheduled pods",
    )
    assert len({p.spec.node_name for p in pods}) == 2
    for p in pods:
        assert p.spec.containers[0].resources.limits["nvidia.com/gpu"] == "1"
        assert p.spec.subdomain == "hvd"
    cm = client.CoreV1Api().read_namespaced_config_map("hvd", namespace)
    assert "hvd-0.hvd" in cm.data["hostfile"] and "hvd-1.hvd" in cm.data["hostfile"]
    job = client.BatchV1Api().read_namespaced_job("hvd", namespace)
    assert job.spec.success_policy.rules[0].succeeded_indexes == "0"
    client.CoreV1Api().read_namespaced_service("hvd", namespace)
    uid = get_trainingjob(namespace, "hvd")["metadata"]["uid"]
    client.CoreV1Api().read_namespaced_secret(f"hvd-ssh-{uid[:8]}", namespace)
    st = wait_state(namespace, "hvd", "succeeded")["status"]
    assert st["executionInfo"]["exitCode"] == 0


@pytest.mark.parametrize(("node0_exit", "state"), [("0", "succeeded"), ("3", "failed")])
def test_node_zero_decides_a_multi_node_mpi_job(namespace: str, node0_exit: str, state: str) -> None:
    """Workers (sshd) never finish by themselves: node 0's exit ends the job, as in Batch AI."""
    create_cluster(namespace)
    spec = job_spec(
        nodes=2,
        horovodSettings={"pythonScriptFilePath": "train.py"},
    )
    sim = {
        "sim.batchai.io/run-for-0": "2s",
        "sim.batchai.io/exit-code-0": node0_exit,
        "sim.batchai.io/run-for-1": "600s",
    }
    create_trainingjob(namespace, "hvd0", spec, annotations=sim)
    st = wait_state(namespace, "hvd0", state, timeout=60)["status"]
    assert st["executionInfo"]["exitCode"] == int(node0_exit)
    if state == "failed":
        assert "on node 0" in failed_condition(st)["message"]


def test_every_node_counts_for_pytorch(namespace: str) -> None:
    create_cluster(namespace)
    spec = job_spec(
        nodes=2,
        pyTorchSettings={"pythonScriptFilePath": "train.py", "communicationBackend": "gloo"},
    )
    create_trainingjob(
        namespace,
        "pt",
        spec,
        annotations={"sim.batchai.io/exit-code-1": "5", "sim.batchai.io/run-for-0": "30s"},
    )
    st = wait_state(namespace, "pt", "failed", timeout=60)["status"]
    assert st["executionInfo"]["exitCode"] == 5
    assert "on node 1" in failed_condition(st)["message"]


def test_two_node_tensorflow_gets_batchai_host_lists(namespace: str) -> None:
    # 3 workers on 2 nodes need 2 GPUs per node at least (Batch AI: workerCount <= nodeCount x GPUs).
    create_cluster(namespace, "nc24", vmSize="Standard_NC24")
    spec = job_spec(
        nodes=2,
        cluster="nc24",
        tensorFlowSettings={
            "pythonScriptFilePath": "mnist.py",
            "parameterServerCount": 1,
            "workerCount": 3,
        },
    )
    create_trainingjob(namespace, "tf", spec)
    pods = wait_for(
        lambda: trainingjob_pods(namespace, "tf") if len(trainingjob_pods(namespace, "tf")) == 2 else None,
        timeout=30,
    )
    env = env_of(pods[0])
    assert env["AZ_BATCHAI_PS_HOSTS"] == "tf-0.tf:2222"
    assert env["AZ_BATCHAI_WORKER_HOSTS"] == "tf-0.tf:2223,tf-1.tf:2222,tf-0.tf:2224"
    cm = client.CoreV1Api().read_namespaced_config_map("tf", namespace)
    tasks0 = cm.data["tasks-0.sh"]
    cluster = {"ps": ["tf-0.tf:2222"], "worker": ["tf-0.tf:2223", "tf-1.tf:2222", "tf-0.tf:2224"]}
    for role, index in (("ps", 0), ("worker", 0), ("worker", 2)):
        tf_config = {"cluster": cluster, "task": {"type": role, "index": index}, "environment": "cloud"}
        assert json.dumps(tf_config, separators=(",", ":")) in tasks0 or json.dumps(tf_config) in tasks0
    wait_state(namespace, "tf", "succeeded")


def test_max_wall_clock_time_fails_the_job(namespace: str) -> None:
    create_cluster(namespace)
    create_storage_secret(namespace)
    create_trainingjob(
        namespace,
        "slow",
        cntk_spec(constraints={"maxWallClockTime": "PT3S"}),
        annotations={"sim.batchai.io/run-for": "60s"},
    )
    st = wait_state(namespace, "slow", "failed", timeout=60)["status"]
    assert st["executionInfo"]["errors"][0]["code"] == "MaxWallClockTimeExceeded"


def test_terminate_stops_a_running_job(namespace: str) -> None:
    create_cluster(namespace)
    create_storage_secret(namespace)
    create_trainingjob(namespace, "term", cntk_spec(), annotations={"sim.batchai.io/run-for": "120s"})
    wait_state(namespace, "term", "running")
    patch_trainingjob(namespace, "term", {"spec": {"terminate": True}})
    st = wait_state(namespace, "term", "failed")["status"]
    assert st["executionInfo"]["errors"][0]["code"] == "JobTerminated"
    wait_for(
        lambda: not client.BatchV1Api().list_namespaced_job(namespace).items, timeout=30, what="Job gone"
    )
    # Batch AI: terminate cannot be taken back.
    with pytest.raises(client.ApiException) as err:
        patch_trainingjob(namespace, "term", {"spec": {"terminate": False}})
    assert "terminate" in err.value.body


def test_deleting_a_job_removes_every_child(namespace: str) -> None:
    create_cluster(namespace)
    spec = job_spec(
        nodes=2,
        customMpiSettings={"commandLine": "hostname"},
    )
    create_trainingjob(namespace, "gone", spec, annotations={"sim.batchai.io/run-for": "120s"})
    wait_state(namespace, "gone", "running")
    client.CustomObjectsApi().delete_namespaced_custom_object(
        "batchai.io", "v1alpha1", namespace, "trainingjobs", "gone"
    )
    core, batch = client.CoreV1Api(), client.BatchV1Api()
    sel = "app.kubernetes.io/managed-by=batchai-operator"

    def nothing_left() -> bool:
        return not (
            batch.list_namespaced_job(namespace, label_selector=sel).items
            or core.list_namespaced_pod(namespace, label_selector=sel).items
            or core.list_namespaced_config_map(namespace, label_selector=sel).items
            or core.list_namespaced_service(namespace, label_selector=sel).items
            or core.list_namespaced_secret(namespace, label_selector=sel).items
        )

    wait_for(nothing_left, timeout=60, what="no child left")


def test_missing_cluster_waits_in_queued_then_runs(namespace: str) -> None:
    create_storage_secret(namespace)
    create_trainingjob(namespace, "early", cntk_spec())
    st = wait_state(namespace, "early", "queued")["status"]
    queued = next(c for c in st["conditions"] if c["type"] == "Queued")
    assert queued["reason"] == "ClusterNotFound" and "nc6" in queued["message"]
    assert not client.BatchV1Api().list_namespaced_job(namespace).items
    create_cluster(namespace)
    wait_state(namespace, "early", "succeeded")


def test_missing_storage_secret_waits_then_runs(namespace: str) -> None:
    create_cluster(namespace)
    create_trainingjob(namespace, "nosecret", cntk_spec())
    wait_for(
        lambda: any(
            c["reason"] == "SecretNotFound"
            for c in (get_trainingjob(namespace, "nosecret").get("status") or {}).get("conditions", [])
            if c["status"] == "True"
        ),
        timeout=30,
        what="SecretNotFound",
    )
    create_storage_secret(namespace)
    wait_state(namespace, "nosecret", "succeeded", timeout=60)


def test_suspend_and_resume(namespace: str) -> None:
    create_cluster(namespace)
    create_storage_secret(namespace)
    create_trainingjob(namespace, "susp", cntk_spec(suspend=True))
    wait_for(
        lambda: next(
            (
                c
                for c in (get_trainingjob(namespace, "susp").get("status") or {}).get("conditions", [])
                if c["type"] == "Suspended" and c["status"] == "True"
            ),
            None,
        ),
        timeout=30,
    )
    assert get_trainingjob(namespace, "susp")["status"]["executionState"] == "queued"
    assert client.BatchV1Api().read_namespaced_job("susp", namespace).spec.suspend is True
    assert not trainingjob_pods(namespace, "susp")
    patch_trainingjob(namespace, "susp", {"spec": {"suspend": False}})
    wait_state(namespace, "susp", "succeeded")


def test_operator_restart_mid_job_keeps_status_and_creates_no_duplicate(namespace: str, operator) -> None:  # type: ignore[no-untyped-def]
    create_cluster(namespace)
    create_storage_secret(namespace)
    create_trainingjob(namespace, "survivor", cntk_spec(), annotations={"sim.batchai.io/run-for": "8s"})
    wait_state(namespace, "survivor", "running")
    operator.kill()
    operator.start()
    st = wait_state(namespace, "survivor", "succeeded", timeout=60)["status"]
    assert st["executionInfo"]["exitCode"] == 0
    assert len(client.BatchV1Api().list_namespaced_job(namespace).items) == 1
    # No second "Succeeded" from the restarted operator (events are best-effort, so at most one).
    wait_for(lambda: trainingjob_event_reasons(namespace, "survivor"), timeout=10, what="its Event")
    assert trainingjob_event_reasons(namespace, "survivor") == ["Succeeded"]


def test_a_finished_job_settles_and_the_operator_stops_watching_it(namespace: str, operator) -> None:  # type: ignore[no-untyped-def]
    """status.settled: the job is finished for good; the operator's watch selects only jobs not settled
    (CRD selectableFields), so a restart neither lists nor writes it, and an edit that would need the
    operator is refused with a message naming the field."""
    create_cluster(namespace)
    create_storage_secret(namespace)
    create_trainingjob(namespace, "settles", cntk_spec())
    wait_state(namespace, "settles", "succeeded")

    def settled_job() -> dict[str, Any] | None:
        tj = get_trainingjob(namespace, "settles")
        return tj if tj["status"].get("settled") else None

    settled = wait_for(settled_job, timeout=30, what="status.settled")

    def names(selector: str) -> list[str]:
        found = custom().list_namespaced_custom_object(
            GROUP, VERSION, namespace, "trainingjobs", field_selector=selector
        )
        return [o["metadata"]["name"] for o in found["items"]]

    assert names("status.settled!=true") == []  # what the operator's watch lists
    assert names("status.executionState=succeeded") == ["settles"]
    with pytest.raises(client.ApiException) as err:
        patch_trainingjob(namespace, "settles", {"spec": {"ttlSecondsAfterFinished": 60}})
    assert err.value.status == 422 and "spec.ttlSecondsAfterFinished" in err.value.body
    assert "settled" in err.value.body
    # A restarted operator runs a new job in the namespace and leaves the settled one as it was.
    operator.kill()
    operator.start()
    create_trainingjob(namespace, "after-restart", cntk_spec())
    wait_state(namespace, "after-restart", "succeeded", timeout=60)
    again = get_trainingjob(namespace, "settles")
    assert again["metadata"]["resourceVersion"] == settled["metadata"]["resourceVersion"]


def test_the_startup_check_tells_a_crd_that_cannot_select_unsettled_jobs(namespace: str) -> None:
    """The operator's startup lists TrainingJobs by status.settled (limit 1): this release's CRD lets it;
    a field the CRD does not declare selectable is refused with the apiserver's words, which the startup
    error passes on with what to do (a CRD from before settled jobs refuses status.settled the same way)."""
    kube = Kube(client.ApiClient(client.Configuration.get_default_copy()))
    assert asyncio.run(kube.selection_refused("trainingjobs", namespace, NOT_SETTLED)) is None
    assert asyncio.run(kube.selection_refused("trainingjobs", None, NOT_SETTLED)) is None
    refused = asyncio.run(kube.selection_refused("trainingjobs", namespace, "status.cluster!=x"))
    assert refused is not None and "status.cluster" in refused
    assert "apply this release's CRDs" in crd_too_old(refused) and refused in crd_too_old(refused)


def test_image_pull_failure_reports_failed_starting_container(namespace: str) -> None:
    create_cluster(namespace)
    create_storage_secret(namespace)
    spec = cntk_spec(
        containerSettings={"imageSourceRegistry": {"image": "sim.batchai.io/image-pull-failure"}}
    )
    create_trainingjob(namespace, "badimage", spec)
    st = wait_state(namespace, "badimage", "failed")["status"]
    assert st["executionInfo"]["errors"][0]["code"] == "FailedStartingContainer"


def test_ttl_seconds_after_finished_deletes_the_job(namespace: str) -> None:
    create_cluster(namespace)
    create_storage_secret(namespace)
    create_trainingjob(namespace, "short-lived", cntk_spec(ttlSecondsAfterFinished=2))
    wait_state(namespace, "short-lived", "succeeded")

    def gone() -> bool:
        try:
            get_trainingjob(namespace, "short-lived")
            return False
        except client.ApiException as e:
            return e.status == 404

    wait_for(gone, timeout=30, what="TrainingJob deleted by TTL")


def test_no_storage_key_in_operator_logs_status_or_events(namespace: str, operator) -> None:  # type: ignore[no-untyped-def]
    create_cluster(namespace)
    create_storage_secret(namespace)
    create_trainingjob(namespace, "keysafe", cntk_spec())
    done = wait_state(namespace, "keysafe", "succeeded")
    assert SECRET_KEY_VALUE not in json.dumps(done)
    assert SECRET_KEY_VALUE not in operator.log_text()
    assert all(SECRET_KEY_VALUE not in (e.message or "") for e in events_for(namespace, "keysafe"))


def test_spec_edit_of_a_started_job_is_refused_or_reported(namespace: str) -> None:
    create_cluster(namespace)
    create_storage_secret(namespace)
    create_trainingjob(namespace, "edited", cntk_spec(), annotations={"sim.batchai.io/run-for": "60s"})
    wait_state(namespace, "edited", "running")
    # Immutable fields: the apiserver refuses the change (CEL transition rule).
    with pytest.raises(client.ApiException) as err:
        patch_trainingjob(namespace, "edited", {"spec": {"nodeCount": 2}})
    assert err.value.status == 422 and "nodeCount" in err.value.body
    # Other fields: accepted, not applied to the running Job, and status says so.
    patch_trainingjob(
        namespace, "edited", {"spec": {"environmentVariables": [{"name": "LR", "value": "0.1"}]}}
    )

    def not_applied() -> dict | None:  # type: ignore[type-arg]
        conds = (get_trainingjob(namespace, "edited").get("status") or {}).get("conditions", [])
        return next((c for c in conds if c["type"] == "SpecApplied" and c["status"] == "False"), None)

    cond = wait_for(not_applied, timeout=30, what="SpecApplied=False")
    assert cond["reason"] == "ImmutableAfterStart"


def test_jobs_run_only_on_nodes_whose_setup_task_succeeded(namespace: str) -> None:
    setup = {
        "nodeSetup": {"setupTask": {"commandLine": "echo prepared", "stdOutErrPathPrefix": "/tmp/setup"}}
    }
    spec = job_spec(
        cluster="nc24",
        customToolkitSettings={"commandLine": "nvidia-smi"},
    )
    # A setup task that fails on every node: the job must not start anywhere.
    create_cluster(
        namespace,
        "broken",
        annotations={"sim.batchai.io/init-exit-code": "3"},
        vmSize="Standard_NC24",
        **setup,
    )
    create_trainingjob(namespace, "blocked", {**spec, "cluster": "broken"})
    wait_for(
        lambda: (
            (get_trainingjob(namespace, "blocked").get("status") or {}).get("executionState") == "queued"
            and any(p.status.phase == "Pending" for p in trainingjob_pods(namespace, "blocked"))
        ),
        timeout=30,
        what="job pod pending",
    )
    # Stays unscheduled while the setup task fails.
    time.sleep(4)
    assert all(not p.spec.node_name for p in trainingjob_pods(namespace, "blocked"))
    assert get_trainingjob(namespace, "blocked")["status"]["executionState"] == "queued"

    create_cluster(namespace, "nc24", vmSize="Standard_NC24", **setup)
    create_trainingjob(namespace, "prepared", spec)
    wait_state(namespace, "prepared", "succeeded", timeout=60)
    (pod,) = trainingjob_pods(namespace, "prepared")
    setup_pods = (
        client.CoreV1Api()
        .list_namespaced_pod(
            namespace,
            label_selector="batchai.io/setup-task-state=succeeded",
            field_selector=f"spec.nodeName={pod.spec.node_name}",
        )
        .items
    )
    assert setup_pods, "the job ran on a node without a finished setup task"


def test_job_refused_by_a_quota_waits_with_the_apiservers_reason(namespace: str) -> None:
    core = client.CoreV1Api()
    core.create_namespaced_resource_quota(
        namespace, {"metadata": {"name": "no-jobs"}, "spec": {"hard": {"count/jobs.batch": "0"}}}
    )
    wait_for(lambda: core.read_namespaced_resource_quota_status("no-jobs", namespace).status.hard, timeout=30)
    create_cluster(namespace)
    create_storage_secret(namespace)
    create_trainingjob(namespace, "quota", cntk_spec())

    def rejected() -> dict | None:  # type: ignore[type-arg]
        conds = (get_trainingjob(namespace, "quota").get("status") or {}).get("conditions", [])
        return next(
            (c for c in conds if c["reason"] == "JobCreationRejected" and c["status"] == "True"), None
        )

    cond = wait_for(rejected, timeout=30, what="JobCreationRejected")
    assert "exceeded quota" in cond["message"]
    core.delete_namespaced_resource_quota("no-jobs", namespace)
    wait_state(namespace, "quota", "succeeded", timeout=60)


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("JobPreparationFailed: exit code 7", "JobPreparationFailed"),
        ("MountFailed: /mnt/gfs: exit code 7", "UnmanagedFileSystemMountError"),
    ],
)
def test_launcher_termination_messages_become_batchai_error_codes(
    namespace: str, message: str, code: str
) -> None:
    """The launcher writes why it failed to /dev/termination-log; the kubelet (kwok here) reports it."""
    create_cluster(namespace)
    create_storage_secret(namespace)
    sim = {"sim.batchai.io/exit-code": "7", "sim.batchai.io/termination-message": message}
    create_trainingjob(
        namespace,
        "prep",
        cntk_spec(jobPreparation={"commandLine": "pip install -r req.txt"}),
        annotations=sim,
    )
    st = wait_state(namespace, "prep", "failed")["status"]
    assert st["executionInfo"]["exitCode"] == 7
    assert st["executionInfo"]["errors"][0]["code"] == code


def test_unmanaged_file_systems_without_the_admin_opt_in_fail_with_a_clear_error(namespace: str) -> None:
    create_cluster(namespace)
    spec = job_spec(
        customToolkitSettings={"commandLine": "ls"},
        mountVolumes={
            "unmanagedFileSystems": [
                {"mountCommand": "mount -t glusterfs 10.0.0.4:/gv0", "relativeMountPath": "gfs"}
            ]
        },
    )
    create_trainingjob(namespace, "gluster", spec)
    st = wait_state(namespace, "gluster", "failed")["status"]
    err = st["executionInfo"]["errors"][0]
    assert err["code"] == "UnmanagedFileSystemNotAllowed" and "allow.privilegedMounts" in err["message"]
    assert not client.BatchV1Api().list_namespaced_job(namespace).items
    wait_for(
        lambda: any(
            e.type == "Warning" and "unmanagedFileSystems" in e.message
            for e in events_for(namespace, "gluster")
        ),
        timeout=15,
        what="Warning event",
    )


def kubelet_failed_mount(pod: client.V1Pod, message: str, count: int = 3, **override: object) -> None:
    """Post the Event a kubelet posts when a volume will not mount (kwok plays the kubelet and has no
    volumes, so the test posts it): reason FailedMount, involvedObject the pod, count = attempts."""
    meta = pod.metadata
    body = {
        "metadata": {"generateName": f"{meta.name}-"},
        "involvedObject": {"kind": "Pod", "namespace": meta.namespace, "name": meta.name, "uid": meta.uid},
        "reason": "FailedMount",
        "type": "Warning",
        "message": message,
        "count": count,
        "source": {"component": "kubelet"},
        **override,
    }
    client.CoreV1Api().create_namespaced_event(meta.namespace, body)


def mount_error(pod: client.V1Pod) -> str:
    afs = next(v.name for v in pod.spec.volumes if v.csi and v.csi.driver == "file.csi.azure.com")
    return (
        f'MountVolume.SetUp failed for volume "{afs}" : rpc error: code = Internal desc = '
        "mount failed: exit status 32\n"
        "Mounting arguments: -t cifs -o password=" + SECRET_KEY_VALUE + " //acct.file.core.windows.net/logs\n"
        "Output: mount error(13): Permission denied"
    )


def test_a_volume_that_will_not_mount_fails_the_job_with_azf_mount_error(namespace: str) -> None:
    """The pod stays ContainerCreating (sim.batchai.io/container-creating), as a kubelet keeps a pod
    whose volume will not mount; the kubelet's FailedMount Event about it fails the job, and the Failed
    Event is posted (from the watch thread's callback, in kopf's context)."""
    create_cluster(namespace)
    create_storage_secret(namespace)
    create_trainingjob(
        namespace, "nomount", cntk_spec(), annotations={"sim.batchai.io/container-creating": "true"}
    )

    def creating() -> client.V1Pod | None:
        pods = trainingjob_pods(namespace, "nomount")
        statuses = (pods[0].status.container_statuses or []) if pods else []
        waiting = [cs.state.waiting.reason for cs in statuses if cs.state and cs.state.waiting]
        return pods[0] if waiting == ["ContainerCreating"] and pods[0].status.phase == "Pending" else None

    pod = wait_for(creating, timeout=30, what="pod ContainerCreating")
    # Not the kubelet's, or about another pod of that name: ignored.
    kubelet_failed_mount(pod, mount_error(pod), source={"component": "mallory"})
    other = client.V1Pod(metadata=client.V1ObjectMeta(name=pod.metadata.name, namespace=namespace, uid="x"))
    kubelet_failed_mount(other, mount_error(pod))
    time.sleep(3)
    assert get_trainingjob(namespace, "nomount")["status"]["executionState"] == "running"  # nodes allocated

    kubelet_failed_mount(pod, mount_error(pod))
    st = wait_state(namespace, "nomount", "failed", timeout=30)["status"]
    err = st["executionInfo"]["errors"][0]
    assert err["code"] == "AZFMountError" and st["executionInfo"]["exitCode"] == -1
    assert err["message"] == "Unable to mount Azure File"  # Batch AI's text; the kubelet's in Info
    info = err["details"][0]["value"]
    assert "Permission denied" in info and "Azure Files share logs" in info
    assert SECRET_KEY_VALUE not in json.dumps(st)
    wait_for(
        lambda: any(
            e.reason == "Failed" and e.type == "Warning" and "will not mount" in (e.message or "")
            for e in events_for(namespace, "nomount")
        ),
        timeout=15,
        what="the Failed Event",
    )
    # The kubelet-like Events hold the key in their mount arguments (the test's input, as a real kubelet
    # may write it): removed, so that the suite's secret scan checks only what the operator wrote.
    client.CoreV1Api().delete_collection_namespaced_event(namespace, field_selector="reason=FailedMount")


def test_a_running_job_is_not_failed_by_a_failed_mount(namespace: str) -> None:
    """A pod whose containers run has mounted its volumes: a (stale or forged) FailedMount about it,
    even one that looks like the kubelet's, does not fail the job."""
    create_cluster(namespace)
    create_storage_secret(namespace)
    create_trainingjob(namespace, "mounted", cntk_spec(), annotations={"sim.batchai.io/run-for": "10s"})

    def started() -> client.V1Pod | None:
        pods = trainingjob_pods(namespace, "mounted")
        statuses = (pods[0].status.container_statuses or []) if pods else []
        return pods[0] if statuses and all(cs.state and cs.state.running for cs in statuses) else None

    pod = wait_for(started, timeout=30, what="main container running")
    # The operator has seen it start (its status counts the node running).
    wait_for(
        lambda: (
            (get_trainingjob(namespace, "mounted").get("status") or {}).get("nodes", {}).get("running") == 1
        ),
        timeout=30,
        what="status nodes.running 1",
    )
    kubelet_failed_mount(pod, mount_error(pod), count=10)
    done = wait_state(namespace, "mounted", "succeeded", timeout=40)["status"]
    assert done["executionInfo"]["exitCode"] == 0 and not done["executionInfo"].get("errors")
    client.CoreV1Api().delete_collection_namespaced_event(namespace, field_selector="reason=FailedMount")


def test_a_multi_node_job_shares_its_temp_on_a_volume_of_its_own(namespace: str) -> None:
    """AZ_BATCHAI_SHARED_JOB_TEMP on every multi-node job, as Batch AI had it: a ReadWriteMany claim of
    azurefile-csi (here served by the provisioner double), mounted there on every node, gone with the job."""
    create_cluster(namespace)
    args = "--num_shards 2 --shard_id $AZ_BATCHAI_TASK_INDEX --file_store_path $AZ_BATCHAI_SHARED_JOB_TEMP"
    spec = job_spec(nodes=2, caffe2Settings={"pythonScriptFilePath": "resnet50.py", "commandLineArgs": args})
    created = create_trainingjob(namespace, "c2", spec, annotations={"sim.batchai.io/run-for": "3s"})
    pods = wait_for(
        lambda: trainingjob_pods(namespace, "c2") if len(trainingjob_pods(namespace, "c2")) == 2 else None,
        timeout=30,
    )
    core = client.CoreV1Api()
    claim = core.read_namespaced_persistent_volume_claim("c2-shared-temp", namespace)
    assert claim.spec.access_modes == ["ReadWriteMany"] and claim.spec.storage_class_name == "azurefile-csi"
    assert claim.metadata.owner_references[0].uid == created["metadata"]["uid"]
    shared = f"/mnt/batch/tasks/shared/LS_root/jobs/{namespace}/default/c2/temp/shared"
    for pod in pods:
        assert env_of(pod)["AZ_BATCHAI_SHARED_JOB_TEMP"] == shared
        mount = next(m for m in pod.spec.containers[0].volume_mounts if m.mount_path == shared)
        volume = next(v for v in pod.spec.volumes if v.name == mount.name)
        assert volume.persistent_volume_claim.claim_name == "c2-shared-temp"
    wait_state(namespace, "c2", "succeeded", timeout=60)
    assert core.read_namespaced_persistent_volume_claim("c2-shared-temp", namespace).status.phase == "Bound"
    volume_name = core.read_namespaced_persistent_volume_claim("c2-shared-temp", namespace).spec.volume_name
    custom().delete_namespaced_custom_object("batchai.io", "v1alpha1", namespace, "trainingjobs", "c2")

    def volume_gone() -> bool:
        try:
            core.read_persistent_volume(volume_name)
            return False
        except client.ApiException as e:
            return e.status == 404

    wait_for(volume_gone, timeout=60, what="the shared temp volume deleted with the job")


HOLD = "batchai.io/test-hold"


def test_a_multi_node_job_whose_pod_is_evicted_restarts_its_whole_attempt(namespace: str) -> None:
    """Node 1's pod evicted (the Eviction API: a DisruptionTarget): the operator deletes the attempt's
    batch Job in the foreground and, once it and all its pods are gone, starts the next attempt with both
    nodes; the job is queued/Requeued meanwhile, then runs, one requeue in its status."""
    create_cluster(namespace)
    spec = job_spec(nodes=2, horovodSettings={"pythonScriptFilePath": "train.py", "processCount": 2})
    create_trainingjob(namespace, "pair", spec, annotations={"sim.batchai.io/run-for": "600s"})
    wait_state(namespace, "pair", "running", timeout=60)
    batch = client.BatchV1Api()
    first = batch.read_namespaced_job("pair", namespace).metadata.uid
    old = {p.metadata.name for p in trainingjob_pods(namespace, "pair")}
    node1 = next(
        p.metadata.name
        for p in trainingjob_pods(namespace, "pair")
        if p.metadata.labels["batch.kubernetes.io/job-completion-index"] == "1"
    )
    core = client.CoreV1Api()
    # A pod whose node cannot confirm its end stays (Terminating): a finalizer of ours holds it the same way.
    core.patch_namespaced_pod(node1, namespace, {"metadata": {"finalizers": [HOLD]}})
    core.create_namespaced_pod_eviction(
        node1, namespace, {"metadata": {"name": node1, "namespace": namespace}}
    )
    tj = wait_for(
        lambda: t if (t := get_trainingjob(namespace, "pair"))["status"].get("requeues") else None,
        timeout=30,
        what="the requeue in status",
    )
    assert tj["status"]["executionState"] == "queued"
    requeued = next(c for c in tj["status"]["conditions"] if c["type"] == "Requeued")
    assert "start again together" in requeued["message"]

    # The rest of the attempt stops at once; its batch Job stays (being deleted) while node 1's pod is
    # there, and nothing of the next attempt is created meanwhile.
    wait_for(
        lambda: [p.metadata.name for p in trainingjob_pods(namespace, "pair")] == [node1],
        timeout=60,
        what="node 0's pod gone, node 1's held",
    )
    time.sleep(5)
    held = batch.read_namespaced_job("pair", namespace)
    assert held.metadata.uid == first and held.metadata.deletion_timestamp is not None
    assert [p.metadata.name for p in trainingjob_pods(namespace, "pair")] == [node1]
    assert get_trainingjob(namespace, "pair")["status"]["executionState"] == "queued"
    core.patch_namespaced_pod(node1, namespace, {"metadata": {"finalizers": None}})

    def next_attempt() -> list[client.V1Pod] | None:
        try:
            job = batch.read_namespaced_job("pair", namespace)
        except client.ApiException:
            return None
        pods = [p for p in trainingjob_pods(namespace, "pair") if p.status.phase == "Running"]
        return pods if job.metadata.uid != first and len(pods) == 2 else None

    pods = wait_for(next_attempt, timeout=90, what="the next attempt's two pods running")
    assert not {p.metadata.name for p in pods} & old
    tj = wait_state(namespace, "pair", "running", timeout=30)
    assert tj["status"]["executionInfo"]["requeueCount"] == 1
    wait_for(lambda: "Requeued" in trainingjob_event_reasons(namespace, "pair"), timeout=10, what="Requeued")
