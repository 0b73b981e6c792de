"""Azure Storage failures as one line a user can act on (what failed, where, and what to do)."""

from __future__ import annotations

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)


class StorageError(Exception):
    """A storage call failed; str() is the one line to show."""


class StorageFileNotFound(StorageError):
    """The file or directory does not exist (yet)."""


class CredentialsRefused(StorageError):
    """The storage account refused the credentials: wrong or rotated key, expired SAS or token, no role."""


class NoCredentials(StorageError):
    """No way to authenticate to the storage account was found."""


class StorageUnreachable(StorageError):
    """The storage endpoint did not answer."""


_EXPIRED_MARKERS = ("not valid in the specified time frame", "expired", "has to be after current time")


def _code(exc: HttpResponseError) -> str:
    code = getattr(exc, "error_code", None)
    return str(getattr(code, "value", code) or "")


def translate(exc: Exception, where: str, source: str = "") -> StorageError:
    """The StorageError for an azure-core exception raised while accessing `where` (account, share or
    container and path); `source` names where the credentials came from."""
    if isinstance(exc, StorageError):
        return exc
    origin = f" from {source}" if source else ""
    if isinstance(exc, ClientAuthenticationError) and getattr(exc, "response", None) is None:
        # azure-identity: no credential in DefaultAzureCredential's chain produced a token.
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return NoCredentials(f"{where}: no Azure credentials ({first})")
    if isinstance(exc, ResourceNotFoundError):
        code = _code(exc)
        if code in ("ShareNotFound", "ContainerNotFound"):
            return StorageError(
                f"{where}: the {'share' if code == 'ShareNotFound' else 'container'} does not exist"
            )
        return StorageFileNotFound(f"{where}: not found")
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return StorageUnreachable(f"{where}: storage unreachable ({reason})")
    if isinstance(exc, HttpResponseError):
        text = str(exc)
        status = exc.status_code
        if isinstance(exc, ClientAuthenticationError) or status in (401, 403):
            if any(m in text for m in _EXPIRED_MARKERS):
                return CredentialsRefused(f"{where}: the SAS or token{origin} expired")
            code = _code(exc) or "AuthenticationFailed"
            if code == "AuthorizationPermissionMismatch":
                return CredentialsRefused(
                    f"{where}: the credentials{origin} lack a data role on the storage account ({code})"
                )
            return CredentialsRefused(
                f"{where}: the storage account refused the credentials{origin} ({code})"
            )
        first = text.splitlines()[0] if text else ""
        return StorageError(f"{where}: storage answered {status} {_code(exc)}: {first}".rstrip(": "))
    return StorageError(f"{where}: {type(exc).__name__}: {exc}")
