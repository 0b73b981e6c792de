"""Which credentials `kubectl batchai` uses for a storage account, in this order:

1. a key the user gives: `--storage-account-key-file`, else the environment (AZURE_BATCHAI_STORAGE_KEY,
   for AZURE_BATCHAI_STORAGE_ACCOUNT when that is set, as az read them); never a command-line value;
2. the job's storage Secret (the mount's `credentials.secretRef`), when the caller may read it:
   `azurestorageaccountkey`, or `azurestorageaccountsastoken` (reads only, no download URLs);
3. the caller's Azure login (`DefaultAzureCredential`: az login, workload identity, managed identity);
4. a prompt, when a person is at the terminal.

`--auth-mode key` skips 3, `--auth-mode login` uses only 3. The caller's inputs come in as functions, so
this module decides and the CLI does the I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from azure.core.credentials import TokenCredential

from ..names import ENV_STORAGE_ACCOUNT, ENV_STORAGE_KEY, SECRET_ACCOUNT_KEY, SECRET_ACCOUNT_NAME
from .access import Credential
from .errors import NoCredentials
from .locations import MountRef

SECRET_SAS_TOKEN = "azurestorageaccountsastoken"
STORAGE_SCOPE = "https://storage.azure.com/.default"

AuthMode = Literal["auto", "key", "login"]


@dataclass
class SecretRead:
    """A Secret's decoded data, or why it could not be read."""

    data: dict[str, str] | None
    problem: str = ""


@dataclass
class CredentialSources:
    """Where credentials may come from, for one command."""

    namespace: str
    read_secret: Callable[[str], SecretRead]
    environ: Mapping[str, str]
    key_file: Path | None = None
    account_name: str | None = None  # --storage-account-name: the account the key file/env key is for
    prompt: Callable[[str], str] | None = None  # None when nobody is at the terminal
    login: Callable[[], TokenCredential] | None = None  # DefaultAzureCredential's factory
    auth_mode: AuthMode = "auto"
    tried: list[str] = field(default_factory=list)

    def resolve(self, ref: MountRef) -> Credential:
        """Credentials for the mount's storage account; NoCredentials saying what was tried."""
        account = ref.account_name
        self.tried = []
        if self.auth_mode != "login":
            found = self._given_key(account) or self._secret(ref)
            if found is not None:
                return found
        if self.auth_mode != "key":
            found = self._login(account)
            if found is not None:
                return found
        if self.auth_mode != "login" and self.prompt is not None:
            key = self.prompt(f"Key of storage account {account}: ").strip()
            if key:
                return Credential(account, "the key typed at the prompt", key=key)
            self.tried.append("no key typed at the prompt")
        hint = (
            "pass --storage-account-key-file, set AZURE_BATCHAI_STORAGE_KEY, or sign in to Azure (az login)"
            if self.auth_mode == "auto"
            else "pass --storage-account-key-file or set AZURE_BATCHAI_STORAGE_KEY"
            if self.auth_mode == "key"
            else "sign in to Azure (az login) with a data role on the account"
        )
        raise NoCredentials(f"no credentials for storage account {account} ({'; '.join(self.tried)}): {hint}")

    def _given_key(self, account: str) -> Credential | None:
        target = self.account_name or self.environ.get(ENV_STORAGE_ACCOUNT) or None
        if target is not None and target != account:
            return None
        if self.key_file is not None:
            try:
                key = self.key_file.read_text().strip()
            except OSError as exc:
                raise NoCredentials(
                    f"cannot read --storage-account-key-file {self.key_file}: {exc.strerror}"
                ) from None
            if not key:
                raise NoCredentials(f"--storage-account-key-file {self.key_file} is empty")
            return Credential(account, f"--storage-account-key-file {self.key_file}", key=key)
        key = self.environ.get(ENV_STORAGE_KEY, "").strip()
        if key:
            return Credential(account, ENV_STORAGE_KEY, key=key)
        return None

    def _secret(self, ref: MountRef) -> Credential | None:
        secret_ref = ref.credentials.secret_ref
        if secret_ref is None:
            self.tried.append("the mount uses workload identity, not a Secret")
            return None
        where = f"Secret {self.namespace}/{secret_ref.name}"
        read = self.read_secret(secret_ref.name)
        if read.data is None:
            self.tried.append(read.problem or f"{where} cannot be read")
            return None
        named = read.data.get(SECRET_ACCOUNT_NAME)
        if named and named != ref.account_name:
            self.tried.append(f"{where} is for storage account {named}")
            return None
        if read.data.get(SECRET_ACCOUNT_KEY):
            return Credential(ref.account_name, where, key=read.data[SECRET_ACCOUNT_KEY].strip())
        if read.data.get(SECRET_SAS_TOKEN):
            return Credential(ref.account_name, where, sas_token=read.data[SECRET_SAS_TOKEN].strip())
        self.tried.append(f"{where} has neither {SECRET_ACCOUNT_KEY} nor {SECRET_SAS_TOKEN}")
        return None

    def _login(self, account: str) -> Credential | None:
        if self.login is None:
            return None
        try:
            token = self.login()
            token.get_token(STORAGE_SCOPE)
        except Exception as exc:  # azure-identity raises several types; all mean "no login here"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            self.tried.append(f"no Azure login ({first[:200]})")
            return None
        return Credential(account, "your Azure login (DefaultAzureCredential)", token=token)
