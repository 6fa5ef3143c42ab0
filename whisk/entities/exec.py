"""What an action runs (docs/openwhisk.md §2.3; OpenWhisk `E/Exec.scala`): managed runtime code, a blackbox image, or a
sequence.

Managed kinds are checked by a resolver the caller passes in (`resolve_kind(kind) -> concrete kind`, raising Invalid
for unknown kinds, RuntimeDeprecated for deprecated ones); the runtime manifest provides it, so entities never read
it themselves. The resolver maps `<family>:default` to the family's default kind. It may also return an object with
`kind` and `requires_main` (the manifest's `Runtime`), and then a missing `main` is refused for kinds that need one.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Union

from whisk.entities.errors import Invalid
from whisk.entities.names import FullyQualifiedEntityName

KindResolver = Callable[[str], Any]     # kind -> concrete kind (str) or an object with .kind (and .requires_main)

SEQUENCE = "sequence"
BLACKBOX = "blackbox"
# OpenWhisk's Messages.sequenceIsTooLong and sequenceComponentNotFound: refused on create, failed when run.
SEQUENCE_TOO_LONG = "Too many actions in the sequence."
SEQUENCE_COMPONENT_MISSING = "Sequence component does not exist."

# With the length a multiple of 4, the same texts as OpenWhisk's groups of four with a padded last group. A repeated
# group made the matcher keep ~40 bytes a character (2 GB for an archive at the 48 MB limit); one class does not.
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
# A docker image reference: [registry[:port]/]name[/more][:tag][@digest], lower-case repository names whose parts
# are joined by '.', '_', '__' or a run of '-' (OpenWhisk's ImageName grammar, Docker's).
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(rf"(?:[A-Za-z0-9.-]+(?::\d+)?/)?{_COMPONENT}(?:/{_COMPONENT})*"
                    r"(?::[\w][\w.-]{0,127})?(?:@[A-Za-z0-9]+:[A-Fa-f0-9]{32,})?", re.ASCII)   # a tag's \w too


class RuntimeDeprecated(Invalid):
    """A kind the manifest still lists but no longer runs (OpenWhisk `Messages.runtimeDeprecated`). A body naming it
    still parses: the actions collection refuses to make or update such an action (400, not a malformed body)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"The '{kind}' runtime is no longer supported. "
                         "You may read and delete but not update or invoke this action.")
        self.kind = kind


def is_binary_code(code: str | None) -> bool:
    """OpenWhisk's test for a base64 archive: non-empty, length % 4 == 0, base64 alphabet."""
    if code is None:
        return False
    t = code.strip()
    return len(t) > 0 and len(t) % 4 == 0 and _BASE64.fullmatch(t) is not None


def _utf8_len(text: str | None) -> int:
    return len(text.encode()) if text else 0


@dataclass(frozen=True, slots=True)
class CodeExec:
    kind: str
    code: str
    main: str | None = None
    binary: bool = False

    @property
    def size(self) -> int:
        return _utf8_len(self.code) + _utf8_len(self.main)

    def to_json(self, code: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind}
        if code:
            out["code"] = self.code
        out["binary"] = self.binary
        if self.main is not None:
            out["main"] = self.main
        return out


@dataclass(frozen=True, slots=True)
class BlackboxExec:
    image: str
    code: str | None = None
    main: str | None = None
    binary: bool = False
    kind: str = BLACKBOX

    @property
    def size(self) -> int:
        return _utf8_len(self.code) + _utf8_len(self.main) + _utf8_len(self.image)

    def to_json(self, code: bool = True) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": BLACKBOX, "image": self.image, "binary": self.binary}
        if code and self.code is not None:
            out["code"] = self.code
        if self.main is not None:
            out["main"] = self.main
        return out


@dataclass(frozen=True, slots=True)
class SequenceExec:
    components: tuple[FullyQualifiedEntityName, ...]
    kind: str = SEQUENCE

    @property
    def size(self) -> int:
        return sum(len(c.doc_id.encode()) for c in self.components)

    def resolve(self, namespace: str) -> SequenceExec:
        return SequenceExec(tuple(c.resolve(namespace) for c in self.components))

    def to_json(self, code: bool = True) -> dict[str, Any]:
        return {"kind": SEQUENCE, "components": [c.with_leading_slash() for c in self.components]}


Exec = Union[CodeExec, BlackboxExec, SequenceExec]


def _main(obj: dict[str, Any], kind: str) -> str | None:
    main = obj.get("main")
    if main is not None and not isinstance(main, str):
        raise Invalid(f"if defined, 'main' be a string in 'exec' for '{kind}' actions")  # sic, as OpenWhisk
    return main


def parse_exec(value: Any, resolve_kind: KindResolver) -> Exec:
    """An `exec` from a PUT body; raises Invalid with OpenWhisk's deserialization messages."""
    if not isinstance(value, dict):
        raise Invalid("'kind' must be a string defined in 'exec'")
    kind = value.get("kind")
    if not isinstance(kind, str):
        raise Invalid("'kind' must be a string defined in 'exec'")
    kind = kind.strip().lower()
    if kind == SEQUENCE:
        components = value.get("components")
        if components is None:
            raise Invalid("'components' must be defined for sequence kind")
        if not isinstance(components, list):
            raise Invalid("'components' must be an array")
        return SequenceExec(tuple(FullyQualifiedEntityName.from_json(c) for c in components))
    main = _main(value, kind)
    if kind == BLACKBOX:
        image = value.get("image")
        if not isinstance(image, str):
            raise Invalid(f"'image' must be a string defined in 'exec' for '{BLACKBOX}' actions")
        if not _IMAGE.fullmatch(image):
            raise Invalid("could not parse image name")      # ImageName.fromString
        code = value.get("code")
        if code is not None and not isinstance(code, str):
            raise Invalid(f"'code' must be a string defined in 'exec' for '{kind}' actions")
        if code is None or not code.strip():
            return BlackboxExec(image, None, main, False)
        return BlackboxExec(image, code, main, is_binary_code(code))
    try:
        resolved = resolve_kind(kind)
    except RuntimeDeprecated as exc:
        resolved = exc.kind
    concrete = resolved if isinstance(resolved, str) else resolved.kind
    code = value.get("code")
    if not isinstance(code, str):
        raise Invalid(f"'code' must be a string defined in 'exec' for '{kind}' actions")
    if main is None and getattr(resolved, "requires_main", False):
        raise Invalid(f"'main' must be a string defined in 'exec' for '{kind}' actions")
    return CodeExec(concrete, code, main, is_binary_code(code))


def exec_from_doc(value: dict[str, Any]) -> Exec:
    """An `exec` as stored: trusted, no kind resolution (a deprecated kind can still be read and deleted)."""
    kind = value.get("kind", "")
    if kind == SEQUENCE:
        return SequenceExec(tuple(FullyQualifiedEntityName.from_json(c) for c in value.get("components") or ()))
    if kind == BLACKBOX:
        return BlackboxExec(value.get("image", ""), value.get("code"), value.get("main"), bool(value.get("binary")))
    code = value.get("code", "")
    return CodeExec(kind, code, value.get("main"), bool(value.get("binary", is_binary_code(code))))
