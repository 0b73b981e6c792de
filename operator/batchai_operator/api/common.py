"""Models shared by TrainingJob and BatchAICluster: mounts, credentials, environment, secrets."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from .base import ApiModel, cel, rules

# Environment variable names (Batch AI used them verbatim) and directory ids (suffixes of
# AZ_BATCHAI_OUTPUT_<id> / AZ_BATCHAI_INPUT_<id>) must be usable as shell variable names.
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

# Bounds on strings and lists. Besides sanity, they keep the apiserver's CEL cost estimates of the
# rules below within its limits (an unbounded string or list is costed at the request size limit).
MAX_NAME = 256  # env var names, directory ids
MAX_PATH = 4096  # paths and URLs
MAX_COMMAND = 32768  # command lines and argument strings
MAX_MOUNTS = 64  # per mount type
MAX_ENV = 256  # environment variables, secrets
# Most GPUs a node may have (BatchAICluster gpusPerNode); caps TensorFlow's workerCount before the
# cluster is known (workerCount <= nodeCount x GPUs per VM, Batch AI's REST spec).
MAX_GPUS_PER_NODE = 64

# Azure storage account names: 3-24 lowercase letters and digits.
STORAGE_ACCOUNT_PATTERN = r"^[a-z0-9]{3,24}$"

# Messages shared by the CEL rules and the pydantic validators that mirror them, so the CLI (which
# validates with these models) and the apiserver say the same thing.
MSG_MOUNT_PATH_ABSOLUTE = "relativeMountPath must not start with '/'"
MSG_MOUNT_PATH_DOTDOT = "relativeMountPath must not contain '..'"
MSG_MOUNT_PATH_FORM = (
    "relativeMountPath must not end with '/' or contain '//' or control characters (tab, newline)"
)
# Segments separated by single '/', no control characters: 'x' and 'x/' would be the same mount point.
_MOUNT_PATH_FORM = r"^[^/\x00-\x1f\x7f]+(/[^/\x00-\x1f\x7f]+)*$"
MSG_MOUNT_PATHS_UNIQUE = "mountVolumes: relativeMountPath values must be unique across all mounts"
MSG_INLINE_ACCOUNT_KEY = (
    "credentials.accountKey: inline storage keys are not accepted; store the key in a Secret (keys "
    "azurestorageaccountname, azurestorageaccountkey) and set credentials.secretRef.name "
    "('kubectl batchai job convert' does this for job.json files)"
)
MSG_KEYVAULT_ACCOUNT_KEY = (
    "credentials.accountKeySecretReference: Key Vault references are not supported; store the key in a "
    "Secret and set credentials.secretRef.name"
)
MSG_CREDENTIALS_ONE_OF = "credentials: set exactly one of secretRef or workloadIdentity"
MSG_INLINE_SECRET_VALUE = (
    "secrets[].value: secret values are not accepted inline; store it in a Secret and set "
    "secrets[].secretRef ('kubectl batchai job convert' does this for job.json files)"
)
MSG_KEYVAULT_SECRET_VALUE = (
    "secrets[].valueSecretReference: Key Vault references are not supported; use secrets[].secretRef"
)
MSG_SECRET_REF_REQUIRED = "secrets[].secretRef is required"
# Launcher settings a job may set in environmentVariables (launcher.sh): the MPI its toolkit runs with
# and whether command lines read ~/.bashrc. Every other BATCHAI_* name is the launcher's own.
USER_LAUNCHER_SETTINGS = ("BATCHAI_MPI_FLAVOUR", "BATCHAI_TASK_SHELL")
MSG_ENV_RESERVED = (
    "environment variable names starting with BATCHAI_ are reserved for the operator's launcher "
    f"(except {' and '.join(USER_LAUNCHER_SETTINGS)})"
)
# Batch AI sets AZ_BATCHAI_* itself (mount roots, AZ_BATCHAI_OUTPUT_<id>, AZ_BATCHAI_TASK_INDEX, ...): a
# job's own variable of such a name would silently lose to ours or replace it (and make status's output
# paths untrue), so it is refused, as Batch AI's own API did not let a job redefine them either.
BATCHAI_SET_PREFIX = "AZ_BATCHAI_"
MSG_ENV_BATCHAI_SET = (
    "environment variable names starting with AZ_BATCHAI_ are set by Batch AI itself (mount roots, "
    "AZ_BATCHAI_OUTPUT_<id> for outputDirectories, AZ_BATCHAI_TASK_INDEX, ...); choose another name"
)
MSG_BLOB_MOUNT_OPTIONS = (
    "mountOptions: only these blobfuse options are accepted: -o allow_other|ro|default_permissions|"
    "big_writes|kernel_cache|direct_io|attr_timeout=N|entry_timeout=N|negative_timeout=N|max_read=N|"
    "max_write=N|uid=N|gid=N|umask=NNN|fsname=NAME; --use-https|--use-attr-cache|--use-adls|"
    "--virtual-directory|--disable-writeback-cache|--ignore-open-flags|--read-only[=true|false]; "
    "--file-cache-timeout[-in-seconds]|--cache-size-mb|--cancel-list-on-mount-seconds|--max-concurrency|"
    "--block-size-mb=N; --log-level=LOG_LEVEL. Options that name host paths or files, such as --tmp-path "
    "or --config-file, would reach the node and are refused"
)

# blobfuse2 options through the Blob CSI driver reach the node's blobfuse2 verbatim: an allowlist, since
# options such as --tmp-path, --config-file or --block-cache-path would make it read or write host paths.
# The same regular expression (RE2 and Python agree on it) is the CRD's CEL rule and the model's check.
_FUSE_OPTION = (
    r"(allow_other|ro|default_permissions|big_writes|kernel_cache|direct_io|"
    r"(attr_timeout|entry_timeout|negative_timeout|max_read|max_write|uid|gid)=[0-9]{1,10}|"
    r"umask=[0-7]{3,4}|fsname=[A-Za-z0-9_-]{1,64})"
)
_BLOB_FLAG = (
    r"--(use-https|use-attr-cache|use-adls|virtual-directory|disable-writeback-cache|ignore-open-flags|"
    r"read-only)(=(true|false))?|"
    r"--(file-cache-timeout-in-seconds|file-cache-timeout|cache-size-mb|cancel-list-on-mount-seconds|"
    r"max-concurrency|block-size-mb)=[0-9]{1,10}|"
    r"--log-level=LOG_[A-Z]{2,8}"
)
BLOB_MOUNT_OPTIONS_PATTERN = rf"^[ \t]*((-o[ \t]+{_FUSE_OPTION}(,{_FUSE_OPTION})*|{_BLOB_FLAG})([ \t]+|$))*$"
MAX_MOUNT_OPTIONS = 1024


def _cel_string(text: str) -> str:
    """A CEL string literal (single-quoted, backslashes and quotes escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _check_relative_mount_path(value: str) -> str:
    if value.startswith("/"):
        raise ValueError(MSG_MOUNT_PATH_ABSOLUTE)
    if ".." in value.split("/"):
        raise ValueError(MSG_MOUNT_PATH_DOTDOT)
    if not re.match(_MOUNT_PATH_FORM, value):
        raise ValueError(MSG_MOUNT_PATH_FORM)
    return value


RelativeMountPath = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        description=(
            "Path below the mount root where the volume appears ($AZ_BATCHAI_JOB_MOUNT_ROOT for job mounts, "
            "$AZ_BATCHAI_MOUNT_ROOT for cluster mounts). No leading '/', no '..'."
        ),
        json_schema_extra=rules(
            cel("!self.startsWith('/')", MSG_MOUNT_PATH_ABSOLUTE),
            cel("!self.split('/').exists(p, p == '..')", MSG_MOUNT_PATH_DOTDOT),
            # Backslashes doubled: CEL unescapes its string literal before RE2 reads the pattern.
            cel("self.matches('" + _MOUNT_PATH_FORM.replace("\\", "\\\\") + "')", MSG_MOUNT_PATH_FORM),
        ),
    ),
    AfterValidator(_check_relative_mount_path),
]


def duplicates(values: Iterable[str]) -> list[str]:
    """Values that occur more than once, in first-seen order."""
    seen: set[str] = set()
    dup: list[str] = []
    for v in values:
        if v in seen and v not in dup:
            dup.append(v)
        seen.add(v)
    return dup


def unique_rule(list_field: str, key: str, message: str) -> dict[str, str]:
    """CEL: the `key` of every item of the optional list `list_field` is unique."""
    return cel(
        f"!has(self.{list_field}) || self.{list_field}.all(x, "
        f"self.{list_field}.filter(y, y.{key} == x.{key}).size() == 1)",
        message,
        field_path=f".{list_field}",
    )


class SecretKeyRef(ApiModel):
    """A key of a Kubernetes Secret in the object's namespace."""

    name: str = Field(
        description="Name of the Secret in the same namespace.",
        min_length=1,
        max_length=253,
        pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
    )
    key: str | None = Field(
        default=None,
        description="Key in the Secret. Defaults depend on the field using it.",
        max_length=253,
        pattern=r"^[-._a-zA-Z0-9]+$",
    )


class ResourceId(ApiModel):
    """An Azure Resource Manager id, as Batch AI referred to other resources."""

    id: str = Field(description="ARM resource id.", min_length=1, max_length=1024)


class KeyVaultSecretReference(ApiModel):
    """Batch AI's Azure Key Vault reference. Accepted by the schema only to reject it with a clear message."""

    source_vault: ResourceId | None = Field(
        default=None, description="Batch AI: {id} of the Key Vault. Not supported here: use secretRef."
    )
    secret_url: str | None = Field(
        default=None, description="Batch AI: URL of the secret. Not supported here.", max_length=MAX_PATH
    )


class StorageCredentials(ApiModel):
    """How the volume authenticates to Azure Storage: a Secret reference or workload identity."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel("!has(self.accountKey)", MSG_INLINE_ACCOUNT_KEY, reason="FieldValueForbidden"),
            cel(
                "!has(self.accountKeySecretReference)", MSG_KEYVAULT_ACCOUNT_KEY, reason="FieldValueForbidden"
            ),
            cel("has(self.secretRef) != has(self.workloadIdentity)", MSG_CREDENTIALS_ONE_OF),
        )
    }

    account_key: str | None = Field(
        default=None,
        description="Batch AI's inline account key. Always rejected: secrets never live in a TrainingJob.",
        max_length=MAX_COMMAND,
    )
    account_key_secret_reference: KeyVaultSecretReference | None = Field(
        default=None, description="Batch AI's Key Vault reference. Rejected here: use secretRef."
    )
    secret_ref: SecretKeyRef | None = Field(
        default=None,
        description=(
            "Secret in the same namespace with keys azurestorageaccountname and azurestorageaccountkey "
            "(or azurestorageaccountsastoken for blobs), as the Azure Files and Blob CSI drivers read them."
        ),
    )
    workload_identity: WorkloadIdentity | None = Field(
        default=None, description="Mount with the pod's Azure workload identity instead of a key."
    )

    @model_validator(mode="after")
    def _check(self) -> StorageCredentials:
        if self.account_key is not None:
            raise ValueError(MSG_INLINE_ACCOUNT_KEY)
        if self.account_key_secret_reference is not None:
            raise ValueError(MSG_KEYVAULT_ACCOUNT_KEY)
        if (self.secret_ref is None) == (self.workload_identity is None):
            raise ValueError(MSG_CREDENTIALS_ONE_OF)
        return self


class WorkloadIdentity(ApiModel):
    """Azure AD workload identity used by the CSI driver to mount without a storage key."""

    client_id: str = Field(
        description="Client id of the user-assigned managed identity.", min_length=1, max_length=64
    )


class AzureFileShareReference(ApiModel):
    """An Azure Files share mounted over SMB (file.csi.azure.com inline volume)."""

    account_name: str = Field(
        description="Storage account name (3-24 lowercase letters and digits).",
        pattern=STORAGE_ACCOUNT_PATTERN,
        max_length=24,
    )
    azure_file_url: str = Field(
        description=(
            "URL of the share, https://<account>.file.core.windows.net/<share> (share names: lowercase "
            "letters, digits and '-')."
        ),
        pattern=r"^https://[^/\s]+/[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?/?$",
        max_length=MAX_PATH,
    )
    credentials: StorageCredentials = Field(description="How to authenticate to the storage account.")
    relative_mount_path: RelativeMountPath
    file_mode: str = Field(
        default="0777",
        description="Permissions of files on the share.",
        pattern=r"^0?[0-7]{3}$",
        max_length=4,
    )
    directory_mode: str = Field(
        default="0777",
        description="Permissions of directories on the share.",
        pattern=r"^0?[0-7]{3}$",
        max_length=4,
    )

    @property
    def share_name(self) -> str:
        return self.azure_file_url.rstrip("/").rsplit("/", 1)[-1]


class AzureBlobFileSystemReference(ApiModel):
    """An Azure Blob container mounted with blobfuse2 (blob.csi.azure.com inline volume)."""

    account_name: str = Field(
        description="Storage account name (3-24 lowercase letters and digits).",
        pattern=STORAGE_ACCOUNT_PATTERN,
        max_length=24,
    )
    container_name: str = Field(
        description="Blob container name.",
        pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$|^\$root$",
        max_length=63,
    )
    credentials: StorageCredentials = Field(description="How to authenticate to the storage account.")
    relative_mount_path: RelativeMountPath
    mount_options: str | None = Field(
        default=None,
        description=(
            "blobfuse mount options, from an allowlist (no option that names a host path or file). "
            "Batch AI's defaults apply when unset."
        ),
        max_length=MAX_MOUNT_OPTIONS,
        json_schema_extra=rules(
            cel(f"self.matches({_cel_string(BLOB_MOUNT_OPTIONS_PATTERN)})", MSG_BLOB_MOUNT_OPTIONS)
        ),
    )

    @field_validator("mount_options")
    @classmethod
    def _check_mount_options(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(BLOB_MOUNT_OPTIONS_PATTERN, value):
            raise ValueError(MSG_BLOB_MOUNT_OPTIONS)
        return value


class FileServerReference(ApiModel):
    """An NFS file server (Batch AI fileServers) mounted as an nfs volume."""

    file_server: ResourceId = Field(
        description="Batch AI's file server ARM id; its last segment is the NFS host unless server is set."
    )
    server: str | None = Field(
        default=None, description="NFS server host or IP (Kubernetes addition).", max_length=253
    )
    source_directory: str | None = Field(
        default=None,
        description="Exported directory on the server to mount. Defaults to '/'.",
        max_length=MAX_PATH,
    )
    relative_mount_path: RelativeMountPath
    mount_options: str | None = Field(
        default=None, description="NFS mount options, e.g. 'rw'.", max_length=MAX_COMMAND
    )

    @property
    def host(self) -> str:
        return self.server or self.file_server.id.rstrip("/").rsplit("/", 1)[-1]


class UnmanagedFileSystemReference(ApiModel):
    """A file system mounted by running mountCommand with the mount path appended, as Batch AI did.

    Needs a privileged container; the operator refuses it unless an admin enabled privileged mounts.
    """

    mount_command: str = Field(
        description="Mount command; the mount path is appended.", min_length=1, max_length=MAX_COMMAND
    )
    relative_mount_path: RelativeMountPath


_MOUNT_GROUPS = ("azureFileShares", "azureBlobFileSystems", "fileServers", "unmanagedFileSystems")
# All relative mount paths of a MountVolumes object, as one CEL list.
_ALL_PATHS_CEL = " + ".join(
    f"(has(self.{g}) ? self.{g}.map(v, v.relativeMountPath) : [])" for g in _MOUNT_GROUPS
)


class MountVolumes(ApiModel):
    """Volumes to mount, as Batch AI's mountVolumes."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel(
                f"({_ALL_PATHS_CEL}).all(p, ({_ALL_PATHS_CEL}).filter(q, q == p).size() == 1)",
                MSG_MOUNT_PATHS_UNIQUE,
            )
        )
    }

    azure_file_shares: list[AzureFileShareReference] | None = Field(
        default=None, description="Azure Files shares.", max_length=MAX_MOUNTS
    )
    azure_blob_file_systems: list[AzureBlobFileSystemReference] | None = Field(
        default=None, description="Azure Blob containers mounted with blobfuse.", max_length=MAX_MOUNTS
    )
    file_servers: list[FileServerReference] | None = Field(
        default=None, description="NFS file servers.", max_length=MAX_MOUNTS
    )
    unmanaged_file_systems: list[UnmanagedFileSystemReference] | None = Field(
        default=None, description="File systems mounted with a custom mount command.", max_length=MAX_MOUNTS
    )

    @model_validator(mode="after")
    def _check(self) -> MountVolumes:
        if duplicates(self.relative_paths()):
            raise ValueError(
                f"{MSG_MOUNT_PATHS_UNIQUE} (repeated: {', '.join(duplicates(self.relative_paths()))})"
            )
        return self

    def relative_paths(self) -> list[str]:
        out: list[str] = []
        for group in (
            self.azure_file_shares,
            self.azure_blob_file_systems,
            self.file_servers,
            self.unmanaged_file_systems,
        ):
            out.extend(v.relative_mount_path for v in group or [])
        return out


def env_name_problem(name: str) -> str | None:
    """Why a job or setup task may not set variable `name` itself (the message names it), or None."""
    if name.startswith(BATCHAI_SET_PREFIX):
        return f"{name}: {MSG_ENV_BATCHAI_SET}"
    if name.startswith("BATCHAI_") and name not in USER_LAUNCHER_SETTINGS:
        return f"{name}: {MSG_ENV_RESERVED}"
    return None


# The CRD's rules for a variable name, mirroring env_name_problem; messageExpression names the variable.
_LAUNCHER_SETTINGS_CEL = "[" + ", ".join(f"'{n}'" for n in USER_LAUNCHER_SETTINGS) + "]"
_ENV_NAME_RULES = rules(
    cel(
        f"!self.startsWith('{BATCHAI_SET_PREFIX}')",
        MSG_ENV_BATCHAI_SET,
        message_expression=f"self + {_cel_string(': ' + MSG_ENV_BATCHAI_SET)}",
    ),
    cel(
        f"!self.startsWith('BATCHAI_') || self in {_LAUNCHER_SETTINGS_CEL}",
        MSG_ENV_RESERVED,
        message_expression=f"self + {_cel_string(': ' + MSG_ENV_RESERVED)}",
    ),
)


def _allowed_env_name(value: str) -> str:
    problem = env_name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# A variable name a job or setup task may set: a shell name, and none Batch AI or the launcher sets.
EnvName = Annotated[str, AfterValidator(_allowed_env_name)]


class EnvironmentVariable(ApiModel):
    """An environment variable for the job (and its preparation task)."""

    name: EnvName = Field(
        description=(
            "Variable name. AZ_BATCHAI_* names are set by Batch AI and BATCHAI_* names are the launcher's "
            "own (except its settings BATCHAI_MPI_FLAVOUR and BATCHAI_TASK_SHELL): neither may be set here."
        ),
        pattern=ENV_NAME_PATTERN,
        max_length=MAX_NAME,
        json_schema_extra=_ENV_NAME_RULES,
    )
    value: str = Field(
        description="Value; $VARS are expanded by the shell in the pod.", max_length=MAX_COMMAND
    )


class EnvironmentVariableWithSecretValue(ApiModel):
    """A secret environment variable: its value comes from a Kubernetes Secret, never from the spec."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel("!has(self.value)", MSG_INLINE_SECRET_VALUE, reason="FieldValueForbidden"),
            cel("!has(self.valueSecretReference)", MSG_KEYVAULT_SECRET_VALUE, reason="FieldValueForbidden"),
            cel("has(self.secretRef)", MSG_SECRET_REF_REQUIRED, reason="FieldValueRequired"),
        )
    }

    name: EnvName = Field(
        description="Variable name (the same names are refused as for environmentVariables).",
        pattern=ENV_NAME_PATTERN,
        max_length=MAX_NAME,
        json_schema_extra=_ENV_NAME_RULES,
    )
    value: str | None = Field(
        default=None,
        description="Batch AI's inline value. Rejected here: use secretRef.",
        max_length=MAX_COMMAND,
    )
    value_secret_reference: KeyVaultSecretReference | None = Field(
        default=None, description="Batch AI's Key Vault reference. Rejected here: use secretRef."
    )
    secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret and key holding the value (key defaults to the variable name)."
    )

    @model_validator(mode="after")
    def _check(self) -> EnvironmentVariableWithSecretValue:
        if self.value is not None:
            raise ValueError(MSG_INLINE_SECRET_VALUE)
        if self.value_secret_reference is not None:
            raise ValueError(MSG_KEYVAULT_SECRET_VALUE)
        if self.secret_ref is None:
            raise ValueError(MSG_SECRET_REF_REQUIRED)
        return self


class Toleration(ApiModel):
    """A Kubernetes toleration, added to the job pods."""

    key: str | None = Field(default=None, description="Taint key.", max_length=316)
    operator: str | None = Field(
        default=None, description="Exists or Equal.", pattern=r"^(Exists|Equal)$", max_length=8
    )
    value: str | None = Field(default=None, description="Taint value.", max_length=63)
    effect: str | None = Field(
        default=None,
        description="Taint effect.",
        pattern=r"^(NoSchedule|PreferNoSchedule|NoExecute)$",
        max_length=16,
    )
    toleration_seconds: int | None = Field(default=None, description="For NoExecute: how long to stay bound.")


def check_unique(items: Iterable[str], message: str) -> None:
    """Raise ValueError(message) naming the repeated values, if any."""
    dup = duplicates(items)
    if dup:
        raise ValueError(f"{message} (repeated: {', '.join(dup)})")


StorageCredentials.model_rebuild()
