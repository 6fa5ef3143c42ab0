"""Names, paths and fully qualified names (docs/openwhisk.md §1.3; OpenWhisk `E/EntityPath.scala`,
`E/FullyQualifiedEntityName.scala`).

An `EntityName` is one segment; an `EntityPath` is "namespace" or "namespace/package"; a `FullyQualifiedEntityName`
is a path plus a name, stored as the document id "namespace[/package]/name". The segment `_` as a path's root means
"the caller's namespace" and is replaced by `resolve` before anything is stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from whisk.entities.errors import Invalid

MAX_NAME = 256
DEFAULT_NAMESPACE = "_"
# OpenWhisk's EntityName.REGEX; Java's \w is ASCII-only, hence re.ASCII.
_NAME = re.compile(r"\w|\w[\w@ .&-]{0,254}[\w@.&-]", re.ASCII)

MALFORMED_FQN = ("The fully qualified name of the entity must contain at least the namespace and the name of the "
                 "entity.")


def is_name(text: str) -> bool:
    return isinstance(text, str) and _NAME.fullmatch(text) is not None


@dataclass(frozen=True, slots=True)
class EntityName:
    value: str

    def __post_init__(self) -> None:
        if not isinstance(self.value, str):
            raise Invalid("The name of the entity contains illegal characters.")
        if len(self.value) > MAX_NAME:
            raise Invalid(f"Name segement longer than allowed: {len(self.value)} > {MAX_NAME}.")  # sic, as OpenWhisk
        if not _NAME.fullmatch(self.value):
            raise Invalid("The name of the entity contains illegal characters.")

    def __str__(self) -> str:
        return self.value


def namespace_segment(text: str) -> str:
    """A namespace from a URL segment (before `_` is resolved), with OpenWhisk's namespace messages."""
    if len(text) > MAX_NAME:
        raise Invalid(f"Namespace longer than allowed: {len(text)} > {MAX_NAME}.")
    if not _NAME.fullmatch(text):
        raise Invalid("The namespace contains illegal characters.")
    return text


@dataclass(frozen=True, slots=True)
class EntityPath:
    """`namespace` or `namespace/package`: one or more valid segments."""

    segments: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.segments:
            raise Invalid("path undefined")
        if not all(is_name(s) for s in self.segments):
            raise Invalid(f"path contains invalid parts {list(self.segments)}")

    @classmethod
    def parse(cls, text: str) -> EntityPath:
        if not isinstance(text, str):
            raise Invalid("namespace malformed")
        return cls(tuple(s for s in text.split("/") if s))

    @classmethod
    def of(cls, *segments: str) -> EntityPath:
        return cls(tuple(segments))

    @property
    def root(self) -> str:
        return self.segments[0]

    @property
    def last(self) -> str:
        return self.segments[-1]

    @property
    def is_default_package(self) -> bool:
        """True for a bare namespace (an entity not inside a package)."""
        return len(self.segments) == 1

    @property
    def package(self) -> str | None:
        return self.segments[1] if len(self.segments) > 1 else None

    def add(self, segment: str) -> EntityPath:
        return EntityPath(self.segments + (segment,))

    def resolve(self, namespace: str) -> EntityPath:
        if self.segments[0] == DEFAULT_NAMESPACE:
            return EntityPath((namespace,) + self.segments[1:])
        return self

    def __str__(self) -> str:
        return "/".join(self.segments)


def is_path(text: Any) -> bool:
    try:
        EntityPath.parse(text)
    except Invalid:
        return False
    return True


@dataclass(frozen=True, slots=True)
class FullyQualifiedEntityName:
    path: EntityPath
    name: str
    version: str | None = None
    binding: str | None = None

    @classmethod
    def of(cls, path: str | EntityPath, name: str) -> FullyQualifiedEntityName:
        return cls(path if isinstance(path, EntityPath) else EntityPath.parse(path), EntityName(name).value)

    @classmethod
    def from_path(cls, text: str) -> FullyQualifiedEntityName:
        """"/ns[/pkg]/name" (leading slash optional): the last segment is the name."""
        path = EntityPath.parse(text)
        if len(path.segments) < 2:
            raise Invalid(f"requirement failed: {MALFORMED_FQN}")
        return cls(EntityPath(path.segments[:-1]), path.last)

    @classmethod
    def from_json(cls, value: Any) -> FullyQualifiedEntityName:
        """OpenWhisk's dual form: `{"path", "name", "version"?, "binding"?}` or a string "/ns[/pkg]/name"."""
        if isinstance(value, str):
            # EntityPath's requirements, as Scala's `require` words them (a 2.12 Array's toSeq is a WrappedArray)
            parts = [s for s in value.split("/") if s]
            if not parts:
                raise Invalid("requirement failed: path undefined")
            if not all(is_name(p) for p in parts):
                raise Invalid(f"requirement failed: path contains invalid parts WrappedArray({', '.join(parts)})")
            return cls.from_path(value)
        if isinstance(value, dict):
            path, name = value.get("path"), value.get("name")
            if not isinstance(path, str) or not isinstance(name, str) or not is_name(name):
                raise Invalid("fully qualified name malformed")
            version = value.get("version")
            binding = value.get("binding")
            if version is not None and not isinstance(version, str):
                raise Invalid("fully qualified name malformed")
            if binding is not None and not (isinstance(binding, str) and is_path(binding)):
                raise Invalid("fully qualified name malformed")
            if not is_path(path):                   # EntityPath's reader fails, and this one answers for it
                raise Invalid("fully qualified name malformed")
            return cls(EntityPath.parse(path), name, version, binding)
        raise Invalid("fully qualified name malformed")

    @property
    def namespace(self) -> str:
        return self.path.root

    @property
    def doc_id(self) -> str:
        return f"{self.path}/{self.name}"

    @property
    def full_path(self) -> EntityPath:
        return self.path.add(self.name)

    def with_leading_slash(self) -> str:
        return f"/{self.doc_id}"

    def resolve(self, namespace: str) -> FullyQualifiedEntityName:
        """Replace a `_` root with the caller's namespace (drops version and binding, as OpenWhisk does)."""
        return FullyQualifiedEntityName(self.path.resolve(namespace), self.name)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": str(self.path), "name": self.name}
        if self.version is not None:
            out["version"] = self.version
        if self.binding is not None:
            out["binding"] = self.binding
        return out

    def __str__(self) -> str:
        return self.doc_id


def resolve_name(text: Any, namespace: str) -> FullyQualifiedEntityName | None:
    """A user-supplied action name relative to `namespace` ("a", "pkg/a", "/ns/a", "/ns/pkg/a", "ns/pkg/a"), as
    OpenWhisk's `FullyQualifiedEntityName.resolveName` (used for conductor components); None if not valid."""
    if not isinstance(text, str):
        return None
    try:
        path = EntityPath.parse(text)
    except Invalid:
        return None
    n, slash = len(path.segments), text.startswith("/")
    if n > 3 or (slash and n == 1):
        return None
    if not (slash or n == 3):
        path = EntityPath((namespace,) + path.segments)
    path = path.resolve(namespace)
    if len(path.segments) < 2:
        return None
    return FullyQualifiedEntityName(EntityPath(path.segments[:-1]), path.last)


class Addressed:
    """A mixin for entities stored under "namespace/name" (action, trigger, rule, package): their FQN and doc id."""

    __slots__ = ()
    namespace: EntityPath
    name: str

    @property
    def fqn(self) -> FullyQualifiedEntityName:
        return FullyQualifiedEntityName(self.namespace, self.name)

    @property
    def doc_id(self) -> str:
        return f"{self.namespace}/{self.name}"
