"""Settings: read once from the environment into one frozen dataclass.

The server reads its settings nowhere else (`python -m whisk.runtimes.environments`, which runs without them, reads
WHISK_RUNTIMES_DIR itself). A bad value raises ConfigError naming the variable; `__main__` prints it as one line and
exits with status 2. Limits carry OpenWhisk's defaults (docs/openwhisk.md §2.3, §8), named `WHISK_LIMIT_<OpenWhisk name
in upper snake case>`.

Also here: the `wsk` client's settings (`ClientSettings`, read from the environment the same way), and the addresses
actions' API calls come from (`ACTIONS_NETWORK`), which the container backends hand out and the API recognizes (this
module is below both).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROLES = ("controller", "invoker", "standalone")
LOG_FORMATS = ("console", "json")
PLAYGROUND_PATH = "/playground"     # where the playground's page is, on its own port (and a redirect on the API's)
# Where an action's calls to a loopback API host come from (the invoker's relay binds each container's calls to an
# address of its own in this range, containers/api_relay.py), so that the API host can tell them from its other
# loopback clients, and one container's from another's: no X-Forwarded-For of theirs is believed, the routes that show
# every tenant's activity (/metrics, /activation) refuse them, and each container's failed logins count against its
# own budget. Linux routes all of 127.0.0.0/8 to the loopback: nothing to configure.
ACTIONS_NETWORK = "127.2.0.0/16"
_ACTIONS_PREFIX = "127.2."


def is_action_address(address: str | None) -> bool:
    """Whether a peer address is one the relay gives containers' calls (ACTIONS_NETWORK), also as a dual-stack
    socket shows an IPv4 peer (`::ffff:127.2.0.1`)."""
    if address is None:
        return False
    return address.removeprefix("::ffff:").startswith(_ACTIONS_PREFIX)


def action_address(n: int) -> str:
    """The `n`th address of ACTIONS_NETWORK, cycling through its 65,024 addresses that end in neither 0 nor 255."""
    n %= 254 * 256
    return f"{_ACTIONS_PREFIX}{n // 254}.{n % 254 + 1}"


def url_host(host: str) -> str:
    """A host as a URL or a `host:port` address names it: an IPv6 literal in brackets (RFC 3986), else unchanged."""
    return f"[{host}]" if ":" in host else host


def _host(text: str) -> str:
    # `[::1]`, as URLs write it, is the address `::1` to listen on; an IPv6 address in its one short spelling, as
    # listen_hosts and the relay compare it (`0:0:0:0:0:0:0:1` listened on IPv6 alone, its actions' calls from ::1).
    host = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return str(ipaddress.IPv6Address(host))
    except ValueError:
        return host


# An IPv6 wildcard or loopback is served with its IPv4 counterpart. asyncio makes every IPv6 listening socket IPv6-only,
# so `::` alone would refuse IPv4 clients (an operator means both, as nginx's and Go's `[::]` do); and on IPv6's
# loopback, one address, the invoker's relay could not give each container's calls an address of its own
# (ACTIONS_NETWORK): it relays such an API host to the IPv4 loopback instead (containers/api_relay.py).
_IPV4_TWIN = {"::": "0.0.0.0", "::1": "127.0.0.1"}


def listen_hosts(host: str) -> list[str]:
    """The addresses a server on WHISK_HOST `host` listens on."""
    return [host, _IPV4_TWIN[host]] if host in _IPV4_TWIN else [host]


def _addresses(text: str) -> str:
    """A comma-separated list of IP addresses, each as a peer's address reads (`[::1]` or `0:0:0:0:0:0:0:1` is `::1`,
    `::ffff:127.0.0.1` is `127.0.0.1`): compared as text, another spelling would silently trust no one."""
    found = []
    for entry in (part.strip() for part in text.split(",")):
        if entry:
            try:
                ip = ipaddress.ip_address(_host(entry))
            except ValueError:
                raise ValueError(f"{entry!r} is not an IP address") from None
            mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
            found.append(str(mapped or ip))
    return ",".join(found)


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


def _default_data_dir(env: Mapping[str, str]) -> str:
    home = env.get("HOME") or os.path.expanduser("~")
    base = env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    return os.path.join(base, "whisk")


def _var(name: str, default: Any, cast: Callable[[str], Any] = str, **meta: Any) -> Any:
    return field(default=default, metadata={"env": name, "cast": cast, **meta})


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


def redact(url: str) -> str:
    """A URL as it may be shown (errors, logs): without the password of `user:pass@`, nor a token given as the user
    alone (`consul://TOKEN@host`)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    userinfo, _, hosts = parts.netloc.rpartition("@")
    user, colon, _ = userinfo.partition(":")
    shown = f"{user}:***" if colon else "***"
    return parts._replace(netloc=f"{shown}@{hosts}").geturl()


# Schemes whose URL names servers, `host[:port]` (comma-separated: Kafka's bootstrap list), and whether a host must
# be given (CouchDB's default is 127.0.0.1:5984). Checked here so that a port that is no number, or no host, is a
# line naming the variable, not a traceback from an adapter.
_SERVERS = {"kafka": True, "consul": True, "couchdb": False, "couchdbs": False}


def _servers(scheme: str, netloc: str) -> None:
    if scheme == "kafka" and "@" in netloc:
        raise ValueError("kafka:// takes no user or password (whisk speaks PLAINTEXT to the brokers)")
    for server in netloc.rpartition("@")[2].split(","):
        parts = urlsplit(f"//{server}")
        parts.port                                  # raises ValueError for a port that is not a number or too large
        if _SERVERS[scheme] and not parts.hostname:
            raise ValueError(f"a {scheme}:// URL needs a host (host:port)")


def _url(*schemes: str) -> Callable[[str], str]:
    def cast(text: str) -> str:
        try:
            parts = urlsplit(text)
            if parts.scheme in _SERVERS:
                _servers(parts.scheme, parts.netloc)
        except ValueError as exc:
            raise ValueError(f"{exc} in {redact(text)!r}") from None
        if parts.scheme not in schemes:
            raise ValueError(f"unsupported scheme {parts.scheme!r} in {redact(text)!r}; "
                             f"use one of {', '.join(schemes)}")
        return text

    return cast


def _one_of(*choices: str) -> Callable[[str], str]:
    def cast(text: str) -> str:
        if text not in choices:
            raise ValueError(f"{text!r} is not one of {', '.join(choices)}")
        return text

    return cast


@dataclass(frozen=True, slots=True)
class Settings:
    role: str = _var("WHISK_ROLE", "standalone", _one_of(*ROLES))
    host: str = _var("WHISK_HOST", "127.0.0.1", _host)
    # Not 0: the server's URL (printed, registered, given to actions as __OW_API_HOST) is made from this number.
    port: int = _var("WHISK_PORT", 3233, int, min=1, max=65535)
    instance: int = _var("WHISK_INSTANCE", 0, int, min=0)
    data_dir: str = _var("WHISK_DATA_DIR", "", shown="$XDG_DATA_HOME/whisk, else ~/.local/share/whisk")
    store_url: str = _var("WHISK_STORE", "", _url("sqlite", "memory", "couchdb", "couchdbs"),
                          shown="sqlite://<WHISK_DATA_DIR>/whisk.db")
    bus_url: str = _var("WHISK_BUS", "memory://", _url("memory", "kafka"))
    discovery_url: str = _var("WHISK_DISCOVERY", "local://", _url("local", "consul"))
    containers_url: str = _var("WHISK_CONTAINERS", "process://", _url("process", "docker"))
    log_format: str = _var("WHISK_LOG_FORMAT", "console", _one_of(*LOG_FORMATS))
    log_level: str = _var("WHISK_LOG_LEVEL", "info", _one_of("debug", "info", "warning", "error"))
    # The API host given to actions as __OW_API_HOST; empty = this server's own URL.
    api_host: str = _var("WHISK_API_HOST", "", shown="this server's own URL")
    # Where the action environments (the packages actions import, apart from whisk's own) live; `make runtimes`.
    runtimes_dir: str = _var("WHISK_RUNTIMES_DIR", "",
                             shown="the source checkout's .runtimes, else $XDG_DATA_HOME/whisk/runtimes")
    # Credentials for the invoker role's /enable, /disable and /isEnabled (docs/openwhisk.md §1.14); no password =
    # refused.
    admin_user: str = _var("WHISK_ADMIN_USER", "admin")
    admin_password: str = _var("WHISK_ADMIN_PASSWORD", "", shown="none: /enable and /disable are refused")
    # Throttles (docs/openwhisk.md §8; standalone defaults).
    invocations_per_minute: int = _var("WHISK_LIMIT_INVOCATIONS_PER_MINUTE", 60, int, min=0)
    concurrent_invocations: int = _var("WHISK_LIMIT_CONCURRENT_INVOCATIONS", 30, int, min=0)
    fires_per_minute: int = _var("WHISK_LIMIT_FIRES_PER_MINUTE", 60, int, min=0)
    sequence_length: int = _var("WHISK_LIMIT_SEQUENCE_LENGTH", 50, int, min=1)
    # Action limits (docs/openwhisk.md §2.3): memory in MB, timeout in ms, logs in MB.
    min_action_memory: int = _var("WHISK_LIMIT_MIN_ACTION_MEMORY", 128, int, min=1)
    max_action_memory: int = _var("WHISK_LIMIT_MAX_ACTION_MEMORY", 512, int, min=1)
    std_action_memory: int = _var("WHISK_LIMIT_STD_ACTION_MEMORY", 256, int, min=1)
    min_action_timeout: int = _var("WHISK_LIMIT_MIN_ACTION_TIMEOUT", 100, int, min=1)
    max_action_timeout: int = _var("WHISK_LIMIT_MAX_ACTION_TIMEOUT", 300_000, int, min=1)
    std_action_timeout: int = _var("WHISK_LIMIT_STD_ACTION_TIMEOUT", 60_000, int, min=1)
    min_action_logs: int = _var("WHISK_LIMIT_MIN_ACTION_LOGS", 0, int, min=0)
    max_action_logs: int = _var("WHISK_LIMIT_MAX_ACTION_LOGS", 10, int, min=0)
    std_action_logs: int = _var("WHISK_LIMIT_STD_ACTION_LOGS", 10, int, min=0)
    min_action_concurrency: int = _var("WHISK_LIMIT_MIN_ACTION_CONCURRENCY", 1, int, min=1)
    max_action_concurrency: int = _var("WHISK_LIMIT_MAX_ACTION_CONCURRENCY", 1, int, min=1)
    std_action_concurrency: int = _var("WHISK_LIMIT_STD_ACTION_CONCURRENCY", 1, int, min=1)
    # Sizes in bytes (docs/openwhisk.md §8).
    max_payload_size: int = _var("WHISK_LIMIT_MAX_PAYLOAD_SIZE", 1_048_576, int, min=1)
    max_parameter_size: int = _var("WHISK_LIMIT_MAX_PARAMETER_SIZE", 1_048_576, int, min=1)
    max_exec_size: int = _var("WHISK_LIMIT_MAX_EXEC_SIZE", 48 * 1_048_576, int, min=1)
    # What an action's zip may unpack to (issue 12): checked on create/update and while the runtime unzips it.
    max_code_unpacked_mb: int = _var("WHISK_LIMIT_MAX_CODE_UNPACKED_MB", 256, int, min=1)
    # Blocking invoke wait (ms) and the completion-ack timeout (docs/openwhisk.md §3.2, §5.5).
    max_blocking_wait_ms: int = _var("WHISK_LIMIT_MAX_BLOCKING_WAIT", 60_000, int, min=1)
    ack_timeout_factor: float = _var("WHISK_ACK_TIMEOUT_FACTOR", 2.0, float, min=0)
    ack_timeout_addon_s: float = _var("WHISK_ACK_TIMEOUT_ADDON_S", 60.0, float, min=0)
    # How long the highest invokers must be silent, and gone from discovery, before controllers forget them
    # (whisk/loadbalancer/sharding_balancer.py); at least the 10 s ping timeout.
    invoker_depart_s: float = _var("WHISK_INVOKER_DEPART_S", 300.0, float, min=10)
    # Container pool (docs/openwhisk.md §7.1).
    pool_memory_mb: int = _var("WHISK_POOL_MEMORY_MB", 2048, int, min=128)
    pool_pause_grace_ms: int = _var("WHISK_POOL_PAUSE_GRACE_MS", 10_000, int, min=0)
    pool_idle_timeout_s: float = _var("WHISK_POOL_IDLE_TIMEOUT_S", 600.0, float, min=0)
    pool_prewarm: bool = _var("WHISK_POOL_PREWARM", True, _bool)
    # How long the loop polls rather than sleeps while the pool runs a single job (whisk/containerpool/spin.py).
    pool_spin_us: int = _var("WHISK_POOL_SPIN_US", 200, int, min=0)
    # How often reactive stem cells are checked: expired prewarms removed, more after cold starts (10 min, as
    # OpenWhisk).
    pool_prewarm_check_s: float = _var("WHISK_POOL_PREWARM_CHECK_S", 600.0, float, min=1)
    # While the invoker's event loop uses most of a core, pin it to its CPU and keep the containers off that CPU
    # (whisk/invoker/loop_core.py); "shared": containers and loop always share every CPU.
    loop_cpu: str = _var("WHISK_LOOP_CPU", "auto", _one_of("auto", "shared"))
    # process:// runs every container in a sandbox (bwrap, a user of its own; root needed) unless all code is trusted.
    trust_all_code: bool = _var("WHISK_TRUST_ALL_CODE", False, _bool)
    process_tmp_mb: int = _var("WHISK_PROCESS_TMP_MB", 512, int, min=1)
    # Docker backend (issue: docker containers): unix | host | bridge networking for action containers.
    docker_network: str = _var("WHISK_DOCKER_NETWORK", "unix", _one_of("unix", "host", "bridge"))
    # The size of each Docker action container's writable /tmp (a tmpfs; its pages count against the memory limit).
    docker_tmp_mb: int = _var("WHISK_DOCKER_TMP_MB", 512, int, min=1)
    # Where the invoker relays the API calls of Docker containers without a network, when it reaches the API host
    # at another address than actions' clients do (an invoker in a container); empty = the API host itself.
    docker_api_upstream: str = _var("WHISK_DOCKER_API_UPSTREAM", "", _url("http", "https"), shown="the API host")
    # Begin each relayed connection with a PROXY protocol line naming the container's own address: for an upstream
    # that is a controller's WHISK_ACTIONS_PORT, which then counts each container apart (api/actions_port.py).
    docker_api_proxy_protocol: bool = _var("WHISK_DOCKER_API_PROXY_PROTOCOL", False, _bool)
    # A controller's second port, for the API calls of actions an invoker on another host relays: every connection
    # there is an action's (refused the operators' routes, its own failed-login budget); 0 = none (api/actions_port.py).
    actions_port: int = _var("WHISK_ACTIONS_PORT", 0, int, min=0, max=65535)
    # Publish each activation as a user event on the `events` topic (OpenWhisk's whisk.user-events.enabled).
    user_events: bool = _var("WHISK_USER_EVENTS", False, _bool)
    # Seed the well-known guest and whisk.system subjects at a controller's start (every role that has one, by default).
    bootstrap_users: bool = _var("WHISK_BOOTSTRAP_USERS", True, _bool)
    # The browser playground at /playground; unset = on for standalone, off for a controller (never on an invoker).
    playground: bool | None = _var("WHISK_PLAYGROUND", None, _bool,
                                   shown="true for standalone, false for controller")
    # The playground's own port (OpenWhisk's standalone uses 3232 beside the API's 3233): an origin apart from the
    # web actions', whose pages any tenant writes, so none of them can read what the page keeps (docs/operations.md).
    playground_port: int = _var("WHISK_PLAYGROUND_PORT", 3232, int, min=1, max=65535)
    # The whisk.system catalog (utils, samples, alarms) installed on start; how often the alarms are read again.
    catalog: bool = _var("WHISK_CATALOG", True, _bool)
    alarms_refresh_s: float = _var("WHISK_ALARMS_REFRESH_S", 5.0, float, min=0.1)
    # How often an invoker reads the blocked and deleted namespaces again (whisk/invoker/blocklist.py).
    blocklist_poll_s: float = _var("WHISK_BLOCKLIST_POLL_S", 30.0, float, min=0.1)
    tls_cert: str = _var("WHISK_TLS_CERT", "", shown="none: plain HTTP")
    tls_key: str = _var("WHISK_TLS_KEY", "", shown="none: plain HTTP")
    shutdown_grace_s: float = _var("WHISK_SHUTDOWN_GRACE_S", 30.0, float, min=0)
    # HTTP connections, as nginx closes them: one that sends no complete request head (idle keep-alive, never used,
    # or headers trickling in) for this long is closed (75 s, nginx's keepalive_timeout: above the 60 s after which
    # nginx in front drops its idle upstream connections, so that the proxy, not whisk, closes them); a request
    # body that stalls this long is a 408.
    http_idle_timeout_s: float = _var("WHISK_HTTP_IDLE_TIMEOUT_S", 75.0, float, min=0.1)
    http_body_timeout_s: float = _var("WHISK_HTTP_BODY_TIMEOUT_S", 60.0, float, min=0.1)
    # Failed authentications per client address: this many a minute (a bucket that refills), then 429 for keys not
    # already verified; the table of addresses is bounded (least recently failed forgotten first).
    auth_failures_per_minute: int = _var("WHISK_AUTH_FAILURES_PER_MINUTE", 60, int, min=1)
    auth_failure_clients: int = _var("WHISK_AUTH_FAILURE_CLIENTS", 10_000, int, min=1)
    # Peers whose X-Forwarded-For names the client (nginx in front); others are the client themselves. An address of
    # ACTIONS_NETWORK never is, whatever this says: an action would name any client it liked.
    trusted_proxies: str = _var("WHISK_TRUSTED_PROXIES", "127.0.0.1,::1", _addresses)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = f.metadata["env"]
            raw = env.get(name)
            if raw is None or raw == "":
                continue
            try:
                value = f.metadata["cast"](raw.strip())
            except ValueError as exc:
                raise ConfigError(f"{name}: {exc}") from None
            if "min" in f.metadata and value < f.metadata["min"]:
                raise ConfigError(f"{name}: {value} is below the minimum {f.metadata['min']}")
            if "max" in f.metadata and value > f.metadata["max"]:
                raise ConfigError(f"{name}: {value} is above the maximum {f.metadata['max']}")
            values[f.name] = value
        settings = cls(**values)
        if not settings.data_dir:
            settings = dataclasses.replace(settings, data_dir=_default_data_dir(env))
        if not settings.runtimes_dir:
            from whisk.runtimes.manifest import default_environments
            settings = dataclasses.replace(settings, runtimes_dir=default_environments(env))
        if not settings.store_url:
            db = Path(settings.data_dir) / "whisk.db"
            settings = dataclasses.replace(settings, store_url=f"sqlite://{db}")
        settings.check()
        return settings

    def check(self) -> None:
        for low, std, high, what in (
            (self.min_action_memory, self.std_action_memory, self.max_action_memory, "MEMORY"),
            (self.min_action_timeout, self.std_action_timeout, self.max_action_timeout, "TIMEOUT"),
            (self.min_action_logs, self.std_action_logs, self.max_action_logs, "LOGS"),
            (self.min_action_concurrency, self.std_action_concurrency, self.max_action_concurrency, "CONCURRENCY"),
        ):
            if not low <= std <= high:
                raise ConfigError(
                    f"WHISK_LIMIT_STD_ACTION_{what}: {std} must lie between WHISK_LIMIT_MIN_ACTION_{what} ({low}) "
                    f"and WHISK_LIMIT_MAX_ACTION_{what} ({high})"
                )
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("WHISK_TLS_CERT: WHISK_TLS_CERT and WHISK_TLS_KEY must be given together")
        if self.serves_playground and self.playground_port == self.port:
            raise ConfigError(f"WHISK_PLAYGROUND_PORT: {self.port} is WHISK_PORT too; the playground needs a port of "
                              "its own (or WHISK_PLAYGROUND=false)")
        taken = (self.port, self.playground_port) if self.serves_playground else (self.port,)
        if self.actions_port in taken:
            raise ConfigError(f"WHISK_ACTIONS_PORT: {self.actions_port} is already the API's or the playground's "
                              "port; actions' relayed calls need a port of their own")
        if self.docker_api_proxy_protocol and not self.docker_api_upstream:
            # The API host's own port would read the line as a request (400): only an actions port expects it.
            raise ConfigError("WHISK_DOCKER_API_PROXY_PROTOCOL: needs WHISK_DOCKER_API_UPSTREAM, a controller's "
                              "WHISK_ACTIONS_PORT")

    @property
    def runs_controller(self) -> bool:
        return self.role in ("controller", "standalone")

    @property
    def runs_invoker(self) -> bool:
        return self.role in ("invoker", "standalone")

    @property
    def serves_playground(self) -> bool:
        if not self.runs_controller:
            return False
        return self.role == "standalone" if self.playground is None else self.playground

    @property
    def address(self) -> str:
        """`host:port`, as registered in discovery (an IPv6 host in brackets)."""
        return f"{url_host(self.host)}:{self.port}"

    @property
    def own_url(self) -> str:
        return f"{self.scheme}://{url_host(self.host)}:{self.port}"

    @property
    def playground_url(self) -> str:
        return f"{self.scheme}://{url_host(self.host)}:{self.playground_port}{PLAYGROUND_PATH}/"

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"


def variables() -> list[tuple[str, str, Any]]:
    """(variable, field, default) for every setting: the source of `serve_help` and of the checks of the settings
    tables in README.md and docs/operations.md (tests/test_config.py)."""
    return [(f.metadata["env"], f.name, f.default) for f in dataclasses.fields(Settings)]


def serve_help() -> str:
    """What `whisk serve --help` (and the client's `whisk help serve`) prints: every variable with its default."""
    lines = ["usage: whisk [serve]", "", "Start the whisk server in the role WHISK_ROLE names (controller | invoker |"
             " standalone).", "Every setting is an environment variable:", ""]
    lines += [f"  {name:<40} default: {default_text(name)}" for name, _field, _default in variables()]
    return "\n".join(lines) + "\n"


def default_text(name: str) -> str:
    """A setting's default as `whisk serve --help` shows it: what an unset variable means when the default is
    worked out at start (the data dir, the store) or is empty, else the value itself."""
    for f in dataclasses.fields(Settings):
        if f.metadata["env"] == name:
            return f.metadata.get("shown") or repr(f.default)
    raise KeyError(name)


@dataclass(frozen=True, slots=True)
class ClientSettings:
    """What the `wsk`-compatible client (whisk/cli) reads from the environment; the names are `wsk`'s own
    (wsk's property.go loadProperties). `config_file` is WSK_CONFIG_FILE when set, even to "", else ~/.wskprops."""

    config_file: str
    apihost: str = ""         # WHISK_APIHOST
    auth: str = ""            # WHISK_AUTH
    apiversion: str = ""      # WHISK_APIVERSION
    debug: bool = False       # WSK_CLI_DEBUG non-empty

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ClientSettings:
        env = os.environ if environ is None else environ
        config_file = env.get("WSK_CONFIG_FILE")
        if config_file is None:
            config_file = os.path.join(env.get("HOME") or os.path.expanduser("~"), ".wskprops")
        return cls(config_file=config_file, apihost=env.get("WHISK_APIHOST", ""), auth=env.get("WHISK_AUTH", ""),
                   apiversion=env.get("WHISK_APIVERSION", ""), debug=bool(env.get("WSK_CLI_DEBUG")))
