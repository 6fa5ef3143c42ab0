"""What an alarm is and when it fires next: the three feeds' parameters checked as the OpenWhisk alarms provider
checks them (same rules, same messages), and the next tick after a moment. Standard library only, no I/O.

* `alarm`: `cron` (5 fields, or 6 with seconds), `timezone`, `startDate`, `stopDate`, `maxTriggers`, `strict`;
* `once`: `date`, `deleteAfterFire` (false | true | rules);
* `interval`: `minutes`, `startDate` (default: 30 s from now, as the provider), `stopDate`;
* all: `trigger_payload` (a string becomes `{"payload": string}`).
Dates are what JavaScript's `new Date(x)` reads: epoch milliseconds, an ISO 8601 text (no offset = UTC) or the
RFC 2822 form its toUTCString prints.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from whisk.alarms.cron import Cron, CronError, zone

ALARM, ONCE, INTERVAL = "alarm", "once", "interval"
FEEDS = (ALARM, ONCE, INTERVAL)
DELETE_AFTER_FIRE = ("false", "true", "rules")
# Without a startDate an interval starts this long after its creation (the provider's "30 seconds from now").
INTERVAL_START_DELAY_MS = 30_000
# The last moment a date can name here: JavaScript's Date reaches 8.64e15 ms, Python's datetime (which READ and the
# cron search use) the end of year 9999; a date past it is no date, a tick past it none.
MAX_DATE_MS = int(datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp() * 1000)


class FeedError(ValueError):
    """A parameter the provider would refuse; `status` is the HTTP status it answers with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def date_ms(value: Any) -> int | None:
    """Epoch milliseconds of a date parameter, None when it is not a date."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value) if -8.64e15 <= value <= MAX_DATE_MS else None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    try:
        parsed = _js_date(text)
    except (ValueError, OverflowError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def _js_date(text: str) -> datetime:
    """The texts JavaScript's Date reads that users give: ISO 8601 down to a year alone ("2027", "2027-01", UTC), and
    the form its toUTCString and `date -R` print ("Fri, 15 Jan 2027 08:00:00 GMT")."""
    short = _YEAR_MONTH.fullmatch(text)
    if short is not None:
        return datetime(int(short[1]), int(short[2] or 1), 1, tzinfo=UTC)
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        if _RFC_2822.fullmatch(text) is None:
            raise
        return parsedate_to_datetime(text)


def _future_date(value: Any, name: str, now_ms: int, start: Any = None) -> int:
    """The provider's validateDate: a valid date, in the future, and after `start` when one is given."""
    when = date_ms(value)
    if when is None:
        raise FeedError(f"{name} parameter '{value}' is not a valid Date")
    if now_ms >= when:
        raise FeedError(f"{name} parameter '{value}' must be in the future")
    if start is not None and when <= (date_ms(start) or 0):
        raise FeedError(f"{name} parameter '{value}' must be greater than the startDate parameter '{start}'")
    return when


def no_tick_left(config: Config) -> str:
    """Why an alarm with no next tick is disabled (the provider's messages): its stop date came, or its pattern
    names no further time."""
    if config.stop_date is not None:
        kind = "interval" if config.feed == INTERVAL else "cron"
        return f"Automatically disabled after firing last scheduled {kind} trigger"
    return "Automatically disabled: the pattern names no further time"


def strict_flag(value: Any) -> bool:
    """`strict` as a flag: true or the text "true" (as a client that sends parameters as texts gives it)."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def payload_of(value: Any) -> dict[str, Any]:
    if isinstance(value, str):
        return {"payload": value} if value else {}
    return value if isinstance(value, dict) else {}


def _cron(pattern: Any, tz_name: Any, limit_fields: bool) -> Cron:
    try:
        if tz_name and not isinstance(tz_name, str):
            raise CronError("Invalid timezone.")
        zone(tz_name)
        cron = Cron.parse(pattern if isinstance(pattern, str) else "")
    except CronError as exc:
        message = str(exc) if str(exc) == "Invalid timezone." else f"cron pattern '{pattern}' is not valid"
        raise FeedError(message) from None
    if limit_fields and cron.has_seconds:
        raise FeedError("cron pattern is limited to 5 fields with 1 minute as the finest granularity")
    return cron


_YEAR_MONTH = re.compile(r"(\d{4})(?:-(\d{2}))?")
_RFC_2822 = re.compile(r"(?:[a-z]{3}, *)?\d{1,2} [a-z]{3} \d{4} \d{2}:\d{2}(?::\d{2})? *(?:[+-]\d{4}|[a-z]{1,3})",
                       re.IGNORECASE)
# JavaScript's unary plus and parseInt of a text, which the provider compares to check `minutes`.
_JS_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?|0x[0-9a-f]+|0o[0-7]+|0b[01]+", re.IGNORECASE)
_JS_INT_PREFIX = re.compile(r"([+-]?)(?:0x([0-9a-f]+)|(\d+))", re.IGNORECASE)


def _js_plus(text: str) -> float | None:
    """`+text`: the whole text (blanks around it aside) as a number; an empty text is 0."""
    text = text.strip()
    if not text:
        return 0.0
    if _JS_NUMBER.fullmatch(text) is None:
        return None
    prefix = text[:2].lower()
    return float(int(text, 0)) if prefix in ("0x", "0o", "0b") else float(text)


def _js_parse_int(text: str) -> float | None:
    """`parseInt(text)`: the leading whole number (sign, decimal or 0x digits), whatever follows it."""
    match = _JS_INT_PREFIX.match(text.lstrip())
    if match is None:
        return None
    sign, hexadecimal, decimal = match.groups()
    number = int(hexadecimal, 16) if hexadecimal is not None else int(decimal)
    return float(-number if sign == "-" else number)


def _minutes(value: Any) -> int:
    """The provider's check, `+minutes === parseInt(minutes)`: a whole number, also as the JSON number `5.0` or the
    text "5.0" (which JavaScript reads as 5), not `1.5`, "1e1" or true."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise FeedError("the minutes parameter must be an integer")
    if isinstance(value, str):
        plus, parsed = _js_plus(value), _js_parse_int(value)
    else:
        # parseInt reads a number as JavaScript prints it: from 1e21 on in exponent form, so never equal.
        whole = isinstance(value, int) or (math.isfinite(value) and value == int(value))
        plus = parsed = float(value) if whole and abs(value) < 1e21 else None
    if plus is None or plus != parsed:
        raise FeedError("the minutes parameter must be an integer")
    if parsed <= 0:
        raise FeedError("the minutes parameter must be an integer greater than zero")
    return int(parsed)


@dataclass(frozen=True, slots=True)
class Config:
    """A checked alarm: `to_json` is how the store keeps it and READ shows it."""

    feed: str
    payload: dict[str, Any]
    cron: str | None = None
    timezone: str | None = None
    strict: Any = None
    minutes: int | None = None
    date: Any = None
    delete_after_fire: str | None = None
    start_date: Any = None
    stop_date: Any = None
    max_triggers: int = -1

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"feed": self.feed, "payload": self.payload, "maxTriggers": self.max_triggers}
        for key, value in (("cron", self.cron), ("timezone", self.timezone), ("strict", self.strict),
                           ("minutes", self.minutes), ("date", self.date), ("deleteAfterFire", self.delete_after_fire),
                           ("startDate", self.start_date), ("stopDate", self.stop_date)):
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Config:
        return cls(feed=doc["feed"], payload=doc.get("payload") or {}, cron=doc.get("cron"),
                   timezone=doc.get("timezone"), strict=doc.get("strict"), minutes=doc.get("minutes"),
                   date=doc.get("date"), delete_after_fire=doc.get("deleteAfterFire"),
                   start_date=doc.get("startDate"), stop_date=doc.get("stopDate"),
                   max_triggers=int(doc.get("maxTriggers", -1)))

    def reached_max(self, fired: int) -> bool:
        """Whether `fired` ticks used up `maxTriggers` (0 or less: no maximum)."""
        return 0 < self.max_triggers <= fired

    def read_view(self) -> dict[str, Any]:
        """The `config` part of READ's answer, field by field as the provider's."""
        view: dict[str, Any] = {"payload": self.payload, "strict": strict_flag(self.strict)}
        if self.feed == ONCE:
            view.update(date=self.date, deleteAfterFire=self.delete_after_fire)
        else:
            view.update(startDate=self.start_date, stopDate=self.stop_date)
            if self.feed == INTERVAL:
                view["minutes"] = self.minutes
            else:
                view.update(cron=self.cron, timezone=self.timezone)
        return {k: v for k, v in view.items() if v is not None}

    # --- when it fires ------------------------------------------------------------------------------------------
    def next_after(self, after_ms: int) -> int | None:
        """The first tick strictly after `after_ms` (epoch ms), None when there is none left."""
        stop = date_ms(self.stop_date) if self.stop_date is not None else None
        if self.feed == ONCE:
            when = date_ms(self.date)
            return when if when is not None and when > after_ms else None
        start = date_ms(self.start_date) if self.start_date is not None else None
        if self.feed == INTERVAL:
            period = (self.minutes or 1) * 60_000
            first = start if start is not None else after_ms + 1
            k = 0 if after_ms < first else (after_ms - first) // period + 1
            when = first + k * period
        else:
            begin = max(after_ms, start - 1) if start is not None else after_ms
            if begin >= MAX_DATE_MS:
                return None
            moment = datetime.fromtimestamp(begin / 1000, UTC)
            try:
                found = Cron.parse(self.cron or "").next_after(moment, zone(self.timezone))
            except (OverflowError, ValueError):          # the search ran past year 9999
                return None
            if found is None:
                return None
            when = int(found.timestamp() * 1000)
        if when > MAX_DATE_MS:
            return None
        return None if stop is not None and when > stop else when


def create(feed: str, params: dict[str, Any], now_ms: int, *, limit_cron_fields: bool = False) -> Config:
    """A CREATE's parameters checked in the provider's order; FeedError names the first fault."""
    payload = payload_of(params.get("trigger_payload"))
    max_triggers = params.get("maxTriggers") or -1
    if feed == ONCE:
        if not params.get("date"):
            raise FeedError("alarms once trigger feed is missing the date parameter")
        _future_date(params["date"], "date", now_ms)
        return Config(ONCE, payload, date=params["date"], delete_after_fire=_delete_after_fire(params))
    cron = None
    if feed == INTERVAL:
        if not params.get("minutes"):
            raise FeedError("interval trigger feed is missing the minutes parameter")
        minutes: int | None = _minutes(params["minutes"])
    else:
        minutes = None
        if not params.get("cron"):
            raise FeedError("alarms trigger feed is missing the cron parameter")
        cron = _cron(params["cron"], params.get("timezone"), limit_cron_fields)
    start = params.get("startDate") or None
    if start is not None:
        _future_date(start, "startDate", now_ms)
    elif feed == INTERVAL:
        start = now_ms + INTERVAL_START_DELAY_MS
    stop = params.get("stopDate") or None
    if params.get("maxTriggers") and stop is not None:
        raise FeedError("maxTriggers is not supported for the interval trigger feed" if feed == INTERVAL
                        else "maxTriggers is not allowed when the stopDate parameter is specified")
    config = Config(feed, payload, cron=params.get("cron") if cron else None,
                    timezone=params.get("timezone") if cron else None, strict=params.get("strict") if cron else None,
                    minutes=minutes, start_date=start, stop_date=stop,
                    max_triggers=_max_triggers(max_triggers) if feed == ALARM else -1)
    if stop is not None:
        _future_date(stop, "stopDate", now_ms, start)
        if cron is not None and config.next_after(now_ms) is None:
            raise FeedError("the first scheduled trigger fire is not until after the stop date")
    return config


def _max_triggers(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise FeedError(f"maxTriggers parameter '{value}' must be an integer") from None


def _delete_after_fire(params: dict[str, Any]) -> str | None:
    if not params.get("deleteAfterFire"):
        return None
    value = str(params["deleteAfterFire"]).strip().lower()
    if value not in DELETE_AFTER_FIRE:
        raise FeedError("deleteAfterFire parameter must be one of [false, true, rules].")
    return value


def update(old: Config, params: dict[str, Any], now_ms: int, *, limit_cron_fields: bool = False) -> Config:
    """An UPDATE: only the parameters given change, checked as the provider checks them."""
    changes: dict[str, Any] = {}
    if params.get("trigger_payload"):
        changes["payload"] = payload_of(params["trigger_payload"])
    if old.feed == ONCE:
        if params.get("date"):
            _future_date(params["date"], "date", now_ms)
            changes["date"] = params["date"]
        if params.get("deleteAfterFire"):
            changes["delete_after_fire"] = _delete_after_fire(params)
    else:
        if old.feed == INTERVAL:
            if params.get("minutes"):
                changes["minutes"] = _minutes(params["minutes"])
        else:
            if params.get("cron") or params.get("timezone"):
                _cron(params.get("cron") or old.cron, params.get("timezone") or old.timezone,
                      limit_cron_fields and bool(params.get("cron")))
                if params.get("cron"):
                    changes["cron"] = params["cron"]
                if params.get("timezone"):
                    changes["timezone"] = params["timezone"]
            if "strict" in params:
                changes["strict"] = params["strict"]
        if params.get("startDate"):
            _future_date(params["startDate"], "startDate", now_ms)
            changes["start_date"] = params["startDate"]
        if params.get("stopDate"):
            _future_date(params["stopDate"], "stopDate", now_ms, params.get("startDate") or old.start_date)
            changes["stop_date"] = params["stopDate"]
        elif params.get("startDate") and old.stop_date is not None \
                and (date_ms(params["startDate"]) or 0) >= (date_ms(old.stop_date) or 0):
            raise FeedError(f"startDate parameter '{params['startDate']}' must be less than the stopDate "
                            f"parameter '{old.stop_date}'")
    if not changes:
        raise FeedError("no updatable parameters were specified")
    return replace(old, **changes)
