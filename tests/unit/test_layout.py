"""The package's layout rules, checked from its imports and calls (like import-linter): kopf registrations
are imported by the entry point only and stay small; pure layers do no I/O and observe/ writes nothing;
both kinds sync through the one generic controller, create children only through `ensure` and build them
only in the desired step; a feature (FailedMount) lives in few modules; no import cycles."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import batchai_operator

PACKAGE = Path(batchai_operator.__file__).parent
PURE = ("api", "observe", "decide", "manifests", "launcher", "names", "vmsizes", "config", "toolkit_facts")
IO_MODULES = ("kopf", "kubernetes", "azure", "batchai_operator.kube", "batchai_operator.reconcile")


def modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        out[name] = path
    return out


def imports(name: str, path: Path) -> set[str]:
    """The modules `name` imports, absolute (relative imports resolved; `from x import y` may be x.y)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rsplit(".", 1)[0]
            mod = node.module or ""
            target = f"{base}.{mod}".rstrip(".") if node.level else mod
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {name: {i for i in imports(name, path) if i in mods} for name, path in mods.items()}


def test_only_the_entry_point_imports_kopf_registrations() -> None:
    for name, deps in graph().items():
        registrations = {d for d in deps if d.startswith("batchai_operator.handlers.")}
        if registrations and not name.startswith("batchai_operator.handlers"):
            assert name == "batchai_operator.main", f"{name} imports {registrations}"


def test_registration_modules_are_small() -> None:
    lines = sum(len(p.read_text().splitlines()) for p in (PACKAGE / "handlers").glob("*.py"))
    assert lines < 250


def test_pure_layers_do_no_io() -> None:
    for name, path in modules().items():
        layer = [*name.split("."), ""][1]
        if layer in PURE:
            io = {i for i in imports(name, path) if i.startswith(IO_MODULES)}
            assert not io, f"{name} (pure) imports {io}"


def calls(path: Path) -> list[str]:
    """The names called in a module: `f(...)` as f, `x.f(...)` as f."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            out.append(func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", ""))
    return out


def callers(name: str) -> set[str]:
    """The operator's modules that call `name` (the CLI, its own client, aside)."""
    cli = ("batchai_operator.cli",)
    return {mod for mod, path in modules().items() if not mod.startswith(cli) and name in calls(path)}


def test_observe_writes_nothing() -> None:
    """observe/ reads the indexes and the kinds' memory: it imports no client, no kopf, nothing of
    reconcile/ (which writes), and the one request it makes goes through a read-only protocol."""
    for name, path in modules().items():
        if name.startswith("batchai_operator.observe"):
            io = {i for i in imports(name, path) if i.startswith(IO_MODULES)}
            assert not io, f"{name} imports {io}"
    assert callers("secret_exists") == {"batchai_operator.observe.trainingjob"}


def test_both_kinds_sync_through_the_generic_controller() -> None:
    """One sync (reconcile/controller.py) for both kinds: only it writes status, builds children off the
    loop and holds the pass loop; each kind plugs in as a controller.Kind."""
    assert callers("write_status") == {"batchai_operator.reconcile.controller"}
    assert callers("to_thread") <= {"batchai_operator.reconcile.controller", "batchai_operator.kube"}
    assert callers("observe_transition") == {"batchai_operator.reconcile.trainingjob"}
    for kind in ("trainingjob", "cluster"):
        tree = ast.parse((PACKAGE / "reconcile" / f"{kind}.py").read_text())
        bases = [ast.unparse(b) for n in ast.walk(tree) if isinstance(n, ast.ClassDef) for b in n.bases]
        assert any(b.startswith("controller.Kind[") for b in bases), f"reconcile/{kind}.py defines no Kind"
        assert "MAX_PASSES" not in (PACKAGE / "reconcile" / f"{kind}.py").read_text()


def test_children_are_created_through_ensure_and_built_in_the_desired_step() -> None:
    """A child is created only by reconcile/children.py's ensure (create / adopt if ours / refuse), and
    built only in a kind's desired step (run by the controller), never in decide/ or during apply."""
    assert callers("create") == {"batchai_operator.reconcile.children"}
    assert callers("ensure") == {
        "batchai_operator.reconcile.trainingjob",
        "batchai_operator.reconcile.cluster",
    }
    assert callers("build_children") == {"batchai_operator.reconcile.trainingjob"}
    assert callers("build_setup_daemonset") == {"batchai_operator.reconcile.cluster"}


def test_the_failed_mount_feature_lives_in_two_modules_of_decide_and_one_of_reconcile() -> None:
    """What a newcomer visits to trace a FailedMount: decide/failures.py (which Events count, the
    threshold, codes, texts, redaction), decide/trainingjob.py (when it fails the job), and
    reconcile/trainingjob.py (the watch and its handler); observe/ only carries it from memory."""
    mentions = {
        name
        for name, path in modules().items()
        if re.search(r"FailedMount|failed_mount|mount_failure", path.read_text())
        and name.startswith(("batchai_operator.decide", "batchai_operator.reconcile"))
    }
    assert mentions == {
        "batchai_operator.decide.failures",
        "batchai_operator.decide.trainingjob",
        "batchai_operator.reconcile.trainingjob",
    }


def test_toolkit_facts_have_one_home() -> None:
    """The launcher, the builders and the decision read the toolkits' facts from toolkit_facts.py."""
    for fact in ("needs_ssh", "process_count", "decided_by_node_zero", "runs_from_node_zero"):
        defined = {
            name
            for name, path in modules().items()
            if any(
                isinstance(n, ast.FunctionDef) and n.name == fact
                for n in ast.walk(ast.parse(path.read_text()))
            )
        }
        assert defined == {"batchai_operator.toolkit_facts"}, (fact, defined)


def test_only_the_cli_imports_the_cli() -> None:
    """The converters live under cli/convert/; storage/ and the operator import nothing of cli/."""
    for name, path in modules().items():
        if not name.startswith("batchai_operator.cli"):
            cli = {i for i in imports(name, path) if i.startswith("batchai_operator.cli")}
            assert not cli, f"{name} imports {cli}"


DESIGN = PACKAGE.parents[1] / "docs" / "design.md"
SHAPE = ("observe", "decide", "reconcile")  # the layers a newcomer traces a feature through


def design_layout() -> dict[str, set[str]]:
    """The package layout docs/design.md draws (its "Layers" block): directory -> the names it gives
    there (modules as x.py, subdirectories as x/); "" is the package root."""
    text = DESIGN.read_text()
    block = text[text.index("## Layers") :].split("```")[1]
    named: dict[str, set[str]] = {}
    current = ""
    for line in block.splitlines()[2:]:
        head = re.match(r"  (\w+)(/|\.py)\s", line)
        if head:
            current = head.group(1) if head.group(2) == "/" else ""
        for token in re.findall(r"\b(\w+(?:\.py\b|/(?!\w)))", line):
            named.setdefault(current, set()).add(token)
    return named


def test_the_design_page_draws_the_package_as_it_is() -> None:
    """Every module and directory docs/design.md names exists, and it names every module of observe/,
    decide/ and reconcile/, so the page cannot drift from the shape it describes."""
    named = design_layout()
    for directory, names in named.items():
        for token in names:
            here = PACKAGE / directory / token
            assert here.exists() or (PACKAGE / token).exists(), f"design.md names {directory}/{token}"
    for layer in SHAPE:
        present = {p.name for p in (PACKAGE / layer).glob("*.py")} - {"__init__.py"}
        missing = present - named.get(layer, set())
        assert not missing, f"docs/design.md's layout does not name {layer}/{sorted(missing)}"


def test_no_import_cycles() -> None:
    g = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(g[node]):
            if dep == node or dep in (node.rsplit(".", 1)[0],):
                continue  # a package importing its own module, or a module its package
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*path, node, dep]))
            if dep not in state:
                visit(dep, [*path, node])
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [])


def test_test_modules_have_unique_basenames() -> None:
    # pytest's default import mode puts each test directory on sys.path, so two test_x.py files in
    # package-less directories collide at collection (CI failed once on test_metrics.py).
    tests = Path(__file__).parents[1]
    seen: dict[str, Path] = {}
    for path in sorted(tests.rglob("test_*.py")):
        if (path.parent / "__init__.py").exists():
            continue
        assert path.name not in seen, f"{path} and {seen[path.name]} share a basename"
        seen[path.name] = path


def test_the_operator_starts_without_the_azure_sdk() -> None:
    """Only ARM scaling and the CLI use the Azure SDK; the running operator imports it when it scales."""
    code = "import sys, batchai_operator.main; print(sorted(m for m in sys.modules if m.startswith('azure')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
