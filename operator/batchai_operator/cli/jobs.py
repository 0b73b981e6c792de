"""`kubectl batchai job ...`: create, show, list, wait, terminate, delete, node list, node exec.

Every verb takes the job's Batch AI name (`cntk_python_1`) or its TrainingJob name (`cntk-python-1`)."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from typing import Any

from ..names import LABEL_TRAININGJOB_UID, MAIN_CONTAINER
from . import common, remote
from .convert.job import ConvertOptions, convert_file
from .errors import CliError, NotFound
from .files import with_storage
from .k8s import CliKube
from .naming import batchai_name
from .progress import Progress
from .views import JOB_COLUMNS, NODE_COLUMNS, image_view, job_view, node_rows
from .wait import TERMINAL, changes, outcome, progress_text

# ---- waiting --------------------------------------------------------------------------------------


def follow_trainingjob(
    kube: CliKube, ns: str, name: str, progress: Progress, interval: float
) -> dict[str, Any]:
    """Print the job's state changes until it is succeeded or failed; return the terminal object."""
    obj = kube.get_trainingjob(ns, name)
    seen: dict[str, Any] | None = None
    started = time.monotonic()

    def look(o: dict[str, Any]) -> bool:
        nonlocal seen
        status = o.get("status") or {}
        for line in changes(seen, status):
            progress.line(line)
        seen = status
        return status.get("executionState") in TERMINAL

    progress.line(f"Job submitted at {obj['metadata'].get('creationTimestamp')}")
    if look(obj):
        return obj
    # A watch delivers each change as it happens; it is renewed every `interval` seconds (every second on
    # a terminal, so the elapsed time moves) and the object re-read, in case a change was missed.
    while True:
        progress.update(progress_text(name, seen or {}, time.monotonic() - started))
        rv = str(obj["metadata"].get("resourceVersion") or "")
        for event in kube.watch_trainingjob(
            ns, name, rv, seconds=1 if progress.live else int(max(1, interval))
        ):
            if event.get("type") == "DELETED":
                raise CliError(f"TrainingJob {name} in namespace {ns} was deleted while waiting")
            if event.get("type") not in ("ADDED", "MODIFIED"):
                break
            obj = dict(event["object"])
            if look(obj):
                return obj
            progress.update(progress_text(name, seen or {}, time.monotonic() - started))
        obj = kube.get_trainingjob(ns, name)
        if look(obj):
            return obj


def wait_exit(kube: CliKube, ns: str, name: str, interval: float) -> int:
    progress = Progress()
    final = follow_trainingjob(kube, ns, name, progress, interval)
    progress.done()
    code, lines = outcome(batchai_name(final), ns, final.get("status") or {})
    for line in lines:
        progress.line(line)
    return code


def job_wait(args: argparse.Namespace) -> int:
    code = 0
    for workspace, name in common.targets(args, "jobs"):
        kube = common.for_target(args, workspace)
        obj = find(kube, args, name)
        code = wait_exit(kube, kube.namespace, obj["metadata"]["name"], args.interval) or code
    return code


def find(kube: CliKube, args: argparse.Namespace, name: str) -> dict[str, Any]:
    """The TrainingJob by Batch AI or Kubernetes name; with -e, only in that experiment (az's jobs
    lived in an experiment)."""
    obj = kube.resolve_trainingjob(kube.namespace, name)
    experiment = getattr(args, "experiment", None)
    if experiment and (obj.get("spec") or {}).get("experiment", "default") != experiment:
        raise NotFound(
            f"TrainingJob {name} not found in experiment {experiment} of workspace {kube.namespace}"
        )
    return obj


# ---- create ---------------------------------------------------------------------------------------


def _pairs(values: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CliError(f"{what} {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _convert(args: argparse.Namespace, ns: str, key: str | None, account: str | None) -> Any:
    options = ConvertOptions(
        name=args.name,
        namespace=ns,
        cluster=args.cluster,
        experiment=args.experiment,
        **common.storage_options(args, account=account, key=key),
    )
    return common.converted(lambda: convert_file(args.file, options), args.file)


def job_create(args: argparse.Namespace) -> int:
    ns = common.namespace(args)
    key = common.key_from_file(args.storage_account_key_file)
    result = _convert(args, ns, key, args.storage_account_name)
    job = result.obj
    job["metadata"].setdefault("labels", {}).update(_pairs(args.label, "--label"))
    job["metadata"].setdefault("annotations", {}).update(_pairs(args.annotation, "--annotation"))
    if not job["metadata"]["labels"]:
        del job["metadata"]["labels"]
    if not job["metadata"]["annotations"]:
        del job["metadata"]["annotations"]
    name = job["metadata"]["name"]

    if args.dry_run:
        common.print_warnings(result.warnings)
        docs = [common.redacted(d) for d in result.documents()]
        common.emit(args, {"apiVersion": "v1", "kind": "List", "items": docs})
        print("dry run: nothing was created; Secret values are not shown", file=sys.stderr)
        return 0

    kube = common.kube(args)
    # Secrets the job references without a key to put in them must exist already; otherwise ask.
    absent = {a: s for a, s in result.missing_keys.items() if kube.secret_exists(ns, s) is False}
    if absent:
        if len(absent) == 1 and sys.stdin.isatty():
            account, _ = next(iter(absent.items()))
            typed = getpass.getpass(f"Key of storage account {account}: ").strip()
            if not typed:
                raise CliError(f"no key typed for storage account {account}")
            result = _convert(args, ns, typed, account)
            result.job["metadata"] = job["metadata"]
            job = result.obj
        else:
            account, secret = next(iter(absent.items()))
            raise CliError(
                f"storage account {account}: Secret {ns}/{secret} does not exist and no key was given: pass "
                "--storage-account-key-file (with --storage-account-name), set AZURE_BATCHAI_STORAGE_KEY, "
                "or create the Secret first"
            )
    existing = set(result.missing_keys.values()) - set(absent.values())
    common.print_warnings([w for w in result.warnings if not any(f"Secret {s!r}" in w for s in existing)])

    for secret in result.secrets:
        kube.apply_secret(ns, secret)
    created = kube.create_trainingjob(ns, job)
    # The Secrets generated for this job go away with it (garbage collection by owner).
    owner = {
        "apiVersion": created["apiVersion"],
        "kind": "TrainingJob",
        "name": name,
        "uid": created["metadata"]["uid"],
    }
    for secret in result.secrets:
        if secret["metadata"]["name"] != args.storage_secret:
            kube.own_secret(ns, secret["metadata"]["name"], owner)
    shown = batchai_name(created)
    also = f" (TrainingJob {name})" if shown != name else ""
    print(
        f"Job {shown}{also} created in workspace {ns}, experiment {created['spec'].get('experiment')}",
        file=sys.stderr,
    )
    if args.wait:
        return wait_exit(kube, ns, name, args.interval)
    common.emit(args, job_view(created), JOB_COLUMNS)
    return 0


# ---- show, list, terminate, delete, node list, node exec ---------------------------------------------


def job_show(args: argparse.Namespace) -> int:
    views = []
    for workspace, name in common.targets(args, "jobs"):
        kube = common.for_target(args, workspace)
        obj = with_storage(kube, find(kube, args, name))
        view = job_view(obj)
        view.update(
            image_view(
                obj, kube.list_batch_jobs(kube.namespace, f"{LABEL_TRAININGJOB_UID}={obj['metadata']['uid']}")
            )
        )
        views.append(view)
    common.emit(args, views[0] if len(views) == 1 else views, JOB_COLUMNS)
    return 0


def job_list(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    ns = None if args.all_namespaces else kube.namespace
    jobs = (
        kube.experiment_trainingjobs(ns, args.experiment) if args.experiment else kube.list_trainingjobs(ns)
    )
    rows = sorted(
        (job_view(j) for j in jobs), key=lambda r: (r["workspace"], r["creationTime"] or "", r["name"])
    )
    common.emit(args, rows, JOB_COLUMNS)
    return 0


def job_terminate(args: argparse.Namespace) -> int:
    for workspace, name in common.targets(args, "jobs"):
        kube = common.for_target(args, workspace)
        ns = kube.namespace
        obj = find(kube, args, name)
        k8s_name = obj["metadata"]["name"]
        state = (obj.get("status") or {}).get("executionState")
        if state in TERMINAL:
            print(f"Job {name} already {state}; nothing to terminate", file=sys.stderr)
            continue
        common.confirm(args, f"Are you sure you want to terminate job {name} in workspace {ns}?")
        kube.patch_trainingjob(ns, k8s_name, {"spec": {"terminate": True}})
        if args.no_wait:
            print(f"Job {name}: termination requested", file=sys.stderr)
            continue
        progress = Progress()
        final = follow_trainingjob(kube, ns, k8s_name, progress, 1)
        progress.done()
        progress.line(f"Job {name} terminated: {(final.get('status') or {}).get('executionState')}")
    return 0


def job_delete(args: argparse.Namespace) -> int:
    for workspace, name in common.targets(args, "jobs"):
        kube = common.for_target(args, workspace)
        ns = kube.namespace
        k8s_name = find(kube, args, name)["metadata"]["name"]  # a missing job is reported before asking
        common.confirm(
            args, f"Are you sure you want to delete job {name} in workspace {ns} (a running job is stopped)?"
        )
        kube.delete_trainingjob(ns, k8s_name)
        if args.no_wait:
            print(f"Job {name}: deletion requested", file=sys.stderr)
            continue
        wait_gone(lambda k=kube, n=ns, j=k8s_name: k.get_trainingjob(n, j), f"job {name}")
    return 0


def wait_gone(get: Any, what: str) -> None:
    """Until `get` says NotFound, with a progress line."""
    progress = Progress()
    started = time.monotonic()
    while True:
        try:
            get()
        except NotFound:
            break
        progress.update(f"deleting {what}, {int(time.monotonic() - started)}s")
        time.sleep(0.5)
    progress.done()
    progress.line(f"{what[:1].upper()}{what[1:]} deleted")


def _job_pods(kube: CliKube, args: argparse.Namespace) -> list[dict[str, Any]]:
    obj = find(kube, args, args.job)
    pods = kube.list_pods_dicts(kube.namespace, f"{LABEL_TRAININGJOB_UID}={obj['metadata']['uid']}")
    return pods


def job_node_list(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    common.emit(args, node_rows(_job_pods(kube, args)), NODE_COLUMNS)
    return 0


def pick_pod(rows: list[dict[str, Any]], node: str | None, what: str) -> str:
    """The pod on node `node` (its node name, node index or pod name; default: the first), running."""
    for row in rows:
        if node is None or node in (row.get("nodeName"), row.get("podName"), str(row.get("nodeIndex"))):
            if row.get("state") != "Running":
                raise CliError(f"{what}: the pod {row.get('podName')} is {row.get('state')}, not Running")
            return str(row["podName"])
    known = ", ".join(str(r.get("nodeName")) for r in rows) or "none yet"
    raise NotFound(f"{what}: no node {node!r} (nodes: {known})" if node else f"{what}: no pod runs yet")


def exec_on(kube: CliKube, args: argparse.Namespace, pod: str, container: str) -> int:
    """--exec and -L as az's node exec had them; neither: an interactive shell."""
    forwards = [remote.parse_forward(f) for f in args.port_forward or []]
    if not args.exec and not forwards:
        remote.interactive_shell(args.context, kube.namespace, pod, container)
        return 0
    forwarders = [remote.Forwarder(kube, kube.namespace, pod, f).start() for f in forwards]
    for f in forwards:
        print(f"Forwarding 127.0.0.1:{f.local} -> {pod}:{f.remote}", file=sys.stderr)
    try:
        if args.exec:
            return remote.run_command(kube, kube.namespace, pod, container, args.exec)
        print("Press Ctrl-C to stop forwarding", file=sys.stderr)
        while True:
            time.sleep(3600)
    finally:
        for forwarder in forwarders:
            forwarder.close()


def job_node_exec(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    pod = pick_pod(node_rows(_job_pods(kube, args)), args.node_id, f"job {args.job}")
    return exec_on(kube, args, pod, MAIN_CONTAINER)


# ---- parser ---------------------------------------------------------------------------------------

DIFF_NAMES = (
    "jobs are TrainingJobs in the workspace's namespace; a Batch AI name that is not a Kubernetes name "
    "(cntk_python_1) is kept in the annotation batchai.io/name and accepted here, with the derived "
    "Kubernetes name (cntk-python-1)."
)


def _experiment_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("-e", "--experiment", help="the job's experiment (checked when given)")


def add_job_file_arguments(p: argparse.ArgumentParser) -> None:
    """What `job create` and `job convert` both read: the job.json, its names and its storage account."""
    p.add_argument("-f", "--config-file", "--file", dest="file", required=True, help="job.json ('-': stdin)")
    p.add_argument("-n", "--name", help="job name (default: from the file name)")
    p.add_argument("-c", "--cluster", help="BatchAICluster to run on (or a Batch AI cluster ARM id)")
    p.add_argument("-e", "--experiment", help="experiment (default: the file's, else 'default')")
    common.add_storage_key_arguments(p)
    p.add_argument(
        "--storage-secret",
        help="existing Secret (azurestorageaccountname/azurestorageaccountkey) for the storage account, "
        "instead of a generated <name>-storage-<account>",
    )
    common.add_placeholder_argument(p)


def add_parsers(jobs: Any) -> None:
    p = common.add(
        jobs,
        "create",
        "create a TrainingJob from a Batch AI job.json",
        "az batchai job create",
        "the job.json's storage keys go into Secrets owned by the job; -e need not exist first; job-level "
        "--nfs/--afs-name/--bfs-name are not taken (put the mounts in job.json). " + DIFF_NAMES,
    )
    add_job_file_arguments(p)
    p.add_argument(
        "--label", action="append", metavar="KEY=VALUE", help="label on the TrainingJob (repeatable)"
    )
    p.add_argument(
        "--annotation",
        action="append",
        metavar="KEY=VALUE",
        help="annotation on the TrainingJob (repeatable)",
    )
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be created (Secret values hidden)"
    )
    p.add_argument("--wait", action="store_true", help="then wait for the job, as `job wait`")
    p.add_argument(
        "--interval", type=float, default=15, help="with --wait: seconds between checks (default 15)"
    )
    p.set_defaults(func=job_create)

    p = common.add(
        jobs,
        "show",
        "show a job",
        "az batchai job show",
        "status adds where each output directory is in storage. " + DIFF_NAMES,
        ids=True,
    )
    p.add_argument("-n", "--name")
    _experiment_flag(p)
    p.set_defaults(func=job_show)

    p = common.add(
        jobs, "list", "list jobs", "az batchai job list", "-A lists every workspace. " + DIFF_NAMES
    )
    p.add_argument("-e", "--experiment", help="only this experiment's jobs")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="jobs of every workspace")
    p.set_defaults(func=job_list)

    p = common.add(
        jobs,
        "wait",
        "wait for a job; exit with its exit code",
        "az batchai job wait",
        "a failed job never exits 0 (az did when the exit code was missing).",
        ids=True,
    )
    p.add_argument("-n", "--name")
    _experiment_flag(p)
    p.add_argument(
        "--interval",
        type=float,
        default=15,
        help="seconds between checks when not on a terminal (default 15)",
    )
    p.set_defaults(func=job_wait)

    p = common.add(
        jobs,
        "terminate",
        "terminate a job (its pods are stopped; it ends failed with JobTerminated)",
        "az batchai job terminate",
        ids=True,
        output=False,
    )
    p.add_argument("-n", "--name")
    _experiment_flag(p)
    common.add_confirm_flags(p, "for the job to stop")
    p.set_defaults(func=job_terminate)

    p = common.add(
        jobs,
        "delete",
        "delete a job and the Secrets created for it",
        "az batchai job delete",
        ids=True,
        output=False,
    )
    p.add_argument("-n", "--name")
    _experiment_flag(p)
    common.add_confirm_flags(p)
    p.set_defaults(func=job_delete)


def add_exec_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--exec", help="command to run (in a login shell, as az did); default: an interactive shell"
    )
    p.add_argument(
        "-L",
        "--address",
        dest="port_forward",
        action="append",
        metavar="LOCAL:localhost:REMOTE",
        help="forward a local port to a port of the container (repeatable), e.g. 6006:localhost:6006",
    )


def add_node_parsers(nodes: Any) -> None:
    p = common.add(
        nodes,
        "list",
        "the job's nodes: its pods and the nodes they run on",
        "az batchai job node list",
        "rows are pods (node index, pod, node, pod IP, state, exit code), not SSH endpoints.",
    )
    p.add_argument("-j", "--job", required=True)
    _experiment_flag(p)
    p.set_defaults(func=job_node_list)

    p = common.add(
        nodes,
        "exec",
        "run a command in the job's container on one of its nodes, or forward ports to it",
        "az batchai job node exec",
        "through the API server (pods/exec, pods/portforward), not SSH: no key or password is taken "
        "(-u/-k/-p are not accepted); -L reaches only the container's own ports.",
        output=False,
    )
    p.add_argument("-j", "--job", required=True)
    _experiment_flag(p)
    p.add_argument("-n", "--node-id", help="node name, node index or pod name (default: the first node)")
    add_exec_arguments(p)
    p.set_defaults(func=job_node_exec)
