"""kubectl-batchai's pure parts, verb by verb: arguments as az batchai took them, what each verb shows
(az's shapes and table columns), `job wait`'s lines and exit codes, the progress line, dry runs.

The verbs against a real API server, Azurite and the Files double: tests/integration/test_kubectl_batchai.py.
"""

from __future__ import annotations

import datetime
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchai_operator.cli import main as cli_main
from batchai_operator.cli.main import build_parser
from batchai_operator.cli.output import query, render, table
from batchai_operator.cli.progress import Progress
from batchai_operator.cli.views import (
    CLUSTER_COLUMNS,
    FILE_COLUMNS,
    JOB_COLUMNS,
    NODE_COLUMNS,
    cluster_view,
    experiment_rows,
    file_rows,
    job_view,
    node_rows,
    workspace_rows,
)
from batchai_operator.cli.wait import NO_EXIT_CODE, changes, exit_code, outcome, progress_text, took
from batchai_operator.storage.access import Entry

REPO = Path(__file__).resolve().parents[2]
SEED = REPO / "examples" / "cntk-mnist" / "job.json"


def job(name: str = "cntk-python-1", ns: str = "quickstart", **status: Any) -> dict[str, Any]:
    return {
        "apiVersion": "batchai.io/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": ns, "uid": "u1", "creationTimestamp": "2026-12-03T08:00:00Z"},
        "spec": {
            "cluster": "nc6",
            "nodeCount": 1,
            "experiment": "quickstart",
            "stdOutErrPathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
            "cntkSettings": {"pythonScriptFilePath": "x.py"},
            "outputDirectories": [{"id": "MODEL", "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs"}],
        },
        "status": status,
    }


def parse(*argv: str) -> Any:
    return build_parser().parse_args(list(argv))


# ---- arguments ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "fields"),
    [
        (
            ["job", "create", "-f", "job.json", "-n", "j", "-c", "nc6", "-e", "quickstart", "-w", "ws"],
            {"file": "job.json", "name": "j", "cluster": "nc6", "experiment": "quickstart"},
        ),
        (["job", "show", "-n", "j", "--query", "executionState"], {"query": "executionState"}),
        (["job", "list", "-e", "quickstart"], {"experiment": "quickstart", "output": None}),
        (["job", "wait", "-n", "j"], {"interval": 15}),
        (["job", "terminate", "-n", "j", "--no-wait"], {"no_wait": True}),
        (["job", "delete", "-n", "j", "-y"], {"yes": True}),
        (["job", "file", "list", "-j", "j"], {"output_directory_id": "stdouterr", "path": ".", "expiry": 60}),
        (["job", "file", "list", "-j", "j", "-d", "MODEL", "-p", "ckpt", "--expiry", "5"], {"expiry": 5}),
        (["job", "file", "stream", "-j", "j", "-f", "stderr.txt"], {"file_name": "stderr.txt"}),
        (["job", "node", "list", "-j", "j", "-o", "json"], {"job": "j", "output": "json"}),
        (["cluster", "create", "-f", "c.json", "-n", "nc6", "-s", "NC6", "-t", "1"], {"target": 1}),
        (["cluster", "show", "-n", "nc6", "-g", "rg"], {"output": None, "resource_group": "rg"}),
        (["cluster", "list", "-o", "tsv"], {"output": "tsv"}),
        (["cluster", "resize", "-n", "nc6", "-t", "0"], {"target": 0}),
        (["cluster", "auto-scale", "-n", "nc6", "--min", "0", "--max", "4"], {"min": 0, "max": 4}),
        (["experiment", "list", "-w", "ws"], {"namespace": "ws"}),
        (["workspace", "list", "-o", "yaml"], {"output": "yaml"}),
    ],
)  # fmt: skip
def test_every_verb_takes_azs_flags(argv: list[str], fields: dict[str, Any]) -> None:
    args = parse(*argv)
    for key, value in fields.items():
        assert getattr(args, key) == value
    assert callable(args.func)


@pytest.mark.parametrize(
    "argv",
    [
        ["job", "create", "-f", "j.json", "--storage-account-key", "abc"],
        ["job", "convert", "-f", "j.json", "--storage-account-key", "abc"],
        ["job", "file", "list", "-j", "j", "--storage-account-key", "abc"],
        ["cluster", "create", "-f", "c.json", "-n", "c", "--storage-account-key", "abc"],
    ],
)
def test_keys_are_never_taken_on_the_command_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        parse(*argv)
    err = capsys.readouterr().err
    assert "storage keys are not taken on the command line" in err and "--storage-account-key-file" in err
    assert "abc" not in err


@pytest.mark.parametrize("expiry", ["4", "601", "soon"])
def test_file_list_expiry_is_bounded_as_batch_ai_did(expiry: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("job", "file", "list", "-j", "j", "--expiry", expiry)
    assert "--expiry" in capsys.readouterr().err


def test_help_no_longer_suggests_writing_keys_to_a_file() -> None:
    text = build_parser().format_help() + (cli_main.__doc__ or "")
    assert "> job.yaml" not in text


# ---- job create (dry run), show, list ------------------------------------------------------------


def test_job_create_dry_run_prints_the_objects_without_secret_values(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("c3VwZXItc2VjcmV0LWtleQ==\n")
    # The dry run reads the kubeconfig only for the default namespace; give it one that does not exist.
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    argv = [
        "job",
        "create",
        "-f",
        str(SEED),
        "-n",
        "cntk-python-1",
        "-c",
        "nc6",
        "-e",
        "quickstart",
        "-w",
        "ws",
    ]
    argv += ["--placeholder", "YOUR_STORAGE_ACCOUNT=acct", "--storage-account-key-file", str(key_file)]
    argv += ["--annotation", "sim.batchai.io/run-for=5s", "--dry-run", "-o", "yaml"]
    rc = cli_main.main(argv)
    out, err = capsys.readouterr()
    assert rc == 0, err
    docs = yaml.safe_load(out)["items"]
    secret, tj = docs
    assert secret["kind"] == "Secret" and set(secret["data"].values()) == {"<redacted>"}
    assert tj["metadata"]["annotations"] == {"sim.batchai.io/run-for": "5s"}
    assert tj["metadata"]["namespace"] == "ws" and tj["spec"]["experiment"] == "quickstart"
    assert "c3VwZXItc2VjcmV0LWtleQ" not in out + err
    assert "nothing was created" in err


def test_job_view_is_azs_flat_shape_with_resolved_outputs() -> None:
    obj = job(
        executionState="failed",
        executionInfo={"exitCode": 3},
        jobOutputDirectoryPathSegment="quickstart/quickstart/cntk-python-1/u1",
        outputDirectories=[
            {
                "id": "MODEL",
                "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/seg/outputs",
                "storage": {"accountName": "a"},
            }
        ],
        toolType="cntk",
    )
    view = job_view(obj)
    assert view["name"] == "cntk-python-1" and view["workspace"] == "quickstart"
    assert view["kubernetesName"] == "cntk-python-1"
    assert view["experiment"] == "quickstart" and view["cluster"] == "nc6"
    assert view["provisioningState"] == "succeeded" and view["creationTime"] == "2026-12-03T08:00:00Z"
    assert view["outputDirectories"] == [
        {
            "id": "MODEL",
            "pathPrefix": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs",
            "path": "$AZ_BATCHAI_JOB_MOUNT_ROOT/logs/seg/outputs",
            "storage": {"accountName": "a"},
        }
    ]
    assert query(view, "jobOutputDirectoryPathSegment") == "quickstart/quickstart/cntk-python-1/u1"
    assert query(view, "executionInfo.exitCode") == 3
    assert query(view, "outputDirectories[0].storage.accountName") == "a"
    assert query(view, "outputDirectories[5].id") is None
    text = table([view], JOB_COLUMNS)
    assert text.splitlines() == [
        "Name           Kubernetes Name  Cluster  Workspace   Experiment  Tool  Nodes  State   Exit code",
        "-------------  ---------------  -------  ----------  ----------  ----  -----  ------  ---------",
        "cntk-python-1  cntk-python-1    nc6      quickstart  quickstart  cntk  1      failed  3",
    ]


def test_a_new_job_shows_queued_and_its_tool_a_deleted_one_deleting() -> None:
    view = job_view(job())
    assert (view["state"], view["toolType"]) == ("queued", "cntk")
    gone = job()
    gone["metadata"]["deletionTimestamp"] = "2026-12-03T09:00:00Z"
    assert job_view(gone)["state"] == "deleting"


def test_render_formats() -> None:
    rows = [{"name": "a", "n": 1}, {"name": "bb", "n": None}]
    cols = [("Name", lambda r: r["name"]), ("N", lambda r: r["n"])]
    assert render(rows, "table", cols) == "Name  N\n----  -\na     1\nbb\n"
    assert json.loads(render(rows, "json")) == rows
    assert yaml.safe_load(render(rows, "yaml")) == rows
    # Without the verb's columns (or after --query), az's automatic table: scalar fields, capitalised.
    assert render(rows, "table") == "Name  N\n----  -\na     1\nbb\n"


# ---- job wait -------------------------------------------------------------------------------------


def test_wait_logs_start_and_each_state_change_once() -> None:
    assert changes(None, {}) == []
    assert changes(None, {"executionState": "queued"}) == ["Job state: queued"]
    running = {"executionState": "running", "executionInfo": {"startTime": "2026-12-03T08:00:05Z"}}
    assert changes({"executionState": "queued"}, running) == [
        "Job started execution at 2026-12-03T08:00:05Z",
        "Job state: running",
    ]
    assert changes(running, dict(running)) == []


def test_wait_success_exits_0_with_the_duration() -> None:
    status = {
        "executionState": "succeeded",
        "executionInfo": {
            "startTime": "2026-12-03T08:00:05Z",
            "endTime": "2026-12-03T09:01:07Z",
            "exitCode": 0,
        },
    }
    assert outcome("j", "ws", status) == (
        0,
        ["Job completed at 2026-12-03T09:01:07Z; execution took 1:01:02"],
    )


def test_wait_failure_prints_each_error_and_exits_with_the_jobs_exit_code() -> None:
    status = {
        "executionState": "failed",
        "executionInfo": {
            "startTime": "2026-12-03T08:00:05Z",
            "endTime": "2026-12-03T08:00:09Z",
            "exitCode": 3,
            "errors": [
                {
                    "code": "JobFailed",
                    "message": "Job failed with non-zero exit code 3 on node 0",
                    "details": [{"name": "exitCode", "value": "3"}],
                }
            ],
        },
    }
    code, lines = outcome("j", "ws", status)
    assert code == 3
    assert lines == [
        'The job "j" in workspace "ws" failed.',
        "Job failed with exit code 3 at 2026-12-03T08:00:09Z; execution took 0:00:04",
        "Error message: JobFailed: Job failed with non-zero exit code 3 on node 0",
        "Details:",
        " exitCode: 3",
    ]


@pytest.mark.parametrize(
    ("code", "expected"),
    [(1, 1), (137, 137), (-1, 255), (256, 1), (0, 1), (None, NO_EXIT_CODE)],
)
def test_a_failed_job_never_exits_0(code: int | None, expected: int) -> None:
    info = {} if code is None else {"exitCode": code}
    assert exit_code({"executionState": "failed", "executionInfo": info}) == expected


def test_took_and_progress_text() -> None:
    assert took("2026-12-03T08:00:00Z", None) == "unknown"
    status = {
        "executionState": "queued",
        "conditions": [
            {"type": "Queued", "status": "True", "message": "Waiting for 1 node(s) of cluster nc6"},
        ],
    }
    assert progress_text("j", status, 75.4) == "j: queued, Waiting for 1 node(s) of cluster nc6, 0:01:15"
    assert progress_text("j", {"executionState": "running", "nodesSummary": "1/2"}, 3) == (
        "j: running, nodes 1/2, 0:00:03"
    )


def test_progress_redraws_on_a_terminal_and_prints_only_lines_elsewhere() -> None:
    tty, pipe = io.StringIO(), io.StringIO()
    for stream, live in ((tty, True), (pipe, False)):
        p = Progress(stream, live=live)
        p.update("j: queued, 0:00:01")
        p.update("j: running, 0:00:02")
        p.line("Job state: running")
        p.done()
    assert pipe.getvalue() == "Job state: running\n"
    assert "\r\033[K" in tty.getvalue() and "j: running, 0:00:02" in tty.getvalue()
    assert tty.getvalue().endswith("Job state: running\n")


# ---- job node list, file list ----------------------------------------------------------------------


def test_node_rows_by_index() -> None:
    def pod(name: str, index: str, phase: str, code: int | None) -> dict[str, Any]:
        state = {"terminated": {"exitCode": code}} if code is not None else {"running": {}}
        return {
            "metadata": {"name": name, "labels": {"batch.kubernetes.io/job-completion-index": index}},
            "spec": {"nodeName": f"node-{index}"},
            "status": {
                "phase": phase,
                "podIP": f"10.0.0.{index}",
                "containerStatuses": [{"name": "main", "state": state}],
            },
        }

    rows = node_rows([pod("j-1-x", "1", "Running", None), pod("j-0-y", "0", "Failed", 2)])
    assert [
        (r["nodeIndex"], r["podName"], r["nodeName"], r["ipAddress"], r["state"], r["exitCode"]) for r in rows
    ] == [
        (0, "j-0-y", "node-0", "10.0.0.0", "Failed", 2),
        (1, "j-1-x", "node-1", "10.0.0.1", "Running", None),
    ]
    assert table(rows, NODE_COLUMNS).splitlines()[0].split() == [
        "Node",
        "Pod",
        "Host",
        "IP",
        "State",
        "Exit",
        "code",
    ]


def test_file_rows_flatten_as_az_did() -> None:
    when = datetime.datetime(2026, 12, 3, 8, 5, 51, tzinfo=datetime.UTC)
    rows = file_rows(
        [Entry("ConvNet_MNIST_0.dnn", False, 409456, when, "https://x/y?sp=r&sig=s"), Entry("afs", True)]
    )
    assert rows == [
        {
            "name": "ConvNet_MNIST_0.dnn",
            "fileType": "file",
            "contentLength": 409456,
            "lastModified": "2026-12-03T08:05:51+00:00",
            "downloadUrl": "https://x/y?sp=r&sig=s",
        },
        {"name": "afs", "fileType": "directory"},
    ]
    assert table(rows, FILE_COLUMNS).splitlines()[2:] == [
        "ConvNet_MNIST_0.dnn  file       409456  2026-12-03T08:05:51+00:00",
        "afs                  directory",
    ]


# ---- clusters, experiments, workspaces ----------------------------------------------------------


def test_cluster_view_and_table_as_az_cluster_list() -> None:
    obj = {
        "metadata": {"name": "nc6", "namespace": "quickstart"},
        "spec": {"vmSize": "STANDARD_NC6", "scaleSettings": {"manual": {"targetNodeCount": 1}}},
        "status": {
            "allocationState": "steady",
            "currentNodeCount": 2,
            "nodeStateCounts": {"idleNodeCount": 1, "runningNodeCount": 1},
        },
    }
    view = cluster_view(obj)
    assert view["vmSize"] == "STANDARD_NC6" and view["currentNodeCount"] == 2
    assert table([view], CLUSTER_COLUMNS).splitlines()[2].split() == [
        "nc6", "quickstart", "STANDARD_NC6", "steady", "1", "1", "0", "0", "0",
    ]  # fmt: skip


def test_experiment_and_workspace_rows() -> None:
    jobs = [
        job("a", executionState="running"),
        job("b", executionState="succeeded"),
        job("c", ns="other", executionState="failed"),
    ]
    jobs[2]["spec"]["experiment"] = "sweep"
    assert experiment_rows(jobs) == [
        {"name": "sweep", "workspace": "other", "jobs": 1, "running": 0, "succeeded": 0, "failed": 1},
        {
            "name": "quickstart",
            "workspace": "quickstart",
            "jobs": 2,
            "running": 1,
            "succeeded": 1,
            "failed": 0,
        },
    ]
    clusters = [
        {"metadata": {"name": "nc6", "namespace": "idle-ws"}},
        {"metadata": {"name": "x", "namespace": "other"}},
    ]
    assert workspace_rows(jobs, clusters) == [
        {"name": "idle-ws", "clusters": 1, "experiments": 0, "jobs": 0},
        {"name": "other", "clusters": 1, "experiments": 1, "jobs": 1},
        {"name": "quickstart", "clusters": 0, "experiments": 1, "jobs": 2},
    ]
