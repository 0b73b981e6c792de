"""The dev loop's own rules: hack/lib.sh's progress lines (no silence longer than a minute, errors not
swallowed), every builder of hack/build-toolchain.sh going through it, and our Go tools' module in the
tree (hack/go.mod, go.sum) pinned to the Kubernetes version the toolchain builds."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HACK = REPO / "hack"


def bash(script: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = f"set -euo pipefail\nsource {HACK / 'lib.sh'}\nLOG_TAG=t\n{script}"
    return subprocess.run(
        ["bash", "-c", full],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent", **env},
    )


def test_a_step_says_what_it_builds_how_long_cold_takes_that_it_is_still_at_it_and_how_long_it_took() -> None:
    out = bash('run_step "the thing v1" "3 min" sleep 2.5', BATCHAI_PROGRESS_EVERY="1")
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert lines[0] == "[t] the thing v1: building (cold: about 3 min on 2 cores)"
    assert any(re.fullmatch(r"\[t\] the thing v1: still building \([12] s so far\)", line) for line in lines)
    assert re.fullmatch(r"\[t\] the thing v1: built in \d s", lines[-1]), lines


def test_a_failing_step_stops_at_its_first_error_and_fails() -> None:
    out = bash('step() { echo one; false; echo two; }\nrun_step "the thing" "1 min" step; echo after')
    assert out.returncode == 1
    assert out.stdout == "one\n"
    assert re.search(r"^\[t\] the thing: FAILED after \d+ s$", out.stderr, re.M), out.stderr


def test_the_ticker_holds_no_pipe_of_the_caller() -> None:
    started = time.monotonic()
    out = bash('x=$(run_step "the thing" "1 min" echo made); echo "got $x"')
    assert out.stdout == "got made\n"
    assert time.monotonic() - started < 10  # not the ticker's 60 s sleep


def test_a_step_whose_outputs_exist_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "built").write_text("")
    out = bash(
        f'build_step "a" "1 min" false {tmp_path}/built; build_step "b" "1 min" true {tmp_path}/missing'
    )
    assert out.returncode == 0, out.stderr
    assert "[t] a:" not in out.stderr and "[t] b: built in" in out.stderr


def test_every_toolchain_builder_goes_through_build_step() -> None:
    text = (HACK / "build-toolchain.sh").read_text()
    builders = set(re.findall(r"^(build_\w+)\(\) \{", text, re.M))
    stepped = set(re.findall(r"^build_step .*? (build_\w+)\b", text, re.M | re.S))
    assert builders and builders == stepped
    for script in ("build-kueue.sh", "build-kind.sh", "build-peer.sh"):
        assert re.search(r"^build_step ", (HACK / script).read_text(), re.M), script


def go_mod() -> str:
    return (HACK / "go.mod").read_text()


def test_our_go_tools_are_one_module_in_the_tree_with_its_sums() -> None:
    required = dict(re.findall(r"^\t(\S+) (v\S+)$", go_mod(), re.M))
    sums = (HACK / "go.sum").read_text()
    for module, version in required.items():
        assert f"{module} {version}/go.mod " in sums, module
    # The sources build against it, not against a module generated at build time.
    text = (HACK / "build-toolchain.sh").read_text()
    assert 'cd "$GO_TOOLS_SRC"' in text and "-mod=readonly" in text
    assert {p.parent.name for p in HACK.rglob("*.go")} == {
        "csi-node-plugins",
        "gpu-device-plugin-double",
        "pluginreg",
    }


def test_the_go_tools_kubernetes_modules_are_the_toolchains() -> None:
    staging = re.search(r"^KUBE_STAGING_VERSION=(\S+)$", (HACK / "versions.env").read_text(), re.M)
    assert staging
    for module in ("k8s.io/api", "k8s.io/apimachinery", "k8s.io/client-go", "k8s.io/kubelet"):
        assert re.search(rf"^\t{re.escape(module)} v{re.escape(staging.group(1))}$", go_mod(), re.M), module


def test_plugin_registration_is_written_once() -> None:
    users = [p for p in HACK.rglob("*.go") if "RegisterRegistrationServer" in p.read_text()]
    assert [p.relative_to(HACK).as_posix() for p in users] == ["pluginreg/pluginreg.go"]


def test_a_lock_is_free_as_soon_as_its_holder_is_done(tmp_path: Path) -> None:
    """The step's ticker (whose sleep outlives it by up to a minute) must not hold the holder's lock."""
    out = bash(f'lock {tmp_path}/build.lock; run_step "the thing" "1 min" true')
    assert out.returncode == 0, out.stderr
    free = subprocess.run(["flock", "-n", str(tmp_path / "build.lock"), "true"], timeout=10)
    assert free.returncode == 0


def test_durations_read_as_a_person_would_say_them() -> None:
    out = bash("for s in 0 42 60 185 3600; do duration $s; done")
    assert out.stdout.splitlines() == ["0 s", "42 s", "1 min", "3 min 5 s", "60 min"]
