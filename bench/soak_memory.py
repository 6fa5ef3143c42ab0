"""Memory of a process tree over time: RSS (VmRSS of /proc/<pid>/status) and USS (Private_Clean + Private_Dirty of
/proc/<pid>/smaps_rollup) of the root and of all its descendants, sampled every second while the soak runs, and the
growth of both after warm-up.

RSS counts every resident page a process maps, shared ones included: the pages of the interpreter and of shared
libraries that other processes also hold. A process that touches such a page late (a code path run for the first
time) seems to grow though it allocated nothing, which inflates a small process's growth. USS counts only the
pages that are the process's own: what it would give back if it exited.
"""

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


def uss_kb(pid: int) -> int | None:
    """Private_Clean + Private_Dirty of /proc/<pid>/smaps_rollup (kB); 0 for a zombie, None when it is gone."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("Private_Clean:", "Private_Dirty:")):
                    total += int(line.split()[1])
    except (OSError, ValueError):
        return None
    return total


def program(pid: int) -> str | None:
    """The name of the program a process runs (`/proc/<pid>/comm`: "node", "python"), None when it is gone."""
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


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
    root_kb: int             # RSS
    children_kb: int         # RSS summed over the descendants
    children: int
    each: dict[int, int] = field(default_factory=dict, repr=False)    # child pid -> RSS kB
    root_uss_kb: int = 0     # USS (0: not measured)
    children_uss_kb: int = 0
    each_uss: dict[int, int] = field(default_factory=dict, repr=False)    # child pid -> USS kB


@dataclass
class MemorySampler:
    """Samples `pid` and its descendants once a second on a worker thread (reading /proc is blocking I/O)."""
    pid: int
    interval_s: float = 1.0
    samples: list[Sample] = field(default_factory=list)
    programs: dict[int, str] = field(default_factory=dict)   # child pid -> program, as last seen (after its exec)
    _t0: float = 0.0

    def sample(self) -> Sample | None:
        root = rss_kb(self.pid)
        if root is None:
            return None
        root_uss = uss_kb(self.pid) or 0
        each, each_uss = {}, {}
        for pid in descendants(self.pid):
            if (kb := rss_kb(pid)) is not None:
                each[pid] = kb
                each_uss[pid] = uss_kb(pid) or 0
                if (name := program(pid)) is not None:
                    self.programs[pid] = name
        return Sample(round(time.monotonic() - self._t0, 2), root, sum(each.values()), len(each), each,
                      root_uss, sum(each_uss.values()), each_uss)

    async def run(self, t0: float) -> None:
        self._t0 = t0
        while True:
            s = await asyncio.to_thread(self.sample)
            if s is not None:
                self.samples.append(s)
            await asyncio.sleep(self.interval_s)


def growth(samples: list[Sample], warmup_s: float, programs: dict[int, str] | None = None) -> dict[str, Any]:
    """Median memory over the first 10 % of the time after warm-up against the last 10 %: the growth in %, of RSS
    (the top-level keys) and of USS (the same keys under "uss", when it was measured). `programs` (child pid ->
    program name) splits the long-lived children's growth by the program they run. Each also gets its trend: the
    least-squares line through every sample after warm-up, its rise over that time in % of the mean, which a
    garbage collector's sawtooth hardly moves (`trend_pct` of the process, `trend` of the long-lived children)."""
    after = [s for s in samples if s.t >= warmup_s]
    if len(after) < 4:
        return {"note": f"fewer than 4 samples after the {warmup_s:.0f} s warm-up"}
    span = after[-1].t - after[0].t
    window = max(span * 0.1, 1.0)
    first = [s for s in after if s.t <= after[0].t + window]
    last = [s for s in after if s.t >= after[-1].t - window]
    out: dict[str, Any] = {"warmup_s": warmup_s, "window_s": round(window, 1),
                           **_growth(first, last, USS_OFF, programs or {})}
    out["children_count"] = {"after_warmup": statistics.median(s.children for s in first),
                             "end": statistics.median(s.children for s in last)}
    if any(s.root_uss_kb for s in after):
        out["uss"] = _growth(first, last, USS_ON, programs or {})
    for (root, _, each), part in ((USS_OFF, out), (USS_ON, out.get("uss"))):
        if part:
            part["process"]["trend_pct"] = _trend_pct([(s.t, getattr(s, root)) for s in after])
            part["long_lived_children"]["trend"] = _children_trend(after, each)
    return out


def _children_trend(after: list[Sample], each: str) -> dict[str, Any]:
    """The trend of each child that lived through every sample after warm-up (how many, the median, how many rose
    more than 5 %, the most) and of their sum."""
    pids = _alive(after, each)
    trends = sorted((_trend_pct([(s.t, getattr(s, each)[pid]) for s in after]), pid) for pid in pids)
    if not trends:
        return {"count": 0}
    total = _trend_pct([(s.t, sum(getattr(s, each)[pid] for pid in pids)) for s in after])
    return {"count": len(trends), "median_pct": round(statistics.median(t for t, _ in trends), 2),
            "over_5_pct": sum(t > 5 for t, _ in trends), "worst": {"pid": trends[-1][1], "trend_pct": trends[-1][0]},
            "total_trend_pct": total}


def _alive(samples: list[Sample], each: str) -> set[int]:
    """The children present in every one of `samples` (`each`: the per-child attribute, "each" or "each_uss")."""
    return set.intersection(*(set(getattr(s, each)) for s in samples))


# (root, children sum, each child) attribute names of RSS and of USS in a Sample
USS_OFF = ("root_kb", "children_kb", "each")
USS_ON = ("root_uss_kb", "children_uss_kb", "each_uss")


def _change(a: float, b: float) -> dict[str, float]:
    return {"after_warmup_mb": round(a / 1024, 1), "end_mb": round(b / 1024, 1),
            "growth_pct": round((b - a) / a * 100, 2) if a else float("nan")}


def _growth(first: list[Sample], last: list[Sample], keys: tuple[str, str, str],
            programs: dict[int, str]) -> dict[str, Any]:
    root, kids, each = keys

    def median(window: list[Sample], value: Any) -> float:
        return statistics.median(value(s) for s in window)

    return {"process": _change(median(first, lambda s: getattr(s, root)), median(last, lambda s: getattr(s, root))),
            "children": _change(median(first, lambda s: getattr(s, kids)), median(last, lambda s: getattr(s, kids))),
            "total": _change(median(first, lambda s: getattr(s, root) + getattr(s, kids)),
                             median(last, lambda s: getattr(s, root) + getattr(s, kids))),
            "per_child": _per_child(first, last, kids),
            "long_lived_children": _long_lived(first, last, each, programs)}


def _long_lived(first: list[Sample], last: list[Sample], each: str = "each",
                programs: dict[int, str] | None = None) -> dict[str, Any]:
    """Each child that lived through both windows, against itself: the spread of their growth and the worst one,
    and (given `programs`) the same per program the children run."""
    pids = _alive(first + last, each) if first and last else set()
    if not pids:
        return {"count": 0}
    rows = []
    for pid in pids:
        a = statistics.median(getattr(s, each)[pid] for s in first)
        b = statistics.median(getattr(s, each)[pid] for s in last)
        if a:
            rows.append(((b - a) / a * 100, pid, a, b))
    if not rows:
        return {"count": 0}
    out = _spread(rows)
    if programs:
        by: dict[str, list[tuple[float, int, float, float]]] = {}
        for row in rows:
            by.setdefault(programs.get(row[1], "?"), []).append(row)
        out["by_program"] = {name: _spread(group) for name, group in sorted(by.items())}
    return out


def _spread(rows: list[tuple[float, int, float, float]]) -> dict[str, Any]:
    """(growth %, pid, kB after warm-up, kB at the end) rows: their count, median, how many grew over 5 %, the worst."""
    rows = sorted(rows)
    worst = rows[-1]
    return {"count": len(rows), "median_growth_pct": round(statistics.median(r[0] for r in rows), 2),
            "over_5_pct": sum(r[0] > 5 for r in rows),
            "worst": {"pid": worst[1], "after_warmup_mb": round(worst[2] / 1024, 1),
                      "end_mb": round(worst[3] / 1024, 1), "growth_pct": round(worst[0], 2)}}


def _per_child(first: list[Sample], last: list[Sample], kids: str = "children_kb") -> dict[str, float]:
    """The mean memory of one child process: flat when the children grow in number only (the pool filling up)."""
    def mean(window: list[Sample]) -> float:
        per = [getattr(s, kids) / s.children for s in window if s.children]
        return statistics.median(per) if per else 0

    return _change(mean(first), mean(last))


def over_target(g: dict[str, Any], limit_pct: float) -> list[str]:
    """What of a `growth` result rose by more than `limit_pct` over the time after warm-up, by its trend: the process
    itself by RSS or by USS; its long-lived children each by RSS, and together by USS. Empty when everything is
    flat, or when too few samples came after the warm-up to tell.

    A child's own pages (USS) are judged together, not one by one: a node container's young generation (1 MB) fills
    up and is collected every few minutes at a soak's rate, about 12 % of the 8 MB that are its own, so one
    container's USS swings more than the target either way while the sum stays flat. Its RSS, which also counts the
    pages it shares, moves a few % at most and is judged for each."""
    out = []
    for measure, part in (("RSS", g), ("USS", g.get("uss"))):
        if not part or "process" not in part:
            continue
        p = part["process"]
        if p.get("trend_pct", 0) > limit_pct:
            out.append(f"{measure} of the process: trend +{p['trend_pct']} % ({p['after_warmup_mb']} → "
                       f"{p['end_mb']} MB)")
        trend = (part.get("long_lived_children") or {}).get("trend") or {}
        if not trend.get("count"):
            continue
        if measure == "RSS" and trend["worst"]["trend_pct"] > limit_pct:
            out.append(f"RSS of child pid {trend['worst']['pid']}, the most of its {trend['count']} long-lived "
                       f"children: trend +{trend['worst']['trend_pct']} %")
        if measure == "USS" and trend["total_trend_pct"] > limit_pct:
            out.append(f"USS of its {trend['count']} long-lived children together: trend +{trend['total_trend_pct']} %")
    return out


def children_series(samples: list[Sample], warmup_s: float, programs: dict[int, str],
                    step_s: float = 30.0) -> dict[str, dict[str, Any]]:
    """Each child that lived from the warm-up's end to the last sample: its program, RSS and USS (MB) every
    `step_s` after warm-up, and the least-squares trend of each over that time in % of its mean. A leak is a steady
    trend; a garbage collector's sawtooth moves the first and last windows but hardly the trend."""
    after = [s for s in samples if s.t >= warmup_s]
    if len(after) < 4:
        return {}
    pids = _alive(after, "each")
    out: dict[str, dict[str, Any]] = {}
    for pid in sorted(pids):
        row: dict[str, Any] = {"program": programs.get(pid, "?")}
        for name, attr in (("rss", "each"), ("uss", "each_uss")):
            points = [(s.t, getattr(s, attr).get(pid, 0) / 1024) for s in after]
            row[f"{name}_trend_pct"] = _trend_pct(points)
            picked, next_t = [], after[0].t
            for t, mb in points:
                if t >= next_t:
                    picked.append(round(mb, 2))
                    next_t += step_s
            row[f"{name}_mb"] = picked
        out[str(pid)] = row
    return out


def _trend_pct(points: list[tuple[float, float]]) -> float:
    """The least-squares line through (t, MB) points: its rise over their span, in % of their mean."""
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if not var or not mean_v:
        return 0.0
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / var
    return round(slope * (points[-1][0] - points[0][0]) / mean_v * 100, 2)
