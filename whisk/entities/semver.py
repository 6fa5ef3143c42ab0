"""Semantic versions of entities (docs/openwhisk.md §1.3; OpenWhisk `E/SemVer.scala`): new entities are 0.0.1 and every
update bumps the patch unless the request names a version."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from whisk.entities.errors import Invalid


@dataclass(frozen=True, slots=True, order=True)
class SemVer:
    major: int = 0
    minor: int = 0
    patch: int = 1

    def __post_init__(self) -> None:
        if min(self.major, self.minor, self.patch) < 0 or (self.major, self.minor, self.patch) == (0, 0, 0):
            raise Invalid(f"bad semantic version {self} must not be negative")

    @classmethod
    def parse(cls, text: str) -> SemVer:
        """Lenient as OpenWhisk: missing parts are 0 ("1" is 1.0.0); anything else is an error."""
        try:
            parts = [int(p) for p in text.split(".")] if text else []
            if len(parts) > 3 or any(p.strip() != p or not p.isdigit() for p in text.split(".")):
                raise ValueError(text)
            parts += [0] * (3 - len(parts))
            return cls(*parts)
        except (ValueError, Invalid):
            raise Invalid(f"bad semantic version {text}") from None

    @classmethod
    def from_json(cls, value: Any) -> SemVer:
        if not isinstance(value, str):
            raise Invalid("semantic version malformed")
        return cls.parse(value)

    def up_patch(self) -> SemVer:
        return SemVer(self.major, self.minor, self.patch + 1)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"
