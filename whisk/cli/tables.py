"""List tables (the Go client's ToSummaryRowString) and `--summary` blocks (wsk's util.go), as text lines."""

from __future__ import annotations

import datetime as dt
from typing import Any

from whisk.cli.output import Output
from whisk.cli.shapes import annotation

ACTIVATION_STATUS = ("success", "application error", "developer error", "internal error")


def _sorted(kind: str, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(row: dict[str, Any]) -> tuple[int, str]:
        ns, name = str(row.get("namespace", "")), str(row.get("name", ""))
        if kind == "actions":   # actions outside a package first; those by name only, as `wsk` compares them
            return (1, (ns + name).lower()) if "/" in ns else (0, name)
        return (0, (ns + name).lower())
    return sorted(rows, key=key)


def entity_rows(kind: str, rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for row in rows:
        name = f"/{row.get('namespace', '')}/{row.get('name', '')}"
        if kind == "actions":
            exec_kind = annotation(row, "exec")
            lines.append(f"{name:<70} private {exec_kind if isinstance(exec_kind, str) else ''}")
        elif kind == "packages":
            lines.append(f"{name:<70} {'shared' if row.get('publish') is True else 'private'}")
        elif kind == "rules":
            lines.append(f"{name:<70} {'private':<20} {row.get('status', '')}")
        else:
            lines.append(f"{name:<70} private")
    return lines


def print_entities(out: Output, kind: str, rows: list[dict[str, Any]], name_sort: bool) -> None:
    """`kind` is actions | packages | triggers | rules: a bold header, then one row per entity."""
    out.line(out.bold(kind))
    for line in entity_rows(kind, _sorted(kind, rows) if name_sort else rows):
        out.line(line)


def print_namespaces(out: Output, names: list[str]) -> None:
    out.line(out.bold("namespaces"))
    for name in names:
        out.line(str(name))


def go_duration(ms: int) -> str:
    """A whole number of milliseconds as Go's time.Duration prints it: 0s, 12ms, 3.46s, 1m2s, 1h0m0s."""
    if ms == 0:
        return "0s"
    sign, ms = ("-", -ms) if ms < 0 else ("", ms)
    if ms < 1000:
        return f"{sign}{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    text = f"{seconds}" + (f".{millis:03d}".rstrip("0") if millis else "") + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def _truncate(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    mid = width // 2
    upper = len(text) - mid + 3
    if width % 2:
        mid += 1
    return text[:mid] + "..." + text[upper:]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def activation_rows(records: list[dict[str, Any]]) -> list[str]:
    """The `activation list` table; an empty list prints one blank line."""
    if not records:
        return [""]
    kinds = [k if isinstance(k := annotation(r, "kind"), str) else "unknown" for r in records]
    statuses = [ACTIVATION_STATUS[c] if 0 < (c := _int(r.get("statusCode"))) < 4 else ACTIVATION_STATUS[0]
                for r in records]
    kind_width = max(len("Kind"), *(len(k) for k in kinds))
    status_width = max(len("Status"), *(len(s) for s in statuses))
    lines = [f"{'Datetime':<19} {'Activation ID':<32} {'Kind':<{kind_width}} {'Start':<6}{'Duration':<10} "
             f"{'Status':<{status_width}} {'Entity':<6}"]
    for record, kind, status in zip(records, kinds, statuses):
        start, end = _int(record.get("start")), _int(record.get("end"))
        when = dt.datetime.fromtimestamp(start / 1000).strftime("%Y-%m-%d %H:%M:%S")
        duration = go_duration(end - start) if _int(record.get("duration")) else "0s"
        temperature = "cold" if annotation(record, "initTime") is not None else "warm"
        entity = (f"{_truncate(str(record.get('namespace', '')), 20)}/{_truncate(str(record.get('name', '')), 30)}"
                  f":{_truncate(str(record.get('version', '')), 20)}")
        lines.append(f"{when} {str(record.get('activationId', '')):<32} {kind:<{kind_width}} {temperature:<5} "
                     f"{duration:<10} {status:<{status_width}} {entity}")
    return lines


def print_activation_rows(out: Output, records: list[dict[str, Any]]) -> None:
    """The `activation list` table, its header bold as every other list's (wsk's printCommandsList)."""
    for i, line in enumerate(activation_rows(records)):
        out.line(out.bold(line) if i == 0 and records else line)


# --- summaries ----------------------------------------------------------------------------------------------------

def _param_union(entity: dict[str, Any]) -> list[str]:
    tag = "**" if annotation(entity, "final") is True else "*"
    bound = sorted(key for p in entity.get("parameters") or () if isinstance(p, dict)
                   and isinstance(key := p.get("key"), str))
    declared = annotation(entity, "parameters")
    named = [name for p in declared if isinstance(p, dict) and isinstance(name := p.get("name"), str)] \
        if isinstance(declared, list) else []
    union = sorted(set(bound) | set(named))
    return [f"{tag}{name}" if name in bound else name for name in union]


def _describe(params: list[str]) -> str:
    names = ", ".join(params).replace("*", "")
    parts = names.split(",")
    if len(parts) > 1:
        last = parts[-1]
        return "Returns a result based on parameters " + names.replace(f",{last}", f" and{last}", 1)
    return f"Returns a result based on parameter {names}"


def _summary_lines(out: Output, label: str, full_name: str, entity: dict[str, Any]) -> list[str]:
    params = _param_union(entity)
    description = annotation(entity, "description")
    if isinstance(description, str) and description:
        head = f"{out.bold(label)} {full_name}: {description}"
    elif params:
        head = f"{out.bold(label)} {full_name}: {_describe(params)}"
    else:
        head = f"{out.bold(label)} {full_name}"
    return [head, f"   ({out.bold('parameters')}: {', '.join(params) if params else 'none defined'})"]


def summary(out: Output, kind: str, entity: dict[str, Any]) -> list[str]:
    """`--summary` for action | trigger | package | rule."""
    ns, name = entity.get("namespace", ""), entity.get("name", "")
    if kind == "rule":
        return [f"{out.bold('rule')} /{ns}/{name}", f"   ({out.bold('status')}: {entity.get('status', '')})"]
    if kind != "package":
        return _summary_lines(out, kind, f"/{ns}/{name}", entity)
    lines = _summary_lines(out, "package", f"/{ns}/{name}", entity)
    for label, items in ((" action", entity.get("actions")), (" feed  ", entity.get("feeds"))):
        for item in items or ():
            if isinstance(item, dict):
                lines += _summary_lines(out, label, f"/{ns}/{name}/{item.get('name', '')}", item)
    return lines
