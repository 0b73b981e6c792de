"""The pure parts of `kubectl batchai`'s az conventions: output formats and --query, Batch AI names and
ARM ids, the cluster built from az's flags, and what each verb's help says."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
import yaml

from batchai_operator.cli.clusters import container_on_node, refuse_unsupported, resize_notes, vm_size_pools
from batchai_operator.cli.convert.cluster import ClusterOptions, aks_binding, convert_cluster, image_reference
from batchai_operator.cli.convert.document import ConversionError
from batchai_operator.cli.convert.job import ConvertOptions, convert, file_server_warnings
from batchai_operator.cli.errors import EXIT_NOT_FOUND, EXIT_USAGE, CliError
from batchai_operator.cli.jobs import pick_pod
from batchai_operator.cli.main import build_parser, main
from batchai_operator.cli.naming import batchai_name, is_named, kubernetes_name, namespace_name, parse_id
from batchai_operator.cli.output import QueryError, query, render, tsv
from batchai_operator.cli.remote import Forward, parse_forward
from batchai_operator.cli.views import cluster_node_rows, usage_rows, vm_family
from batchai_operator.cli.workspaces import experiment_body, workspace_body

SEED_CLUSTER = ["-n", "nc6", "-g", "batchai.quickstart", "-w", "quickstart"]
SEED_CLUSTER += ["-s", "Standard_NC6", "-i", "UbuntuDSVM", "-t", "1", "--generate-ssh-keys"]

# ---- output and --query ------------------------------------------------------------------------------


def test_json_is_sorted_and_a_query_of_one_field_prints_a_json_string() -> None:
    view = {"name": "cntk_python_1", "jobOutputDirectoryPathSegment": "ns/exp/job/uid", "a": 1}
    assert list(json.loads(render(view, "json"))) == ["a", "jobOutputDirectoryPathSegment", "name"]
    assert render(view, "json", expression="jobOutputDirectoryPathSegment") == '"ns/exp/job/uid"\n'
    assert render(view, "tsv", expression="jobOutputDirectoryPathSegment") == "ns/exp/job/uid\n"
    assert render(view, "none") == ""


def test_query_is_jmespath() -> None:
    jobs = [
        {"name": "a", "executionState": "succeeded", "executionInfo": {"exitCode": 0}},
        {"name": "b", "executionState": "failed", "executionInfo": {"exitCode": 3}},
    ]
    assert query(jobs, "[?executionState=='failed'].name") == ["b"]
    assert query(jobs, "[].{n: name, code: executionInfo.exitCode}") == [
        {"n": "a", "code": 0},
        {"n": "b", "code": 3},
    ]
    assert query(jobs, "length(@)") == 2
    with pytest.raises(QueryError, match="not a valid JMESPath"):
        query(jobs, "[?")


def test_tsv_as_az_printed_it() -> None:
    rows = [{"name": "a", "nodes": [1, 2], "info": {"x": 1}, "ok": True, "none": None}]
    # Keys in sorted order: info (object: empty), name, nodes (list: its length), none, ok.
    assert tsv(rows) == "\ta\t2\t\tTrue\n"
    assert tsv(["x", "y"]) == "x\ny\n"


def test_table_after_a_query_is_azs_automatic_table() -> None:
    rows = [{"name": "a", "state": "running", "spec": {"x": 1}}]
    text = render(
        rows, "table", columns=[("Only", lambda r: r["name"])], expression="[].{Name: name, S: state}"
    )
    assert text.splitlines() == ["Name  S", "----  -------", "a     running"]
    assert render(["x", "y"], "table").splitlines() == ["Result", "------", "x", "y"]


def test_jsonc_colours_only_on_a_terminal() -> None:
    assert "\033[" in render({"a": "b"}, "jsonc", tty=True)
    assert render({"a": "b"}, "jsonc", tty=False) == render({"a": "b"}, "json")
    assert yaml.safe_load(render({"b": 1, "a": [1]}, "yaml")) == {"a": [1], "b": 1}


def test_an_invalid_query_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["job", "show", "-n", "x", "--query", "[?"])
    assert info.value.code == EXIT_USAGE
    assert "invalid JMESPath query" in capsys.readouterr().err


# ---- names ---------------------------------------------------------------------------------------------


def test_batchai_names_map_to_kubernetes_names() -> None:
    assert kubernetes_name("TrainingJob", "cntk_python_1") == "cntk-python-1"
    assert kubernetes_name("BatchAICluster", "My_Cluster") == "my-cluster"
    assert namespace_name("batchai.quickstart") == "batchai-quickstart"
    assert namespace_name("Quick_Start") == "quick-start"
    obj = {"metadata": {"name": "cntk-python-1", "annotations": {"batchai.io/name": "cntk_python_1"}}}
    assert batchai_name(obj) == "cntk_python_1"
    assert is_named(obj, "cntk_python_1") and is_named(obj, "cntk-python-1")
    assert not is_named(obj, "cntk_python_2")
    assert batchai_name({"metadata": {"name": "plain"}}) == "plain"


def test_ids_name_workspace_experiment_and_name() -> None:
    base = "/subscriptions/0000/resourceGroups/batchai.quickstart/providers/Microsoft.BatchAI"
    base += "/workspaces/quickstart"
    job = parse_id(f"{base}/experiments/quickstart/jobs/cntk_python_1")
    assert (job.resource_group, job.workspace, job.kind, job.name, job.experiment) == (
        "batchai.quickstart",
        "quickstart",
        "jobs",
        "cntk_python_1",
        "quickstart",
    )
    cluster = parse_id(f"{base}/clusters/nc6")
    assert (cluster.kind, cluster.name) == ("clusters", "nc6")
    assert parse_id(base).kind is None
    with pytest.raises(ValueError, match="not a Batch AI resource id"):
        parse_id("/subscriptions/0/resourceGroups/g/providers/Microsoft.Compute/virtualMachines/x")


def test_ids_of_the_wrong_kind_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    cluster_id = "/subscriptions/0/resourceGroups/g/providers/Microsoft.BatchAI/workspaces/w/clusters/nc6"
    assert main(["job", "show", "--ids", cluster_id]) == EXIT_USAGE
    assert "does not name a job" in capsys.readouterr().err
    assert main(["job", "show"]) == EXIT_USAGE
    assert "-n/--name (or --ids)" in capsys.readouterr().err


def test_the_seed_job_name_is_kept_in_an_annotation() -> None:
    doc = {
        "properties": {
            "nodeCount": 1,
            "stdOutErrPathPrefix": "/tmp",
            "customToolkitSettings": {"commandLine": "true"},
        }
    }
    result = convert(doc, ConvertOptions(name="cntk_python_1", cluster="nc6"), {})
    assert result.obj["metadata"] == {
        "name": "cntk-python-1",
        "annotations": {"batchai.io/name": "cntk_python_1"},
    }
    plain = convert(doc, ConvertOptions(name="plain", cluster="nc6"), {})
    assert "annotations" not in plain.obj["metadata"]


# ---- the cluster from az's flags -----------------------------------------------------------------------


def seed_cluster_options(**extra: Any) -> ClusterOptions:
    opts = {
        "name": "nc6",
        "namespace": "quickstart",
        "vm_size": "Standard_NC6",
        "image": "UbuntuDSVM",
        "target": 1,
        "user_name": "myuser",
        **extra,
    }
    return ClusterOptions(**opts)


def test_the_seed_cluster_from_flags_alone() -> None:
    result = convert_cluster(None, seed_cluster_options(), {})
    cluster = result.obj
    assert cluster["kind"] == "BatchAICluster" and cluster["metadata"] == {
        "name": "nc6",
        "namespace": "quickstart",
    }
    assert cluster["spec"]["vmSize"] == "Standard_NC6"
    assert cluster["spec"]["scaleSettings"] == {
        "manual": {"targetNodeCount": 1, "nodeDeallocationOption": "requeue"}
    }
    assert cluster["spec"]["virtualMachineConfiguration"] == {
        "imageReference": {
            "publisher": "microsoft-ads",
            "offer": "linux-data-science-vm-ubuntu",
            "sku": "linuxdsvmubuntu",
            "version": "latest",
        }
    }
    assert cluster["spec"]["userAccountSettings"] == {"adminUserName": "myuser"}
    assert result.secrets == []
    # The seed's size is retired: the one warning names the retirement and today's nearest size.
    assert len(result.warnings) == 1 and "retired" in result.warnings[0]
    assert "Standard_NC4as_T4_v3" in result.warnings[0]


def test_flags_build_mounts_setup_task_pools_and_autoscale() -> None:
    pool_id = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerService"
    pool_id += "/managedClusters/aks/agentPools/gpu"
    opts = seed_cluster_options(
        min_nodes=0,
        max_nodes=4,
        afs_name="logs",
        bfs_name="data",
        storage_account_name="acct",
        storage_account_key="k3y",
        setup_task="echo hi",
        setup_task_output="$AZ_BATCHAI_MOUNT_ROOT/afs",
        agent_pool="gpu",
        aks_pool=pool_id,
        vm_priority="lowpriority",
    )
    spec = convert_cluster(None, opts, {}).obj["spec"]
    assert spec["scaleSettings"] == {
        "autoScale": {"minimumNodeCount": 0, "maximumNodeCount": 4, "initialNodeCount": 1}
    }
    volumes = spec["nodeSetup"]["mountVolumes"]
    assert volumes["azureFileShares"][0]["azureFileUrl"] == "https://acct.file.core.windows.net/logs"
    assert volumes["azureFileShares"][0]["relativeMountPath"] == "afs"
    assert volumes["azureBlobFileSystems"][0]["containerName"] == "data"
    assert volumes["azureFileShares"][0]["credentials"] == {"secretRef": {"name": "nc6-cluster-storage-acct"}}
    assert spec["nodeSetup"]["setupTask"]["commandLine"] == "echo hi"
    assert spec["agentPool"] == "gpu" and spec["vmPriority"] == "lowpriority"
    assert spec["aks"] == {
        "subscriptionId": "s1",
        "resourceGroup": "rg",
        "clusterName": "aks",
        "agentPoolName": "gpu",
    }


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"vm_size": None}, "needs a VM size: pass -s/--vm-size"),
        ({"target": None}, "needs a node count: pass -t/--target"),
        ({"afs_name": "logs"}, "need the storage account"),
        ({"setup_task": "x"}, "--setup-task needs --setup-task-output"),
        ({"image": "nope"}, "expected UbuntuLTS, UbuntuDSVM or publisher:offer:sku"),
        ({"min_nodes": 3, "max_nodes": 1}, "--min 3 is larger than --max 1"),
    ],
)
def test_flag_errors_say_what_to_pass(extra: dict[str, Any], message: str) -> None:
    with pytest.raises(ConversionError, match=message):
        convert_cluster(None, seed_cluster_options(**extra), {})


def test_image_aliases_and_pool_ids() -> None:
    assert image_reference("UbuntuLTS")["offer"] == "UbuntuServer"
    assert image_reference("pub:off:sku")["version"] == "latest"
    with pytest.raises(ConversionError, match="expected an agent pool id"):
        aks_binding("/subscriptions/s/resourceGroups/g")
    assert vm_size_pools("Standard_NC6=real, bad, X=") == {"standard_nc6": "real"}


def test_resize_without_a_binding_says_so() -> None:
    assert "no AKS agent pool binding" in resize_notes({"spec": {"scaleSettings": {"manual": {}}}})[0]
    assert resize_notes({"spec": {"scaleSettings": {"manual": {}}, "aks": {"x": 1}}}) == []


def test_cluster_create_refuses_passwords_nfs_and_auto_storage() -> None:
    for extra, text in (
        (["-p", "secret"], "passwords are not taken"),
        (["--nfs", "fs1"], "Azure Files NFS"),
        (["--use-auto-storage"], "--use-auto-storage is not supported"),
    ):
        with pytest.raises(CliError, match=text):
            refuse_unsupported(build_parser().parse_args(["cluster", "create", *SEED_CLUSTER, *extra]))
    refuse_unsupported(build_parser().parse_args(["cluster", "create", *SEED_CLUSTER]))


# ---- job.json warnings, node exec, usages, workspaces ---------------------------------------------------


def test_file_server_mounts_warn_about_host_and_options() -> None:
    ref = {
        "fileServer": {
            "id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.BatchAI/workspaces/w"
            "/fileServers/nfs1"
        }
    }
    warnings = file_server_warnings(0, {**ref, "mountOptions": "rw,hard,ro"})
    assert (
        "taken from the file server's ARM id ('nfs1')" in warnings[0] and "Azure NetApp Files" in warnings[0]
    )
    assert "mount options rw,hard are dropped" in warnings[1]
    assert file_server_warnings(0, {**ref, "server": "10.0.0.4", "mountOptions": "ro"}) == []


def test_port_forward_and_pod_choice() -> None:
    assert parse_forward("6006:localhost:6006") == Forward(6006, 6006)
    for bad in ("6006", "a:localhost:1", "1:10.0.0.5:2"):
        with pytest.raises(CliError):
            parse_forward(bad)
    rows = [
        {"nodeIndex": 0, "podName": "j-0", "nodeName": "n0", "state": "Running"},
        {"nodeIndex": 1, "podName": "j-1", "nodeName": "n1", "state": "Pending"},
    ]
    assert pick_pod(rows, None, "job j") == "j-0"
    assert pick_pod(rows, "n0", "job j") == pick_pod(rows, "0", "job j") == "j-0"
    with pytest.raises(CliError, match="is Pending"):
        pick_pod(rows, "1", "job j")
    with pytest.raises(CliError) as info:
        pick_pod(rows, "n9", "job j")
    assert info.value.code == EXIT_NOT_FOUND


def pod(name: str, node: str, labels: dict[str, str], phase: str = "Running") -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": node},
        "status": {"phase": phase},
    }


def test_cluster_node_exec_prefers_a_job_container_then_the_setup_task() -> None:
    setup = pod("s-1", "n1", {"batchai.io/role": "setup-task"})
    job = pod("j-0", "n1", {"batchai.io/trainingjob-uid": "u"})
    assert container_on_node([setup, job], "n1") == ("j-0", "main", "n1")
    assert container_on_node([setup], None) == ("s-1", "idle", "n1")
    with pytest.raises(CliError, match="kubectl debug node"):
        container_on_node([setup], "n2")


def test_cluster_node_rows() -> None:
    def node(name: str, ready: str = "True", **spec: Any) -> dict[str, Any]:
        return {
            "metadata": {"name": name},
            "spec": spec,
            "status": {
                "conditions": [{"type": "Ready", "status": ready}],
                "addresses": [{"type": "InternalIP", "address": f"10.0.0.{len(name)}"}],
            },
        }

    rows = cluster_node_rows(
        [node("b"), node("a"), node("cc", ready="False"), node("d", unschedulable=True)], {"b": 2}
    )
    assert [(r["nodeId"], r["state"], r["jobPods"]) for r in rows] == [
        ("a", "idle", 0),
        ("b", "running", 2),
        ("cc", "unusable", 0),
        ("d", "leaving", 0),
    ]
    assert rows[0]["ipAddress"] == "10.0.0.1" and rows[0]["port"] is None


def test_usages_by_family_capped_by_quota() -> None:
    assert vm_family("Standard_NC6") == "standardNCFamily"
    assert vm_family("Standard_NC6s_v3") == "standardNCSV3Family"
    clusters = [
        {"metadata": {"namespace": "w", "name": "a"}, "spec": {"vmSize": "Standard_NC6"}},
        {"metadata": {"namespace": "w", "name": "b"}, "spec": {"vmSize": "Standard_NC12"}},
    ]
    rows = usage_rows(clusters, {("w", "a"): (1, 4), ("w", "b"): (2, 4)}, None)
    assert [(r["name"]["value"], r["currentValue"], r["limit"]) for r in rows] == [("standardNCFamily", 3, 8)]
    assert usage_rows(clusters, {("w", "a"): (1, 4)}, 2)[0]["limit"] == 2


def test_workspace_and_experiment_objects() -> None:
    ns = workspace_body("batchai.quickstart", "rg", None)
    assert ns["metadata"]["name"] == "batchai-quickstart"
    assert ns["metadata"]["labels"] == {"app.kubernetes.io/managed-by": "kubectl-batchai"}
    assert ns["metadata"]["annotations"] == {
        "batchai.io/resource-group": "rg",
        "batchai.io/name": "batchai.quickstart",
    }
    cm = experiment_body("quickstart")
    assert cm["metadata"]["name"] == "batchai-experiment-quickstart"
    assert cm["metadata"]["labels"]["batchai.io/experiment"] == "quickstart"


# ---- every verb's help ---------------------------------------------------------------------------------


def leaf_parsers(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[tuple[str, ...], Any]]:
    out = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += leaf_parsers(sub, (*path, name))
    if not out and path:
        out.append((path, parser))
    return out


def test_every_verb_names_its_az_counterpart_and_takes_azs_common_flags() -> None:
    leaves = leaf_parsers(build_parser())
    verbs = {" ".join(p) for p, _ in leaves}
    for verb in (
        "workspace create", "workspace show", "workspace list", "workspace delete",
        "experiment create", "experiment show", "experiment list", "experiment delete",
        "cluster create", "cluster show", "cluster list", "cluster delete", "cluster resize",
        "cluster auto-scale", "cluster node list", "cluster node exec", "cluster file list",
        "job create", "job show", "job list", "job wait", "job terminate", "job delete",
        "job file list", "job file stream", "job node list", "job node exec",
        "file-server create", "file-server list", "file-server show", "file-server delete", "list-usages",
    ):  # fmt: skip
        assert verb in verbs, verb
    for path, parser in leaves:
        verb = " ".join(path)
        description = parser.description or ""
        if verb == "job convert":
            assert "No az batchai counterpart" in description
        else:
            assert f"az counterpart: `az batchai {verb}`" in description, verb
        flags = {s for a in parser._actions for s in a.option_strings}
        assert {"-w", "-g", "-o", "--query"} <= flags, verb
    ids_verbs = {
        " ".join(p)
        for p, parser in leaves
        if "--ids" in {s for a in parser._actions for s in a.option_strings}
    }
    assert {
        "job show",
        "job delete",
        "job terminate",
        "cluster show",
        "cluster delete",
        "workspace show",
    } <= ids_verbs


def test_file_server_verbs_say_what_to_use_on_aks(capsys: pytest.CaptureFixture[str]) -> None:
    argv = [
        "file-server",
        "create",
        "-n",
        "nfs",
        "-g",
        "rg",
        "-w",
        "ws",
        "-s",
        "Standard_D14_V2",
        "--disk-count",
        "2",
    ]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Azure Files NFS" in err and "Azure NetApp Files" in err and "fileServers" in err


def test_terminate_without_a_terminal_asks_for_yes() -> None:
    args = build_parser().parse_args(["job", "terminate", "-n", "j"])
    from batchai_operator.cli.common import confirm

    with pytest.raises(CliError, match="pass -y/--yes"):
        confirm(args, "Are you sure?")
    args.yes = True
    confirm(args, "Are you sure?")
