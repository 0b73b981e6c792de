"""Docs that cannot rot: every relative link (and #anchor) in README.md and docs/ resolves, every
`kubectl batchai` verb they show answers `--help` (the verbs are read from the docs' text, so a verb the
docs name that the CLI lacks fails here), and the VM size tables say what vmsizes.py says."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

from batchai_operator.cli.main import build_parser
from batchai_operator.vmsizes import RETIRED, VM_SIZES

REPO = Path(__file__).resolve().parents[2]
PAGES = sorted([REPO / "README.md", *(REPO / "docs").rglob("*.md")])
FENCE = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*$", re.MULTILINE)
VERB = re.compile(r"kubectl[ -]batchai((?:[ ]+[a-z][a-z0-9-]*)*)")
# docs/cli.md's table of az commands: its first column is the az form without `az batchai`.
AZ_ROW = re.compile(r"^\| `(?!az )((?:[a-z][a-z0-9-]*)(?:[ ]+[a-z][a-z0-9-]*)*)", re.MULTILINE)


def prose(page: Path) -> str:
    """The page without its fenced code blocks (links there are text)."""
    return FENCE.sub("", page.read_text())


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


@cache
def anchors(page: Path) -> set[str]:
    return {slug(h) for h in HEADING.findall(prose(page))}


def links() -> list[tuple[Path, str]]:
    return [(page, target) for page in PAGES for target in LINK.findall(prose(page))]


def test_the_docs_pages_exist_and_link_to_each_other() -> None:
    names = {p.relative_to(REPO).as_posix() for p in PAGES}
    for page in ("aks", "migration", "design", "dev-cluster", "security", "operations", "performance"):
        assert f"docs/{page}.md" in names
    assert len(links()) > 40


@pytest.mark.parametrize(("page", "target"), links(), ids=lambda v: v if isinstance(v, str) else v.name)
def test_relative_link_resolves(page: Path, target: str) -> None:
    if re.match(r"^[a-z]+:", target):
        return  # https:, mailto:: outside the repository
    path_part, _, anchor = target.partition("#")
    resolved = (page.parent / path_part).resolve() if path_part else page
    assert resolved.exists(), f"{page.relative_to(REPO)} links to {target}: no such file"
    assert REPO in resolved.parents or resolved == REPO, f"{target} leaves the repository"
    if anchor and resolved.suffix == ".md":
        assert anchor in anchors(resolved), f"{page.relative_to(REPO)}: no heading #{anchor} in {path_part}"


def test_slugs_follow_githubs_rule() -> None:
    assert slug("Paths, hosts and temp directories") == "paths-hosts-and-temp-directories"
    assert slug("cluster.json") == "clusterjson"
    assert slug("Install `kubectl batchai`") == "install-kubectl-batchai"


def verb_paths() -> set[tuple[str, ...]]:
    """Each `kubectl batchai <group> <verb> ...` of the docs (and each az form in docs/cli.md's table), as
    the parser's path of subcommands. A word after `kubectl batchai` that is no group, or after a group
    that is no verb of it, fails."""
    cli_md = REPO / "docs" / "cli.md"
    shown = [(page, m.group(1)) for page in PAGES for m in VERB.finditer(page.read_text())]
    shown += [(cli_md, m.group(1)) for m in AZ_ROW.finditer(cli_md.read_text())]
    paths: set[tuple[str, ...]] = set()
    for page, words in shown:
        parser, path = build_parser(), []
        for word in words.split():
            sub = next((a for a in parser._actions if a.choices and isinstance(a.choices, dict)), None)
            if sub is None:
                break  # a verb's arguments follow
            assert sub.choices is not None and word in sub.choices, (
                f"{page.relative_to(REPO)} shows `kubectl batchai {words.strip()}`: "
                f"{word!r} is not a command of `kubectl batchai {' '.join(path)}`"
            )
            parser = sub.choices[word]
            path.append(word)
        paths.add(tuple(path))
    return paths


def test_the_docs_show_the_verbs_users_need() -> None:
    paths = verb_paths()
    for verb in [("job", "create"), ("job", "file", "stream"), ("job", "wait"), ("cluster", "create")]:
        assert verb in paths
    assert len(paths) >= 30  # the 32 az batchai verbs, less those that share a path


@pytest.mark.parametrize("path", sorted(verb_paths()), ids=" ".join)
def test_every_verb_the_docs_show_answers_help(path: tuple[str, ...]) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "batchai_operator.cli.main", *path, "--help"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f"usage: kubectl-batchai {' '.join(path)}".rstrip()), out.stdout


def test_the_retired_sizes_table_says_what_vmsizes_says() -> None:
    rows = [
        line for line in (REPO / "docs" / "migration.md").read_text().splitlines() if line.startswith("| `")
    ]
    for size, retired in RETIRED.items():
        name, _ = VM_SIZES[size]
        (row,) = [r for r in rows if f"`{name}`" in r.split("|")[1]]
        successor, successor_gpus = VM_SIZES[retired.successor.lower()]
        assert retired.retired_on in row and retired.series in row, row
        assert f"`{successor}` ({successor_gpus})" in row, row


# ---- the project cites only its own documents ------------------------------------------------------

CITING = ["operator", "tests", "hack", "charts", "bench", "examples", "images", "crds", "docs"]
TOP_FILES = ["README.md", "Makefile", "Dockerfile", "pyproject.toml", "kind-config.yaml"]
SKIP_PARTS = {".venv", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+")
DOC_NAME = re.compile(r"(?<![\w./\"'-])([\w./-]*[\w-]\.md)\b(?![\"'])")  # not a quoted path part
# A section named after a document: `README, "Install on AKS"`, `tests/k8s/README.md, "Real nodes"`.
SECTION = re.compile(r"\b(README(?:\.md)?|[\w./-]+\.md)\b[,(: ]{1,3}\"([A-Z][^\"\n]{2,59})\"")
# Marks of documents outside the repository: their section numbers, the reviews, the shared folder.
FOREIGN = re.compile(r"§|\breviews/|shared/docs|batchai-reference|\bdesign\.md §")


def citing_files() -> list[Path]:
    files = [REPO / name for name in TOP_FILES]
    for top in CITING:
        for path in sorted((REPO / top).rglob("*")):
            parts = set(path.relative_to(REPO).parts)
            if path.is_file() and not parts & SKIP_PARTS and not any(p.endswith(".egg-info") for p in parts):
                files.append(path)
    files.remove(Path(__file__).resolve())  # this file names the marks it looks for
    return files


def citations(path: Path) -> list[tuple[int, str]]:
    """(line, problem) for each document `path` names that is not in the repository."""
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        return []  # binary
    problems = []
    for number, line in enumerate(text.splitlines(), 1):
        line = URL.sub("", line)
        if FOREIGN.search(line):
            problems.append((number, line.strip()))
            continue
        for name in DOC_NAME.findall(line):
            if not ((path.parent / name).exists() or (REPO / name).exists()):
                problems.append((number, f"{name}: {line.strip()}"))
        for name, section in SECTION.findall(line):
            name = name if name.endswith(".md") else f"{name}.md"
            doc = next((d for d in (path.parent / name, REPO / name) if d.exists()), None)
            if doc is not None and slug(section) not in anchors(doc):
                problems.append((number, f'{name} has no section "{section}": {line.strip()}'))
    return problems


def test_nothing_cites_a_document_outside_the_repository() -> None:
    files = citing_files()
    assert len(files) > 200 and REPO / "operator" / "batchai_operator" / "vmsizes.py" in files
    found = [f"{p.relative_to(REPO)}:{n}: {what}" for p in files for n, what in citations(p)]
    assert found == [], "cite docs/ pages of this repository instead:\n" + "\n".join(found)


def test_a_foreign_citation_is_found(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        '"""Paths (design.md §2)."""\n# see reviews/x.md\n# docs/nowhere.md\n# https://x/y.md\n'
    )
    assert [n for n, _ in citations(module)] == [1, 2, 3]
