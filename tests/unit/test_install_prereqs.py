"""hack/install-prereqs.sh, run for real with stand-in `id`, `apt-get`, `go` and `python3` executables on
PATH and small lists of its own (BATCHAI_PREREQS): it fails in the first seconds with the exact command to
run where it cannot install, installs missing Debian packages as root, and hack/prereqs.txt is well formed
for every make target."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "hack" / "install-prereqs.sh"
LIST = REPO / "hack" / "prereqs.txt"
MAKEFILE = REPO / "Makefile"
TARGETS = [
    "unit",
    "lint",
    "devcluster",
    "images",
    "integration",
    "bench",
    "chaos",
    "e2e",
    "demo",
    "quickstart",
    "test",
    "ci",
]
CHECK_KINDS = (
    "cmd:",
    "file:",
    "dpkg:",
    "python-module:",
    "python>=",
    "go>=go.mod",
    "node>=",
    "root",
    "disk>=",
)


def versions() -> dict[str, str]:
    lines = (REPO / "hack" / "versions.env").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return dict(pairs)


class Machine:
    """A PATH of stand-ins in front of the system's tools, and what they were asked."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.bin = tmp / "bin"
        self.bin.mkdir()
        self.calls = tmp / "calls"
        self.stub("id", 'if [ "$1" = -u ]; then echo 1000; else exec /usr/bin/id "$@"; fi')

    def stub(self, name: str, body: str) -> None:
        exe = self.bin / name
        exe.write_text(f'#!/bin/bash\necho "{name} $*" >>"{self.calls}"\n{body}\n')
        exe.chmod(0o755)

    def as_root(self) -> None:
        self.stub("id", 'if [ "$1" = -u ]; then echo 0; else exec /usr/bin/id "$@"; fi')

    def run(self, prereqs: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        lst = self.tmp / "prereqs.txt"
        lst.write_text(prereqs)
        full = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "HOME": str(self.tmp),
            "BATCHAI_PREREQS": str(lst),
            "BATCHAI_CACHE": str(self.tmp / "cache"),
            **env,
        }
        return subprocess.run([str(SCRIPT), *args], env=full, capture_output=True, text=True, timeout=60)

    def asked(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def test_not_root_fails_at_once_with_the_apt_command(machine: Machine) -> None:
    started = time.monotonic()
    out = machine.run(
        "python | cmd:batchai-no-such-tool | batchai-pkg-a | a tool |\n"
        "python | cmd:batchai-no-such-other | batchai-pkg-b | another |\n"
        "python | cmd:bash | bash | the shell |\n",
        "unit",
    )
    assert out.returncode == 1
    assert time.monotonic() - started < 10
    assert "sudo apt-get install -y --no-install-recommends batchai-pkg-a batchai-pkg-b" in out.stderr
    assert "bash" not in out.stderr.split("Run:")[-1]  # only what is missing
    assert not [c for c in machine.asked() if c.startswith("apt-get")]


def test_as_root_installs_the_missing_packages_then_checks_again(machine: Machine) -> None:
    machine.as_root()
    # apt-get "installs" the package: it puts the tool on PATH.
    tool = machine.bin / "batchai-new-tool"
    machine.stub(
        "apt-get",
        f'if [ "$2" = install ] || [ "$1" = install ]; then printf "#!/bin/sh\\n" >"{tool}"; '
        f'chmod +x "{tool}"; fi',
    )
    out = machine.run("python | cmd:batchai-new-tool | batchai-new-pkg | a tool |\n", "unit")
    assert out.returncode == 0, out.stderr
    assert "apt-get -qq update" in machine.asked()
    assert "apt-get -qq install -y --no-install-recommends batchai-new-pkg" in machine.asked()
    assert "Debian packages batchai-new-pkg: installed in" in out.stderr
    assert "unit: all 1 prerequisites present" in out.stderr


def test_a_package_that_does_not_provide_the_tool_is_reported(machine: Machine) -> None:
    machine.as_root()
    machine.stub("apt-get", "true")
    out = machine.run("python | cmd:batchai-never-there | batchai-empty-pkg | a tool |\n", "unit")
    assert out.returncode == 1
    assert "no batchai-never-there on PATH, after installing batchai-empty-pkg (a tool)" in out.stderr


def test_check_only_installs_nothing(machine: Machine) -> None:
    machine.as_root()
    machine.stub("apt-get", "true")
    out = machine.run("python | cmd:batchai-no-such-tool | batchai-pkg | a tool |\n", "--check", "unit")
    assert out.returncode == 1
    assert "Run: apt-get install -y --no-install-recommends batchai-pkg" in out.stderr
    assert not [c for c in machine.asked() if c.startswith("apt-get")]


def test_what_apt_cannot_install_stops_with_its_command_and_nothing_is_installed(machine: Machine) -> None:
    machine.as_root()
    machine.stub("apt-get", "true")
    machine.stub("go", "echo go1.20.3")
    machine.stub("python3", "echo 3.9.2")
    out = machine.run(
        "lint | go>=go.mod | - | the toolchain | curl https://go.dev/dl/go$GO_VERSION.linux-$GO_ARCH.tar.gz\n"
        "python | python>=3.11 | - | the operator | pyenv install 3.11\n"
        "python | cmd:batchai-no-such-tool | batchai-pkg | a tool |\n",
        "lint",
    )
    assert out.returncode == 1
    go_mod = (REPO / "hack" / "go.mod").read_text()
    minimum = re.search(r"^go (\S+)$", go_mod, re.M).group(1)  # type: ignore[union-attr]
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    go_fix = f"Run: curl https://go.dev/dl/go{versions()['GO_VERSION']}.linux-{arch}.tar.gz"
    assert f"go is 1.20.3, older than {minimum} (hack/go.mod) (the toolchain). {go_fix}" in out.stderr
    assert "python3 is 3.9.2, older than 3.11 (the operator). Run: pyenv install 3.11" in out.stderr
    assert "missing Debian packages batchai-pkg. Run: apt-get install" in out.stderr
    assert not [c for c in machine.asked() if c.startswith("apt-get")]  # the user must act anyway


def test_no_go_and_not_root_are_named(machine: Machine) -> None:
    out = machine.run(
        "go | go>=go.mod | - | the toolchain | ${SUDO}tar -C /usr/local -xz go$GO_VERSION\n"
        "nodes | root | - | real nodes | sudo $COMMAND\n",
        "demo",
        GOROOT=str(machine.tmp / "no-go"),  # not /usr/local/go either
    )
    assert out.returncode == 1
    go_fix = f"Run: sudo tar -C /usr/local -xz go{versions()['GO_VERSION']}"
    assert f"no go on PATH or in {machine.tmp}/no-go/bin (the toolchain). {go_fix}" in out.stderr
    assert "not root (real nodes). Run: sudo make demo" in out.stderr


def test_file_checks_expand_home_and_the_pinned_versions(machine: Machine) -> None:
    there = machine.tmp / "versions" / versions()["GO_VERSION"] / "python"
    there.parent.mkdir(parents=True)
    there.write_text("")
    out = machine.run("python | file:~/versions/$GO_VERSION/python | - | an interpreter | make one\n", "unit")
    assert out.returncode == 0, out.stderr
    out = machine.run("python | file:~/versions/${KUBE_VERSION}/python | - | a python | make one\n", "unit")
    assert f"no {machine.tmp}/versions/{versions()['KUBE_VERSION']}/python (a python)" in out.stderr


def test_the_real_list_for_unit_passes_here() -> None:
    """What `make unit` checks is what this tier itself needs: true wherever the unit tests run."""
    env = {**os.environ, "PYTHON": str(REPO / ".venv" / "bin" / "python")}
    out = subprocess.run(
        [str(SCRIPT), "--check", "unit"], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "unit: all 3 prerequisites present" in out.stderr


def list_lines() -> list[list[str]]:
    rows = []
    for line in LIST.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            group, check, package, why, fix = (f.strip() for f in line.split("|", 4))
            rows.append([group, check, package, why, fix])
    return rows


def test_every_line_of_the_list_is_well_formed() -> None:
    for _group, check, package, why, fix in list_lines():
        assert check.startswith(CHECK_KINDS), check
        assert why, check
        assert package != "-" or fix, f"{check}: without a Debian package, the line must say what fixes it"


def groups_of(target: str) -> set[str]:
    text = SCRIPT.read_text()
    (body,) = re.findall(r"groups_of\(\) \{\n  case \$1 in\n(.*?)\n  esac", text, re.S)
    for line in body.splitlines():
        names, _, groups = line.strip().partition(") echo ")
        if target in [n.strip() for n in names.split("|")]:
            return set(groups.rstrip(" ;").replace('"$(real_nodes)"', "nodes azurite").split())
    raise AssertionError(f"no groups for {target}")


def test_every_group_is_needed_by_some_target_and_every_target_is_known() -> None:
    used = set().union(*(groups_of(t) for t in TARGETS))
    assert {row[0] for row in list_lines()} == used
    assert groups_of("test") == groups_of("ci")  # CI checks what make test needs
    make_targets = set(re.findall(r"prereqs-([a-z0-9]+)", MAKEFILE.read_text()))
    assert make_targets <= set(TARGETS), make_targets - set(TARGETS)
    out = subprocess.run([str(SCRIPT), "--check", "--quiet", *TARGETS], capture_output=True, text=True)
    assert "unknown" not in out.stderr, out.stderr


def test_make_unit_needs_no_go_root_or_sshd() -> None:
    assert groups_of("unit") == {"python"}
    python = [row for row in list_lines() if row[0] == "python"]
    assert not [r for r in python if r[1] in ("root", "go>=go.mod", "file:/usr/sbin/sshd")]
    unit_rule = re.search(r"^unit: (.*)$", MAKEFILE.read_text(), re.M)
    assert unit_rule and unit_rule.group(1).split() == ["prereqs-unit", "venv"]
