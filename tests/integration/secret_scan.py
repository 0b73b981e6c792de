"""The secret scan of the whole integration suite: no storage key or SSH private key of any test ever
appears in a non-Secret object, an Event, a status, or an operator's log.

Each test namespace is scanned when its fixture tears it down (before deletion): the SSH key Secrets the
operator made there join the known values, then every listable namespaced object but Secrets (Events,
TrainingJobs and BatchAIClusters with their status, pods, Jobs, ConfigMaps, ...) is searched for every
known value. The operators' logs are searched at the end of the session, for all values seen by then.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path

from jobs import SECRET_KEY_VALUE


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# Values that must never leave a Secret (the storage key as the tests write it, and as the API stores it).
KNOWN: set[str] = {SECRET_KEY_VALUE, _b64(SECRET_KEY_VALUE)}
LOGS: list[Path] = []
SCANNED: list[str] = []
_KINDS: list[str] = []


def register_log(path: Path) -> None:
    LOGS.append(path)


def _kubectl(*args: str) -> str:
    out = subprocess.run(["kubectl", *args], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)}: {out.stderr}")
    return out.stdout


def _kinds() -> list[str]:
    if not _KINDS:
        names = _kubectl("api-resources", "--namespaced", "--verbs=list", "-o", "name").split()
        _KINDS.extend(n for n in names if n != "secrets" and n != "endpoints")
    return _KINDS


def _ssh_keys(namespace: str) -> set[str]:
    """The private keys of the namespace's SSH Secrets, as stored (base64) and as their key lines."""
    items = json.loads(_kubectl("get", "secrets", "-n", namespace, "-o", "json"))["items"]
    found: set[str] = set()
    for secret in items:
        if secret.get("type") != "kubernetes.io/ssh-auth":
            continue
        stored = (secret.get("data") or {}).get("ssh-privatekey", "")
        found.add(stored)
        body = base64.b64decode(stored).decode(errors="replace").splitlines()
        found.update(line for line in body if len(line) >= 40 and not line.startswith("-----"))
    return {v for v in found if v}


def leaks(text: str) -> list[str]:
    """The known values in text, shortened (the full value would put the secret in the report)."""
    return sorted(f"{v[:6]}...({len(v)} chars)" for v in KNOWN if v in text)


def check_namespace(namespace: str) -> None:
    """Add the namespace's SSH keys to the known values; fail if a non-Secret object holds any of them."""
    KNOWN.update(_ssh_keys(namespace))
    dump = _kubectl("get", ",".join(_kinds()), "-n", namespace, "-o", "json")
    SCANNED.append(namespace)
    found = leaks(dump)
    assert not found, f"secret values in non-Secret objects of namespace {namespace}: {found}"


def check_logs() -> None:
    for path in LOGS:
        text = path.read_text(errors="replace") if path.exists() else ""
        found = leaks(text)
        assert not found, f"secret values in operator log {path}: {found}"
