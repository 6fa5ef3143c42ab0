"""Qualified names as `wsk` reads them (wsk's qualified_name.go): `name`, `pkg/name`, `/ns/name`, `/ns/pkg/name`, and
`ns/pkg/name` (three parts without the leading slash mean `/ns/pkg/name`). The namespace defaults to `_`."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from whisk.cli.errors import CliError

DEFAULT_NAMESPACE = "_"
# Characters Go's url.URL{Path: ...}.String() leaves alone in a path.
_PATH_SAFE = "/!$&'()*+,;=:@~"


def _add_lead_slash(name: str) -> str:
    parts = name.split("/")
    return "/" + name if len(parts) == 3 and parts[0] else name


@dataclass(frozen=True, slots=True)
class QualifiedName:
    namespace: str          # without a leading '/'; `_` when the name gives none
    package: str            # "" when none
    entity: str             # "" only for a bare `/ns`

    @property
    def entity_name(self) -> str:
        """`[pkg/]name`: what the REST path and the `ok:` lines use."""
        return f"{self.package}/{self.entity}" if self.package else self.entity

    @property
    def full(self) -> str:
        """`/ns/[pkg/]name`."""
        return f"/{self.namespace}/{self.entity_name}"

    @property
    def path(self) -> str:
        """The entity name escaped for a URL path, as the Go client escapes it."""
        return quote(self.entity_name, safe=_PATH_SAFE)


def invalid_name(text: str) -> CliError:
    return CliError(f"'{text}' is not a valid qualified name: A valid qualified name must be specified.",
                    usage=True)


def parse(text: str) -> QualifiedName:
    """A qualified name, or CliError "'X' is not a valid qualified name: ..." (exit 1, with the usage hint)."""
    name = _add_lead_slash(text)
    parts = name.split("/")
    if name.startswith("/"):
        segments = parts[1:]
        if not 1 <= len(segments) <= 3 or any(s in ("", ".") for s in segments):
            raise invalid_name(text)
        namespace = segments[0]
        rest = segments[1:]
        if not rest:
            return QualifiedName(namespace, "", "")
        return QualifiedName(namespace, rest[0] if len(rest) == 2 else "", rest[-1])
    if not 1 <= len(parts) <= 2 or any(s in ("", ".") for s in parts):
        raise invalid_name(text)
    return QualifiedName(DEFAULT_NAMESPACE, parts[0] if len(parts) == 2 else "", parts[-1])


def fully_qualified(text: str) -> str:
    """A name sent inside a body (rule trigger/action, sequence component): `x` -> `/_/x`, `p/x` -> `/_/p/x`,
    `ns/p/x` -> `/ns/p/x`; a name with a leading slash is kept as typed."""
    name = _add_lead_slash(text)
    return name if name.startswith("/") else f"/{DEFAULT_NAMESPACE}/{name}"


def namespace_only(text: str) -> str:
    """The namespace of a `/ns` argument (list commands); a name with an entity part is refused."""
    qualified = parse(text)
    if qualified.entity_name:
        raise CliError(f"An entity name, '{qualified.entity_name}', was provided instead of a namespace. Valid "
                       "namespaces are of the following format: /NAMESPACE.", usage=True)
    return qualified.namespace


def display_namespace(namespace: str) -> str:
    """`_` reads as `default` in messages."""
    return "default" if namespace == DEFAULT_NAMESPACE else namespace


def url_segment(text: str) -> str:
    return quote(text, safe=_PATH_SAFE)
