"""TEST DOUBLE (not Azure): a minimal local stand-in for the Azure Files REST API, exactly the calls
`kubectl batchai job file list/stream` make through azure-storage-file-share. No Azure Files emulator
exists (Azurite has none), so this serves a local directory tree as shares:

    <root>/<account>/<share>/<path>      served as   <endpoint>/<account>/<share>/<path>

the way a job's pods see the share through its SMB mount: a test (or hack/quickstart) "writes as the job
would" by writing files under the root, and the double serves them with their size and mtime.

Calls served (path-style URLs, as the SDK sends them to an IP endpoint, like Azurite):
  GET  ?restype=directory&comp=list[&prefix&marker&maxresults&include]  List Directories and Files
  HEAD|GET ?restype=directory                                         Get Directory Properties
  HEAD                                                                Get File Properties
  GET  [x-ms-range|Range: bytes=a-[b]]                                Get File (ranged: 206, 416)
Anything else is answered 400 UnsupportedOperation, so a new SDK call shows up as a failing test.

Authentication, checked as Azure does:
  - Shared Key (`Authorization: SharedKey <account>:<sig>`): the File service string-to-sign, against
    any of the account's current keys (`set_keys` rotates them: old keys stop working at once);
  - service SAS (`sv, sr=f|s, sp, se[, st], sig`): signature, time window (an expired SAS fails with
    AuthenticationFailed), resource (a file SAS opens only that file) and permission (r for reads, l
    for listings: AuthorizationPermissionMismatch otherwise);
  - Bearer tokens the test registered (`tokens`), with `x-ms-file-request-intent: backup` required, as
    Azure Files requires for OAuth. Azure refuses bearer tokens over http; so do the SDKs, so a
    double serving tokens runs with TLS (`tls_dir`).
Requests are recorded (method, path, query, range, auth scheme) for assertions.

Run standalone (hack/quickstart does): python tests/doubles/azure_files.py --root DIR --port N
--account NAME:KEY (repeatable).
"""

from __future__ import annotations

import argparse
import base64
import datetime
import email.utils
import hashlib
import hmac
import ssl
import threading
import urllib.parse
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

API_VERSION = "2026-06-06"


@dataclass
class Recorded:
    """One request the double answered."""

    method: str
    path: str  # decoded, without the query
    query: dict[str, str]  # the SAS signature is redacted
    range: str | None
    auth: str  # "sharedkey", "sas", "bearer" or "none"
    status: int


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.detail = status, code, message, detail


@dataclass
class AzureFilesDouble:
    """The double. `with AzureFilesDouble(root, {"acct": [key]}) as files:` or start()/stop()."""

    root: Path
    accounts: dict[str, list[str]]
    tokens: set[str] = field(default_factory=set)
    tls_dir: Path | None = None  # serve https with a throw-away CA written there (ca_file)
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.ca_file: Path | None = None

    # ---- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> AzureFilesDouble:
        self.root.mkdir(parents=True, exist_ok=True)
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self))
        server.daemon_threads = True
        if self.tls_dir is not None:
            from doubles.arm_agentpools import _write_certificates  # the same throw-away CA helper

            self.tls_dir.mkdir(parents=True, exist_ok=True)
            self.ca_file = self.tls_dir / "files-double-ca.pem"
            cert, key = _write_certificates(self.tls_dir, self.ca_file)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(cert, key)
            server.socket = ctx.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, name="azure-files-double", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> AzureFilesDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """The file endpoint template kubectl-batchai takes (BATCHAI_STORAGE_FILE_ENDPOINT)."""
        assert self._server is not None, "start() the double first"
        scheme = "https" if self.tls_dir is not None else "http"
        return f"{scheme}://127.0.0.1:{self._server.server_address[1]}/{{account}}"

    def account_url(self, account: str) -> str:
        return self.endpoint.replace("{account}", account)

    # ---- state (what the job's SMB mount would show) -----------------------------------------------

    def path(self, account: str, share: str, path: str = "") -> Path:
        """Where a share's file lives on disk; write there as the job would."""
        out = self.root / account / share / path.strip("/")
        out.resolve().relative_to(self.root.resolve())
        return out

    def create_share(self, account: str, share: str) -> Path:
        p = self.path(account, share)
        p.mkdir(parents=True, exist_ok=True)
        return p

    def write(self, account: str, share: str, path: str, data: bytes, append: bool = False) -> None:
        p = self.path(account, share, path)
        p.parent.mkdir(parents=True, exist_ok=True)
        with p.open("ab" if append else "wb") as f:
            f.write(data)

    def set_keys(self, account: str, keys: list[str]) -> None:
        """Rotate the account's keys; requests signed with a dropped key fail from now on."""
        with self._lock:
            self.accounts[account] = list(keys)

    def recorded(self) -> list[Recorded]:
        with self._lock:
            return list(self.requests)

    # ---- request handling ---------------------------------------------------------------------------

    def handle(
        self, method: str, raw_target: str, headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        raw_path, _, raw_query = raw_target.partition("?")
        query = {k.lower(): v for k, v in urllib.parse.parse_qsl(raw_query, keep_blank_values=True)}
        path = urllib.parse.unquote(raw_path)
        rng = headers.get("x-ms-range") or headers.get("range")
        auth = _scheme(headers, query)
        try:
            parts = path.strip("/").split("/", 2)
            if len(parts) < 2 or not parts[1]:
                raise _Refused(400, "UnsupportedOperation", "The double serves shares only.")
            account, share = parts[0], parts[1]
            rel = parts[2] if len(parts) > 2 else ""
            self._authenticate(method, raw_path, raw_query, query, headers, account, share, rel)
            status, out_headers, body = self._operation(method, query, rng, account, share, rel)
        except _Refused as r:
            status, out_headers, body = _error(r)
        redacted = {k: ("***" if k == "sig" else v) for k, v in query.items()}
        with self._lock:
            self.requests.append(Recorded(method, path, redacted, rng, auth, status))
        return status, out_headers, body

    # -- authentication --

    def _authenticate(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        query: dict[str, str],
        headers: dict[str, str],
        account: str,
        share: str,
        rel: str,
    ) -> None:
        with self._lock:
            keys = list(self.accounts.get(account, []))
            tokens = set(self.tokens)
        if not keys:
            raise _Refused(400, "InvalidUri", f"The double has no storage account {account}.")
        auth = headers.get("authorization", "")
        if auth.startswith("SharedKey "):
            name, _, sig = auth[len("SharedKey ") :].partition(":")
            string_to_sign = _shared_key_string(method, raw_path, raw_query, headers, name)
            if name != account or not any(_sign(k, string_to_sign) == sig for k in keys):
                raise _Refused(
                    403,
                    "AuthenticationFailed",
                    "Server failed to authenticate the request. Make sure the value of Authorization header "
                    "is formed correctly including the signature.",
                    "The MAC signature found in the HTTP request is not the same as any computed signature.",
                )
            return
        if auth.startswith("Bearer "):
            if auth[len("Bearer ") :] not in tokens:
                raise _Refused(401, "InvalidAuthenticationInfo", "Server failed to authenticate the request.")
            if headers.get("x-ms-file-request-intent", "").lower() != "backup":
                raise _Refused(
                    400, "MissingRequiredHeader", "x-ms-file-request-intent is required for OAuth requests."
                )
            return
        if "sig" in query:
            self._check_sas(method, query, keys, account, share, rel)
            return
        raise _Refused(401, "NoAuthenticationInformation", "Server failed to authenticate the request.")

    def _check_sas(
        self, method: str, query: dict[str, str], keys: list[str], account: str, share: str, rel: str
    ) -> None:
        sr = query.get("sr", "")
        if sr == "f":
            resource = f"/file/{account}/{share}/{rel}"
        elif sr == "s":
            resource = f"/file/{account}/{share}"
        else:
            raise _Refused(403, "AuthenticationFailed", "Signed resource (sr) must be f or s.")
        fields = ["sp", "st", "se"]
        string_to_sign = "\n".join(
            [*(query.get(f, "") for f in fields), resource, query.get("si", ""), query.get("sip", "")]
            + [query.get(f, "") for f in ("spr", "sv", "rscc", "rscd", "rsce", "rscl", "rsct")]
        )
        if not any(_sign(k, string_to_sign) == query["sig"] for k in keys):
            raise _Refused(
                403,
                "AuthenticationFailed",
                "Server failed to authenticate the request.",
                "Signature did not match.",
            )
        now = datetime.datetime.now(datetime.UTC)
        start = _iso(query["st"]) if query.get("st") else None
        expiry = _iso(query.get("se", ""))
        if expiry is None or now >= expiry or (start is not None and now < start):
            raise _Refused(
                403,
                "AuthenticationFailed",
                "Server failed to authenticate the request.",
                f"Signature not valid in the specified time frame: Start [{query.get('st', '')}] - "
                f"Expiry [{query.get('se', '')}] - Current [{email.utils.format_datetime(now, usegmt=True)}]",
            )
        listing = query.get("comp") == "list"
        if sr == "f" and listing:
            raise _Refused(403, "AuthorizationResourceTypeMismatch", "A file SAS cannot list a directory.")
        needed = "l" if listing else "r"
        if needed not in query.get("sp", "") or method not in ("GET", "HEAD"):
            raise _Refused(
                403,
                "AuthorizationPermissionMismatch",
                "This request is not authorized to perform this operation using this permission.",
            )

    # -- operations --

    def _operation(
        self, method: str, query: dict[str, str], rng: str | None, account: str, share: str, rel: str
    ) -> tuple[int, dict[str, str], bytes]:
        share_dir = self.root / account / share
        if not share_dir.is_dir():
            raise _Refused(404, "ShareNotFound", "The specified share does not exist.")
        target = share_dir / rel
        try:
            target.resolve().relative_to(share_dir.resolve())
        except ValueError:
            raise _Refused(400, "InvalidResourceName", "The path leaves the share.") from None
        restype, comp = query.get("restype"), query.get("comp")
        if restype == "directory" and comp == "list" and method == "GET":
            return self._list(target, share, rel, query)
        if restype == "directory" and comp is None and method in ("GET", "HEAD"):
            if not target.is_dir():
                raise _Refused(404, "ResourceNotFound", "The specified resource does not exist.")
            return 200, _properties(target, directory=True), b""
        if restype is None and comp is None and method in ("GET", "HEAD"):
            if not target.is_file():
                if not target.parent.is_dir():
                    raise _Refused(404, "ParentNotFound", "The specified parent path does not exist.")
                raise _Refused(404, "ResourceNotFound", "The specified resource does not exist.")
            if method == "HEAD":
                return 200, _properties(target, directory=False), b""
            return _read(target, rng)
        raise _Refused(400, "UnsupportedOperation", f"The double does not serve {method} {query}.")

    def _list(
        self, directory: Path, share: str, rel: str, query: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        if not directory.is_dir():
            raise _Refused(404, "ResourceNotFound", "The specified resource does not exist.")
        prefix = query.get("prefix", "")
        marker = query.get("marker", "")
        limit = int(query.get("maxresults") or 5000)
        timestamps = "timestamps" in query.get("include", "").lower()
        names = sorted(p.name for p in directory.iterdir() if p.name.startswith(prefix) and p.name >= marker)
        page, rest = names[:limit], names[limit:]
        entries = []
        for name in page:
            p = directory / name
            st = p.stat()
            props = (
                f"<Content-Length>{0 if p.is_dir() else st.st_size}</Content-Length>" if p.is_file() else ""
            )
            if timestamps:
                t = _iso_time(st.st_mtime)
                props += (
                    f"<CreationTime>{t}</CreationTime><LastAccessTime>{t}</LastAccessTime>"
                    f"<LastWriteTime>{t}</LastWriteTime><ChangeTime>{t}</ChangeTime>"
                    f"<Last-Modified>{_http_time(st.st_mtime)}</Last-Modified><Etag>{_etag(st)}</Etag>"
                )
            tag = "Directory" if p.is_dir() else "File"
            entries.append(
                f"<{tag}><FileId>{st.st_ino}</FileId><Name>{escape(name)}</Name>"
                f"<Properties>{props}</Properties></{tag}>"
            )
        body = (
            '<?xml version="1.0" encoding="utf-8"?>'
            f'<EnumerationResults ServiceEndpoint="http://127.0.0.1/" ShareName="{escape(share)}" '
            f'DirectoryPath="{escape(rel)}">'
            f"<Prefix>{escape(prefix)}</Prefix><Marker>{escape(marker)}</Marker><MaxResults>{limit}</MaxResults>"
            f"<DirectoryId>{directory.stat().st_ino}</DirectoryId>"
            f"<Entries>{''.join(entries)}</Entries>"
            f"<NextMarker>{escape(rest[0]) if rest else ''}</NextMarker></EnumerationResults>"
        ).encode()
        return 200, {"Content-Type": "application/xml"}, body


# ---- helpers --------------------------------------------------------------------------------------


def _scheme(headers: dict[str, str], query: dict[str, str]) -> str:
    auth = headers.get("authorization", "")
    if auth.startswith("SharedKey "):
        return "sharedkey"
    if auth.startswith("Bearer "):
        return "bearer"
    return "sas" if "sig" in query else "none"


def _sign(key: str, text: str) -> str:
    try:
        raw = base64.b64decode(key)
    except ValueError:
        return ""
    return base64.b64encode(hmac.new(raw, text.encode(), hashlib.sha256).digest()).decode()


def _shared_key_string(
    method: str, raw_path: str, raw_query: str, headers: dict[str, str], account: str
) -> str:
    """The File service's Shared Key string-to-sign (learn.microsoft.com: Authorize with Shared Key)."""
    length = headers.get("content-length", "")
    standard = [
        headers.get("content-encoding", ""),
        headers.get("content-language", ""),
        "" if length == "0" else length,
        headers.get("content-md5", ""),
        headers.get("content-type", ""),
        headers.get("date", ""),
        headers.get("if-modified-since", ""),
        headers.get("if-match", ""),
        headers.get("if-none-match", ""),
        headers.get("if-unmodified-since", ""),
        headers.get("range", ""),
    ]
    ms = sorted((k, v.strip()) for k, v in headers.items() if k.startswith("x-ms-"))
    canonical_headers = "".join(f"{k}:{v}\n" for k, v in ms)
    params: dict[str, list[str]] = {}
    for k, v in urllib.parse.parse_qsl(raw_query, keep_blank_values=True):
        params.setdefault(k.lower(), []).append(v)
    resource = f"/{account}{raw_path}" + "".join(
        f"\n{k}:{','.join(sorted(v))}" for k, v in sorted(params.items())
    )
    return "\n".join([method, *standard]) + "\n" + canonical_headers + resource


def _iso(text: str) -> datetime.datetime | None:
    try:
        return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _iso_time(ts: float) -> str:
    return datetime.datetime.fromtimestamp(ts, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0Z")


def _http_time(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def _etag(st: Any) -> str:
    return f'"0x{int(st.st_mtime_ns):X}{st.st_size:X}"'


def _properties(p: Path, directory: bool) -> dict[str, str]:
    st = p.stat()
    t = _iso_time(st.st_mtime)
    out = {
        "Last-Modified": _http_time(st.st_mtime),
        "ETag": _etag(st),
        "x-ms-file-attributes": "Directory" if directory else "Archive",
        "x-ms-file-creation-time": t,
        "x-ms-file-last-write-time": t,
        "x-ms-file-change-time": t,
        "x-ms-file-permission-key": "4066528134148476695*1",
        "x-ms-file-id": str(st.st_ino),
        "x-ms-file-parent-id": str(p.parent.stat().st_ino),
        "x-ms-server-encrypted": "true",
    }
    if not directory:
        out.update(
            {
                "x-ms-type": "File",
                "Content-Length": str(st.st_size),
                "Content-Type": "application/octet-stream",
            }
        )
    return out


def _read(p: Path, rng: str | None) -> tuple[int, dict[str, str], bytes]:
    data = p.read_bytes()
    size = len(data)
    headers = _properties(p, directory=False)
    headers["Accept-Ranges"] = "bytes"
    if not rng:
        return 200, headers, data
    spec = rng.removeprefix("bytes=")
    first_text, _, last_text = spec.partition("-")
    try:
        first = int(first_text)
        last = int(last_text) if last_text else size - 1
    except ValueError:
        raise _Refused(400, "InvalidHeaderValue", f"Invalid range {rng!r}.") from None
    if first >= size or first > last:
        raise _Refused(
            416, "InvalidRange", "The range specified is invalid for the current size of the resource."
        )
    last = min(last, size - 1)
    chunk = data[first : last + 1]
    headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    headers["Content-Length"] = str(len(chunk))
    return 206, headers, chunk


def _error(r: _Refused) -> tuple[int, dict[str, str], bytes]:
    detail = f"<AuthenticationErrorDetail>{escape(r.detail)}</AuthenticationErrorDetail>" if r.detail else ""
    body = (
        f'<?xml version="1.0" encoding="utf-8"?><Error><Code>{r.code}</Code>'
        f"<Message>{escape(r.message)}\nRequestId:{uuid.uuid4()}</Message>{detail}</Error>"
    ).encode()
    headers = {"Content-Type": "application/xml", "x-ms-error-code": r.code}
    if r.status == 416:
        headers["Content-Range"] = "bytes */*"
    return r.status, headers, body


def _handler_for(double: AzureFilesDouble) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = double.handle(self.command, self.path, headers)
            self.send_response(status)
            self.send_header("x-ms-request-id", str(uuid.uuid4()))
            self.send_header("x-ms-version", headers.get("x-ms-version", API_VERSION))
            for k, v in extra.items():
                if k.lower() != "content-length":
                    self.send_header(k, v)
            # HEAD answers carry the file's length but no body.
            length_header = extra.get("Content-Length") if self.command == "HEAD" else None
            self.send_header("Content-Length", length_header or str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = _serve
        do_HEAD = _serve
        do_PUT = _serve
        do_POST = _serve
        do_DELETE = _serve

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--root", required=True, type=Path)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--account", action="append", required=True, metavar="NAME:KEY")
    args = parser.parse_args()
    accounts: dict[str, list[str]] = {}
    for item in args.account:
        name, _, key = item.partition(":")
        accounts.setdefault(name, []).append(key)
    double = AzureFilesDouble(args.root, accounts, port=args.port).start()
    print(f"azure files double on {double.endpoint}, root {args.root}", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
