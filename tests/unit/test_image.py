"""The operator image's inputs: base images pinned by digest, only declared dependencies imported (and
every declared one used), a .dockerignore that keeps local files out. hadolint runs in `make lint`."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "operator" / "batchai_operator"
# Declared for what the code needs but never imports by name.
USED_INDIRECTLY = {
    "aiohttp",  # azure-core's async transport (the ARM client)
    # kubectl-batchai's storage commands (storage/), which are being added alongside.
    "azure-storage-blob",
    "azure-storage-file-share",
}


def declared() -> set[str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    return {normalized(re.split(r"[<>=!~\[ ]", d, maxsplit=1)[0]) for d in deps}


def normalized(distribution: str) -> str:
    """PEP 503: prometheus_client and prometheus-client are one distribution."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def imported_distributions() -> set[str]:
    top: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                top.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                top.add(node.module.split(".")[0])
    third_party = top - set(sys.stdlib_module_names) - {"batchai_operator", "__future__"}
    dists = packages_distributions()
    out: set[str] = set()
    for name in third_party:
        if name == "azure":  # a namespace package: name the distributions by their import paths
            continue
        out.update(normalized(d) for d in dists[name])
    for path in PACKAGE.rglob("*.py"):
        for m in re.finditer(r"^\s*(?:from|import) azure\.(\w+)(?:\.(\w+))?", path.read_text(), re.M):
            first, second = m.group(1), m.group(2)
            # azure.mgmt.x / azure.storage.x are azure-mgmt-x / azure-storage-x; azure.x.* is azure-x.
            name = f"{first}-{second}" if first in ("mgmt", "storage") and second else first
            # The one distribution whose name does not follow its import path.
            name = {"storage-fileshare": "storage-file-share"}.get(name, name)
            out.add("azure-" + name.replace("_", "-"))
    return out


def test_every_import_is_declared_and_every_dependency_used() -> None:
    used = imported_distributions()
    deps = declared()
    assert used - deps == set(), f"imported but not declared: {used - deps}"
    unused = deps - used - USED_INDIRECTLY
    assert unused == set(), f"declared but never imported: {unused}"


def test_base_images_are_pinned_by_digest() -> None:
    text = (REPO / "Dockerfile").read_text()
    images = re.findall(r"^ARG BASE_IMAGE=(\S+)", text, re.M)
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert images and froms == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    assert all(re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", i) for i in images), images


def test_dockerignore_admits_only_the_build_inputs() -> None:
    lines = [ln for ln in (REPO / ".dockerignore").read_text().splitlines() if ln and not ln.startswith("#")]
    assert lines[0] == "*"
    assert {ln for ln in lines if ln.startswith("!")} == {"!pyproject.toml", "!README.md", "!operator/"}
