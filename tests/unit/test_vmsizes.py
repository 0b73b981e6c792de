"""VM sizes: today's GPU sizes with their GPU counts, and one warning for a size Azure has retired, from
the pure function, the cluster.json converter and the BatchAICluster status alike."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from batchai_operator.api.cluster import BatchAIClusterSpec, BatchAIClusterStatus
from batchai_operator.cli.convert.cluster import ClusterOptions, convert_cluster_file
from batchai_operator.decide.cluster_status import ClusterStatusInput, compute_cluster_status
from batchai_operator.names import EVENT_RETIRED_VM_SIZE
from batchai_operator.vmsizes import RETIRED, VM_SIZES, retirement_warning, vm_size_info

NOW = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("size", "gpus"),
    [
        ("Standard_NC4as_T4_v3", 1),
        ("Standard_NC64as_T4_v3", 4),
        ("Standard_NC24ads_A100_v4", 1),
        ("Standard_NC96ads_A100_v4", 4),
        ("Standard_NC40ads_H100_v5", 1),
        ("Standard_NC80adis_H100_v5", 2),
        ("Standard_ND96isr_H100_v5", 8),
        ("Standard_ND96asr_v4", 8),
        ("Standard_NV36ads_A10_v5", 1),
        ("Standard_NV72ads_A10_v5", 2),
    ],
)
def test_current_gpu_sizes_have_their_gpu_counts_and_no_warning(size: str, gpus: int) -> None:
    assert vm_size_info(size.upper()) == (size, gpus)
    assert retirement_warning(size) is None


@pytest.mark.parametrize(
    ("size", "series", "date", "successor"),
    [
        ("STANDARD_NC6", "NC (NVIDIA K80)", "2023-08-31", "Standard_NC4as_T4_v3"),
        ("Standard_NC6s_v2", "NCv2 (NVIDIA P100)", "2023-08-31", "Standard_NC24ads_A100_v4"),
        ("Standard_NC6s_v3", "NCv3 (NVIDIA V100)", "2025-09-30", "Standard_NC40ads_H100_v5"),
        ("Standard_NC24rs_v3", "NCv3 (NVIDIA V100)", "2025-09-30", "Standard_NC96ads_A100_v4"),
        ("Standard_ND24rs", "ND (NVIDIA P40)", "2023-08-31", "Standard_ND96amsr_A100_v4"),
        ("Standard_NV12s_v3", "NVv3 (NVIDIA M60)", "2026-09-30", "Standard_NV36ads_A10_v5"),
    ],
)
def test_retired_sizes_still_resolve_and_warn_naming_the_retirement_and_successor(
    size: str, series: str, date: str, successor: str
) -> None:
    name, gpus = vm_size_info(size)
    assert gpus is not None and name.lower() == size.lower()
    warning = retirement_warning(size)
    assert warning is not None
    assert f"vmSize {name} " in warning and series in warning and date in warning
    assert f"nearest size is {successor} " in warning


def test_every_successor_is_a_current_size_and_keeps_the_gpu_count_where_azure_has_one() -> None:
    for size, retired in RETIRED.items():
        assert retired.successor.lower() in VM_SIZES, size
        assert retired.successor.lower() not in RETIRED, size
        # T4 has no 2-GPU size and NCads_H100_v5 no 4-GPU one: a successor never has more GPUs than asked
        # for unless it is an 8-GPU ND size (ND24rs had InfiniBand, as ND96amsr_A100_v4 has).
        gpus, successor_gpus = VM_SIZES[size][1], VM_SIZES[retired.successor.lower()][1]
        assert successor_gpus == gpus or (gpus == 2 and successor_gpus == 1) or successor_gpus == 8, size


def test_unknown_sizes_get_no_gpu_count_and_no_warning() -> None:
    assert vm_size_info("Standard_Made_Up") == ("Standard_Made_Up", None)
    assert retirement_warning("Standard_Made_Up") is None


def test_cluster_json_with_a_retired_size_converts_with_one_warning(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    props = {"vmSize": "STANDARD_NC6", "scaleSettings": {"manual": {"targetNodeCount": 1}}}
    path.write_text(json.dumps({"properties": props}))
    result = convert_cluster_file(str(path), ClusterOptions(name="nc6"), environ={})
    assert result.obj["spec"]["vmSize"] == "STANDARD_NC6"  # still works: nodes labelled so are selected
    assert [w for w in result.warnings if "retired" in w] == [retirement_warning("STANDARD_NC6")]
    props["vmSize"] = "Standard_NC4as_T4_v3"
    path.write_text(json.dumps({"properties": props}))
    result = convert_cluster_file(str(path), ClusterOptions(name="t4"), environ={})
    assert not [w for w in result.warnings if "retired" in w]


def observed(vm_size: str, generation: int, seen: int | None) -> ClusterStatusInput:
    return ClusterStatusInput(
        spec=BatchAIClusterSpec.model_validate({"vmSize": vm_size}),
        generation=generation,
        status=BatchAIClusterStatus.model_validate({"observedGeneration": seen} if seen else {}),
    )


def test_the_cluster_status_warns_once_per_spec_generation() -> None:
    def warnings(obs: ClusterStatusInput) -> list[str]:
        events = compute_cluster_status(obs, NOW).events
        return [e.message for e in events if e.type == "Warning" and e.reason == EVENT_RETIRED_VM_SIZE]

    assert warnings(observed("Standard_NC6s_v3", 1, None)) == [retirement_warning("Standard_NC6s_v3")]
    assert warnings(observed("Standard_NC6s_v3", 1, 1)) == []  # the same spec, seen before
    assert len(warnings(observed("Standard_NC6s_v3", 2, 1))) == 1  # a spec change: said again
    assert warnings(observed("Standard_NC40ads_H100_v5", 1, None)) == []
