"""Key material out of a job.json or cluster.json into Secrets (pure).

A storage mount without credentials uses the storage account key (az's --storage-account-key), which
goes into a Secret (`azurestorageaccountname` / `azurestorageaccountkey`, as the Azure Files and Blob CSI
drivers read them) that the mount references. Inline keys, `secrets[].value` and registry passwords are
moved into Secrets too: no key material ever stays in the TrainingJob or BatchAICluster. Warnings name
accounts, Secrets and field paths, never a value.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from ...names import (
    ENV_STORAGE_ACCOUNT,
    ENV_STORAGE_KEY,
    LABEL_MANAGED_BY,
    MANAGED_BY_CLI,
    SECRET_ACCOUNT_KEY,
    SECRET_ACCOUNT_NAME,
)
from .document import PLACEHOLDER, ConversionError, StorageOptions, Warn, dns_label

DOCKER_HUB = "https://index.docker.io/v1/"


def storage_account(options: StorageOptions, environ: Mapping[str, str]) -> tuple[str | None, str | None]:
    """(account, key) as az took them: the options, else AZURE_BATCHAI_STORAGE_ACCOUNT / _KEY."""
    account = options.storage_account_name or environ.get(ENV_STORAGE_ACCOUNT) or None
    key = options.storage_account_key or environ.get(ENV_STORAGE_KEY) or None
    return account, key


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _account_from_url(url: str) -> str | None:
    host = urlparse(url).netloc
    return host.split(".", 1)[0] if "." in host else None


class SecretsBuilder:
    """Collects the Secrets one object needs, named <prefix>-storage-<account>, <prefix>-secrets,
    <prefix>-registry, and labelled `owner_label: owner` so `job delete` and `kubectl get -l` find them."""

    def __init__(
        self,
        options: StorageOptions,
        environ: Mapping[str, str],
        prefix: str,
        owner_label: str,
        owner: str,
        warn: Warn,
    ) -> None:
        self.opts = options
        self.account, self.key = storage_account(options, environ)
        self.prefix = prefix
        self.owner_label = owner_label
        self.owner = owner
        self.warn = warn
        self.storage: dict[str, tuple[str, str | None]] = {}  # account -> (Secret name, key or None)
        self.secret_values: dict[str, str] = {}
        self.registry_secret: dict[str, Any] | None = None

    # -- storage mounts --

    def mounts(self, holder: dict[str, Any]) -> None:
        """The storage mounts of `holder["mountVolumes"]` (a job's properties or a cluster's nodeSetup):
        each account name filled in, credentials replaced by a secretRef."""
        volumes = holder.get("mountVolumes")
        if not isinstance(volumes, dict):
            return
        shares = volumes.get("azureFileShares") or []
        blobs = volumes.get("azureBlobFileSystems") or []
        for i, ref in enumerate(shares):
            if not ref.get("accountName"):
                account = _account_from_url(str(ref.get("azureFileUrl") or ""))
                if not account:
                    raise ConversionError(
                        f"mountVolumes.azureFileShares[{i}]: no accountName and none in azureFileUrl"
                    )
                ref["accountName"] = account
        for i, ref in enumerate(blobs):
            if not ref.get("accountName"):
                raise ConversionError(f"mountVolumes.azureBlobFileSystems[{i}]: no accountName")

        accounts = sorted({str(r["accountName"]) for r in [*shares, *blobs]})
        primary = self.account
        if primary is None and len(accounts) == 1:
            primary = accounts[0]
        if self.opts.storage_secret and primary is None and accounts:
            raise ConversionError(
                f"--storage-secret is ambiguous with several storage accounts ({', '.join(accounts)}): "
                "pass --storage-account-name too"
            )
        if self.key and primary is None and accounts:
            self.warn(
                f"the storage key given cannot be matched to one of the accounts {', '.join(accounts)}: "
                "pass --storage-account-name"
            )
        for group, refs in (("azureFileShares", shares), ("azureBlobFileSystems", blobs)):
            for i, ref in enumerate(refs):
                self._credentials(f"mountVolumes.{group}[{i}]", ref, primary)

    def _credentials(self, where: str, ref: dict[str, Any], primary: str | None) -> None:
        account = str(ref["accountName"])
        creds = ref.get("credentials") or {}
        if not isinstance(creds, dict):
            raise ConversionError(f"{where}.credentials must be an object")
        if creds.get("secretRef") or creds.get("workloadIdentity"):
            kept = {k: v for k, v in creds.items() if k in ("secretRef", "workloadIdentity")}
            if set(creds) - set(kept):
                self.warn(f"{where}: ignored inline credentials; secretRef/workloadIdentity is used")
            ref["credentials"] = kept
            return
        key: str | None = None
        if creds.get("accountKey"):
            key = str(creds["accountKey"])
            if key == f"<{ENV_STORAGE_KEY}>":
                if not self.key:
                    raise ConversionError(
                        f"{where}: the job uses <{ENV_STORAGE_KEY}>: pass --storage-account-key-file "
                        f"or set {ENV_STORAGE_KEY}"
                    )
                key = self.key
            elif PLACEHOLDER.fullmatch(key):
                raise ConversionError(
                    f"{where}: unresolved placeholder in credentials.accountKey: pass "
                    "--storage-account-key-file or --placeholder NAME=VALUE"
                )
        elif creds.get("accountKeySecretReference"):
            self.warn(f"{where}: the key of account {account!r} is in Key Vault, which is not read here")
        elif account == primary:
            key = self.key

        if account == primary and self.opts.storage_secret:
            secret = self.opts.storage_secret
        else:
            secret = dns_label(f"{self.prefix}-storage-{account}", 253)
        known = self.storage.get(account)
        if known is not None:
            if key is not None and known[1] is not None and key != known[1]:
                raise ConversionError(
                    f"{where}: a different key for storage account {account!r} than another mount"
                )
            key = key if key is not None else known[1]
        self.storage[account] = (secret, key)
        ref["credentials"] = {"secretRef": {"name": secret}}

    # -- secrets[] and the registry --

    def values(self, holder: dict[str, Any]) -> None:
        """`holder["secrets"]` (a job's or a setup task's): values into <prefix>-secrets."""
        for i, item in enumerate(holder.get("secrets") or []):
            if not isinstance(item, dict) or item.get("secretRef"):
                continue
            name = str(item.get("name") or "")
            if "value" in item:
                value = item.pop("value")
                self.secret_values[name] = "" if value is None else str(value)
                item["secretRef"] = {"name": f"{self.prefix}-secrets", "key": name}
            elif "valueSecretReference" in item:
                item.pop("valueSecretReference")
                item["secretRef"] = {"name": f"{self.prefix}-keyvault", "key": name}
                self.warn(
                    f"secrets[{i}] ({name}): its value is in Key Vault, which is not read here; "
                    f"create Secret {self.prefix}-keyvault with key {name} before the job starts"
                )

    def registry(self, props: dict[str, Any]) -> None:
        """containerSettings.imageSourceRegistry.credentials: the password into a dockerconfigjson."""
        registry = (props.get("containerSettings") or {}).get("imageSourceRegistry") or {}
        creds = registry.get("credentials")
        if not isinstance(creds, dict) or creds.get("secretRef"):
            return
        secret = f"{self.prefix}-registry"
        server = registry.get("serverUrl") or DOCKER_HUB
        username = creds.get("username")
        if creds.get("password") is not None:
            if not username:
                raise ConversionError(
                    "containerSettings.imageSourceRegistry.credentials: a password needs a username"
                )
            password = str(creds.pop("password"))
            auth = _b64(f"{username}:{password}")
            config = {"auths": {server: {"username": username, "password": password, "auth": auth}}}
            self.registry_secret = {
                "name": secret,
                "data": {".dockerconfigjson": _b64(json.dumps(config, separators=(",", ":")))},
            }
        elif creds.get("passwordSecretReference") is not None:
            creds.pop("passwordSecretReference")
            self.warn(
                "containerSettings.imageSourceRegistry.credentials: the password is in Key Vault, which is "
                f"not read here; create it with: kubectl create secret docker-registry {secret} "
                f"--docker-server={server} --docker-username={username or '<user>'} --docker-password=..."
            )
        else:
            return
        creds["secretRef"] = {"name": secret}

    # -- output --

    def _meta(self, name: str) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "name": name,
            "labels": {LABEL_MANAGED_BY: MANAGED_BY_CLI, self.owner_label: self.owner},
        }
        if self.opts.namespace:
            meta["namespace"] = self.opts.namespace
        return meta

    def manifests(self) -> tuple[list[dict[str, Any]], dict[str, str]]:
        """(the Secrets, account -> Secret referenced without a key to put in it)."""
        out: list[dict[str, Any]] = []
        missing: dict[str, str] = {}
        user_secret = self.opts.storage_secret
        for account, (secret, key) in sorted(self.storage.items()):
            if key is None:
                missing[account] = secret
                if secret == user_secret:
                    self.warn(
                        f"storage account {account!r}: using Secret {secret!r}, which must already exist"
                    )
                else:
                    self.warn(
                        f"storage account {account!r}: no key known, so Secret {secret!r} is referenced "
                        "but not generated; pass --storage-account-key-file (with --storage-account-name "
                        f"{account}) or create it: kubectl create secret generic {secret} "
                        f"--from-literal={SECRET_ACCOUNT_NAME}={account} "
                        f"--from-literal={SECRET_ACCOUNT_KEY}=..."
                    )
                continue
            data = {SECRET_ACCOUNT_NAME: _b64(account), SECRET_ACCOUNT_KEY: _b64(key)}
            out.append(self._secret(secret, "Opaque", data))
        if self.secret_values:
            data = {k: _b64(v) for k, v in self.secret_values.items()}
            out.append(self._secret(f"{self.prefix}-secrets", "Opaque", data))
        if self.registry_secret is not None:
            name, data = self.registry_secret["name"], self.registry_secret["data"]
            out.append(self._secret(name, "kubernetes.io/dockerconfigjson", data))
        return out, missing

    def _secret(self, name: str, kind: str, data: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": self._meta(name),
            "type": kind,
            "data": data,
        }
