"""The package's layout rules, checked from its imports (like import-linter): kopf registrations are
imported by the entry point only and stay small; pure layers do no I/O; no import cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import batchai_operator

PACKAGE = Path(batchai_operator.__file__).parent
PURE = ("api", "decide", "manifests", "launcher", "names", "vmsizes", "config")
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
