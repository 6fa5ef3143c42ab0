"""HTTP to the whisk/OpenWhisk REST API for one command: one aiohttp session, Basic auth, `wsk`'s error mapping.

A non-2xx reply becomes a CliError whose status is the HTTP status mod 256 and whose message is the server's
`<error> (code <transaction id>)`; an unparseable body reads "The connection failed, or timed out. (HTTP status
code N)". Connection failures exit 3, worded as Go's net/http words the common ones (`transport_error`). With -v
the request and reply are printed as `wsk -v` prints them.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import re
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
from yarl import URL

from whisk.cli.version import VERSION
from whisk.cli.errors import NETWORK, CliError, usage_error
from whisk.cli.names import url_segment
from whisk.cli.output import Output
from whisk.cli.wskprops import Properties, base_url

_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
USER_AGENT = (f"OpenWhisk-CLI/1.0 (whisk {VERSION}) {platform.system().lower()} "
              f"{_ARCH.get(platform.machine(), platform.machine())}")
_PASSWORD = re.compile(r'"password":\s*"[^"]*"')
_TRUNCATE = 1000


@dataclass(frozen=True, slots=True)
class Call:
    """One REST request: `path` is relative to {base}/{apiversion}/ (already escaped), or with `root` to the API
    host itself (`sdk install`'s downloads); `query` in order."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: Any = None
    auth: bool = True
    root: bool = False

    def url(self, base: str, apiversion: str) -> str:
        if self.root:       # the Go client keeps the scheme, host and port only: an API host's path goes too
            url = f"{urlsplit(base)._replace(path='', query='', fragment='').geturl()}/{self.path}"
        else:
            url = f"{base}/{apiversion}/{self.path}" if self.path else f"{base}/{apiversion}"
        return f"{url}?{urlencode(self.query)}" if self.query else url


def entity_path(namespace: str, collection: str, escaped_name: str = "") -> str:
    tail = f"/{escaped_name}" if escaped_name else ""
    return f"namespaces/{url_segment(namespace)}/{collection}{tail}"


def sorted_query(**values: Any) -> tuple[tuple[str, str], ...]:
    """Query parameters as go-querystring writes them: keys sorted, booleans lower case."""
    def text(v: Any) -> str:
        return ("true" if v else "false") if isinstance(v, bool) else str(v)
    return tuple((k, text(v)) for k, v in sorted(values.items()))


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any           # decoded JSON, or None when the body is empty or not JSON
    text: str
    data: bytes = b""   # the body as it came (a download's archive)


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _go_headers(headers: Any) -> dict[str, list[str]]:
    """A response's headers as Go's net/http holds them, for `-v`: each name in canonical form (`X-Request-Id`), the
    values of one name together, and no Transfer-Encoding (Go's client takes it out of the headers)."""
    out: dict[str, list[str]] = {}
    for name, value in headers.items():
        if _TOKEN.fullmatch(name):          # a name with other bytes Go leaves as it is
            name = "-".join(part[:1].upper() + part[1:].lower() for part in name.split("-"))
        if name != "Transfer-Encoding":
            out.setdefault(name, []).append(value)
    return out


def error_from(status: int, text: str) -> CliError:
    """The CliError `wsk` makes of a non-2xx reply."""
    if not text:
        return CliError("Command failed due to an HTTP failure", status % 256, http_status=status)
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body and body.get("code") is not None:
        return CliError(f"{_text(body['error'])} (code {_text(body['code'])})", status % 256, http_status=status)
    return CliError(f"The connection failed, or timed out. (HTTP status code {status})", status % 256,
                    http_status=status)


_ADDRESS = re.compile(r"\('([^']+)', (\d+)")


def transport_error(exc: BaseException) -> str:
    """What Go's net/http says for the failures people meet (the `wsk` message after `Get "<url>": `); anything
    else keeps Python's text."""
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "EOF"
    if not isinstance(exc, aiohttp.ClientConnectorError):
        return str(exc)
    cause = exc.os_error
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        cert_error = exc.certificate_error
        message = getattr(cert_error, "verify_message", "") or str(cert_error)
        if "issuer" in message or "self-signed" in message or "self signed" in message:
            return "x509: certificate signed by unknown authority"
        return f"x509: {message}"
    if isinstance(cause, ssl.SSLError) and cause.reason == "WRONG_VERSION_NUMBER":
        return "http: server gave HTTP response to HTTPS client"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"dial tcp: lookup {exc.host}: no such host"
    if isinstance(cause, ConnectionRefusedError):
        found = _ADDRESS.search(str(cause))
        host, port = (found.group(1), found.group(2)) if found else (exc.host, str(exc.port))
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return f"dial tcp {address}: connect: connection refused"
    return str(exc)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _connection_error(detail: str) -> CliError:
    """`wsk`'s SetupClientConfig failure: exit 1 with the usage hint (details keep their own trailing newline)."""
    return CliError(f"Unable to initialize server connection: {detail}", usage=True)


def tls_context(props: Properties) -> ssl.SSLContext | bool:
    """The TLS settings of the Go client's LoadX509KeyPair: a client certificate needs both --cert and --key
    (one alone is an error unless -i); -i skips verification but still presents a configured certificate."""
    if props.cert and props.key:
        context = ssl.create_default_context()
        if props.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        try:
            context.load_cert_chain(props.cert, props.key)
        except FileNotFoundError:
            missing = props.cert if not os.path.exists(props.cert) else props.key     # Go reads the cert first
            raise _connection_error("Unable to load the X509 key pair due to the following reason: "
                                    f"open {missing}: no such file or directory") from None
        except (OSError, ssl.SSLError) as exc:
            raise _connection_error(f"Unable to load the X509 key pair due to the following reason: {exc}") from None
        return context
    if props.insecure:
        return False
    if props.key:
        raise _connection_error("The Cert file is not configured. Please configure the missing Cert file.\n")
    if props.cert:
        raise _connection_error("The Key file is not configured. Please configure the missing Key file.\n")
    return True


class Api:
    """Open with `async with Api(props, out) as api`; `send` returns 2xx replies and raises CliError otherwise."""

    def __init__(self, props: Properties, out: Output) -> None:
        self.props = props
        self.out = out
        self.base = base_url(props.apihost)
        self._session: aiohttp.ClientSession | None = None
        self._tls: ssl.SSLContext | bool | None = None     # made at the first request, then reused

    async def __aenter__(self) -> Api:
        # No client-side timeout, as `wsk`: a blocking invoke waits as long as the server lets it.
        self._session = aiohttp.ClientSession(headers={"User-Agent": USER_AGENT},
                                              timeout=aiohttp.ClientTimeout(total=None))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def _ssl(self) -> ssl.SSLContext | bool:
        if self._tls is None:           # a client certificate is read once, not on every request of a poll
            self._tls = tls_context(self.props)
        return self._tls

    def _headers(self, call: Call) -> dict[str, str]:
        headers = {}
        if call.auth:
            if not self.props.auth:
                raise usage_error("Authorization key is not configured (--auth is required)")
            token = base64.b64encode(self.props.auth.encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        if call.body is not None:
            headers["Content-Type"] = "application/json"
        return headers

    async def send(self, call: Call, *, check: bool = True) -> Reply:
        """The reply; a non-2xx one raises CliError unless `check` is false (invoke inspects 202 and 502)."""
        assert self._session is not None, "use `async with Api(...)`"
        url = call.url(self.base, self.props.apiversion)
        headers = self._headers(call)
        data = None
        if call.body is not None:
            data = json.dumps(call.body, ensure_ascii=False, separators=(",", ":")) + "\n"
        if self.props.verbose:
            self._show_request(call.method, url, headers, data)
        try:
            async with self._session.request(call.method, URL(url, encoded=True), headers=headers,
                                             data=data.encode() if data is not None else None,
                                             ssl=self._ssl()) as resp:
                raw = await resp.read()
                text = raw.decode(resp.get_encoding(), errors="replace")
                status, reply_headers = resp.status, _go_headers(resp.headers)
        except (aiohttp.ClientError, OSError) as exc:
            raise CliError(f'{call.method.capitalize()} "{url}": {transport_error(exc)}', NETWORK) from None
        if self.props.verbose:
            self._show_response(status, reply_headers, text)
        if check and not 200 <= status <= 299:
            raise error_from(status, text)
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = None
        return Reply(status, body, text, raw)

    # --- -v / -d -------------------------------------------------------------------------------------------------

    def _cut(self, text: str) -> str:
        """A body as `wsk -v` shows it: over 1000 bytes cut (with a notice) unless debug, passwords masked."""
        data = text.encode()
        if not self.props.debug and len(data) > _TRUNCATE:
            self.out.line(f"Body exceeds {_TRUNCATE} bytes and will be truncated")
            text = data[:_TRUNCATE].decode(errors="ignore") + "..."
        return _PASSWORD.sub('"password": "******"', text)

    def _headers_json(self, headers: dict[str, list[str]]) -> str:
        """Headers as the Go client prints them (go-prettyjson): keys sorted, 2-space indent, and on a terminal
        keys in bold blue and strings in bold green."""
        def quoted(text: str, colour: str) -> str:
            shown = json.dumps(text, ensure_ascii=False)
            return f"\x1b[{colour}m{shown}\x1b[0m" if self.out.color else shown

        if not headers:
            return "{}"
        rows = []
        for name in sorted(headers):
            values = headers[name]
            inner = ",\n".join(f"    {quoted(v, '32;1')}" for v in values)
            rows.append(f"  {quoted(name, '34;1')}: " + (f"[\n{inner}\n  ]" if values else "[]"))
        return "{\n" + ",\n".join(rows) + "\n}"

    def _show_request(self, method: str, url: str, headers: dict[str, str], data: str | None) -> None:
        self.out.line("REQUEST:")
        self.out.line(f"[{method}]\t{url}")
        shown = {"User-Agent": [USER_AGENT], **{k: [v] for k, v in headers.items()}}
        self.out.line("Req Headers")
        self.out.line(self._headers_json(shown))
        if data is not None:
            self.out.line("Req Body")
            self.out.line(self._cut(data))              # the encoder's newline, then Println's

    def _show_response(self, status: int, headers: dict[str, list[str]], text: str) -> None:
        self.out.line(f"RESPONSE:Got response with code {status}")     # wsk's Verbose adds no newline to the first
        if headers:
            self.out.line("Resp Headers")
            self.out.line(self._headers_json(headers))
        self.out.line(f"Response body size is {len(text.encode())} bytes")
        shown = self._cut(text)
        self.out.line("Response body received:")
        self.out.line(shown)
