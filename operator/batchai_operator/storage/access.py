"""Reading a job's directories in Azure Storage: list one level, file sizes, ranged reads, and read-only
download URLs (SAS) that expire, through azure-storage-blob and azure-storage-file-share.

Endpoints: a blob account is https://<account>.blob.core.windows.net and an Azure Files account is the
scheme and host of the mount's azureFileUrl, unless BATCHAI_STORAGE_BLOB_ENDPOINT /
BATCHAI_STORAGE_FILE_ENDPOINT give a template with `{account}` (Azurite, the Files double, sovereign
clouds), e.g. http://127.0.0.1:20100/{account}.

Credentials (`Credential`): an account key signs requests and SAS URLs (sp=r on one file or blob);
a token (DefaultAzureCredential) reads blobs and signs URLs with a user-delegation key, and reads Azure
Files with the backup intent but produces no URL (Azure Files has no user-delegation SAS here); a SAS
token from the job's Secret reads but produces no URL (handing it out would grant more than one file).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from urllib.parse import parse_qs, quote, urlsplit

from azure.core.credentials import AzureSasCredential, TokenCredential

# The storage SDKs take seconds to import; they are imported where used, so `kubectl batchai job list`
# and friends start fast.
from .errors import CredentialsRefused, translate
from .locations import StorageLocation

BLOB_ENDPOINT_ENV = "BATCHAI_STORAGE_BLOB_ENDPOINT"
FILE_ENDPOINT_ENV = "BATCHAI_STORAGE_FILE_ENDPOINT"
# blobfuse2's (and Batch AI's blobfuse's) marker for a directory in a flat namespace.
FOLDER_METADATA = "hdi_isfolder"
# Reads are bounded so a large file streams in pieces.
MAX_READ = 4 * 1024 * 1024
# The CLI answers in seconds: few retries, short connect timeouts (the SDK defaults wait minutes).
_CLIENT_OPTIONS: dict[str, Any] = {
    "retry_total": 2,
    "initial_backoff": 1,
    "increment_base": 2,
    "random_jitter_range": 1,
    "connection_timeout": 10,
}

T = TypeVar("T")


@dataclass(frozen=True)
class Credential:
    """How to authenticate to one storage account, and where that came from (for messages)."""

    account: str
    source: str
    key: str | None = None
    sas_token: str | None = None
    token: TokenCredential | None = None

    def sdk_credential(self) -> Any:
        if self.key is not None:
            return {"account_name": self.account, "account_key": self.key}
        if self.sas_token is not None:
            return AzureSasCredential(self.sas_token.lstrip("?"))
        return self.token


@dataclass(frozen=True)
class Entry:
    """One row of `job file list`: a file or a directory (no size or URL)."""

    name: str
    is_directory: bool
    size: int | None = None
    last_modified: datetime.datetime | None = None
    download_url: str | None = None


def account_url(location: StorageLocation, environ: Mapping[str, str]) -> str:
    """The service URL of the location's account (see the module docstring for overrides)."""
    if location.kind == "blob":
        template = environ.get(BLOB_ENDPOINT_ENV) or "https://{account}.blob.core.windows.net"
    else:
        file_url = getattr(location.ref, "azure_file_url", "")
        parts = urlsplit(file_url)
        template = environ.get(FILE_ENDPOINT_ENV) or f"{parts.scheme}://{parts.netloc}"
    return template.replace("{account}", location.account_name).rstrip("/")


class Store(Protocol):
    """What `job file list/stream` need from a share or a container."""

    def list(self, location: StorageLocation, expiry_minutes: int | None) -> list[Entry]:
        """Entries one level below the location, by name; download URLs when expiry_minutes is given."""
        ...

    def size(self, location: StorageLocation) -> int:
        """The file's current size; StorageFileNotFound when it does not exist."""
        ...

    def read(self, location: StorageLocation, offset: int, length: int) -> bytes:
        """`length` bytes from `offset` (a ranged GET)."""
        ...


def sas_expiry(sas_token: str) -> datetime.datetime | None:
    """The `se` (expiry) of a SAS token."""
    values = parse_qs(sas_token.lstrip("?")).get("se")
    if not values:
        return None
    try:
        return datetime.datetime.fromisoformat(values[0].replace("Z", "+00:00"))
    except ValueError:
        return None


def _call(fn: Callable[[], T], location: StorageLocation, credential: Credential) -> T:
    try:
        return fn()
    except Exception as exc:
        error = translate(exc, str(location), credential.source)
        if isinstance(error, CredentialsRefused) and credential.sas_token is not None:
            # A refusal carries no reason on HEAD requests; the token says itself when it expired.
            expiry = sas_expiry(credential.sas_token)
            if expiry is not None and expiry <= datetime.datetime.now(datetime.UTC):
                error = CredentialsRefused(
                    f"{location}: the SAS token from {credential.source} expired at {expiry.isoformat()}"
                )
        raise error from exc


def _expiry(minutes: int) -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0) + datetime.timedelta(minutes=minutes)


class BlobStore:
    """A blob container; directories are '/'-delimited prefixes or hdi_isfolder marker blobs."""

    def __init__(self, url: str, credential: Credential) -> None:
        from azure.storage.blob import BlobServiceClient

        self.url = url
        self.credential = credential
        self.service = BlobServiceClient(url, credential=credential.sdk_credential(), **_CLIENT_OPTIONS)

    def list(self, location: StorageLocation, expiry_minutes: int | None) -> list[Entry]:
        from azure.storage.blob import BlobPrefix

        prefix = f"{location.path}/" if location.path else ""
        container = self.service.get_container_client(location.container)

        def fetch() -> list[Entry]:
            entries: dict[str, Entry] = {}
            for item in container.walk_blobs(name_starts_with=prefix, delimiter="/", include=["metadata"]):
                name = item.name[len(prefix) :].rstrip("/")
                if not name:
                    continue
                if isinstance(item, BlobPrefix) or (item.metadata or {}).get(FOLDER_METADATA) == "true":
                    entries[name] = Entry(name, True)
                elif name not in entries:
                    entries[name] = Entry(name, False, item.size, item.last_modified)
            return [entries[n] for n in sorted(entries)]

        entries = _call(fetch, location, self.credential)
        if expiry_minutes is None or not any(not e.is_directory for e in entries):
            return entries
        signer = self._signer(location, expiry_minutes)
        if signer is None:
            return entries
        return [e if e.is_directory else _with_url(e, signer(f"{prefix}{e.name}")) for e in entries]

    def _signer(self, location: StorageLocation, minutes: int) -> Callable[[str], str] | None:
        from azure.storage.blob import BlobSasPermissions, generate_blob_sas

        expiry = _expiry(minutes)
        if self.credential.key is not None:
            key_args: dict[str, Any] = {"account_key": self.credential.key}
        elif self.credential.token is not None:
            start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
            delegation = _call(
                lambda: self.service.get_user_delegation_key(start, expiry), location, self.credential
            )
            key_args = {"user_delegation_key": delegation}
        else:
            return None

        def sign(blob: str) -> str:
            sas = generate_blob_sas(
                location.account_name,
                location.container,
                blob,
                permission=BlobSasPermissions(read=True),
                expiry=expiry,
                **key_args,
            )
            return f"{self.url}/{quote(location.container)}/{quote(blob)}?{sas}"

        return sign

    def size(self, location: StorageLocation) -> int:
        blob = self.service.get_blob_client(location.container, location.path)
        return int(_call(blob.get_blob_properties, location, self.credential).size)

    def read(self, location: StorageLocation, offset: int, length: int) -> bytes:
        blob = self.service.get_blob_client(location.container, location.path)
        data = _call(
            lambda: blob.download_blob(offset=offset, length=length, max_concurrency=1).readall(),
            location,
            self.credential,
        )
        return bytes(data)


class ShareStore:
    """An Azure Files share."""

    def __init__(self, url: str, credential: Credential) -> None:
        from azure.storage.fileshare import ShareServiceClient

        self.url = url
        self.credential = credential
        options = dict(_CLIENT_OPTIONS)
        if credential.token is not None:
            options["token_intent"] = "backup"  # required by Azure Files for OAuth data access
        self.service = ShareServiceClient(url, credential=credential.sdk_credential(), **options)

    def list(self, location: StorageLocation, expiry_minutes: int | None) -> list[Entry]:
        from azure.storage.fileshare import FileProperties, FileSasPermissions, generate_file_sas

        directory = self.service.get_share_client(location.container).get_directory_client(location.path)

        def fetch() -> list[Entry]:
            out = []
            for item in directory.list_directories_and_files(include=["timestamps"]):
                if isinstance(item, FileProperties):
                    out.append(Entry(item.name, False, item.size, item.last_modified))
                else:
                    out.append(Entry(item.name, True))
            return sorted(out, key=lambda e: e.name)

        entries = _call(fetch, location, self.credential)
        if expiry_minutes is None or self.credential.key is None:
            return entries
        expiry = _expiry(expiry_minutes)
        key = self.credential.key

        def url(name: str) -> str:
            path = [p for p in location.path.split("/") if p] + [name]
            sas = generate_file_sas(
                location.account_name,
                location.container,
                path,
                account_key=key,
                permission=FileSasPermissions(read=True),
                expiry=expiry,
            )
            return f"{self.url}/{quote(location.container)}/{quote('/'.join(path))}?{sas}"

        return [e if e.is_directory else _with_url(e, url(e.name)) for e in entries]

    def size(self, location: StorageLocation) -> int:
        f = self.service.get_share_client(location.container).get_file_client(location.path)
        return int(_call(f.get_file_properties, location, self.credential).size)

    def read(self, location: StorageLocation, offset: int, length: int) -> bytes:
        f = self.service.get_share_client(location.container).get_file_client(location.path)
        data = _call(
            lambda: f.download_file(offset=offset, length=length, max_concurrency=1).readall(),
            location,
            self.credential,
        )
        return bytes(data)


def _with_url(entry: Entry, url: str) -> Entry:
    return Entry(entry.name, entry.is_directory, entry.size, entry.last_modified, url)


def open_store(location: StorageLocation, credential: Credential, environ: Mapping[str, str]) -> Store:
    """The Store for the location's share or container."""
    url = account_url(location, environ)
    if location.kind == "blob":
        return BlobStore(url, credential)
    return ShareStore(url, credential)


def read_all(store: Store, location: StorageLocation, offset: int, size: int) -> Iterable[bytes]:
    """Bytes offset..size in pieces of at most MAX_READ."""
    while offset < size:
        n = min(MAX_READ, size - offset)
        chunk = store.read(location, offset, n)
        if not chunk:
            return
        offset += len(chunk)
        yield chunk
