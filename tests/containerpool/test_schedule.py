"""The pool's decisions (docs/openwhisk.md §7.3) over plain state: no containers, no clock but the `now` passed in."""

from __future__ import annotations

from whisk.containerpool.schedule import Demand, Phase, Scheduler

PY, NODE = "python:3.11", "nodejs:20"


def demand(action: str = "a", ns: str = "guest", kind: str = PY, memory: int = 256, concurrency: int = 1) -> Demand:
    return Demand((f"digest-{action}", ns), kind, memory, concurrency, action, "")


def warm(s: Scheduler, d: Demand, now: float) -> object:
    """Place a cold job, create and initialize its container, end the job: one idle warm container."""
    p = s.place(d, now)
    assert p is not None and p.create
    s.created(p.slot)
    s.initialized(p.slot)
    assert s.release(p.slot, now, keep=True) is False
    return p.slot


def test_cold_then_warm_reuse_for_the_same_action_and_namespace():
    s = Scheduler(1024)
    slot = warm(s, demand(), 1.0)
    p = s.place(demand(), 2.0)
    assert (p.slot, p.start, p.create, p.resume) == (slot, "warmed", False, False)
    assert slot.active == 1 and slot.last_used == 2.0


def test_warm_containers_are_bound_to_the_invoking_namespace_and_action_definition():
    s = Scheduler(1024)
    slot = warm(s, demand(), 1.0)
    other_ns = s.place(demand(ns="other"), 2.0)
    other_def = s.place(demand(action="b"), 2.0)
    assert other_ns.start == "cold" and other_ns.slot is not slot
    assert other_def.start == "cold" and other_def.slot is not slot


def test_paused_container_is_resumed():
    s = Scheduler(1024)
    first = warm(s, demand(), 1.0)
    assert s.pause_due(first) and first.paused
    p = s.place(demand(), 2.0)
    assert (p.slot, p.start, p.resume) == (first, "warmed", True) and not first.paused


def test_running_containers_are_preferred_to_paused_ones_then_the_most_recently_used():
    s = Scheduler(1024)
    a = s.place(demand(), 1.0).slot
    b = s.place(demand(), 1.0).slot
    c = s.place(demand(), 1.0).slot
    for slot, t in ((a, 5.0), (b, 2.0), (c, 3.0)):
        s.created(slot)
        s.initialized(slot)
        s.release(slot, t, keep=True)
    s.pause_due(a)                                             # the most recent one is paused
    p = s.place(demand(), 6.0)
    assert p.slot is c and not p.resume
    p2 = s.place(demand(), 6.0)
    assert p2.slot is b
    p3 = s.place(demand(), 6.0)
    assert p3.slot is a and p3.resume


def test_busy_container_with_concurrency_one_is_not_shared():
    s = Scheduler(1024)
    slot = warm(s, demand(), 1.0)
    s.place(demand(), 2.0)
    p = s.place(demand(), 2.0)
    assert p.start == "cold" and p.slot is not slot


def test_concurrency_shares_a_container_until_its_limit_even_while_it_starts():
    s = Scheduler(1024)
    d = demand(concurrency=3)
    first = s.place(d, 1.0)
    assert first.start == "cold"
    joined = s.place(d, 1.0)
    assert (joined.slot, joined.start, joined.create) == (first.slot, "warmingCold", False)
    s.created(first.slot)
    third = s.place(d, 1.0)
    assert (third.slot, third.start) == (first.slot, "warming")
    fourth = s.place(d, 1.0)
    assert fourth.slot is not first.slot and fourth.start == "cold"
    s.initialized(first.slot)
    s.release(first.slot, 2.0, keep=True)
    assert s.place(d, 3.0).start == "warmed"


def test_prewarm_of_same_kind_and_memory_is_taken_oldest_first():
    s = Scheduler(2048, [(PY, 256, 2)])
    a, b = s.prewarms_to_start(1.0)
    assert s.prewarms_to_start(1.0) == []                     # already starting: nothing more
    s.created(b)
    assert s.place(demand(memory=512), 2.0).start == "cold"   # memory must match
    assert s.place(demand(kind=NODE), 2.0).start == "cold"    # kind must match
    s.created(a)
    a.created, b.created = 5.0, 3.0
    p = s.place(demand(), 6.0)
    assert (p.slot, p.start, p.took_prewarm) == (b, "prewarmed", True)
    assert b.phase is Phase.WARMING and b.key == demand().key
    refill = s.prewarms_to_start(6.0)
    assert len(refill) == 1 and refill[0].phase is Phase.STARTING


def test_starting_prewarm_is_not_used():
    s = Scheduler(1024, [(PY, 256, 1)])
    (starting,) = s.prewarms_to_start(1.0)
    p = s.place(demand(), 2.0)
    assert p.start == "cold" and p.slot is not starting


def test_cold_only_when_memory_allows_counting_every_kind_of_container():
    s = Scheduler(768, [(NODE, 256, 1)])
    s.prewarms_to_start(1.0)                                  # 256 starting
    busy = s.place(demand("x"), 1.0)                           # 256 busy
    assert busy.start == "cold"
    assert s.used_mb == 512
    assert s.place(demand("y"), 1.0).start == "cold"          # 768 = full
    assert s.place(demand("z"), 1.0) is None                  # nothing idle to evict
    assert s.stats()["memory_used_mb"] == 768


def test_evicts_least_recently_used_idle_warm_containers_never_prewarms():
    s = Scheduler(1024, [(NODE, 256, 1)])
    (pre,) = s.prewarms_to_start(0.0)
    s.created(pre)
    old = warm(s, demand("old"), 1.0)
    new = warm(s, demand("new"), 2.0)
    busy = s.place(demand("busy"), 3.0)                       # 4 x 256 = full
    p = s.place(demand("next"), 4.0)
    assert p.start == "recreated" and p.victims == [old] and p.create
    assert old.id not in s.slots and new.id in s.slots and pre.id in s.slots and busy.slot.id in s.slots
    assert s.used_mb == 1024


def test_evicts_several_when_one_is_not_enough_and_none_when_all_idle_do_not_suffice():
    s = Scheduler(1024)
    a = warm(s, demand("a", memory=256), 1.0)
    b = warm(s, demand("b", memory=256), 2.0)
    s.place(demand("c", memory=512), 3.0)                     # busy
    p = s.place(demand("big", memory=512), 4.0)
    assert p.start == "recreated" and p.victims == [a, b]
    s2 = Scheduler(1024)
    warm(s2, demand("a", memory=256), 1.0)
    s2.place(demand("c", memory=512), 2.0)
    s2.place(demand("d", memory=256), 2.0)                    # busy: 768 busy, 256 idle
    assert s2.place(demand("big", memory=512), 3.0) is None
    assert len(s2.slots) == 3                                  # nothing was evicted for nothing


def test_a_starting_prewarm_is_not_taken_and_not_evicted():
    s = Scheduler(1024, [(PY, 512, 1)])
    idle = warm(s, demand("a", memory=512), 1.0)
    (pre,) = s.prewarms_to_start(1.0)                          # starting: not usable yet; memory now full
    p = s.place(demand("b", memory=512), 2.0)
    assert p.start == "recreated" and p.victims == [idle] and pre.id in s.slots
    # (OpenWhisk's "recreatedPrewarm" needs a prewarm that appears between two checks of one decision: it
    # cannot happen in a synchronous decision, there or here.)
    s.created(pre)
    assert s.place(demand("c", memory=512), 3.0).start == "prewarmed"


def test_buffer_keeps_order_and_new_jobs_queue_behind_it():
    s = Scheduler(512)
    x = s.place(demand("x"), 1.0)
    s.place(demand("y"), 1.0)
    assert s.submit(demand("z"), "job-z", 1.0) is None
    assert s.submit(demand("x"), "job-x", 1.0) is None        # x's container frees later; still behind z
    assert [r for _, r in s.buffer] == ["job-z", "job-x"]
    s.created(x.slot)
    s.initialized(x.slot)
    assert s.drain(2.0) == []                                  # x still busy, y busy
    s.release(x.slot, 3.0, keep=True)                          # x idle now: z evicts it (LRU) ...
    placed = s.drain(3.0)
    assert [r for r, _ in placed] == ["job-z"] and placed[0][1].victims == [x.slot]
    assert [r for _, r in s.buffer] == ["job-x"]               # ... and job-x waits again
    s.unbuffer("job-x")
    assert not s.buffer


def test_failed_container_is_destroyed_when_its_last_job_ends():
    s = Scheduler(1024)
    d = demand(concurrency=2)
    p = s.place(d, 1.0)
    s.place(d, 1.0)
    s.created(p.slot)
    s.initialized(p.slot)
    assert s.release(p.slot, 2.0, keep=False) is False         # one still running: doomed
    assert s.place(d, 2.0).slot is not p.slot                  # a doomed container takes no jobs
    assert s.release(p.slot, 3.0, keep=True) is True           # last one out destroys it
    assert p.slot.id not in s.slots


def test_pause_and_expire_only_idle_containers():
    s = Scheduler(1024)
    slot = warm(s, demand(), 1.0)
    s.place(demand(), 2.0)
    assert not s.pause_due(slot)                               # busy: no pause
    s.release(slot, 3.0, keep=True)
    assert not s.expire(slot)                                  # not paused yet
    assert s.pause_due(slot) and not s.pause_due(slot)
    assert s.expire(slot) and slot.id not in s.slots
    assert s.stats()["containers"] == {}


def test_prewarm_refill_respects_memory_and_counts():
    s = Scheduler(512, [(PY, 256, 3)])
    assert len(s.prewarms_to_start(0.0)) == 2                  # only two fit
    assert s.prewarms_to_start(0.0) == []


def test_stats_by_state():
    s = Scheduler(2048, [(NODE, 256, 1)])
    (pre,) = s.prewarms_to_start(0.0)
    ready = warm(s, demand("r"), 1.0)
    paused = warm(s, demand("p"), 1.0)
    s.pause_due(paused)
    s.place(demand("b"), 1.0)
    s.submit(demand("q", memory=2048), "job", 1.0)
    stats = s.stats()
    assert stats["containers"] == {"starting": 1, "ready": 1, "paused": 1, "cold": 1}
    assert stats["memory_used_mb"] == 1024 and stats["buffered"] == 1 and stats["active"] == 1
    s.created(pre)
    assert s.stats()["containers"]["prewarmed"] == 1
    assert ready.idle


def test_prewarms_that_leave_a_job_no_room_for_good_are_evicted_for_it():
    """Prewarms are never evicted while the job could fit once other containers end (OpenWhisk's rule). But in a
    pool whose prewarms leave less than the job's memory (512 MB: python and nodejs stem cells of 256 MB each), a
    job of another kind or memory never fit: it waited at the buffer's head for ever, and every job behind it."""
    s = Scheduler(512, [(PY, 256, 1), (NODE, 256, 1)])
    py, node = s.prewarms_to_start(0.0, initial=True)
    s.created(py, 0.0)
    s.created(node, 1.0)
    p = s.place(demand("small", memory=128), 2.0)
    assert p is not None and p.start == "recreated" and p.victims == [py] and p.create
    assert node.id in s.slots and s.used_mb == 384
    big = s.place(demand("big", memory=512), 3.0)
    assert big is None                                         # the 128 MB one runs: wait for it, keep the prewarm
    s.created(p.slot)
    s.initialized(p.slot)
    s.release(p.slot, 4.0, keep=True)
    big = s.place(demand("big", memory=512), 5.0)
    assert big is not None and big.victims == [p.slot, node] and s.used_mb == 512


def test_prewarms_stay_when_the_job_fits_once_busy_containers_end():
    s = Scheduler(1024, [(PY, 256, 1)])
    (pre,) = s.prewarms_to_start(0.0, initial=True)
    s.created(pre, 0.0)
    s.place(demand("busy", kind=NODE, memory=512), 1.0)
    assert s.place(demand("next", kind=NODE, memory=512), 2.0) is None     # waits: 256 + 512 fit once busy ends
    assert pre.id in s.slots


def test_a_warm_container_is_used_before_a_more_recent_warming_one():
    """OpenWhisk's order for an action's own containers: warmed, then warming, then warmingCold, whatever their use."""
    s = Scheduler(1024)
    d = demand(concurrency=2)
    w = warm(s, d, 1.0)
    assert s.place(d, 2.0).slot is w and s.place(d, 2.0).slot is w          # full
    x = s.place(d, 5.0)
    assert x.create and x.slot is not w
    s.created(x.slot)                                                       # warming, one job of two, used at 5
    s.release(w, 3.0, keep=True)
    s.release(w, 3.0, keep=True)                                            # warm, idle, used at 3
    assert s.place(d, 6.0).slot is w


def test_the_most_recently_used_running_container_wins_wherever_it_is_in_the_table():
    """The order of the action's containers in the table decides nothing: a running one before a paused one, and
    among those the most recently used, whichever was made first."""
    s = Scheduler(1024)
    a, b, c = (s.place(demand(), 1.0).slot for _ in range(3))
    for slot, t in ((a, 5.0), (b, 2.0), (c, 6.0)):
        s.created(slot)
        s.initialized(slot)
        s.release(slot, t, keep=True)
    s.pause_due(c)
    p = s.place(demand(), 7.0)
    assert p.slot is a and not p.resume
