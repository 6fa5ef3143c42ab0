"""The runtime manifest: which action kinds exist, and the image, command and stem cells (prewarms) of each.

`runtimes.json` beside this module is the one place to add a kind (docs/openwhisk.md §2.3, §7.1; OpenWhisk's
`ansible/files/runtimes.json` and `E/ExecManifest.scala`). Kinds are compared lower-cased and trimmed;
`<family>:default` names the family's default kind; `blackbox` is always accepted (its image comes with the action).

A kind's `environment` is the set of packages its actions can import (what OpenWhisk's runtime image bundles), kept
apart from whisk's own interpreter and packages: a folder under the runtimes directory (`WHISK_RUNTIMES_DIR`),
installed by `whisk.runtimes.environments`.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whisk.entities.errors import Invalid
from whisk.entities.exec import BLACKBOX, SEQUENCE, RuntimeDeprecated

HERE = Path(__file__).resolve().parent
DEFAULT_PATH = HERE / "runtimes.json"
# A source checkout (an editable install, `make run`) keeps its action environments in its own git-ignored folder.
CHECKOUT_ENVIRONMENTS = HERE.parent.parent / ".runtimes"
INSTALLERS = ("pip", "npm")
STAMP = ".whisk-environment"        # written last by the installer: the hash of what the folder was made from
_DEFAULT_KIND = re.compile(r"([a-z0-9]+):default")
_MEMORY = re.compile(r"\s*(\d+)\s*(b|k|kb|m|mb|g|gb)?\s*", re.IGNORECASE)
_MB_PER_UNIT = {"b": 1 / (1 << 20), "k": 1 / 1024, "kb": 1 / 1024, "m": 1, "mb": 1, "g": 1024, "gb": 1024}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*", re.IGNORECASE)
_SECONDS_PER_UNIT = {  # the labels of Scala's Duration(String), which OpenWhisk reads a stem cell's ttl with
    **dict.fromkeys(("d", "day", "days"), 86400.0), **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), 3600.0),
    **dict.fromkeys(("m", "min", "mins", "minute", "minutes"), 60.0),
    **dict.fromkeys(("s", "sec", "secs", "second", "seconds"), 1.0),
    **dict.fromkeys(("ms", "milli", "millis", "millisecond", "milliseconds"), 0.001)}


class ManifestError(ValueError):
    """runtimes.json is malformed; the message names the entry."""


@dataclass(frozen=True, slots=True)
class Reactive:
    """A stem cell's reactive prewarming (OpenWhisk's ReactivePrewarmingConfig, docs/openwhisk.md §7.1): between
    `min_count` and `max_count` prewarms, `increment` more per `threshold` cold starts since the last check, each kept
    `ttl_s`."""
    min_count: int
    max_count: int
    ttl_s: float
    threshold: int
    increment: int


@dataclass(frozen=True, slots=True)
class StemCell:
    count: int                      # initialCount: prewarms started with the pool
    memory_mb: int
    reactive: Reactive | None = None


@dataclass(frozen=True, slots=True)
class Environment:
    """The packages a kind's actions can import, in a folder of their own (see the module docstring)."""
    name: str                       # the folder's name under the runtimes directory
    path: str                       # that folder
    installer: str                  # pip | npm
    packages: tuple[tuple[str, str], ...]     # (name, exact version), as OpenWhisk's image installs them
    interpreter: str = ""           # pip: the Python the virtualenv is made from
    constraints: str = ""           # pip: a file of exact versions for what the packages pull in

    @property
    def stamp(self) -> str:
        return os.path.join(self.path, STAMP)


@dataclass(frozen=True, slots=True)
class Runtime:
    kind: str
    family: str
    image: str                      # docker image; empty for blackbox (the action names its own)
    command: tuple[str, ...]        # argv that runs the proxy as a child process; empty for blackbox
    default: bool
    deprecated: bool
    requires_main: bool
    stem_cells: tuple[StemCell, ...] = ()
    attached: bool = True           # code stored as an attachment (OpenWhisk's "attached" in GET /)
    env: tuple[tuple[str, str], ...] = ()     # added to a process:// child's environment
    environment: Environment | None = None
    # runtimes.json's readOnlyPaths, placeholders expanded: host folders a `process://` sandbox shows this kind's
    # proxy read-only, besides the system's and the install prefix of the command's interpreter (the proxy's own
    # files and the kind's action environment).
    read_only_paths: tuple[str, ...] = ()
    # runtimes.json's "concurrent": the proxy runs several /run at once (OpenWhisk's Node.js runtime does, its
    # Python one does not); a kind without it gets one activation at a time per container, whatever its limit.
    concurrent: bool = False

    @property
    def prewarm_count(self) -> int:
        return sum(c.count for c in self.stem_cells)

    @property
    def prewarm_memory_mb(self) -> int:
        """The memory of the first stem cell; 0 without any."""
        return self.stem_cells[0].memory_mb if self.stem_cells else 0


BLACKBOX_RUNTIME = Runtime(kind=BLACKBOX, family=BLACKBOX, image="", command=(), default=False, deprecated=False,
                           requires_main=False, attached=False, concurrent=True)    # the image's own business


class Manifest:
    def __init__(self, runtimes: Iterable[Runtime], aliases: Mapping[str, str] | None = None) -> None:
        self._runtimes = list(runtimes)
        self._by_kind = {r.kind: r for r in self._runtimes}
        if len(self._by_kind) != len(self._runtimes):
            raise ManifestError("a kind is listed more than once")
        self._aliases = dict(aliases or {})
        for alias, kind in self._aliases.items():
            if alias in self._by_kind or kind not in self._by_kind:
                raise ManifestError(f"alias {alias!r}: clashes with a kind or names no kind ({kind!r})")
        self._defaults = _defaults(self._runtimes)

    def resolve(self, kind: str) -> Runtime:
        """The runtime of an action kind; Invalid with OpenWhisk's message if unknown or deprecated."""
        key = kind.strip().lower()
        if key == BLACKBOX:
            return BLACKBOX_RUNTIME
        if match := _DEFAULT_KIND.fullmatch(key):
            key = self._defaults.get(match.group(1), key)
        runtime = self._by_kind.get(self._aliases.get(key, key))
        if runtime is None:
            valid = ", ".join(f"'{k}'" for k in sorted([*self._by_kind, BLACKBOX, SEQUENCE]))
            raise Invalid(f"The specified runtime '{key}' is not supported by this platform. "
                          f"Valid values are: {valid}.")
        if runtime.deprecated:
            raise RuntimeDeprecated(runtime.kind)
        return runtime

    def runtimes(self) -> list[Runtime]:
        return list(self._runtimes)

    def concurrent(self, kind: str) -> bool:
        """Whether a container of the kind runs several activations at once (`Runtime.concurrent`); an unknown or
        deprecated kind never runs, so it is not."""
        try:
            return self.resolve(kind).concurrent
        except Invalid:
            return False

    def prewarm(self) -> list[Runtime]:
        """The kinds that keep stem cells (prewarmed, uninitialized containers), docs/openwhisk.md §7.1."""
        return [r for r in self._runtimes if r.prewarm_count > 0 and not r.deprecated]

    def info(self) -> dict[str, list[dict[str, Any]]]:
        """The "runtimes" object of GET / (docs/openwhisk.md §1.14), as OpenWhisk's `Runtimes.toJson` writes it."""
        families: dict[str, list[dict[str, Any]]] = {}
        for r in self._runtimes:
            families.setdefault(r.family, []).append({
                "kind": r.kind, "image": r.image, "deprecated": r.deprecated, "default": r.default,
                "attached": r.attached, "requireMain": r.requires_main})
        return families


def default_environments(env: Mapping[str, str]) -> str:
    """Where the action environments live unless WHISK_RUNTIMES_DIR says: the checkout's `.runtimes` when whisk runs
    from a source checkout, else `$XDG_DATA_HOME/whisk/runtimes` (`~/.local/share/whisk/runtimes`)."""
    if (CHECKOUT_ENVIRONMENTS.parent / "pyproject.toml").is_file():
        return str(CHECKOUT_ENVIRONMENTS)
    home = env.get("HOME") or os.path.expanduser("~")
    return os.path.join(env.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share"), "whisk", "runtimes")


def load_manifest(path: str | None = None, environments: str | None = None) -> Manifest:
    """Read runtimes.json (default: the one beside this module); ManifestError if it is malformed. `environments`
    is the folder of the action environments (default: the checkout's `.runtimes`, see default_environments)."""
    source = Path(path) if path else DEFAULT_PATH
    environments = os.path.abspath(environments or default_environments({}))
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
        families = document["runtimes"]
        runtimes: list[Runtime] = []
        aliases: dict[str, str] = {}
        for family, entries in families.items():
            for entry in entries:
                runtime = _runtime(family, entry, environments)
                runtimes.append(runtime)
                aliases |= {str(a).strip().lower(): runtime.kind for a in entry.get("aliases", [])}
    except ManifestError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ManifestError(f"{source}: {type(exc).__name__}: {exc}") from exc
    return Manifest(runtimes, aliases)


def _runtime(family: str, entry: Mapping[str, Any], environments: str) -> Runtime:
    kind = str(entry["kind"]).strip().lower()
    if not kind.startswith(f"{family}:"):
        raise ManifestError(f"kind {kind!r} is not of the family {family!r}")
    environment = _environment(kind, entry["environment"], environments) if "environment" in entry else None
    cells = tuple(_stem_cell(kind, c) for c in entry.get("stemCells") or [])
    if len({c.memory_mb for c in cells}) != len(cells):
        raise ManifestError(f"{kind}: two stem cells of the same memory")
    image = entry.get("image", "")
    if isinstance(image, Mapping):          # OpenWhisk's {prefix, name, tag} form
        image = "/".join(p for p in (image.get("prefix"), image["name"]) if p) + f":{image.get('tag') or 'latest'}"
    def expand(text: Any) -> str:
        text = str(text)
        if "{environment}" in text and environment is None:
            raise ManifestError(f"{kind}: {{environment}} is used but the kind has no environment")
        return (text.replace("{python}", sys.executable).replace("{runtimes}", str(HERE))
                .replace("{environment}", environment.path if environment else ""))

    command = tuple(expand(a) for a in entry.get("command", []))
    env = tuple((str(k), expand(v)) for k, v in (entry.get("env") or {}).items())
    read_only = tuple(expand(p) for p in entry.get("readOnlyPaths", []))
    if not all(p.startswith("/") for p in read_only):
        raise ManifestError(f"{kind}: readOnlyPaths must be absolute folders (or start with {{runtimes}})")
    return Runtime(kind=kind, family=family, image=str(image), command=command,
                   default=bool(entry.get("default", False)), deprecated=bool(entry.get("deprecated", False)),
                   requires_main=bool(entry.get("requireMain", False)), stem_cells=cells,
                   attached=bool(entry.get("attached", True)), env=env, environment=environment,
                   read_only_paths=read_only, concurrent=bool(entry.get("concurrent", False)))


def _environment(kind: str, given: Any, environments: str) -> Environment:
    if not isinstance(given, Mapping) or not isinstance(given.get("packages"), Mapping):
        raise ManifestError(f"{kind}: environment must be an object with name, installer and packages")
    name, installer = str(given.get("name", "")), given.get("installer")
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise ManifestError(f"{kind}: environment name {name!r} is not a plain folder name")
    if installer not in INSTALLERS:
        raise ManifestError(f"{kind}: environment installer {installer!r} is not one of {', '.join(INSTALLERS)}")
    if installer == "pip" and not given.get("interpreter"):
        raise ManifestError(f"{kind}: a pip environment names its interpreter (e.g. python3.11)")
    constraints = str(HERE / given["constraints"]) if given.get("constraints") else ""
    return Environment(name=name, path=os.path.join(environments, name), installer=installer,
                       packages=tuple((str(k), str(v)) for k, v in given["packages"].items()),
                       interpreter=str(given.get("interpreter", "")), constraints=constraints)


def _stem_cell(kind: str, cell: Mapping[str, Any]) -> StemCell:
    """OpenWhisk's StemCell: `initialCount` (or `count`) and `memory` both required, `reactive` optional."""
    count = cell.get("initialCount", cell.get("count"))
    if count is None or "memory" not in cell:
        raise ManifestError(f"{kind}: a stem cell needs both initialCount and memory")
    if _count(kind, "initialCount", count) <= 0:
        raise ManifestError(f"{kind}: stem cell initialCount must be positive")
    reactive = cell.get("reactive")
    return StemCell(count, _memory_mb(cell["memory"]), None if reactive is None else _reactive(kind, reactive))


def _reactive(kind: str, given: Any) -> Reactive:
    """OpenWhisk's ReactivePrewarmingConfig: all five fields required, with its checks and messages."""
    fields = ("minCount", "maxCount", "ttl", "threshold", "increment")
    if not isinstance(given, Mapping):
        raise ManifestError(f"{kind}: stem cell reactive is not an object of {', '.join(fields)}")
    if missing := [f for f in fields if f not in given]:
        raise ManifestError(f"{kind}: stem cell reactive misses {', '.join(missing)}")
    minimum, maximum, threshold, increment = (_count(kind, f, given[f])
                                              for f in ("minCount", "maxCount", "threshold", "increment"))
    ttl_s = _duration_s(kind, given["ttl"])
    checks = {  # OpenWhisk's requirements and messages ("be be" sic)
        "minCount must be be greater than 0 and less than or equal to maxCount": 0 <= minimum <= maximum,
        "maxCount must be positive": maximum > 0,
        "ttl must be positive": ttl_s >= 0.001,
        "threshold must be positive": threshold > 0,
        "increment must be positive and less than or equal to maxCount": 0 < increment <= maximum}
    for message, ok in checks.items():
        if not ok:
            raise ManifestError(f"{kind}: stem cell reactive: {message}")
    return Reactive(minimum, maximum, ttl_s, threshold, increment)


def _count(kind: str, name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ManifestError(f"{kind}: stem cell {name} {value!r} is not an integer")
    return value


def _duration_s(kind: str, value: Any) -> float:
    """A ttl as OpenWhisk writes it ("2 minutes", "90 s", "500ms"), in seconds."""
    match = _DURATION.fullmatch(value) if isinstance(value, str) else None
    if not match or match.group(2).lower() not in _SECONDS_PER_UNIT:
        raise ManifestError(f"{kind}: stem cell reactive ttl {value!r} is not a duration such as '2 minutes'")
    return float(match.group(1)) * _SECONDS_PER_UNIT[match.group(2).lower()]


def _memory_mb(value: Any) -> int:
    """A stem cell's memory: an integer in MB or OpenWhisk's ByteSize text ("256 MB")."""
    if isinstance(value, int):
        return value
    match = _MEMORY.fullmatch(str(value))
    if not match:
        raise ManifestError(f"stem cell memory {value!r} is not a size such as '256 MB'")
    return int(int(match.group(1)) * _MB_PER_UNIT[(match.group(2) or "mb").lower()])


def _defaults(runtimes: list[Runtime]) -> dict[str, str]:
    """Each family's default kind: the one marked default, or the only one (OpenWhisk's rule)."""
    by_family: dict[str, list[Runtime]] = {}
    for r in runtimes:
        by_family.setdefault(r.family, []).append(r)
    defaults = {}
    for family, members in by_family.items():
        marked = [r.kind for r in members if r.default]
        if len(marked) > 1:
            raise ManifestError(f"Found more than one default for {family}: {', '.join(marked)}.")
        if not marked and len(members) > 1:
            raise ManifestError(f"{family} has multiple versions, but no default.")
        defaults[family] = marked[0] if marked else members[0].kind
    return defaults
