"""Memory of a process tree over time: RSS from /proc/<pid>/status of the root and of all its descendants,
sampled every second while the soak runs, and the growth after warm-up."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from dataclasses import dataclass, field
from typing import Any


def rss_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return 0    # a zombie has no VmRSS line


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process, from /proc/<pid>/stat (the name may hold spaces: split after ')')."""
    out: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            out[int(entry)] = int(rest[1])
        except (OSError, IndexError, ValueError):
            continue
    return out


def children(parent: int) -> list[int]:
    return [pid for pid, ppid in _parents().items() if ppid == parent]


def descendants(root: int) -> list[int]:
    parents = _parents()
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


@dataclass
class Sample:
    t: float                 # seconds since the soak started
    root_kb: int
    children_kb: int
    children: int
    each: dict[int, int] = field(default_factory=dict, repr=False)    # child pid -> RSS kB


@dataclass
class MemorySampler:
    """Samples `pid` and its descendants once a second on a worker thread (reading /proc is blocking I/O)."""
    pid: int
    interval_s: float = 1.0
    samples: list[Sample] = field(default_factory=list)
    _t0: float = 0.0

    def sample(self) -> Sample | None:
        root = rss_kb(self.pid)
        if root is None:
            return None
        each = {pid: kb for pid in descendants(self.pid) if (kb := rss_kb(pid)) is not None}
        return Sample(round(time.monotonic() - self._t0, 2), root, sum(each.values()), len(each), each)

    async def run(self, t0: float) -> None:
        self._t0 = t0
        while True:
            s = await asyncio.to_thread(self.sample)
            if s is not None:
                self.samples.append(s)
            await asyncio.sleep(self.interval_s)


def growth(samples: list[Sample], warmup_s: float) -> dict[str, Any]:
    """Median RSS over the first 10 % of the time after warm-up against the last 10 %: the growth in %."""
    after = [s for s in samples if s.t >= warmup_s]
    if len(after) < 4:
        return {"note": f"fewer than 4 samples after the {warmup_s:.0f} s warm-up"}
    span = after[-1].t - after[0].t
    window = max(span * 0.1, 1.0)
    first = [s for s in after if s.t <= after[0].t + window]
    last = [s for s in after if s.t >= after[-1].t - window]

    def pct(key: str) -> dict[str, float]:
        a = statistics.median(getattr(s, key) for s in first)
        b = statistics.median(getattr(s, key) for s in last)
        return {"after_warmup_mb": round(a / 1024, 1), "end_mb": round(b / 1024, 1),
                "growth_pct": round((b - a) / a * 100, 2) if a else float("nan")}

    total = [Sample(s.t, s.root_kb + s.children_kb, 0, 0) for s in after]
    tf = [s for s in total if s.t <= after[0].t + window]
    tl = [s for s in total if s.t >= after[-1].t - window]
    a, b = statistics.median(s.root_kb for s in tf), statistics.median(s.root_kb for s in tl)
    return {"warmup_s": warmup_s, "window_s": round(window, 1),
            "process": pct("root_kb"), "children": pct("children_kb"),
            "total": {"after_warmup_mb": round(a / 1024, 1), "end_mb": round(b / 1024, 1),
                      "growth_pct": round((b - a) / a * 100, 2) if a else float("nan")},
            "children_count": {"after_warmup": statistics.median(s.children for s in first),
                               "end": statistics.median(s.children for s in last)},
            "per_child": _per_child(first, last), "long_lived_children": _long_lived(first, last)}


def _long_lived(first: list[Sample], last: list[Sample]) -> dict[str, Any]:
    """Each child that lived through both windows, against itself: the spread of their growth and the worst one."""
    pids = set.intersection(*(set(s.each) for s in first + last)) if first and last else set()
    if not pids:
        return {"count": 0}
    rows = []
    for pid in pids:
        a = statistics.median(s.each[pid] for s in first)
        b = statistics.median(s.each[pid] for s in last)
        if a:
            rows.append(((b - a) / a * 100, pid, a, b))
    rows.sort()
    worst = rows[-1]
    return {"count": len(rows), "median_growth_pct": round(statistics.median(r[0] for r in rows), 2),
            "over_5_pct": sum(r[0] > 5 for r in rows),
            "worst": {"pid": worst[1], "after_warmup_mb": round(worst[2] / 1024, 1),
                      "end_mb": round(worst[3] / 1024, 1), "growth_pct": round(worst[0], 2)}}


def _per_child(first: list[Sample], last: list[Sample]) -> dict[str, float]:
    """The mean RSS of one child process: flat when the children grow in number only (the pool filling up)."""
    a = statistics.median(s.children_kb / s.children for s in first if s.children) if any(
        s.children for s in first) else 0
    b = statistics.median(s.children_kb / s.children for s in last if s.children) if any(
        s.children for s in last) else 0
    return {"after_warmup_mb": round(a / 1024, 1), "end_mb": round(b / 1024, 1),
            "growth_pct": round((b - a) / a * 100, 2) if a else float("nan")}
