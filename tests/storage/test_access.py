"""`job file list` and `job file stream` storage calls against Azurite (blob) and the Azure Files double:
one-level listings, read-only SAS URLs that download the same bytes, ranged reads, errors users hit,
tokens (bearer on Files without URLs, user-delegation SAS on blob), and streaming a growing file."""

from __future__ import annotations

import base64
import datetime
import json
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import AccessToken
from azure.storage.blob import ContainerSasPermissions, generate_container_sas
from azure.storage.fileshare import ShareSasPermissions, generate_share_sas

from batchai_operator.api.common import AzureBlobFileSystemReference, AzureFileShareReference
from batchai_operator.storage.access import (
    BLOB_ENDPOINT_ENV,
    FILE_ENDPOINT_ENV,
    Credential,
    Store,
    open_store,
)
from batchai_operator.storage.errors import (
    CredentialsRefused,
    StorageError,
    StorageFileNotFound,
    StorageUnreachable,
)
from batchai_operator.storage.follow import Follow
from batchai_operator.storage.locations import StorageLocation
from doubles.azure_files import AzureFilesDouble
from storage_services import Blob

SEG = "ws/quickstart/job1/0f1e"


def blob_location(blob: Blob, container: str, path: str) -> StorageLocation:
    ref = AzureBlobFileSystemReference.model_validate(
        {
            "accountName": blob.account,
            "containerName": container,
            "credentials": {"secretRef": {"name": "s"}},
            "relativeMountPath": "bfs",
        }
    )
    return StorageLocation("blob", blob.account, container, path, ref)


def share_location(account: str, share: str, path: str) -> StorageLocation:
    ref = AzureFileShareReference.model_validate(
        {
            "accountName": account,
            "azureFileUrl": f"https://{account}.file.core.windows.net/{share}",
            "credentials": {"secretRef": {"name": "s"}},
            "relativeMountPath": "logs",
        }
    )
    return StorageLocation("file", account, share, path, ref)


def env(blob: Blob, files: AzureFilesDouble | None = None) -> dict[str, str]:
    out = {BLOB_ENDPOINT_ENV: blob.endpoint}
    if files is not None:
        out[FILE_ENDPOINT_ENV] = files.endpoint
    return out


def fetch(url: str, headers: dict[str, str] | None = None, ca: Path | None = None) -> tuple[int, bytes]:
    ctx = ssl.create_default_context(cafile=str(ca)) if ca else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), context=ctx) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def key(blob: Blob) -> Credential:
    return Credential(blob.account, "test key", key=blob.key)


# ---- blob (Azurite) --------------------------------------------------------------------------------


def test_blob_listing_is_one_level_with_sas_urls_that_download_the_same_bytes(azurite: Blob) -> None:
    container = f"out{uuid.uuid4().hex[:8]}"
    azurite.container(container)
    c = azurite.service().get_container_client(container)
    base = f"runs/{SEG}/outputs"
    model = bytes(range(256)) * 100
    c.upload_blob(f"{base}/ConvNet_MNIST_0.dnn", model)
    c.upload_blob(f"{base}/ConvNet_MNIST_1.dnn", b"second")
    c.upload_blob(f"{base}/checkpoints/epoch1.dnn", b"deeper")  # a directory by '/' prefix
    c.upload_blob(f"{base}/empty-dir", b"", metadata={"hdi_isfolder": "true"})  # blobfuse's marker
    c.upload_blob(f"runs/{SEG}/outputs-other/x", b"not below the directory")

    loc = blob_location(azurite, container, base)
    store = open_store(loc, key(azurite), env(azurite))
    entries = store.list(loc, expiry_minutes=30)

    assert [(e.name, e.is_directory) for e in entries] == [
        ("ConvNet_MNIST_0.dnn", False),
        ("ConvNet_MNIST_1.dnn", False),
        ("checkpoints", True),
        ("empty-dir", True),
    ]
    first = entries[0]
    assert first.size == len(model) and first.last_modified is not None
    assert all(e.download_url is None for e in entries if e.is_directory)
    assert first.download_url is not None
    status, body = fetch(first.download_url)
    assert (status, body) == (200, model)
    q = parse_qs(urlsplit(first.download_url).query)
    assert q["sp"] == ["r"] and q["sr"] == ["b"]
    expiry = datetime.datetime.fromisoformat(q["se"][0].replace("Z", "+00:00"))
    assert abs((expiry - datetime.datetime.now(datetime.UTC)).total_seconds() - 30 * 60) < 60
    # Ranged reads through the URL, as az's stream did.
    assert fetch(first.download_url, {"Range": "bytes=256-511"}) == (206, bytes(range(256)))
    # The SAS is for that one blob: the next blob's path with it is refused.
    other = first.download_url.replace("ConvNet_MNIST_0.dnn", "ConvNet_MNIST_1.dnn")
    assert fetch(other)[0] == 403

    # -p: one level further down, the part below the directory kept.
    deeper = store.list(loc.child("checkpoints"), expiry_minutes=None)
    assert [(e.name, e.size, e.download_url) for e in deeper] == [("epoch1.dnn", 6, None)]


def test_blob_sizes_ranged_reads_and_errors(azurite: Blob) -> None:
    container = f"err{uuid.uuid4().hex[:8]}"
    azurite.container(container)
    azurite.service().get_blob_client(container, "d/stdout.txt").upload_blob(b"0123456789")
    loc = blob_location(azurite, container, "d/stdout.txt")
    store = open_store(loc, key(azurite), env(azurite))
    assert store.size(loc) == 10
    assert store.read(loc, 3, 4) == b"3456"

    with pytest.raises(StorageFileNotFound, match="not found"):
        store.size(blob_location(azurite, container, "d/stderr.txt"))
    with pytest.raises(StorageError, match="the container does not exist"):
        open_store(loc, key(azurite), env(azurite)).list(blob_location(azurite, "nosuchcontainer", "d"), None)

    wrong = azurite.key[:20] + ("A" if azurite.key[20] != "A" else "B") + azurite.key[21:]
    refused = open_store(loc, Credential(azurite.account, "Secret ws/s", key=wrong), env(azurite))
    with pytest.raises(CredentialsRefused, match="refused the credentials from Secret ws/s"):
        refused.size(loc)

    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)
    expired_sas = generate_container_sas(
        azurite.account,
        container,
        account_key=azurite.key,
        permission=ContainerSasPermissions(read=True),
        expiry=past,
    )
    expired = open_store(loc, Credential(azurite.account, "Secret ws/s", sas_token=expired_sas), env(azurite))
    with pytest.raises(CredentialsRefused, match="the SAS token from Secret ws/s expired at"):
        expired.size(loc)

    gone = {BLOB_ENDPOINT_ENV: "http://127.0.0.1:9/{account}"}  # discard port: nothing listens
    with pytest.raises(StorageUnreachable, match="storage unreachable"):
        open_store(loc, key(azurite), gone).size(loc)


# ---- Azure Files (the double) ---------------------------------------------------------------------


def test_share_listing_is_one_level_with_sas_urls_that_download_the_same_bytes(
    azurite: Blob, files_double: AzureFilesDouble
) -> None:
    acct = azurite.account
    files_double.create_share(acct, "logs")
    std = f"{SEG}/stdouterr"
    files_double.write(acct, "logs", f"{std}/stdout.txt", b"Finished Epoch[1 of 40]\n")
    files_double.write(acct, "logs", f"{std}/stderr.txt", b"")
    files_double.write(acct, "logs", f"{std}/execution.log", b"started\n")
    files_double.path(acct, "logs", f"{std}/counters").mkdir()

    loc = share_location(acct, "logs", std)
    store = open_store(loc, key(azurite), env(azurite, files_double))
    entries = store.list(loc, expiry_minutes=60)
    assert [(e.name, e.is_directory, e.size) for e in entries] == [
        ("counters", True, None),
        ("execution.log", False, 8),
        ("stderr.txt", False, 0),
        ("stdout.txt", False, 24),
    ]
    stdout = entries[3]
    assert stdout.last_modified is not None and stdout.download_url is not None
    assert fetch(stdout.download_url) == (200, b"Finished Epoch[1 of 40]\n")
    assert fetch(stdout.download_url, {"Range": "bytes=9-13"}) == (206, b"Epoch")
    q = parse_qs(urlsplit(stdout.download_url).query)
    assert q["sp"] == ["r"] and q["sr"] == ["f"]
    assert fetch(stdout.download_url.replace("stdout.txt", "execution.log"))[0] == 403
    # Everything the SDK sent was signed with the key; the URLs were used with the SAS.
    assert {(r.auth, r.status) for r in files_double.recorded() if r.auth == "sharedkey"} == {
        ("sharedkey", 200)
    }


def test_share_errors_users_hit(azurite: Blob, files_double: AzureFilesDouble) -> None:
    acct = azurite.account
    files_double.create_share(acct, "logs")
    files_double.write(acct, "logs", "d/stdout.txt", b"abc")
    e = env(azurite, files_double)
    loc = share_location(acct, "logs", "d")
    store = open_store(loc, key(azurite), e)
    with pytest.raises(StorageFileNotFound):
        store.list(share_location(acct, "logs", "nodir"), None)
    with pytest.raises(StorageFileNotFound):
        store.size(share_location(acct, "logs", "d/stderr.txt"))
    with pytest.raises(StorageError, match="the share does not exist"):
        store.list(share_location(acct, "noshare", "d"), None)

    files_double.set_keys(acct, [base64.b64encode(b"rotated-key").decode()])
    with pytest.raises(
        CredentialsRefused, match=r"refused the credentials from test key \(AuthenticationFailed\)"
    ):
        store.size(share_location(acct, "logs", "d/stdout.txt"))

    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)
    sas = generate_share_sas(
        acct, "logs", account_key=base64.b64encode(b"rotated-key").decode(),
        permission=ShareSasPermissions(read=True, list=True), expiry=past,
    )  # fmt: skip
    expired = open_store(loc, Credential(acct, "Secret ws/s", sas_token=sas), e)
    with pytest.raises(CredentialsRefused, match="the SAS token from Secret ws/s expired at"):
        expired.list(loc, None)


class StaticToken:
    """A bearer token as DefaultAzureCredential would return one (an unsigned JWT with storage claims)."""

    def __init__(self) -> None:
        now = int(time.time())

        def part(d: dict[str, Any]) -> str:
            return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()

        tenant = "72f988bf-0000-4000-8000-00000000d0b1"
        claims = {
            "aud": "https://storage.azure.com",
            "iss": f"https://sts.windows.net/{tenant}/",
            "tid": tenant,
            "oid": str(uuid.uuid4()),
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + 3600,
        }
        self.token = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.x"
        self.expires = now + 3600

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, self.expires)


def test_a_login_lists_azure_files_through_the_sdk_without_urls(
    azurite: Blob, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = StaticToken()
    with AzureFilesDouble(
        tmp_path / "tls", {azurite.account: [azurite.key]}, tls_dir=tmp_path / "ca"
    ) as files:
        files.tokens.add(token.token)
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(files.ca_file))
        files.create_share(azurite.account, "logs")
        files.write(azurite.account, "logs", "d/stdout.txt", b"via a token")
        loc = share_location(azurite.account, "logs", "d")
        store = open_store(loc, Credential(azurite.account, "login", token=token), env(azurite, files))
        entries = store.list(loc, expiry_minutes=60)
        assert [(e.name, e.size, e.download_url) for e in entries] == [("stdout.txt", 11, None)]
        assert store.read(loc.child("stdout.txt"), 4, 7) == b"a token"
        assert {r.auth for r in files.recorded()} == {"bearer"}


def test_a_login_signs_blob_urls_with_a_user_delegation_key(
    azurite_oauth: Blob, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(azurite_oauth.ca_file))
    container = f"ud{uuid.uuid4().hex[:8]}"
    azurite_oauth.container(container)
    azurite_oauth.service().get_blob_client(container, "o/model.dnn").upload_blob(b"weights")
    loc = blob_location(azurite_oauth, container, "o")
    store = open_store(
        loc, Credential(azurite_oauth.account, "login", token=StaticToken()), env(azurite_oauth)
    )
    (entry,) = store.list(loc, expiry_minutes=10)
    assert entry.download_url is not None
    q = parse_qs(urlsplit(entry.download_url).query)
    assert q["sp"] == ["r"] and "skoid" in q, "a user-delegation SAS, not a key-signed one"
    assert fetch(entry.download_url, ca=azurite_oauth.ca_file) == (200, b"weights")


# ---- streaming a growing file ----------------------------------------------------------------------


class Job:
    """The job's state as the stream sees it, set by the test's writer."""

    def __init__(self) -> None:
        self.state = "running"

    def __call__(self) -> str:
        return self.state


def run_follow(
    loc: StorageLocation, open_: Any, job: Job, waiting: threading.Event | None = None
) -> tuple[bytes, list[str]]:
    out = bytearray()
    logs: list[str] = []

    def log(line: str) -> None:
        logs.append(line)
        if waiting is not None and "was not found" in line:
            waiting.set()

    Follow(loc, open_store=open_, job_state=job, write=out.extend, log=log, interval=0.2).run()
    return bytes(out), logs


def test_stream_follows_a_growing_blob_to_the_end(azurite: Blob) -> None:
    container = f"st{uuid.uuid4().hex[:8]}"
    azurite.container(container)
    blob = azurite.service().get_blob_client(container, f"{SEG}/stdouterr/stdout.txt")
    loc = blob_location(azurite, container, f"{SEG}/stdouterr/stdout.txt")
    job = Job()
    lines = [f"Finished Epoch[{i} of 12]: loss = 0.{i:03d}\n".encode() for i in range(1, 13)]

    waiting = threading.Event()

    def write_as_the_job_would() -> None:
        if not waiting.wait(60):  # the stream must be looking for the file before the job writes it
            job.state = "failed"
            return
        # blobfuse uploads the whole file when it is flushed or closed
        content = b""
        for line in lines:
            content += line
            blob.upload_blob(content, overwrite=True)
            time.sleep(0.15)
        content += b"Final Results: errs = 0.62%\n"
        blob.upload_blob(content, overwrite=True)  # the last line, as the job ends
        job.state = "succeeded"

    writer = threading.Thread(target=write_as_the_job_would)
    writer.start()
    out, logs = run_follow(loc, lambda renew: open_store(loc, key(azurite), env(azurite)), job, waiting)
    writer.join()
    assert out == b"".join(lines) + b"Final Results: errs = 0.62%\n"
    assert logs[0].startswith('The file "stdout.txt" was not found')


def test_stream_reads_ranges_and_survives_a_key_rotation(
    azurite: Blob, files_double: AzureFilesDouble
) -> None:
    acct = azurite.account
    files_double.create_share(acct, "logs")
    path = f"{SEG}/stdouterr/stderr.txt"
    loc = share_location(acct, "logs", path)
    secret = {"key": azurite.key}  # what the job's Secret holds now
    new_key = base64.b64encode(b"the key after rotation").decode()
    job = Job()

    def opener(renew: bool) -> Store:
        return open_store(
            loc, Credential(acct, "Secret ws/storage", key=secret["key"]), env(azurite, files_double)
        )

    def write_as_the_job_would() -> None:
        for i in range(6):
            files_double.write(acct, "logs", path, f"line {i}\n".encode(), append=True)
            time.sleep(0.25)
            if i == 2:  # the account key is rotated and the Secret updated, mid-stream
                files_double.set_keys(acct, [new_key])
                secret["key"] = new_key
        files_double.write(acct, "logs", path, b"tail\n", append=True)
        job.state = "failed"

    writer = threading.Thread(target=write_as_the_job_would)
    writer.start()
    out, logs = run_follow(loc, opener, job)
    writer.join()
    assert out == b"".join(f"line {i}\n".encode() for i in range(6)) + b"tail\n"
    assert any("renewing the credentials" in line for line in logs)
    reads = [r for r in files_double.recorded() if r.method == "GET" and r.status == 206]
    assert reads and all(r.range and r.range.startswith("bytes=") for r in reads)
    starts = [int(r.range.removeprefix("bytes=").split("-")[0]) for r in reads if r.range]
    assert starts == sorted(starts) and starts[0] == 0 and len(set(starts)) == len(starts), (
        "only new bytes read"
    )
