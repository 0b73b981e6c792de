"""The blob volumes the operator builds, pinned against the upstream Blob CSI driver's contract for inline
volumes (tests/k8s/README.md, "Real mounts"; read from blob-csi-driver v1.26.4's node server): which
attributes it reads, how it turns `mountOptions` into blobfuse2's command line, and the listing delay it
adds by default.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from test_build_job import SEED_SPEC, build

from batchai_operator.api.common import _FUSE_OPTION, AzureBlobFileSystemReference
from batchai_operator.config import OperatorConfig
from batchai_operator.manifests.volumes import (
    DEFAULT_BLOB_MOUNT_OPTIONS,
    blob_csi_mount_options,
)

# The attributes the driver reads for an inline volume (case-insensitive); anything else is ignored.
UPSTREAM_ATTRIBUTES = {
    "containername",
    "protocol",
    "server",
    "storageendpointsuffix",
    "mountoptions",
    "secretname",
    "secretnamespace",
    "storageaccount",
    "ishnsenabled",
    "clientid",
    "mountwithworkloadidentitytoken",
}
# Flags blobfuse2 takes (those the driver adds and the allowlist's); the driver adds each of its defaults
# unless an option starts with it.
UPSTREAM_DEFAULTS = {
    "--pre-mount-validate": "true",
    "--use-https": "true",
    "--tmp-path": "/mnt/VOLUME",
    "--container-name": "CONTAINER",
    "--cancel-list-on-mount-seconds": "10",
    "--empty-dir-check": "false",
    "--disable-version-check": "true",
}
BLOBFUSE2_FLAG = re.compile(r"--[a-z-]+(=[^\s,]+)?")


def upstream_blobfuse2_argv(mount_options: str) -> list[str]:
    """blobfuse2's argv from the driver: the attribute split on commas, the defaults not given appended,
    joined with spaces and split again on spaces."""
    options = mount_options.split(",")
    for flag, value in UPSTREAM_DEFAULTS.items():
        if not any(o.startswith(flag) for o in options):
            options.append(f"{flag}={value}")
    return ["mount", "/target", *" ".join(options).split()]


def blobfuse2_options(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """(libfuse options, flags) of a blobfuse2 argv, refusing anything blobfuse2 would not parse as one
    argument each: every -o takes exactly one libfuse option here (no comma lists)."""
    fuse: list[str] = []
    flags: dict[str, str] = {}
    args = iter(argv[2:])
    for arg in args:
        if arg == "-o":
            value = next(args)
            assert re.fullmatch(_FUSE_OPTION, value), f"-o {value!r} is not one libfuse option"
            fuse.append(value)
        else:
            assert BLOBFUSE2_FLAG.fullmatch(arg), f"{arg!r} is not a blobfuse2 flag"
            name, _, value = arg.partition("=")
            assert name not in flags, f"{name} given twice"
            flags[name] = value or "true"
    return fuse, flags


def blob_attributes(config: OperatorConfig | None = None, **bfs: Any) -> dict[str, str]:
    spec = dict(SEED_SPEC)
    mounts = dict(spec["mountVolumes"])
    mounts["azureBlobFileSystems"] = [{**mounts["azureBlobFileSystems"][0], **bfs}]
    spec["mountVolumes"] = mounts
    pod = build(spec, config=config).batch_job["spec"]["template"]["spec"]
    (attrs,) = [
        v["csi"]["volumeAttributes"]
        for v in pod["volumes"]
        if v.get("csi", {}).get("driver") == "blob.csi.azure.com"
    ]
    return attrs  # type: ignore[no-any-return]


def test_the_seed_blob_volume_has_only_attributes_the_driver_reads() -> None:
    attrs = blob_attributes()
    assert {k.lower() for k in attrs} <= UPSTREAM_ATTRIBUTES
    assert attrs["protocol"] == "fuse2"  # without it the driver runs blobfuse v1, which AKS does not ship
    assert attrs["containerName"] == "data"
    assert attrs["secretName"] == "acct-storage"
    assert "server" not in attrs  # Azure's default endpoint


def test_batchai_defaults_reach_blobfuse2_as_single_arguments_without_the_listing_delay() -> None:
    attrs = blob_attributes()
    assert attrs["mountOptions"] == (
        "-o allow_other,--use-https=true,-o attr_timeout=240,-o entry_timeout=240,-o negative_timeout=120,"
        "--cancel-list-on-mount-seconds=0"
    )
    fuse, flags = blobfuse2_options(upstream_blobfuse2_argv(attrs["mountOptions"]))
    assert fuse == ["allow_other", "attr_timeout=240", "entry_timeout=240", "negative_timeout=120"]
    # Upstream's default (10) would hide every directory listing for the first 10 s.
    assert flags["--cancel-list-on-mount-seconds"] == "0"
    assert flags["--use-https"] == "true" and flags["--pre-mount-validate"] == "true"


@pytest.mark.parametrize(
    "options",
    [
        DEFAULT_BLOB_MOUNT_OPTIONS,
        "--use-https=true -o big_writes -o max_read=131072 -o max_write=131072 -o attr_timeout=240 "
        "-o fsname=blobfuse -o kernel_cache -o entry_timeout=240 -o negative_timeout=120 -o allow_other",
        "-o ro,allow_other --file-cache-timeout-in-seconds=120 --log-level=LOG_WARNING",
        "  -o\tallow_other   --use-attr-cache  ",
        "",
    ],
)
def test_every_allowed_option_becomes_one_blobfuse2_argument(options: str) -> None:
    AzureBlobFileSystemReference.model_validate(
        {"accountName": "acct", "containerName": "data", "relativeMountPath": "d",
         "credentials": {"secretRef": {"name": "s"}}, "mountOptions": options}
    )  # fmt: skip
    attribute = blob_csi_mount_options(options)
    fuse, flags = blobfuse2_options(upstream_blobfuse2_argv(attribute))
    expected_fuse = [o for group in re.findall(r"-o\s+(\S+)", options) for o in group.split(",")]
    assert fuse == expected_fuse
    assert flags["--cancel-list-on-mount-seconds"] == "0"


def test_the_users_listing_delay_is_kept() -> None:
    attrs = blob_attributes(mountOptions="-o allow_other --cancel-list-on-mount-seconds=5")
    assert attrs["mountOptions"] == "-o allow_other,--cancel-list-on-mount-seconds=5"
    _, flags = blobfuse2_options(upstream_blobfuse2_argv(attrs["mountOptions"]))
    assert flags["--cancel-list-on-mount-seconds"] == "5"


def test_a_configured_blob_endpoint_is_the_server_attribute() -> None:
    config = OperatorConfig.from_env({"BATCHAI_STORAGE_BLOB_ENDPOINT": "http://127.0.0.1:20100/{account}/"})
    attrs = blob_attributes(config)
    account = SEED_SPEC["mountVolumes"]["azureBlobFileSystems"][0]["accountName"]
    assert attrs["server"] == f"http://127.0.0.1:20100/{account}"  # used verbatim, scheme included
    assert " " not in attrs["server"] and "," not in attrs["server"]
