"""Cron patterns and the feeds' parameters, as the alarms provider reads and refuses them (no I/O, no waiting)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from whisk.alarms import schedule
from whisk.alarms.cron import Cron, CronError, zone
from whisk.alarms.feeds import iso
from whisk.alarms.schedule import FeedError

NOW = 1_800_000_000_000                      # 2027-01-15T08:00:00Z, a Friday



def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("pattern", "after", "expected"), [
    ("* * * * *", "2027-01-15T08:00:00", "2027-01-15T08:01:00"),
    ("*/8 * * * * *", "2027-01-15T08:00:03", "2027-01-15T08:00:08"),
    ("0 9 * * mon-fri", "2027-01-15T09:00:00", "2027-01-18T09:00:00"),       # Friday after nine: Monday
    ("0 0 1 jan *", "2027-01-15T00:00:00", "2028-01-01T00:00:00"),
    ("0 0 29 2 *", "2027-01-15T00:00:00", "2028-02-29T00:00:00"),           # the next leap day
    ("0 12 13 * 5", "2027-01-15T13:00:00", "2027-01-22T12:00:00"),          # day 13 or a Friday (Vixie cron)
    ("0 0 * * 7", "2027-01-15T00:00:00", "2027-01-17T00:00:00"),            # 7 is Sunday too
    ("15,45 1-3/2 * * *", "2027-01-15T01:45:00", "2027-01-15T03:15:00"),
])
def test_next_time_of_a_pattern(pattern: str, after: str, expected: str) -> None:
    assert Cron.parse(pattern).next_after(at(after), UTC) == at(expected)


def test_time_zones_and_daylight_saving() -> None:
    berlin = zone("Europe/Berlin")
    assert Cron.parse("30 9 * * *").next_after(at("2027-01-15T08:00:00"), berlin) == at("2027-01-15T08:30:00")
    # 02:30 does not exist in Berlin on 28 March 2027 (02:00 → 03:00): the next one is on the 29th, in summer time.
    assert Cron.parse("30 2 * * *").next_after(at("2027-03-27T12:00:00"), berlin) == at("2027-03-29T00:30:00")
    assert Cron.parse("0 0 30 2 *").next_after(at("2027-01-15T00:00:00"), UTC) is None


@pytest.mark.parametrize("pattern", ["* * *", "61 * * * *", "a b c d e", "* * * * * * *", "5-2 * * * *",
                                     "*/0 * * * *", "* * 0 * *", "* * * 13 *", "* * * * mon-xyz", ""])
def test_malformed_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(CronError):
        Cron.parse(pattern)


def test_unknown_time_zone() -> None:
    with pytest.raises(CronError, match="Invalid timezone."):
        zone("Mars/Olympus")


@pytest.mark.parametrize(("feed", "params", "message"), [
    ("alarm", {}, "alarms trigger feed is missing the cron parameter"),
    ("alarm", {"cron": "61 * * * *"}, "cron pattern '61 * * * *' is not valid"),
    ("alarm", {"cron": "* * * * *", "timezone": "Nowhere/Land"}, "Invalid timezone."),
    ("alarm", {"cron": "* * * * *", "startDate": NOW - 1}, f"startDate parameter '{NOW - 1}' must be in the future"),
    ("alarm", {"cron": "* * * * *", "stopDate": "not a date"}, "stopDate parameter 'not a date' is not a valid Date"),
    ("alarm", {"cron": "* * * * *", "startDate": NOW + 120_000, "stopDate": NOW + 60_000},
     f"stopDate parameter '{NOW + 60_000}' must be greater than the startDate parameter '{NOW + 120_000}'"),
    ("alarm", {"cron": "0 0 1 1 *", "stopDate": NOW + 60_000},
     "the first scheduled trigger fire is not until after the stop date"),
    ("alarm", {"cron": "* * * * *", "maxTriggers": 3, "stopDate": NOW + 600_000},
     "maxTriggers is not allowed when the stopDate parameter is specified"),
    ("once", {}, "alarms once trigger feed is missing the date parameter"),
    ("once", {"date": iso(NOW - 1000)}, f"date parameter '{iso(NOW - 1000)}' must be in the future"),
    ("once", {"date": NOW + 1000, "deleteAfterFire": "maybe"},
     "deleteAfterFire parameter must be one of [false, true, rules]."),
    ("interval", {}, "interval trigger feed is missing the minutes parameter"),
    ("interval", {"minutes": "1.5"}, "the minutes parameter must be an integer"),
    ("interval", {"minutes": -2}, "the minutes parameter must be an integer greater than zero"),
    ("interval", {"minutes": 1, "maxTriggers": 3, "stopDate": NOW + 600_000},
     "maxTriggers is not supported for the interval trigger feed"),
])
def test_bad_parameters_get_the_providers_message(feed: str, params: dict, message: str) -> None:
    with pytest.raises(FeedError) as raised:
        schedule.create(feed, params, NOW)
    assert str(raised.value) == message and raised.value.status == 400


def test_an_interval_without_a_start_begins_thirty_seconds_on_and_a_string_payload_is_wrapped() -> None:
    config = schedule.create("interval", {"minutes": "5", "trigger_payload": "hi"}, NOW)
    assert config.payload == {"payload": "hi"} and config.minutes == 5
    assert config.next_after(NOW) == NOW + 30_000
    assert config.next_after(NOW + 30_000) == NOW + 30_000 + 300_000


@pytest.mark.parametrize(("minutes", "expected"), [
    (5.0, 5), ("5.0", 5), (" 3 ", 3), ("+4", 4), ("5e0", 5), ("0x10", 16), (10 ** 20, 10 ** 20),
    (1.5, None), ("1.5", None), ("1e1", None), ("12abc", None), ("0o10", None), (True, None), (1e21, None),
    (10 ** 400, None), (float("inf"), None), ("Infinity", None), ("inf", None), ("nan", None), ([1], None),
])
def test_minutes_is_checked_as_javascript_reads_it(minutes: object, expected: int | None) -> None:
    """The provider's `+minutes !== parseInt(minutes)`: a JSON 5.0 is JavaScript's 5, and "0x10" is 16 to both."""
    if expected is None:
        with pytest.raises(FeedError, match="^the minutes parameter must be an integer$"):
            schedule.create("interval", {"minutes": minutes}, NOW)
    else:
        assert schedule.create("interval", {"minutes": minutes}, NOW).minutes == expected
        old = schedule.create("interval", {"minutes": 1}, NOW)
        assert schedule.update(old, {"minutes": minutes}, NOW).minutes == expected


def test_limit_cron_fields_refuses_seconds() -> None:
    with pytest.raises(FeedError, match="limited to 5 fields"):
        schedule.create("alarm", {"cron": "*/5 * * * * *"}, NOW, limit_cron_fields=True)
    assert schedule.create("alarm", {"cron": "0 * * * * *"}, NOW, limit_cron_fields=True).cron == "0 * * * * *"


def test_update_changes_only_what_is_given() -> None:
    old = schedule.create("alarm", {"cron": "* * * * *", "trigger_payload": {"a": 1}}, NOW)
    new = schedule.update(old, {"cron": "*/2 * * * *"}, NOW)
    assert (new.cron, new.payload) == ("*/2 * * * *", {"a": 1})
    with pytest.raises(FeedError, match="no updatable parameters were specified"):
        schedule.update(old, {"bogus": 1}, NOW)
    with pytest.raises(FeedError, match="is not valid"):
        schedule.update(old, {"cron": "nope"}, NOW)


@pytest.mark.parametrize(("feed", "params", "message"), [
    ("alarm", {"cron": "* * * * *", "timezone": 1}, "Invalid timezone."),
    ("alarm", {"cron": "* * * * *", "maxTriggers": "x"}, "maxTriggers parameter 'x' must be an integer"),
    ("alarm", {"cron": "* * * * *", "maxTriggers": [1]}, "maxTriggers parameter '[1]' must be an integer"),
    ("alarm", {"cron": "* * * * *", "startDate": 1e300}, "startDate parameter '1e+300' is not a valid Date"),
    ("once", {"date": 9e15}, "date parameter '9000000000000000.0' is not a valid Date"),
])
def test_parameters_of_the_wrong_type_or_out_of_range_are_refused_not_raised(feed: str, params: dict,
                                                                             message: str) -> None:
    """Not a TypeError, ValueError or OverflowError (a 500 with a traceback at the feed action's invoke)."""
    with pytest.raises(FeedError) as raised:
        schedule.create(feed, params, NOW)
    assert str(raised.value) == message
    old = schedule.create("alarm", {"cron": "* * * * *"}, NOW)
    with pytest.raises(FeedError, match="Invalid timezone."):
        schedule.update(old, {"timezone": 1}, NOW)


def test_ticks_past_the_last_date_are_none() -> None:
    """A cron alarm starting at the end of year 9999, and an interval whose next tick lies beyond it: no tick, so
    READ's `nextFire` and the scheduler never format a date Python cannot hold."""
    late = schedule.create("alarm", {"cron": "* * * * *", "startDate": "9999-12-31T23:59:30"}, NOW)
    assert late.next_after(NOW) is None
    long = schedule.create("interval", {"minutes": 10 ** 20}, NOW)
    first = long.next_after(NOW)
    assert first == NOW + 30_000
    assert long.next_after(first) is None
    iso(schedule.MAX_DATE_MS)


@pytest.mark.parametrize(("text", "expected"), [
    ("Sat, 16 Jan 2027 08:00:00 GMT", "2027-01-16T08:00:00"),          # JavaScript's toUTCString
    ("16 Jan 2027 09:00:00 +0100", "2027-01-16T08:00:00"),             # date -R
    ("2028", "2028-01-01T00:00:00"), ("2028-03", "2028-03-01T00:00:00"),
    ("2028-13", None), ("31 Feb 2028 00:00:00 GMT", None), ("16 Jan 2027", None),
])
def test_dates_in_the_forms_javascript_reads(text: str, expected: str | None) -> None:
    """The provider checks a date with `new Date(text)`: its own printed form and an ISO year or month are dates."""
    if expected is None:
        with pytest.raises(FeedError, match="is not a valid Date"):
            schedule.create("once", {"date": text}, NOW)
    else:
        config = schedule.create("once", {"date": text}, NOW)
        assert config.next_after(NOW) == int(at(expected).timestamp() * 1000)
