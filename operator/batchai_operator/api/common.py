"""Models shared by TrainingJob and BatchAICluster: mounts, credentials, environment, secrets."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .base import ApiModel, cel, rules

# Environment variable names (Batch AI used them verbatim) and directory ids (suffixes of
# AZ_BATCHAI_OUTPUT_<id> / AZ_BATCHAI_INPUT_<id>) must be usable as shell variable names.
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

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
            cel("!self.startsWith('/')", "relativeMountPath must not start with '/'"),
            cel(
                "!self.split('/').exists(p, p == '..')",
                "relativeMountPath must not contain '..'",
            ),
        ),
    ),
]


class SecretKeyRef(ApiModel):
    """A key of a Kubernetes Secret in the object's namespace."""

    name: str = Field(description="Name of the Secret in the same namespace.", min_length=1)
    key: str | None = Field(default=None, description="Key in the Secret. Defaults depend on the field using it.")


class KeyVaultSecretReference(ApiModel):
    """Batch AI's Azure Key Vault reference. Accepted by the schema only to reject it with a clear message."""

    source_vault: dict[str, str] | None = Field(
        default=None, description="Batch AI: {id} of the Key Vault. Not supported here: use secretRef."
    )
    secret_url: str | None = Field(default=None, description="Batch AI: URL of the secret. Not supported here.")


class StorageCredentials(ApiModel):
    """How the volume authenticates to Azure Storage: a Secret reference or workload identity."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel(
                "!has(self.accountKey)",
                "credentials.accountKey: inline storage keys are not accepted in a TrainingJob; store the key in a "
                "Secret (keys azurestorageaccountname, azurestorageaccountkey) and set credentials.secretRef.name "
                "('kubectl batchai job convert' does this for job.json files)",
                reason="FieldValueForbidden",
            ),
            cel(
                "!has(self.accountKeySecretReference)",
                "credentials.accountKeySecretReference: Key Vault references are not supported; store the key in a "
                "Secret and set credentials.secretRef.name",
                reason="FieldValueForbidden",
            ),
            cel(
                "has(self.secretRef) != has(self.workloadIdentity)",
                "credentials: set exactly one of secretRef or workloadIdentity",
            ),
        )
    }

    account_key: str | None = Field(
        default=None,
        description="Batch AI's inline account key. Always rejected here: secrets never live in a TrainingJob.",
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


class WorkloadIdentity(ApiModel):
    """Azure AD workload identity used by the CSI driver to mount without a storage key."""

    client_id: str = Field(description="Client id of the user-assigned managed identity.", min_length=1)


class AzureFileShareReference(ApiModel):
    """An Azure Files share mounted over SMB (file.csi.azure.com inline volume)."""

    account_name: str = Field(description="Storage account name.", min_length=1)
    azure_file_url: str = Field(
        description="URL of the share, https://<account>.file.core.windows.net/<share>.",
        pattern=r"^https://[^/]+/[^/]+/?$",
    )
    credentials: StorageCredentials = Field(description="How to authenticate to the storage account.")
    relative_mount_path: RelativeMountPath
    file_mode: str = Field(default="0777", description="Permissions of files on the share.", pattern=r"^0?[0-7]{3}$")
    directory_mode: str = Field(
        default="0777", description="Permissions of directories on the share.", pattern=r"^0?[0-7]{3}$"
    )

    @property
    def share_name(self) -> str:
        return self.azure_file_url.rstrip("/").rsplit("/", 1)[-1]


class AzureBlobFileSystemReference(ApiModel):
    """An Azure Blob container mounted with blobfuse2 (blob.csi.azure.com inline volume)."""

    account_name: str = Field(description="Storage account name.", min_length=1)
    container_name: str = Field(
        description="Blob container name.", pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$|^\$root$"
    )
    credentials: StorageCredentials = Field(description="How to authenticate to the storage account.")
    relative_mount_path: RelativeMountPath
    mount_options: str | None = Field(
        default=None, description="blobfuse mount options. Batch AI's defaults apply when unset."
    )


class ResourceId(ApiModel):
    """An Azure Resource Manager id, as Batch AI referred to other resources."""

    id: str = Field(description="ARM resource id.", min_length=1)


class FileServerReference(ApiModel):
    """An NFS file server (Batch AI fileServers) mounted as an nfs volume."""

    file_server: ResourceId = Field(
        description="Batch AI's file server ARM id; its last segment is used as the NFS host unless server is set."
    )
    server: str | None = Field(default=None, description="NFS server host or IP (Kubernetes addition).")
    source_directory: str | None = Field(
        default=None, description="Exported directory on the server to mount. Defaults to '/'."
    )
    relative_mount_path: RelativeMountPath
    mount_options: str | None = Field(default=None, description="NFS mount options, e.g. 'rw'.")

    @property
    def host(self) -> str:
        return self.server or self.file_server.id.rstrip("/").rsplit("/", 1)[-1]


class UnmanagedFileSystemReference(ApiModel):
    """A file system mounted by running mountCommand with the mount path appended, as Batch AI did.

    Needs a privileged container; the operator refuses it unless an admin enabled privileged mounts.
    """

    mount_command: str = Field(description="Mount command; the mount path is appended.", min_length=1)
    relative_mount_path: RelativeMountPath


class MountVolumes(ApiModel):
    """Volumes to mount, as Batch AI's mountVolumes."""

    azure_file_shares: list[AzureFileShareReference] | None = Field(
        default=None, description="Azure Files shares.", max_length=64
    )
    azure_blob_file_systems: list[AzureBlobFileSystemReference] | None = Field(
        default=None, description="Azure Blob containers mounted with blobfuse.", max_length=64
    )
    file_servers: list[FileServerReference] | None = Field(default=None, description="NFS file servers.", max_length=64)
    unmanaged_file_systems: list[UnmanagedFileSystemReference] | None = Field(
        default=None, description="File systems mounted with a custom mount command.", max_length=64
    )

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


class EnvironmentVariable(ApiModel):
    """An environment variable for the job (and its preparation task)."""

    name: str = Field(description="Variable name.", pattern=ENV_NAME_PATTERN, max_length=256)
    value: str = Field(description="Value; $VARS are expanded by the shell in the pod.", max_length=32768)


class EnvironmentVariableWithSecretValue(ApiModel):
    """A secret environment variable: its value comes from a Kubernetes Secret, never from the spec."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": rules(
            cel(
                "!has(self.value)",
                "secrets[].value: secret values are not accepted inline; store it in a Secret and set "
                "secrets[].secretRef ('kubectl batchai job convert' does this for job.json files)",
                reason="FieldValueForbidden",
            ),
            cel(
                "!has(self.valueSecretReference)",
                "secrets[].valueSecretReference: Key Vault references are not supported; use secrets[].secretRef",
                reason="FieldValueForbidden",
            ),
            cel("has(self.secretRef)", "secrets[].secretRef is required", reason="FieldValueRequired"),
        )
    }

    name: str = Field(description="Variable name.", pattern=ENV_NAME_PATTERN, max_length=256)
    value: str | None = Field(default=None, description="Batch AI's inline value. Rejected here: use secretRef.")
    value_secret_reference: KeyVaultSecretReference | None = Field(
        default=None, description="Batch AI's Key Vault reference. Rejected here: use secretRef."
    )
    secret_ref: SecretKeyRef | None = Field(
        default=None, description="Secret and key holding the value (key defaults to the variable name)."
    )


class Toleration(ApiModel):
    """A Kubernetes toleration, added to the job pods."""

    key: str | None = Field(default=None, description="Taint key.")
    operator: str | None = Field(default=None, description="Exists or Equal.", pattern=r"^(Exists|Equal)$")
    value: str | None = Field(default=None, description="Taint value.")
    effect: str | None = Field(
        default=None, description="Taint effect.", pattern=r"^(NoSchedule|PreferNoSchedule|NoExecute)$"
    )
    toleration_seconds: int | None = Field(default=None, description="For NoExecute: how long to stay bound.")


StorageCredentials.model_rebuild()
