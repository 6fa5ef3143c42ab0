"""Cron patterns as the alarms feed reads them: five fields (minute hour day-of-month month day-of-week) or six
with seconds first, as the `cron` npm package the OpenWhisk alarms provider uses does.

Each field is `*`, a number, a range `a-b`, a list `a,b,c`, and any of them with a step `/n`; months and days of
the week also by their English three-letter names (`jan`, `mon`); Sunday is 0 or 7. When both day-of-month and
day-of-week are restricted, a day matching either matches (Vixie cron). Numbered months are 1-12, as in Unix cron
which the provider's README points to, not its `cron` module's 0-11 (docs/catalog.md). Times are wall-clock times in the
pattern's time zone (zoneinfo, UTC by default): a time that does not exist on a spring-forward day is skipped, an
ambiguous one on a fall-back day fires once, at its first occurrence.

Written here instead of taking a dependency: the grammar is small, and the one PyPI package for it (croniter)
brings python-dateutil along and has been announced unmaintained.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (low, high, names) per field, seconds first.
_FIELDS = ((0, 59, ()), (0, 59, ()), (0, 23, ()), (1, 31, ()), (1, 12, MONTHS), (0, 7, DAYS))
_PART = re.compile(r"(?:(\*)|([0-9a-z]+)(?:-([0-9a-z]+))?)(?:/([0-9]+))?")
# How far ahead a pattern is searched for its next time (a pattern like "0 0 30 2 *" never matches).
HORIZON_DAYS = 366 * 5


class CronError(ValueError):
    """The pattern or the time zone is not valid; the message says which."""


def _number(token: str, names: tuple[str, ...]) -> int:
    if token.isdigit():
        return int(token)
    if token in names:
        return names.index(token) + (1 if names is MONTHS else 0)
    raise CronError(f"not a value: {token!r}")


def _field(text: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.lower().split(","):
        match = _PART.fullmatch(part)
        if match is None:
            raise CronError(f"not a field: {text!r}")
        star, first, last, step = match.groups()
        if star:
            start, end = low, high
        else:
            start = _number(first, names)
            end = _number(last, names) if last is not None else (high if step else start)
        stride = int(step) if step else 1
        if stride < 1 or not low <= start <= high or not low <= end <= high or start > end:
            raise CronError(f"out of range: {part!r}")
        values.update(range(start, end + 1, stride))
    return frozenset(values)


def zone(name: str | None) -> ZoneInfo | timezone:
    """The time zone called `name` (IANA), UTC when none; CronError('Invalid timezone.') otherwise."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError("Invalid timezone.") from None


@dataclass(frozen=True, slots=True)
class Cron:
    pattern: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]         # 0 = Sunday
    any_day: bool                    # day-of-month is `*`
    any_weekday: bool                # day-of-week is `*`

    @classmethod
    def parse(cls, pattern: str) -> Cron:
        if not isinstance(pattern, str):
            raise CronError("not a string")
        fields = pattern.split()
        if len(fields) == 5:
            fields = ["0", *fields]
        if len(fields) != 6:
            raise CronError(f"{len(fields)} fields; a pattern has 5, or 6 with seconds first")
        parsed = [_field(text, low, high, names) for text, (low, high, names) in zip(fields, _FIELDS)]
        weekdays = frozenset(d % 7 for d in parsed[5])
        return cls(pattern, parsed[0], parsed[1], parsed[2], parsed[3], parsed[4], weekdays,
                   any_day=fields[3].startswith("*"), any_weekday=fields[5].startswith("*"))

    @property
    def has_seconds(self) -> bool:
        """Finer than a minute: a six-field pattern whose seconds are not just 0 (the provider's limitCronFields)."""
        return self.seconds != frozenset({0})

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def next_after(self, after: datetime, tz: ZoneInfo | timezone) -> datetime | None:
        """The first time strictly after `after` (aware) that the pattern names, as an aware UTC datetime; None
        when there is none within five years."""
        local = after.astimezone(tz).replace(microsecond=0, tzinfo=None) + timedelta(seconds=1)
        day = local.date()
        for _ in range(HORIZON_DAYS):
            if self._day_matches(day):
                first = local.time() if day == local.date() else None
                for when in self._times(day, first):
                    resolved = _resolve(when, tz)
                    if resolved is not None and resolved > after:
                        return resolved
            day += timedelta(days=1)
        return None

    def _times(self, day: date, not_before: time | None) -> Iterator[datetime]:
        """The day's matching wall-clock times in order, from `not_before` on (lazily: the first usually wins)."""
        for h in sorted(self.hours):
            if not_before is not None and h < not_before.hour:
                continue
            for m in sorted(self.minutes):
                for s in sorted(self.seconds):
                    when = datetime(day.year, day.month, day.day, h, m, s)
                    if not_before is None or when.time() >= not_before:
                        yield when


def _resolve(local: datetime, tz: ZoneInfo | timezone) -> datetime | None:
    """A naive wall-clock time in `tz` as UTC; None when it does not exist there (a spring-forward gap)."""
    aware = local.replace(tzinfo=tz, fold=0)
    utc = aware.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != local:
        return None
    return utc
