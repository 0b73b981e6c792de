"""Azure VM sizes Batch AI users ran (and their successors): the instance-type label value and GPUs per VM."""

from __future__ import annotations

# Keys are lowercase; values are (canonical label value of node.kubernetes.io/instance-type, GPU count).
VM_SIZES: dict[str, tuple[str, int]] = {
    name.lower(): (name, gpus)
    for name, gpus in [
        ("Standard_NC6", 1), ("Standard_NC12", 2), ("Standard_NC24", 4), ("Standard_NC24r", 4),
        ("Standard_NC6s_v2", 1), ("Standard_NC12s_v2", 2), ("Standard_NC24s_v2", 4),
        ("Standard_NC24rs_v2", 4), ("Standard_NC6s_v3", 1), ("Standard_NC12s_v3", 2),
        ("Standard_NC24s_v3", 4), ("Standard_NC24rs_v3", 4),
        ("Standard_ND6s", 1), ("Standard_ND12s", 2), ("Standard_ND24s", 4), ("Standard_ND24rs", 4),
        ("Standard_NV6", 1), ("Standard_NV12", 2), ("Standard_NV24", 4),
        ("Standard_NC4as_T4_v3", 1), ("Standard_NC8as_T4_v3", 1), ("Standard_NC16as_T4_v3", 1),
        ("Standard_NC64as_T4_v3", 4), ("Standard_NC24ads_A100_v4", 1), ("Standard_NC48ads_A100_v4", 2),
        ("Standard_NC96ads_A100_v4", 4), ("Standard_ND96asr_v4", 8), ("Standard_ND96amsr_A100_v4", 8),
        ("Standard_ND96isr_H100_v5", 8),
        ("Standard_D2s_v3", 0), ("Standard_D4s_v3", 0), ("Standard_D8s_v3", 0), ("Standard_D16s_v3", 0),
    ]
}  # fmt: skip


def vm_size_info(vm_size: str) -> tuple[str, int | None]:
    """(instance-type label value, GPUs per node or None when the size is unknown)."""
    known = VM_SIZES.get(vm_size.lower())
    if known:
        return known
    return vm_size, None
