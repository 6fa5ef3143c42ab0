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
        """Lenient as OpenWhisk's `SemVer(str)`: split on '.' with trailing empty parts dropped (Java's split), the
        first three parts read as Java ints, missing ones 0 ("1" is 1.0.0), any after them ignored."""
        try:
            parts = text.split(".") if text else []
            while parts and not parts[-1]:
                parts.pop()
            numbers = [_java_int(p) for p in parts[:3]]
            return cls(*numbers, *[0] * (3 - len(numbers)))
        except (ValueError, Invalid):
            raise Invalid(f"bad semantic version {text}") from None

    @classmethod
    def from_json(cls, value: Any) -> SemVer:
        """A PUT body's `version`: each part a Java int, and one message for every bad value, as OpenWhisk's reader
        gives. (A stored version may pass 2^31 - 1 by updates, and is still read.)"""
        if isinstance(value, str):
            try:
                version = cls.parse(value)
            except Invalid:
                pass
            else:
                if max(version.major, version.minor, version.patch) < 2**31:
                    return version
        raise Invalid("semantic version malformed")

    def up_patch(self) -> SemVer:
        return SemVer(self.major, self.minor, self.patch + 1)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"


def _java_int(part: str) -> int:
    """Java's Integer.parseInt, but for its 32-bit range: an optional sign, then decimal digits of any script."""
    digits = part[1:] if part[:1] in ("+", "-") else part
    if not digits or not digits.isdecimal():
        raise ValueError(part)
    return -int(digits) if part[:1] == "-" else int(digits)
