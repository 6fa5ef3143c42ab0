"""The properties file (`~/.wskprops` or WSK_CONFIG_FILE) and the effective client configuration.

Format (wsk's property.go): one `KEY=VALUE` a line, `#` to the end of a line dropped, lines not splitting into
exactly two parts on `=` ignored; a missing file reads as empty. Precedence, lowest first: defaults, the file,
WHISK_AUTH / WHISK_APIHOST / WHISK_APIVERSION when non-empty, then the command-line flags.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whisk.cli.errors import CliError, path_error
from whisk.config import ClientSettings

DEFAULT_APIVERSION = "v1"
_COMMENT = re.compile(r"#.*")
# A scheme (Go's url.Parse: a letter, then letters, digits, `+-.`), `://` and a non-empty host.
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^/?#]")


def read(path: str) -> dict[str, str]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return {}   # as `wsk`: an unreadable file is an empty one
    props: dict[str, str] = {}
    for line in text.splitlines():
        parts = _COMMENT.sub("", line).strip().split("=")
        if len(parts) == 2:
            props[parts[0]] = parts[1]
    return props


def write(path: str, props: dict[str, str]) -> None:
    """The file holds the API key (AUTH): made 0600, and a looser one (another client's, an older whisk) narrowed,
    as ~/.ssh keeps its keys, rather than readable by every local user as the umask leaves a new file."""
    text = "".join(f"{key.upper()}={value}\n" for key, value in props.items()).encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            mode = os.fstat(fd).st_mode
            if stat.S_ISREG(mode) and mode & 0o077:         # never a device (WSK_CONFIG_FILE=/dev/null)
                os.fchmod(fd, 0o600)
            os.write(fd, text)
        finally:
            os.close(fd)
    except OSError as exc:
        raise CliError(f"Whisk properties file write failure: {path_error('open', path, exc)}") from None


@dataclass(frozen=True, slots=True)
class Properties:
    """The effective configuration of one run."""

    path: str
    apihost: str = ""
    auth: str = ""
    apiversion: str = DEFAULT_APIVERSION
    cert: str = ""
    key: str = ""
    insecure: bool = False
    verbose: bool = False
    debug: bool = False


def resolve(settings: ClientSettings, flags: dict[str, Any]) -> Properties:
    """File, then environment, then flags (`flags` holds the global flag values by long name)."""
    props = read(settings.config_file)
    apihost = props.get("APIHOST", "").rstrip("/")
    auth = props.get("AUTH", "")
    apiversion = props.get("APIVERSION", DEFAULT_APIVERSION)
    cert, key = props.get("CERT", ""), props.get("KEY", "")
    auth = settings.auth or auth
    apiversion = settings.apiversion or apiversion
    apihost = settings.apihost or apihost
    debug = bool(flags.get("debug")) or settings.debug
    return Properties(
        path=settings.config_file,
        apihost=flags.get("apihost") or apihost,
        auth=flags.get("auth") or auth,
        apiversion=flags.get("apiversion") or apiversion,
        cert=flags.get("cert") or cert,
        key=flags.get("key") or key,
        insecure=bool(flags.get("insecure")),
        verbose=bool(flags.get("verbose")) or debug,
        debug=debug,
    )


def base_url(apihost: str) -> str:
    """`HOST` + `/api`, with `https://` when the host names no scheme (the Go client's GetURLBase)."""
    if not apihost:
        # As `wsk`: the inner message keeps its "\n" (an untranslated i18n id) and asks for the usage hint, so
        # a blank line comes before "Run 'wsk --help' for usage."; exit 1.
        raise CliError("The API host is not valid: An API host must be provided.\n", usage=True)
    host = apihost if apihost.startswith("http") else f"https://{apihost}"
    # A host named like `httpd.local:3233` is no URL: Go's url.Parse reads `httpd.local:` as its scheme and
    # finds no host, so the client puts `https://` before it after all.
    if not _URL.match(f"{host}/api"):
        host = f"https://{host}"
    return f"{_bracketed(host)}/api"


def _bracketed(url: str) -> str:
    """An IPv6 address named without brackets (`::1:3233`), as Go's client reads it: the port after the last colon
    (url.URL's Hostname and Port), the address before it, in brackets as every other URL parser needs it."""
    scheme, _, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    userinfo, at, hostport = authority.rpartition("@")
    if hostport.count(":") < 2 or hostport.startswith("["):
        return url
    address, _, port = hostport.rpartition(":")
    if not port.isdigit() and port:
        return url
    return f"{scheme}://{userinfo}{at}[{address}]{':' if port else ''}{port}{slash}{path}"
