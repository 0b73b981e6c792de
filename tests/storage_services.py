"""Storage for tests: Azurite (the real Azure Blob emulator, npm, started by hack/azurite) and the Azure
Files double (tests/doubles/azure_files.py). Fixtures are registered by the conftests that import them.

- `azurite`: the blob service on BATCHAI_AZURITE_BLOB_PORT (hack/azurite up; left as found).
- `azurite_oauth`: a second Azurite over TLS with `--oauth basic`, for bearer tokens and user-delegation
  SAS; clients trust its throw-away CA through REQUESTS_CA_BUNDLE / SSL_CERT_FILE.
- `files_double`: the Azure Files double serving a temporary directory, same account and key as Azurite
  (the seed job uses one storage account for its shares and its container).
"""

from __future__ import annotations

import shlex
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from doubles.arm_agentpools import _write_certificates
from doubles.azure_files import AzureFilesDouble

REPO = Path(__file__).resolve().parents[1]
AZURITE = REPO / "hack" / "azurite"


@dataclass(frozen=True)
class Blob:
    """A running Azurite blob service."""

    endpoint: str  # template with {account}, as BATCHAI_STORAGE_BLOB_ENDPOINT
    account: str
    key: str
    ca_file: Path | None = None

    @property
    def url(self) -> str:
        return self.endpoint.replace("{account}", self.account)

    def service(self) -> BlobServiceClient:
        verify = str(self.ca_file) if self.ca_file else True
        return BlobServiceClient(
            self.url,
            credential={"account_name": self.account, "account_key": self.key},
            connection_verify=verify,
        )

    def container(self, name: str) -> None:
        try:
            self.service().create_container(name)
        except Exception as exc:
            if "ContainerAlreadyExists" not in str(exc):
                raise


def _env_of(script_output: str) -> dict[str, str]:
    env = {}
    for line in script_output.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0]
    return env


def running_azurite() -> Blob:
    """The Azurite `hack/azurite up` started (the dev cluster's, for the real nodes' blob mounts)."""
    env = _env_of(subprocess.run([str(AZURITE), "env"], check=True, capture_output=True, text=True).stdout)
    return Blob(env["BATCHAI_STORAGE_BLOB_ENDPOINT"], env["AZURITE_ACCOUNT"], env["AZURITE_ACCOUNT_KEY"])


@pytest.fixture(scope="session")
def azurite() -> Iterator[Blob]:
    was_up = subprocess.run([str(AZURITE), "status"], capture_output=True).returncode == 0
    subprocess.run([str(AZURITE), "up"], check=True, stdin=subprocess.DEVNULL)
    env = _env_of(subprocess.run([str(AZURITE), "env"], check=True, capture_output=True, text=True).stdout)
    yield Blob(env["BATCHAI_STORAGE_BLOB_ENDPOINT"], env["AZURITE_ACCOUNT"], env["AZURITE_ACCOUNT_KEY"])
    if not was_up:
        subprocess.run([str(AZURITE), "down"], check=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def azurite_oauth(azurite: Blob, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Blob]:
    work = tmp_path_factory.mktemp("azurite-oauth")
    ca = work / "ca.pem"
    cert, key = _write_certificates(work, ca)
    binary = subprocess.run([str(AZURITE), "bin"], check=True, capture_output=True, text=True).stdout.strip()
    port = _free_port()
    log = (work / "azurite.log").open("wb")
    args = [binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(work / "data")]
    args += [
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--oauth",
        "basic",
        "--cert",
        str(cert),
        "--key",
        str(key),
    ]
    proc = subprocess.Popen(
        args,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    ctx = ssl.create_default_context(cafile=str(ca))
    while True:
        try:
            urllib.request.urlopen(f"{url}/{azurite.account}?comp=list", context=ctx, timeout=2)
            break
        except urllib.error.HTTPError:
            break  # any HTTP answer: it is up
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(
                    f"azurite (oauth) did not start: {(work / 'azurite.log').read_text()[-2000:]}"
                ) from None
            time.sleep(0.3)
    # Clients trust the CA per test (monkeypatch REQUESTS_CA_BUNDLE, or a subprocess's env): setting it
    # here for the whole session would break other doubles' TLS.
    yield Blob(f"{url}/{{account}}", azurite.account, azurite.key, ca)
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def files_double(azurite: Blob, tmp_path: Path) -> Iterator[AzureFilesDouble]:
    with AzureFilesDouble(tmp_path / "shares", {azurite.account: [azurite.key]}) as double:
        yield double
