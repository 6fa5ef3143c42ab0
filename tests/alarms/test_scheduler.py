"""The alarms scheduler with a wall clock the test moves (tests/alarms/controller.py): intervals over minutes, stop
dates, max triggers, once with deleteAfterFire, ticks missed while nobody ran, a revoked key and a deleted trigger,
and two controllers on one store firing each tick once."""

from __future__ import annotations

import asyncio
import json
import random

from prometheus_client import REGISTRY

from tests.alarms.controller import START_MS, ManualWallClock, controller
from tests.support.waiting import until
from whisk.alarms.feeds import ENTITY_TYPE as ALARM, iso
from whisk.entities.names import EntityPath
from whisk.store.memory import MemoryStore

ECHO = {"exec": {"kind": "python:3", "code": "def main(args):\n    return args\n"}}


async def wired(c, trigger: str) -> None:
    """A trigger with an active rule to an action."""
    await c.put("triggers", trigger, {})
    await c.put("actions", f"{trigger}-action", ECHO)
    await c.put("rules", f"{trigger}-rule", {"trigger": f"/_/{trigger}", "action": f"/_/{trigger}-action"})


async def fire_times(c, trigger: str, steps: int, step_s: float) -> list[int]:
    """Advance `steps` times by `step_s`; the clock times at which a new fire of `trigger` was recorded (a
    record's own start is the wall time the controller wrote it, not the test's clock)."""
    times, seen = [], len(await c.fires(trigger))
    for _ in range(steps):
        await c.advance(step_s)
        count = len(await c.fires(trigger))
        times += [c.clock.ms] * (count - seen)
        seen = count
    return times


def metric(feed: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("whisk_alarm_fires_total", {"feed": feed, "outcome": outcome}) or 0.0


async def test_an_interval_fires_at_its_start_then_every_period_until_its_stop_date() -> None:
    async with controller() as c:
        await wired(c, "every2")
        start, stop = START_MS + 60_000, START_MS + 60_000 + 5 * 120_000 + 1
        fired_before = metric("interval", "fired")
        ok, result = await c.feed("interval", "CREATE", "every2", minutes=2, startDate=iso(start), stopDate=stop,
                                  trigger_payload={"n": 1})
        assert (ok, result) == (True, {"status": "success"})
        await c.advance(59)
        assert await c.fires("every2") == []
        # The start date (the first fire), then twelve minutes in 30 s steps.
        times = [*await fire_times(c, "every2", 1, 1), *await fire_times(c, "every2", 24, 30)]
        assert times == [start + k * 120_000 for k in range(6)]
        fires = await c.fires("every2")
        assert all(r["response"]["result"] == {"n": 1} for r in fires)
        lines = [json.loads(line) for r in fires for line in r["logs"]]
        assert {(line["rule"], line["success"]) for line in lines} == {("guest/every2-rule", True)}
        assert metric("interval", "fired") - fired_before == 6
        ok, read = await c.feed("interval", "READ", "every2")
        assert ok and read["config"]["minutes"] == 2 and read["config"]["stopDate"] == stop
        assert read["status"]["active"] is False
        assert read["status"]["reason"]["message"] == \
            "Automatically disabled after firing last scheduled interval trigger"


async def test_cron_with_a_time_zone_and_max_triggers() -> None:
    async with controller() as c:
        await wired(c, "berlin")
        # 08:00 UTC is 09:00 in Berlin: "30 9 * * *" there is 08:30 UTC.
        ok, _ = await c.feed("alarm", "CREATE", "berlin", cron="30 9 * * *", timezone="Europe/Berlin", maxTriggers=2)
        assert ok
        times = await fire_times(c, "berlin", 3 * 24 * 2, 1800)         # three days in 30-minute steps
        assert times == [START_MS + 1_800_000, START_MS + 1_800_000 + 86_400_000]
        ok, read = await c.feed("alarm", "READ", "berlin")
        assert read["status"]["reason"]["message"] == "Automatically disabled after reaching max triggers"


async def test_once_fires_once_and_delete_after_fire_removes_the_trigger_and_its_rules() -> None:
    async with controller() as c:
        await wired(c, "kept")
        await wired(c, "gone")
        assert (await c.feed("once", "CREATE", "kept", date=START_MS + 10_000))[0]
        assert (await c.feed("once", "CREATE", "gone", date=iso(START_MS + 10_000), deleteAfterFire="rules"))[0]
        await c.advance(10)
        await c.advance(600)
        assert len(await c.fires("kept")) == 1 and len(await c.fires("gone")) == 1
        ok, read = await c.feed("once", "READ", "kept")
        assert ok and read["status"] == {"active": False, "dateChanged": START_MS + 10_000,
                                  "dateChangedISO": iso(START_MS + 10_000),
                                  "reason": {"kind": "AUTO", "statusCode": None,
                                             "message": "Automatically disabled after firing once"}}
        assert await c.store.get("guest/gone") is None and await c.store.get("guest/gone-rule") is None
        assert await c.store.get("guest/kept") is not None
        assert await c.feed("once", "READ", "gone") == \
            (False, {"error": "could not find trigger /guest/gone in the database"})


async def test_ticks_missed_while_no_controller_ran_are_not_replayed() -> None:
    async with controller() as c:
        await wired(c, "minutely")
        assert (await c.feed("alarm", "CREATE", "minutely", cron="* * * * *"))[0]
        missed = metric("alarm", "missed")
        times = [*await fire_times(c, "minutely", 1, 60),
                 *await fire_times(c, "minutely", 1, 3600),      # an hour with nobody running
                 *await fire_times(c, "minutely", 1, 60)]
        assert times == [START_MS + 60_000, START_MS + 3_720_000]
        assert metric("alarm", "missed") - missed == 1        # the one overdue tick was skipped, not 60


async def test_a_deleted_trigger_or_a_revoked_key_disables_the_alarm_and_read_says_why() -> None:
    async with controller() as c:
        await wired(c, "deleted")
        assert (await c.feed("alarm", "CREATE", "deleted", cron="*/10 * * * * *"))[0]
        await c.entities.collections["triggers"].delete(c.guest, EntityPath.of("guest"), "deleted", dict)
        await c.advance(10)
        ok, read = await c.feed("alarm", "READ", "deleted")
        assert ok and read["status"]["active"] is False
        assert read["status"]["reason"] == {"kind": "AUTO", "statusCode": 404, "message": (
            "Trigger automatically disabled: Received a 404 status code when firing the trigger")}
        await c.advance(10)
        assert await c.fires("deleted") != []                # the refused fire shows in the trigger's activations
        assert (await c.fires("deleted"))[0]["response"]["result"] == {
            "error": "The requested resource does not exist."}

        # Another namespace whose key is replaced after it created its alarm (deleted and made again): the alarm is
        # disabled at its tick, and it is not the new owner's to read (its payload is the old tenant's).
        uuid, key = await c.subjects.create("alice")
        alice = await c.subjects.authenticate(uuid, key)
        await c.entities.collections["triggers"].put(alice, EntityPath.of("alice"), "t", {}, False)
        params = {"lifecycleEvent": "CREATE", "authKey": f"{uuid}:{key}", "triggerName": "/alice/t",
                  "cron": "* * * * *", "trigger_payload": {"secret": "the old owner's"}}
        assert await c.alarms.feeds.handle("alarm", alice, params) == (True, {"status": "success"})
        await c.subjects.delete("alice")
        uuid2, key2 = await c.subjects.create("alice")
        await c.advance(40)                                   # to the minute: the tick is due, not overdue
        left = await c.store.get("alarm:alice/t")
        assert left is not None and left["status"]["reason"]["statusCode"] == 401
        alice2 = await c.subjects.authenticate(uuid2, key2)
        await c.entities.collections["triggers"].put(alice2, EntityPath.of("alice"), "t", {}, False)
        again = {**params, "authKey": f"{uuid2}:{key2}", "trigger_payload": {}}
        for event in ("READ", "UPDATE", "DELETE"):
            ok, answer = await c.alarms.feeds.handle("alarm", alice2, {**again, "lifecycleEvent": event})
            assert (ok, answer) == (False, {"error": "could not find trigger /alice/t in the database"}), event
        assert await c.alarms.feeds.handle("alarm", alice2, again) == (True, {"status": "success"})
        ok, read = await c.alarms.feeds.handle("alarm", alice2, {**again, "lifecycleEvent": "READ"})
        assert ok and read["config"]["payload"] == {} and read["status"]["active"] is True


async def test_two_controllers_on_one_store_fire_each_tick_once_and_one_alone_carries_on() -> None:
    async with MemoryStore() as store:
        clock = ManualWallClock()
        async with controller(store, clock, instance=0) as c0, controller(store, clock, instance=1) as c1:
            await wired(c0, "shared")
            assert (await c0.feed("alarm", "CREATE", "shared", cron="*/5 * * * * *"))[0]
            times = []
            for _ in range(12):                                   # a minute in 5 s ticks, both racing each one
                clock.ms += 5000
                await asyncio.gather(c0.alarms.scheduler.step(), c1.alarms.scheduler.step())
                await asyncio.gather(c0.settle(), c1.settle())
                times += [clock.ms] * (len(await c0.fires("shared")) - len(times))
            assert times == [START_MS + 5000 * k for k in range(1, 13)]
            for _ in range(6):                                    # controller 0 is gone: 1 fires alone
                await c1.advance(5)
            assert len(await c1.fires("shared")) == 18


class RoundTrips:
    """One controller's door to a shared memory store: each read and write gives the other controllers their turn,
    as a database's round trip does; `claims` counts the ticks this controller won."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.claims = 0

    def __getattr__(self, name: str):
        return getattr(self._store, name)

    async def get(self, doc_id: str):
        await asyncio.sleep(0)
        return await self._store.get(doc_id)

    async def put(self, doc):
        await asyncio.sleep(0)
        rev = await self._store.put(doc)
        if doc.get("entityType") == ALARM and "lastFired" in doc:
            self.claims += 1
        return rev


async def test_two_controllers_share_the_ticks_due_together() -> None:
    """Each controller takes the ticks due at one time in an order of its own: in one shared order the first awake
    claimed every one (measured on a cluster: 18 of 20), and a namespace's alarms were charged to its share of the
    fires per minute alone, where OpenWhisk's provider's fires are spread over the controllers."""
    async with MemoryStore() as shared:
        clock = ManualWallClock()
        doors = [RoundTrips(shared), RoundTrips(shared)]
        async with controller(doors[0], clock, instance=0) as c0, controller(doors[1], clock, instance=1) as c1:
            for n in range(20):
                await c0.put("triggers", f"many{n}", {})
                assert (await c0.feed("alarm", "CREATE", f"many{n}", cron="*/5 * * * * *"))[0]
            c0.alarms.scheduler._order, c1.alarms.scheduler._order = random.Random(0), random.Random(1)
            c1.alarms.scheduler.changed()                   # read them now, not at its next refresh
            clock.ms += 5000
            await asyncio.gather(c0.alarms.scheduler.step(), c1.alarms.scheduler.step())
            await asyncio.gather(c0.settle(), c1.settle())
            claims = [door.claims for door in doors]
            assert sum(claims) == 20 and min(claims) >= 6, claims


async def test_a_draining_controller_leaves_the_ticks_to_the_other() -> None:
    async with MemoryStore() as store:
        clock = ManualWallClock()
        async with controller(store, clock, instance=0) as c0, controller(store, clock, instance=1) as c1:
            await wired(c0, "handover")
            assert (await c0.feed("alarm", "CREATE", "handover", cron="*/5 * * * * *"))[0]
            await c0.drain.wait(0.1)                               # SIGTERM: c0 finishes its work, claims no ticks
            clock.ms += 5000
            assert await c0.alarms.scheduler.step() == 3600        # back when its refresh period is over
            assert await c0.fires("handover") == []
            await c1.advance(0)
            assert len(await c1.fires("handover")) == 1


async def test_a_once_alarm_whose_fire_fails_is_disabled_even_with_delete_after_fire() -> None:
    from whisk.entities.errors import Throttled

    async with controller() as c:
        await wired(c, "throttled")
        assert (await c.feed("once", "CREATE", "throttled", date=START_MS + 10_000, deleteAfterFire="true"))[0]

        def refuse(identity) -> None:
            raise Throttled("Too many requests in the last minute")

        c.alarms.scheduler._firing.throttle = refuse
        await c.advance(10)
        ok, read = await c.feed("once", "READ", "throttled")
        assert ok and read["status"]["active"] is False                 # not an active alarm with no tick left
        assert read["status"]["reason"]["message"] == "Automatically disabled after firing once"
        assert await c.store.get("guest/throttled") is not None           # the fire failed: the trigger stays


async def test_a_schedule_with_no_time_left_is_disabled_at_create_and_update() -> None:
    async with controller() as c:
        await wired(c, "never")
        assert (await c.feed("alarm", "CREATE", "never", cron="0 0 30 2 *", strict="false"))[0]
        ok, read = await c.feed("alarm", "READ", "never")
        assert ok and read["status"]["active"] is False and "nextFire" not in read["status"]
        assert read["status"]["reason"]["message"] == "Automatically disabled: the pattern names no further time"
        assert read["config"]["strict"] is False                          # the text "false" is no flag
        assert (await c.feed("alarm", "UPDATE", "never", cron="0 0 1 3 *"))[0]
        ok, read = await c.feed("alarm", "READ", "never")
        assert ok and read["status"]["active"] is True and "nextFire" in read["status"]


async def test_an_update_gives_an_alarm_all_of_its_max_triggers_again() -> None:
    """The provider schedules an updated alarm anew, with `maxTriggers` fires left, also once it had reached them."""
    async with controller() as c:
        await wired(c, "twice")
        assert (await c.feed("alarm", "CREATE", "twice", cron="* * * * *", maxTriggers=2))[0]
        for _ in range(3):
            await c.advance(60)
        assert len(await c.fires("twice")) == 2
        assert (await c.feed("alarm", "UPDATE", "twice", trigger_payload={"round": 2}))[0]
        for _ in range(3):
            await c.advance(60)
        assert [r["response"]["result"] for r in await c.fires("twice")][2:] == [{"round": 2}] * 2
        ok, read = await c.feed("alarm", "READ", "twice")
        assert read["status"]["reason"]["message"] == "Automatically disabled after reaching max triggers"


async def test_an_alarm_that_reached_max_triggers_does_not_resume() -> None:
    async with controller() as c:
        await wired(c, "twice")
        assert (await c.feed("alarm", "CREATE", "twice", cron="* * * * *", maxTriggers=2))[0]
        await c.advance(60)
        await c.advance(60)
        assert len(await c.fires("twice")) == 2
        assert await c.feed("alarm", "RESUME", "twice") == (
            False, {"error": "the alarm has no scheduled fire left to resume"})
        await c.advance(60)
        assert len(await c.fires("twice")) == 2                         # no third fire past maxTriggers


class RunningClock(ManualWallClock):
    """A clock the test moves whose sleeps end once it has moved past them: the waits between a fire's retries."""

    def __init__(self) -> None:
        self._moved = asyncio.Event()
        super().__init__()

    @property
    def ms(self) -> int:
        return self._ms

    @ms.setter
    def ms(self, value: int) -> None:
        self._ms = value
        self._moved.set()
        self._moved = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        deadline = self._ms + seconds * 1000
        while self._ms < deadline:
            await self._moved.wait()


def throttled_for(c, refusals: int | None) -> list[int]:
    """The namespace's fires are refused as throttled `refusals` times (None: always); the clock times of the tries."""
    from whisk.entities.errors import Throttled

    tries: list[int] = []

    def throttle(identity) -> None:
        tries.append(c.clock.ms)
        if refusals is None or len(tries) <= refusals:
            raise Throttled("Too many requests in the last minute (count: 61, allowed: 60).")

    c.alarms.scheduler._firing.throttle = throttle
    return tries


async def test_a_throttled_fire_is_tried_again_as_the_provider_does() -> None:
    """The provider retries a fire answered 429 a second later, then n² seconds after the n-th refusal: the tick is
    late, not lost."""
    async with controller(clock=RunningClock()) as c:
        await wired(c, "busy")
        assert (await c.feed("alarm", "CREATE", "busy", cron="* * * * *"))[0]
        tries = throttled_for(c, 2)
        await c.advance(60)
        for n, seconds in ((2, 1), (3, 4)):
            c.clock.ms += seconds * 1000
            await until(f"try {n}", lambda: len(tries), ok=lambda count: count >= n)
        await c.settle()
        assert tries == [START_MS + 60_000, START_MS + 61_000, START_MS + 65_000]
        (fire,) = await c.fires("busy")
        assert fire["response"]["statusCode"] == 0
        assert [json.loads(line)["success"] for line in fire["logs"]] == [True]
        ok, read = await c.feed("alarm", "READ", "busy")
        assert ok and read["status"]["active"] is True


async def test_an_alarm_throttled_on_every_try_is_disabled_with_the_providers_reason() -> None:
    async with controller(clock=RunningClock()) as c:
        await wired(c, "flooded")
        start = START_MS + 60_000
        assert (await c.feed("interval", "CREATE", "flooded", minutes=60, startDate=start))[0]
        tries = throttled_for(c, None)
        await c.advance(60)
        for n in range(1, 11):                                # 1, 4, 9, … 100 s: ten tries more, 385 s in all
            c.clock.ms += n * n * 1000
            await until(f"try {n + 1}", lambda: len(tries), ok=lambda count: count > n)
        await c.settle()
        assert len(tries) == 11 and tries[-1] == start + 385_000
        ok, read = await c.feed("interval", "READ", "flooded")
        assert ok and read["status"]["active"] is False
        assert read["status"]["reason"] == {"kind": "AUTO", "statusCode": 429, "message": (
            "Automatically disabled after continuously receiving a 429 status code when firing the trigger")}
        (record,) = await c.fires("flooded")                  # the tick's one failure, when its tries ran out
        assert record["response"]["statusCode"] == 1 and "Too many requests" in record["response"]["result"]["error"]


async def test_a_tick_whose_fire_failed_for_good_does_not_count_toward_max_triggers() -> None:
    """The provider gives a failed fire's trigger back (triggersLeft++): with maxTriggers 1, the alarm that tick
    ended is active again and its next tick fires."""
    from whisk.entities.errors import BackendUnavailable

    async with controller(clock=RunningClock()) as c:
        await wired(c, "once-only")
        assert (await c.feed("alarm", "CREATE", "once-only", cron="* * * * *", maxTriggers=1))[0]
        firing = c.alarms.scheduler._firing
        fire, tries = firing.fire, []

        async def unavailable(*args, **kwargs):
            tries.append(c.clock.ms)
            if len(tries) <= 11:
                raise BackendUnavailable("the store does not answer")
            return await fire(*args, **kwargs)

        firing.fire = unavailable
        await c.advance(60)
        for n in range(2, 12):                                # ten tries more, a second apart
            c.clock.ms += 1000
            await until(f"try {n}", lambda: len(tries), ok=lambda count: count >= n)
        await c.settle()
        assert len(tries) == 11
        ok, read = await c.feed("alarm", "READ", "once-only")
        assert ok and read["status"]["active"] is True
        await c.advance(50)                                   # the next minute: the one fire it is allowed
        fires = await c.fires("once-only")
        assert sorted(r["response"]["statusCode"] for r in fires) == [0, 3]     # the fire, the failure (whisk error)
        ok, read = await c.feed("alarm", "READ", "once-only")
        assert read["status"]["reason"]["message"] == "Automatically disabled after reaching max triggers"


async def test_a_paused_or_updated_alarm_is_not_tried_again() -> None:
    async with controller(clock=RunningClock()) as c:
        await wired(c, "held")
        assert (await c.feed("alarm", "CREATE", "held", cron="* * * * *"))[0]
        tries = throttled_for(c, None)
        await c.advance(60)
        assert (await c.feed("alarm", "PAUSE", "held"))[0]
        c.clock.ms += 1000
        await c.settle()
        assert len(tries) == 1 and not c.alarms.scheduler._fires
        assert (await c.feed("alarm", "RESUME", "held"))[0]
        await c.advance(59)                                   # the next minute's tick, tried once, then updated
        assert (await c.feed("alarm", "UPDATE", "held", trigger_payload={"new": True}))[0]
        c.clock.ms += 1000
        await c.settle()
        assert len(tries) == 2 and not c.alarms.scheduler._fires
