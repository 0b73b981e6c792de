"""Azure VM sizes: the instance-type label value, GPUs per VM, and which sizes Azure has retired.

The current GPU sizes are the ones AKS node pools can use today (Azure's GPU size pages, NC, ND and NV
families); the retired ones are the sizes Batch AI users ran (NC, NCv2, NCv3, ND, NV, NVv3), still in the
table so that an old cluster.json keeps working on nodes that carry those labels, with one warning naming
the retirement and today's nearest size (docs/migration.md, "VM sizes").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Retirement:
    """A VM series Azure has retired: AKS can no longer create its nodes."""

    series: str  # Azure's series name and GPU, e.g. "NCv3 (NVIDIA V100)"
    retired_on: str  # the date Azure retired it (ISO)
    successor: str  # today's nearest size with the same GPU count, from Azure's migration guides


_NC = ("NC (NVIDIA K80)", "2023-08-31")
_NCV2 = ("NCv2 (NVIDIA P100)", "2023-08-31")
_ND = ("ND (NVIDIA P40)", "2023-08-31")
_NV = ("NV (NVIDIA M60)", "2023-09-06")
_NCV3 = ("NCv3 (NVIDIA V100)", "2025-09-30")
_NVV3 = ("NVv3 (NVIDIA M60)", "2026-09-30")

# (size, GPUs per VM, retirement: (series, date, successor) or None). Successors follow Azure's migration
# guides (NC, NCv2, ND -> NCasT4_v3 / NC_A100_v4; NCv3 -> NCads_H100_v5; NV, NVv3 -> NVadsA10_v5), with
# the same GPU count where Azure offers one: NCads_H100_v5 stops at 2 GPUs, so 4-GPU NCv3 sizes map to
# NC96ads_A100_v4, and 4-GPU NV sizes to NC64as_T4_v3.
_SIZES: list[tuple[str, int, tuple[tuple[str, str], str] | None]] = [
    # current GPU sizes
    ("Standard_NC4as_T4_v3", 1, None), ("Standard_NC8as_T4_v3", 1, None),
    ("Standard_NC16as_T4_v3", 1, None), ("Standard_NC64as_T4_v3", 4, None),
    ("Standard_NC24ads_A100_v4", 1, None), ("Standard_NC48ads_A100_v4", 2, None),
    ("Standard_NC96ads_A100_v4", 4, None),
    ("Standard_NC40ads_H100_v5", 1, None), ("Standard_NC80adis_H100_v5", 2, None),
    ("Standard_NCC40ads_H100_v5", 1, None),
    # NVadsA10_v5: NV6/NV12/NV18 get 1/6, 1/3 and 1/2 of an A10, which the VM sees as one GPU.
    ("Standard_NV6ads_A10_v5", 1, None), ("Standard_NV12ads_A10_v5", 1, None),
    ("Standard_NV18ads_A10_v5", 1, None), ("Standard_NV36ads_A10_v5", 1, None),
    ("Standard_NV36adms_A10_v5", 1, None), ("Standard_NV72ads_A10_v5", 2, None),
    ("Standard_ND40rs_v2", 8, None), ("Standard_ND96asr_v4", 8, None),
    ("Standard_ND96amsr_A100_v4", 8, None), ("Standard_ND96isr_H100_v5", 8, None),
    ("Standard_ND96isr_H200_v5", 8, None),
    # retired sizes Batch AI users ran
    ("Standard_NC6", 1, (_NC, "Standard_NC4as_T4_v3")),
    ("Standard_NC12", 2, (_NC, "Standard_NC16as_T4_v3")),
    ("Standard_NC24", 4, (_NC, "Standard_NC64as_T4_v3")),
    ("Standard_NC24r", 4, (_NC, "Standard_NC64as_T4_v3")),
    ("Standard_NC6s_v2", 1, (_NCV2, "Standard_NC24ads_A100_v4")),
    ("Standard_NC12s_v2", 2, (_NCV2, "Standard_NC48ads_A100_v4")),
    ("Standard_NC24s_v2", 4, (_NCV2, "Standard_NC96ads_A100_v4")),
    ("Standard_NC24rs_v2", 4, (_NCV2, "Standard_NC96ads_A100_v4")),
    ("Standard_NC6s_v3", 1, (_NCV3, "Standard_NC40ads_H100_v5")),
    ("Standard_NC12s_v3", 2, (_NCV3, "Standard_NC80adis_H100_v5")),
    ("Standard_NC24s_v3", 4, (_NCV3, "Standard_NC96ads_A100_v4")),
    ("Standard_NC24rs_v3", 4, (_NCV3, "Standard_NC96ads_A100_v4")),
    ("Standard_ND6s", 1, (_ND, "Standard_NC4as_T4_v3")),
    ("Standard_ND12s", 2, (_ND, "Standard_NC16as_T4_v3")),
    ("Standard_ND24s", 4, (_ND, "Standard_NC64as_T4_v3")),
    ("Standard_ND24rs", 4, (_ND, "Standard_ND96amsr_A100_v4")),
    ("Standard_NV6", 1, (_NV, "Standard_NV36ads_A10_v5")),
    ("Standard_NV12", 2, (_NV, "Standard_NV72ads_A10_v5")),
    ("Standard_NV24", 4, (_NV, "Standard_NC64as_T4_v3")),
    ("Standard_NV12s_v3", 1, (_NVV3, "Standard_NV36ads_A10_v5")),
    ("Standard_NV24s_v3", 2, (_NVV3, "Standard_NV72ads_A10_v5")),
    ("Standard_NV48s_v3", 4, (_NVV3, "Standard_NC64as_T4_v3")),
    # CPU sizes
    ("Standard_D2s_v3", 0, None), ("Standard_D4s_v3", 0, None), ("Standard_D8s_v3", 0, None),
    ("Standard_D16s_v3", 0, None),
]  # fmt: skip

# Keys are lowercase; values are (canonical label value of node.kubernetes.io/instance-type, GPU count).
VM_SIZES: dict[str, tuple[str, int]] = {name.lower(): (name, gpus) for name, gpus, _ in _SIZES}
RETIRED: dict[str, Retirement] = {
    name.lower(): Retirement(series, date, successor)
    for name, _, retired in _SIZES
    if retired is not None
    for (series, date), successor in [retired]
}


def vm_size_info(vm_size: str) -> tuple[str, int | None]:
    """(instance-type label value, GPUs per node or None when the size is unknown)."""
    known = VM_SIZES.get(vm_size.lower())
    if known:
        return known
    return vm_size, None


def retirement_warning(vm_size: str) -> str | None:
    """One line for a size Azure has retired (AKS cannot create such nodes any more), naming today's
    nearest size; None for a size that is not retired (or unknown)."""
    retired = RETIRED.get(vm_size.lower())
    if retired is None:
        return None
    name, gpus = VM_SIZES[vm_size.lower()]
    successor, successor_gpus = VM_SIZES[retired.successor.lower()]
    return (
        f"vmSize {name} ({gpus} GPU{'s' if gpus != 1 else ''}) is of the {retired.series} series, which "
        f"Azure retired on {retired.retired_on}: AKS cannot create such nodes any more. The cluster selects "
        f"nodes labelled {name} where they still exist; today's nearest size is {successor} "
        f"({successor_gpus} GPU{'s' if successor_gpus != 1 else ''})"
    )
