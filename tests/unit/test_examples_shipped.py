"""No example ships that the project would refuse or that names what no longer exists: every example
values file sets only values the chart has (the chart's schema still accepts the removed
jobs.allowPrivilegedMounts, to fail with its migration message), and every example cluster names a VM
size the operator knows and Azure has not retired. (The chart's own checks of the same files, helm lint
and its admission policy, run in tests/integration/test_aks_guide.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchai_operator.vmsizes import retirement_warning, vm_size_info

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
CHART_VALUES = yaml.safe_load((REPO / "charts" / "batchai-operator" / "values.yaml").read_text())


def unknown_keys(values: dict[str, Any], chart: dict[str, Any], path: str = "") -> list[str]:
    """Keys of `values` the chart's values.yaml does not have. Below a map the chart leaves empty
    (allow.agentPools, nodeSelector, ...) any key is the user's own."""
    out = []
    for key, value in values.items():
        if key not in chart:
            out.append(f"{path}{key}")
        elif isinstance(value, dict) and isinstance(chart[key], dict) and chart[key]:
            out += unknown_keys(value, chart[key], f"{path}{key}.")
    return out


def test_unknown_keys_are_found() -> None:
    assert unknown_keys({"jobs": {"allowPrivilegedMounts": False, "maxShmSize": "1Gi"}}, CHART_VALUES) == [
        "jobs.allowPrivilegedMounts"
    ]
    assert (
        unknown_keys({"allow": {"agentPools": {"team-a": []}}, "nodeSelector": {"a": "b"}}, CHART_VALUES)
        == []
    )


@pytest.mark.parametrize(
    "path", sorted(EXAMPLES.rglob("values.yaml")), ids=lambda p: str(p.relative_to(REPO))
)
def test_example_values_set_only_values_the_chart_has(path: Path) -> None:
    assert unknown_keys(yaml.safe_load(path.read_text()), CHART_VALUES) == []


def clusters() -> list[tuple[Path, dict[str, Any]]]:
    out = []
    for path in sorted(EXAMPLES.rglob("cluster.yaml")):
        out += [(path, doc["spec"]) for doc in yaml.safe_load_all(path.read_text()) if doc]
    for path in sorted(EXAMPLES.rglob("cluster.json")):
        out.append((path, json.loads(path.read_text())["properties"]))
    return out


def test_every_example_cluster_names_a_current_vm_size() -> None:
    found = clusters()
    assert len(found) >= 8
    for path, spec in found:
        name, gpus = vm_size_info(spec["vmSize"])
        assert gpus, f"{path.relative_to(REPO)}: {spec['vmSize']} is no GPU size the operator knows"
        assert retirement_warning(name) is None, f"{path.relative_to(REPO)}: {retirement_warning(name)}"


def test_the_cntk_script_is_python_3_5() -> None:
    """The CNTK example runs on the default cntk image's Python 3.5 (docs/migration.md) as well as the dev
    image's 3.6: its syntax is checked at 3.5 (an f-string or a variable annotation fails here)."""
    import ast

    script = EXAMPLES / "cntk-mnist" / "ConvNet_MNIST.py"
    ast.parse(script.read_text(), filename=str(script), feature_version=(3, 5))
    with pytest.raises(SyntaxError):
        ast.parse('x = f"{1}"', feature_version=(3, 5))
