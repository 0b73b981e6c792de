"""kind-config.yaml, checked as far as possible without Docker: kind's own loader (strict decoding) and
validation accept it (`kind create cluster` with a Docker CLI double gets past validation and stops at
pulling the node image), and refuse a broken copy. kind is built from its Go module (hack/build-kind.sh),
so this lives in the integration tier, which has Go; the labels are checked in tests/unit/test_kind_config.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "kind-config.yaml"


@pytest.fixture(scope="module")
def kind(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = subprocess.run([str(REPO / "hack" / "build-kind.sh")], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    return Path(out.stdout.strip().splitlines()[-1]) / "kind"


def kind_create(kind: Path, config: Path, tmp: Path) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp / "bin"
    bin_dir.mkdir(exist_ok=True)
    shutil.copy(REPO / "tests" / "doubles" / "fake_docker.sh", bin_dir / "docker")
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    cmd = [str(kind), "create", "cluster", "--config", str(config), "--kubeconfig", str(tmp / "kubeconfig")]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def test_kind_loads_and_validates_the_config(kind: Path, tmp_path: Path) -> None:
    out = kind_create(kind, CONFIG, tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode != 0  # no Docker: it must stop at the node image ...
    assert "fake docker double: no container runtime here (docker pull)" in text, text
    assert 'Creating cluster "batchai"' in text, text  # ... after loading and validation passed


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("labels:", "lables:", "field lables not found in type v1alpha4.Node"),
        ("role: worker", "role: gpu", '"gpu" is not a valid node role'),
    ],
)
def test_kind_rejects_a_broken_copy(kind: Path, tmp_path: Path, old: str, new: str, error: str) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(CONFIG.read_text().replace(old, new))
    out = kind_create(kind, broken, tmp_path)
    assert out.returncode != 0 and error in out.stderr, out.stderr
    assert "Creating cluster" not in out.stdout + out.stderr
