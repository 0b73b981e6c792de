"""`kubectl batchai job ...`: create, show, list, wait, terminate, delete, node list."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from typing import Any

from ..convert import ConvertOptions, convert_file
from ..names import LABEL_EXPERIMENT, LABEL_TRAININGJOB_UID
from . import common
from .errors import CliError
from .files import with_storage
from .k8s import Kube
from .output import query, render
from .progress import Progress
from .views import JOB_COLUMNS, NODE_COLUMNS, job_view, node_rows
from .wait import TERMINAL, changes, outcome, progress_text

# ---- waiting --------------------------------------------------------------------------------------


def follow_job(kube: Kube, ns: str, name: str, progress: Progress, interval: float) -> dict[str, Any]:
    """Print the job's state changes until it is succeeded or failed; return the terminal object."""
    obj = kube.get_job(ns, name)
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
        for event in kube.watch_job(ns, name, rv, seconds=1 if progress.live else int(max(1, interval))):
            if event.get("type") == "DELETED":
                raise CliError(f"TrainingJob {name} in namespace {ns} was deleted while waiting")
            if event.get("type") not in ("ADDED", "MODIFIED"):
                break
            obj = dict(event["object"])
            if look(obj):
                return obj
            progress.update(progress_text(name, seen or {}, time.monotonic() - started))
        obj = kube.get_job(ns, name)
        if look(obj):
            return obj


def wait_exit(kube: Kube, ns: str, name: str, interval: float) -> int:
    progress = Progress()
    final = follow_job(kube, ns, name, progress, interval)
    progress.done()
    code, lines = outcome(name, ns, final.get("status") or {})
    for line in lines:
        progress.line(line)
    return code


def job_wait(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    return wait_exit(kube, kube.namespace, args.name, args.interval)


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
    job = result.job
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
        sys.stdout.write(render({"apiVersion": "v1", "kind": "List", "items": docs}, args.output))
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
            job = result.job
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
    created = kube.create_job(ns, job)
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
    print(
        f"TrainingJob {name} created in workspace {ns} (experiment {created['spec'].get('experiment')})",
        file=sys.stderr,
    )
    if args.wait:
        return wait_exit(kube, ns, name, args.interval)
    sys.stdout.write(render(job_view(created), args.output, JOB_COLUMNS))
    return 0


# ---- show, list, terminate, delete, node list ------------------------------------------------------


def job_show(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    view = job_view(with_storage(kube, kube.get_job(kube.namespace, args.name)))
    if args.query:
        value = query(view, args.query)
        sys.stdout.write(render(value, "json" if args.output == "table" else args.output))
        return 0
    sys.stdout.write(render(view, args.output, JOB_COLUMNS))
    return 0


def job_list(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    selector = f"{LABEL_EXPERIMENT}={args.experiment}" if args.experiment else ""
    jobs = kube.list_jobs(None if args.all_namespaces else kube.namespace, selector)
    rows = sorted(
        (job_view(j) for j in jobs), key=lambda r: (r["workspace"], r["creationTime"] or "", r["name"])
    )
    sys.stdout.write(render(rows, args.output, JOB_COLUMNS))
    return 0


def job_terminate(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    ns = kube.namespace
    obj = kube.get_job(ns, args.name)
    state = (obj.get("status") or {}).get("executionState")
    if state in TERMINAL:
        print(f"Job {args.name} already {state}; nothing to terminate", file=sys.stderr)
        return 0
    kube.patch_job(ns, args.name, {"spec": {"terminate": True}})
    if args.no_wait:
        print(f"Job {args.name}: termination requested", file=sys.stderr)
        return 0
    progress = Progress()
    final = follow_job(kube, ns, args.name, progress, 1)
    progress.done()
    progress.line(f"Job {args.name} terminated: {(final.get('status') or {}).get('executionState')}")
    return 0


def _confirm(args: argparse.Namespace, what: str) -> None:
    if args.yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"refusing to delete {what} without confirmation: pass -y")
    answer = input(f"Are you sure you want to delete {what}? (y/n): ").strip().lower()
    if answer not in ("y", "yes"):
        raise CliError("not deleted")


def job_delete(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    ns = kube.namespace
    kube.get_job(ns, args.name)  # a missing job is reported before asking
    _confirm(args, f"TrainingJob {args.name} in workspace {ns} (a running job is stopped)")
    kube.delete_job(ns, args.name)
    if args.no_wait:
        print(f"TrainingJob {args.name}: deletion requested", file=sys.stderr)
        return 0
    progress = Progress()
    started = time.monotonic()
    while True:
        try:
            kube.get_job(ns, args.name)
        except CliError as exc:
            if "not found" in str(exc):
                break
            raise
        progress.update(f"deleting {args.name}, {int(time.monotonic() - started)}s")
        time.sleep(0.5)
    progress.done()
    progress.line(f"TrainingJob {args.name} deleted")
    return 0


def job_node_list(args: argparse.Namespace) -> int:
    kube = common.kube(args)
    obj = kube.get_job(kube.namespace, args.job)
    pods = kube.list_pods(kube.namespace, f"{LABEL_TRAININGJOB_UID}={obj['metadata']['uid']}")
    rows = node_rows([kube.api.sanitize_for_serialization(p) for p in pods])
    sys.stdout.write(render(rows, args.output, NODE_COLUMNS))
    return 0


# ---- parser ---------------------------------------------------------------------------------------


def add_parsers(jobs: Any) -> None:
    p = common.add(
        jobs, "create", "create a TrainingJob from a Batch AI job.json (az batchai job create)", "json"
    )
    p.add_argument("-f", "--config-file", "--file", dest="file", required=True, help="job.json ('-': stdin)")
    p.add_argument("-n", "--name", help="job name (default: from the file name)")
    p.add_argument("-c", "--cluster", help="BatchAICluster to run on (or a Batch AI cluster ARM id)")
    p.add_argument("-e", "--experiment", help="experiment (default: the file's, else 'default')")
    common.add_storage_key_arguments(p)
    p.add_argument(
        "--storage-secret",
        help="existing Secret (azurestorageaccountname/azurestorageaccountkey) to reference for the account",
    )
    common.add_placeholder_argument(p)
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

    p = common.add(jobs, "show", "show a job (az batchai job show)", "json")
    p.add_argument("-n", "--name", required=True)
    p.add_argument(
        "--query", help="print one field, e.g. jobOutputDirectoryPathSegment or executionInfo.exitCode"
    )
    p.set_defaults(func=job_show)

    p = common.add(jobs, "list", "list jobs (az batchai job list)", "table")
    p.add_argument("-e", "--experiment", help="only this experiment's jobs")
    p.add_argument("-A", "--all-namespaces", action="store_true", help="jobs of every workspace")
    p.set_defaults(func=job_list)

    p = common.add(jobs, "wait", "wait for a job; exit with its exit code (az batchai job wait)", None)
    p.add_argument("-n", "--name", required=True)
    p.add_argument(
        "--interval",
        type=float,
        default=15,
        help="seconds between checks when not on a terminal (default 15)",
    )
    p.set_defaults(func=job_wait)

    p = common.add(jobs, "terminate", "terminate a job (az batchai job terminate)", None)
    p.add_argument("-n", "--name", required=True)
    p.add_argument("--no-wait", action="store_true", help="do not wait for the job to stop")
    p.set_defaults(func=job_terminate)

    p = common.add(
        jobs, "delete", "delete a job and the Secrets created for it (az batchai job delete)", None
    )
    p.add_argument("-n", "--name", required=True)
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument("--no-wait", action="store_true", help="do not wait until it is gone")
    p.set_defaults(func=job_delete)


def add_node_parsers(nodes: Any) -> None:
    p = common.add(nodes, "list", "the job's nodes: its pods and the nodes they run on", "table")
    p.add_argument("-j", "--job", required=True)
    p.set_defaults(func=job_node_list)
