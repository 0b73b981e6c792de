"""TEST DOUBLE (not Azure): a minimal local HTTPS stand-in for the Azure Resource Manager calls the
operator makes to scale AKS agent pools, plus the Microsoft Entra token endpoint that workload identity
uses. It records every request so tests can assert exactly which updates were sent.

Served on 127.0.0.1 with TLS (azure-core refuses bearer tokens over plain http, and azure-identity
only accepts https authorities), using a throw-away CA written next to the double; point clients at
it with `connection_verify=<ca_file>` or, for a subprocess, `SSL_CERT_FILE=<ca_file>`.

Endpoints (as the real services shape them, only as far as the SDKs need):
  POST /<tenant>/oauth2/v2.0/token                     client-assertion grant -> bearer token
  GET  /subscriptions/<s>/resourceGroups/<rg>/providers/Microsoft.ContainerService/
       managedClusters/<c>/agentPools/<p>?api-version=  -> the pool, or 404 ResourceNotFound
  PUT  (same path)                                     -> 200/201, provisioningState Updating, plus an
       Azure-AsyncOperation header; AKS's checks on count/enableAutoScaling/minCount/maxCount
  GET  /subscriptions/<s>/providers/Microsoft.ContainerService/locations/<l>/operations/<id>
                                                       -> InProgress (`polls` times), then Succeeded

`fail(...)` makes the next matching request(s) fail with an ARM error body.
"""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import threading
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

POOL_PREFIX = "/providers/Microsoft.ContainerService/managedClusters/"
DEFAULT_TENANT = "72f988bf-0000-4000-8000-00000000d0b1"
DEFAULT_CLIENT_ID = "00000000-0000-4000-8000-0000000c11e7"
FEDERATED_TOKEN = "fake-federated-service-account-token"


@dataclass
class Recorded:
    """One request the double received (the Authorization header and client assertion are redacted)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorized: bool  # carried the bearer token the double issued

    @property
    def is_pool(self) -> bool:
        return POOL_PREFIX in self.path and "/agentPools/" in self.path


@dataclass
class _Failure:
    method: str
    path_contains: str
    status: int
    code: str
    message: str
    times: int


@dataclass
class _Operation:
    pool_path: str
    remaining: int


@dataclass
class ArmAgentPoolsDouble:
    """The double. Use as a context manager (`with ArmAgentPoolsDouble(tmp) as arm:`) or start()/stop()."""

    workdir: Path
    tenant_id: str = DEFAULT_TENANT
    client_id: str = DEFAULT_CLIENT_ID
    federated_token: str = FEDERATED_TOKEN
    polls: int = 1  # InProgress answers before an operation succeeds
    retry_after: str = "0.2"
    location: str = "westeurope"
    requests: list[Recorded] = field(default_factory=list)
    pools: dict[str, dict[str, Any]] = field(default_factory=dict)  # pool path -> properties
    issued_tokens: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._operations: dict[str, _Operation] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.ca_file = self.workdir / "arm-double-ca.pem"
        self.token_file = self.workdir / "federated-token"

    # ---- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> ArmAgentPoolsDouble:
        self.workdir.mkdir(parents=True, exist_ok=True)
        cert_file, key_file = _write_certificates(self.workdir, self.ca_file)
        self.token_file.write_text(self.federated_token)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert_file, key_file)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        server.daemon_threads = True
        server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, name="arm-double", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> ArmAgentPoolsDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the double first"
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def env(self) -> dict[str, str]:
        """Environment for an operator process: workload identity against the double, ARM at the double."""
        return {
            "BATCHAI_ARM_ENDPOINT": self.url,
            "AZURE_AUTHORITY_HOST": self.url,
            "AZURE_TENANT_ID": self.tenant_id,
            "AZURE_CLIENT_ID": self.client_id,
            "AZURE_FEDERATED_TOKEN_FILE": str(self.token_file),
            "SSL_CERT_FILE": str(self.ca_file),
        }

    # ---- state --------------------------------------------------------------------------------------

    @staticmethod
    def pool_path(subscription: str, resource_group: str, cluster: str, pool: str) -> str:
        group = f"/subscriptions/{subscription}/resourceGroups/{resource_group}"
        return f"{group}{POOL_PREFIX}{cluster}/agentPools/{pool}"

    def add_pool(
        self, subscription: str, resource_group: str, cluster: str, pool: str, **properties: Any
    ) -> str:
        """Create an agent pool (properties in ARM camelCase; defaults look like an AKS GPU user pool)."""
        path = self.pool_path(subscription, resource_group, cluster, pool)
        props = {
            "count": 2,
            "vmSize": "Standard_NC6s_v3",
            "osType": "Linux",
            "mode": "User",
            "type": "VirtualMachineScaleSets",
            "enableAutoScaling": False,
            "orchestratorVersion": "1.33.2",
            "nodeImageVersion": "AKSUbuntu-2204gen2containerd-202606.01.0",
            "provisioningState": "Succeeded",
            "powerState": {"code": "Running"},
            "nodeTaints": ["sku=gpu:NoSchedule"],
        }
        props.update(properties)
        with self._lock:
            self.pools[path.lower()] = props
        return path

    def pool(self, path: str) -> dict[str, Any]:
        with self._lock:
            return json.loads(json.dumps(self.pools[path.lower()]))

    def fail(
        self, method: str, path_contains: str, status: int, code: str, message: str, times: int = 1
    ) -> None:
        """Make the next `times` requests with this method and path fragment fail with an ARM error."""
        with self._lock:
            self._failures.append(_Failure(method, path_contains, status, code, message, times))

    def puts(self, path: str | None = None) -> list[dict[str, Any]]:
        """Bodies of the agent-pool PUTs received (optionally for one pool), in order."""
        with self._lock:
            return [
                r.body
                for r in self.requests
                if r.method == "PUT" and r.is_pool and (path is None or r.path.lower() == path.lower())
            ]

    def pool_requests(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.is_pool]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    # ---- request handling (called from the server threads) -----------------------------------------

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for f in self._failures:
            if f.method == method and f.path_contains.lower() in path.lower() and f.times > 0:
                f.times -= 1
                return f
        return None

    def handle(
        self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes
    ) -> tuple[int, dict[str, str], Any]:
        parsed = urllib.parse.urlsplit(raw_path)
        path = parsed.path
        query = dict(urllib.parse.parse_qsl(parsed.query))
        with self._lock:
            if path.endswith("/oauth2/v2.0/token") and method == "POST":
                return self._token(path, raw_body)
            auth = headers.get("authorization", "")
            authorized = auth.startswith("Bearer ") and auth[7:] in self.issued_tokens
            body: Any = None
            if raw_body:
                try:
                    body = json.loads(raw_body)
                except ValueError:
                    body = raw_body.decode(errors="replace")
            self.requests.append(Recorded(method, path, query, body, authorized))
            if not authorized:
                return _arm_error(
                    401, "InvalidAuthenticationToken", "The access token is missing or invalid."
                )
            failure = self._take_failure(method, path)
            if failure is not None:
                return _arm_error(failure.status, failure.code, failure.message)
            if "/operations/" in path and method == "GET":
                return self._operation(path)
            if POOL_PREFIX in path and "/agentPools/" in path:
                if method == "GET":
                    return self._get_pool(path)
                if method == "PUT":
                    return self._put_pool(path, body)
            return _arm_error(404, "NotFound", f"The double does not serve {method} {path}")

    def _token(self, path: str, raw_body: bytes) -> tuple[int, dict[str, str], Any]:
        form = dict(urllib.parse.parse_qsl(raw_body.decode()))
        tenant = path.strip("/").split("/")[0]
        recorded = {k: ("***" if k == "client_assertion" else v) for k, v in form.items()}
        self.requests.append(Recorded("POST", path, {}, recorded, authorized=False))
        if (
            tenant != self.tenant_id
            or form.get("client_id") != self.client_id
            or form.get("client_assertion") != self.federated_token
        ):
            return (
                400,
                {},
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS700213: no matching federated identity",
                },
            )
        token = _access_token(form.get("scope", ""), tenant, self.client_id)
        self.issued_tokens.append(token)
        return (
            200,
            {},
            {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": token},
        )

    def _resource(self, path: str, props: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": path,
            "name": path.rsplit("/", 1)[-1],
            "type": "Microsoft.ContainerService/managedClusters/agentPools",
            "properties": props,
        }

    def _get_pool(self, path: str) -> tuple[int, dict[str, str], Any]:
        props = self.pools.get(path.lower())
        if props is None:
            return _arm_error(404, "ResourceNotFound", f"Agent pool {path.rsplit('/', 1)[-1]} was not found.")
        return 200, {}, self._resource(path, props)

    def _put_pool(self, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
        props = body.get("properties") if isinstance(body, dict) else None
        if not isinstance(props, dict):
            return _arm_error(400, "InvalidParameter", "The request body must have properties.")
        problem = _validate_scale(props)
        if problem:
            return _arm_error(400, "InvalidParameter", problem)
        existing = self.pools.get(path.lower())
        stored = {k: v for k, v in props.items() if v is not None}
        for k in ("nodeImageVersion", "currentOrchestratorVersion"):
            if existing and k in existing:
                stored[k] = existing[k]
        stored["provisioningState"] = "Updating" if existing else "Creating"
        self.pools[path.lower()] = stored
        op_id = uuid.uuid4().hex
        self._operations[op_id] = _Operation(path.lower(), self.polls)
        sub = path.split("/")[2]
        op_url = (
            f"{self.url}/subscriptions/{sub}/providers/Microsoft.ContainerService/locations/{self.location}"
            f"/operations/{op_id}?api-version=2017-08-31"
        )
        headers = {"Azure-AsyncOperation": op_url, "Retry-After": self.retry_after}
        return (200 if existing else 201), headers, self._resource(path, stored)

    def _operation(self, path: str) -> tuple[int, dict[str, str], Any]:
        op_id = path.rsplit("/", 1)[-1]
        op = self._operations.get(op_id)
        if op is None:
            return _arm_error(404, "NotFound", "No such operation.")
        if op.remaining > 0:
            op.remaining -= 1
            return 200, {"Retry-After": self.retry_after}, {"name": op_id, "status": "InProgress"}
        pool = self.pools.get(op.pool_path)
        if pool is not None:
            pool["provisioningState"] = "Succeeded"
        return 200, {}, {"name": op_id, "status": "Succeeded"}


def _access_token(scope: str, tenant: str, client_id: str) -> str:
    """An unsigned JWT shaped as Entra ID issues them (audience from the scope, issuer, tenant, object id),
    so services that read the claims without checking a signature (Azurite's `--oauth basic`) accept it."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(datetime.datetime.now(datetime.UTC).timestamp())
    audience = scope.split(" ")[0].removesuffix("/.default") or "https://management.azure.com"
    claims = {
        "aud": audience,
        "iss": f"https://sts.windows.net/{tenant}/",
        "tid": tenant,
        "oid": client_id,
        "appid": client_id,
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.double"


def _validate_scale(props: dict[str, Any]) -> str | None:
    """AKS's checks on the scale fields of an agent pool PUT."""
    count = props.get("count")
    if not isinstance(count, int) or count < 0:
        return "count must be a non-negative integer."
    if props.get("enableAutoScaling"):
        lo, hi = props.get("minCount"), props.get("maxCount")
        if not isinstance(lo, int) or not isinstance(hi, int):
            return "minCount and maxCount are required when enableAutoScaling is true."
        if lo > hi:
            return "minCount must be less than or equal to maxCount."
        if not lo <= count <= hi:
            return "count must be between minCount and maxCount when enableAutoScaling is true."
    elif props.get("minCount") is not None or props.get("maxCount") is not None:
        return "minCount and maxCount must be null when enableAutoScaling is false."
    return None


def _arm_error(status: int, code: str, message: str) -> tuple[int, dict[str, str], Any]:
    return status, {}, {"error": {"code": code, "message": message}}


def _handler_for(double: ArmAgentPoolsDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = double.handle(self.command, self.path, headers, raw)
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-ms-request-id", uuid.uuid4().hex)
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        do_GET = _serve
        do_PUT = _serve
        do_POST = _serve
        do_PATCH = _serve
        do_DELETE = _serve

    return Handler


def _write_certificates(workdir: Path, ca_file: Path) -> tuple[Path, Path]:
    """A throw-away CA (written to ca_file) and a server certificate for 127.0.0.1 signed by it."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "batchai test double CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file = workdir / "arm-double-cert.pem"
    key_file = workdir / "arm-double-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@contextmanager
def running(workdir: Path, **kwargs: Any) -> Iterator[ArmAgentPoolsDouble]:
    with ArmAgentPoolsDouble(workdir, **kwargs) as double:
        yield double
