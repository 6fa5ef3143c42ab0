"""What the soak measured, summed up: throughput, latency percentiles and statuses per request kind, the 5xx the
workload did not provoke, the record check and memory; written as report.json and report.md."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._harness import percentile
from bench.soak_memory import Sample
from bench.soak_workload import MIX


@dataclass
class Outcome:
    kind: str
    namespace: str
    status: int | str          # the HTTP status, or "transport: <error>" when no answer came
    latency_ms: float
    t: float                   # seconds since the start, when the request was sent
    activation_id: str | None
    activation_status: str | None = None   # from a blocking answer's record, when it carries one


def per_kind(outcomes: list[Outcome]) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    for kind in MIX:
        mine = [o for o in outcomes if o.kind == kind]
        if not mine:
            continue
        lat = [o.latency_ms for o in mine if isinstance(o.status, int)]
        rows[kind] = {
            "n": len(mine),
            "p50_ms": round(percentile(lat, 50), 1), "p90_ms": round(percentile(lat, 90), 1),
            "p99_ms": round(percentile(lat, 99), 1), "max_ms": round(max(lat), 1) if lat else None,
            "http": dict(sorted(Counter(str(o.status) for o in mine).items())),
            "activation": dict(sorted(Counter(o.activation_status for o in mine if o.activation_status).items())),
        }
    return rows


def unexpected_5xx(outcomes: list[Outcome]) -> dict[str, int]:
    bad = Counter(f"{o.kind} {o.status}" for o in outcomes
                  if isinstance(o.status, int) and o.status >= 500 and o.status not in MIX[o.kind][1])
    return dict(bad)


def transport_errors(outcomes: list[Outcome]) -> dict[str, int]:
    return dict(Counter(f"{o.kind} {o.status}" for o in outcomes if not isinstance(o.status, int)))


def memory_table(samples: list[Sample], rows: int = 30) -> list[dict[str, Any]]:
    if not samples:
        return []
    step = max(1, len(samples) // rows)
    picked = samples[::step]
    if picked[-1] is not samples[-1]:
        picked.append(samples[-1])
    return [{"t_s": round(s.t), "process_mb": round(s.root_kb / 1024, 1),
             "process_uss_mb": round(s.root_uss_kb / 1024, 1), "children_mb": round(s.children_kb / 1024, 1),
             "children_uss_mb": round(s.children_uss_kb / 1024, 1), "children": s.children} for s in picked]


def _table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return ["(none)"]
    keys = list(dict.fromkeys(k for r in rows for k in r))
    out = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for r in rows:
        out.append("| " + " | ".join(_cell(r.get(k, "")) for k in keys) + " |")
    return out


def _cell(v: Any) -> str:
    if isinstance(v, dict):
        return ", ".join(f"{k}: {n}" for k, n in v.items()) or "-"
    return str(v)


def markdown(r: dict[str, Any]) -> str:
    cfg, tp, ver, mem = r["config"], r["throughput"], r["records"], r["memory"]
    lines = [f"# Soak report ({r['verdict']})", "",
             f"`{cfg['command']}`", "",
             f"Target: {cfg['target']}; {cfg['duration_s']} s at {cfg['rate']}/s over {cfg['namespaces']} namespaces "
             f"and {cfg['actions']} echo actions (python:3 and nodejs:20), concurrency bound {cfg['max_inflight']}; "
             f"load average {cfg['loadavg_start']} at the start, {cfg['loadavg_end']} at the end "
             f"on {cfg['machine']['cpus']} CPUs; commit {cfg['machine']['commit']}.", ""]
    for kind, why in r["skipped"].items():
        lines.append(f"- **skipped {kind}**: {why}")
    warm = r.get("warm_up") or {}
    if warm.get("sent"):
        lines += ["", "## Warm-up", "",
                  f"Before the timed load: {warm['runs_per_action']} blocking runs of each of {warm['actions']} "
                  f"actions with a long-lived container ({warm['sent']} in {warm['wall_s']} s, {warm['per_s']}/s), "
                  "so that each container is past its runtime's warm-up when memory is measured. Their records are "
                  "checked with the others'.", ""]
        lines += _table([{"kind": k, **v} for k, v in warm["kinds"].items()])
    lines += ["", "## Throughput", "",
              f"{tp['sent']} requests sent, {tp['answered']} answered in {tp['wall_s']} s: "
              f"**{tp['per_s']} requests/s** (target {cfg['rate']}/s); {tp['shed']} not sent because "
              f"{cfg['max_inflight']} were in flight; scheduler lag p99 {tp['lag_p99_ms']} ms.", "",
              "## Latency and statuses per request kind", ""]
    lines += _table([{"kind": k, **v} for k, v in r["kinds"].items()])
    lines += ["", "## Errors", "",
              f"5xx the workload did not provoke: {_cell(r['unexpected_5xx']) or 'none'}; "
              f"requests without an answer: {_cell(r['transport_errors']) or 'none'}.", "",
              "Activation statuses of the checked records, by request kind:", ""]
    lines += _table([{"kind": k, **v} for k, v in ver["statuses"].items()])
    lines += ["", "## Activation records", "",
              f"{ver['accepted']} accepted activations (ids from 200/202/502 answers) and {ver['derived']} more that "
              f"they started (rule and sequence component activations, from the records' logs): "
              f"{ver['found']} found complete (with `end`; a trigger's, which has none, with its rule lines), "
              f"**{ver['missing']} lost**, {ver['duplicates']} ids listed more than once among the {ver['listed']} "
              f"records the namespaces list since the start; checked in {ver['check_s']} s.", ""]
    if ver["missing_ids"]:
        lines.append("Missing: " + ", ".join(ver["missing_ids"][:20]))
    if ver.get("error"):
        lines += [f"**The check could not finish**: {ver['error']}", ""]
    if ver.get("store_checked"):
        lines += [(f"Their CouchDB documents, read from the database: {ver['store_checked']} checked, "
                   f"**{ver['rewritten']} written more than once** (a revision past `1-`), "
                   f"{ver['not_in_store']} not in the database."), ""]
        for key in ("rewritten_ids", "not_in_store_ids"):
            if ver[key]:
                lines.append(f"{key.replace('_ids', '').replace('_', ' ').capitalize()}: " + ", ".join(ver[key][:20]))
    if r.get("exited"):
        lines += ["", f"**Cluster members that exited during the run**: {_cell(r['exited'])}.", ""]
    if r.get("stopped"):
        lines += ["", ("Exit status of each cluster member after SIGTERM at the end (0: a clean stop): "
                       f"{_cell(r['stopped'])}."), ""]
    lines += ["", "## Memory (RSS and USS from /proc, sampled every second)", ""]
    if mem.get("skipped"):
        lines.append(mem["skipped"])
        return "\n".join(lines) + "\n"
    lines += [USS_NOTE, ""]
    if "target_pct" in mem:
        over = mem["over_target"]
        judged = [label for label, proc in mem["processes"].items() if proc.get("judged")]
        lines += [f"Target: memory grows less than {mem['target_pct']:g} % after warm-up, judged by the trend (the "
                  "least-squares line through every sample after warm-up: its rise over that time, in % of the "
                  f"mean): every whisk process ({', '.join(judged)}) by RSS and by USS, each of its long-lived "
                  "children (action containers) by RSS, and their own pages together by USS (one node container's "
                  "young generation is about 12 % of its USS, so that swings either way at a soak's rate): "
                  + ("**met**." if not over else "**not met**: " + "; ".join(
                      f"{label}: {', '.join(found)}" for label, found in over.items()) + "."), ""]
        if mem.get("warm_up_s"):
            lines += [f"The samples' clock starts with the warm-up runs, which took {mem['warm_up_s']} s.", ""]
    lines += ["![memory](memory.png)", ""]
    for label, proc in mem["processes"].items():
        judged = "" if proc.get("judged", True) else " (a backend: reported, not judged)"
        lines += [f"### {label}{judged}", "", _growth(proc["growth"]), ""]
        lines += _table(proc["table"])
        lines.append("")
    return "\n".join(lines) + "\n"


USS_NOTE = ("RSS (`VmRSS`) counts the shared pages (the interpreter, shared libraries) a process has touched, so a "
            "process that touches such a page late seems to grow though it allocated nothing, which inflates a small "
            "process's growth; USS (`Private_Clean + Private_Dirty` of `smaps_rollup`) counts only its own pages. "
            "Growth is given for both (`_mb` columns: RSS, `_uss_mb`: USS).")


def _growth(g: dict[str, Any]) -> str:
    if "note" in g:
        return str(g["note"])
    count = g["children_count"]
    kids = bool(count["after_warmup"] or count["end"])
    number = f"{count['after_warmup']} → {count['end']} processes, "
    text = (f"After a {g['warmup_s']:.0f} s warm-up (medians over the first and the last {g['window_s']} s of the "
            f"rest), RSS: " + _growth_of(g, number if kids else None))
    if "uss" in g:
        text += " USS: " + _growth_of(g["uss"], "" if kids else None)
    return text


def _growth_of(g: dict[str, Any], children: str | None) -> str:
    """One measure's growth; `children` None when the process had none, else what to say of their number."""
    p = g["process"]
    text = f"the process {p['after_warmup_mb']} → {p['end_mb']} MB (**{p['growth_pct']} %**"
    text += f", trend {p['trend_pct']} %)" if "trend_pct" in p else ")"
    if children is None:
        return text + "; no children."
    return (text + f"; its children {g['children']['after_warmup_mb']} → {g['children']['end_mb']} MB "
            f"({g['children']['growth_pct']} %, {children}one child on average {g['per_child']['after_warmup_mb']} → "
            f"{g['per_child']['end_mb']} MB, {g['per_child']['growth_pct']} %); together {g['total']['growth_pct']} %."
            + _long_lived(g.get("long_lived_children") or {"count": 0}))


def _long_lived(c: dict[str, Any]) -> str:
    if not c["count"]:
        return " No child lived through both windows."
    w = c["worst"]
    text = (f" The {c['count']} children that lived through both windows, each against itself: median growth "
            f"{c['median_growth_pct']} %, {c['over_5_pct']} over 5 %, the most {w['growth_pct']} % "
            f"(pid {w['pid']}, {w['after_warmup_mb']} → {w['end_mb']} MB).")
    trend = c.get("trend") or {}
    if trend.get("count"):
        text += (f" Their trends: median {trend['median_pct']} %, {trend['over_5_pct']} over 5 %, the most "
                 f"{trend['worst']['trend_pct']} % (pid {trend['worst']['pid']}); together "
                 f"{trend['total_trend_pct']} %.")
    by = c.get("by_program") or {}
    if len(by) > 1:
        text += " By program: " + "; ".join(
            f"{name} {g['count']}, median {g['median_growth_pct']} %, {g['over_5_pct']} over 5 %, the most "
            f"{g['worst']['growth_pct']} %" for name, g in by.items()) + "."
    return text


def write(out: Path, report: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1, default=str) + "\n", encoding="utf-8")
    (out / "report.md").write_text(markdown(report), encoding="utf-8")
