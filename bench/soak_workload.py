"""The soak's workload: the entities it creates in each namespace and the request kinds it sends, by weight.

Every request kind knows which HTTP statuses it provokes on purpose (a failing action answers 502 by design), so
the soak can tell those from the 5xx it did not ask for.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import aiohttp

ECHO = {"python:3": "def main(args):\n    return {'ok': True, 'n': args.get('n', 0)}\n",
        "nodejs:20": "function main(args) { return {ok: true, n: args.n || 0}; }\n"}
FAIL = {"python:3": "def main(args):\n    return {'error': 'soak: provoked application error'}\n",
        "nodejs:20": "function main(args) { return {error: 'soak: provoked application error'}; }\n"}
# An endless loop that sleeps, so each timed-out run costs its 200 ms of wall time, not of a scarce core.
LOOP = "import time\n\ndef main(args):\n    while True:\n        time.sleep(0.01)\n"
WEB = "def main(args):\n    return {'ok': True, 'method': args.get('__ow_method', '')}\n"
TIMEOUT_MS = 200
MEMORY_MB = 128     # the smallest slot, so the pool holds a warm container for every action (soak.py sizes it)
KINDS = ("python:3", "nodejs:20")

# kind -> (weight, statuses the kind provokes on purpose)
MIX: dict[str, tuple[int, frozenset[int]]] = {
    "invoke_blocking": (38, frozenset()),
    "invoke_nonblocking": (24, frozenset()),
    "fire_trigger": (10, frozenset()),
    "sequence": (10, frozenset()),
    "web_action": (10, frozenset()),
    "invoke_app_error": (5, frozenset({502})),
    "invoke_timeout": (3, frozenset({502})),
}


@dataclass
class Namespace:
    name: str
    auth: tuple[str, str]
    actions: list[str] = field(default_factory=list)
    session: aiohttp.ClientSession | None = None


@dataclass
class Feature:
    """A part of the workload (triggers, sequences, web actions) and why it is skipped, when it is."""
    kind: str
    skipped: str = ""


class SetupError(RuntimeError):
    pass


async def _put(ns: Namespace, path: str, body: dict[str, Any]) -> tuple[int, str]:
    assert ns.session is not None
    async with ns.session.put(f"/api/v1/namespaces/_/{path}?overwrite=true", json=body) as r:
        return r.status, (await r.text())[:300]


async def create_entities(namespaces: list[Namespace], actions: int) -> dict[str, Feature]:
    """`actions` echo actions spread over the namespaces and alternating kinds, plus in each namespace: a failing
    action of each kind, a timing-out action, a sequence of two echoes, a web action, a trigger with a rule."""
    features = {k: Feature(k) for k in MIX}
    for i in range(actions):
        ns = namespaces[i % len(namespaces)]
        kind = KINDS[(i // len(namespaces)) % len(KINDS)]
        name = f"echo-{i}"
        status, text = await _put(ns, f"actions/{name}", {"exec": {"kind": kind, "code": ECHO[kind]},
                                                          "limits": {"memory": MEMORY_MB}})
        if status != 200:
            raise SetupError(f"PUT action {name}: {status} {text}")
        ns.actions.append(name)
    for ns in namespaces:
        if not ns.actions:
            raise SetupError(f"namespace {ns.name} has no action: use --actions >= --namespaces")
        for kind in KINDS:
            status, text = await _put(ns, f"actions/fail-{kind.split(':')[0]}",
                                      {"exec": {"kind": kind, "code": FAIL[kind]},
                                       "limits": {"memory": MEMORY_MB}})
            if status != 200:
                raise SetupError(f"PUT failing action: {status} {text}")
        status, text = await _put(ns, "actions/loop", {"exec": {"kind": "python:3", "code": LOOP},
                                                       "limits": {"timeout": TIMEOUT_MS, "memory": MEMORY_MB}})
        if status != 200:
            raise SetupError(f"PUT timing-out action: {status} {text}")
        await _optional(features["sequence"], ns, "actions/seq", {"exec": {
            "kind": "sequence", "components": [f"/{ns.name}/{ns.actions[0]}", f"/{ns.name}/{ns.actions[-1]}"]}})
        await _optional(features["web_action"], ns, "actions/web", {
            "exec": {"kind": "python:3", "code": WEB}, "limits": {"memory": MEMORY_MB},
            "annotations": [{"key": "web-export", "value": True}]})
        await _optional(features["fire_trigger"], ns, "triggers/tick", {})
        await _optional(features["fire_trigger"], ns, "rules/on-tick", {
            "trigger": f"/{ns.name}/tick", "action": f"/{ns.name}/{ns.actions[0]}"})
    return features


async def _optional(feature: Feature, ns: Namespace, path: str, body: dict[str, Any]) -> None:
    if feature.skipped:
        return
    try:
        status, text = await _put(ns, path, body)
    except aiohttp.ClientError as exc:
        status, text = 0, repr(exc)
    if status != 200:
        feature.skipped = f"PUT {path} answered {status}: {text}"


@dataclass
class Request:
    kind: str
    ns: Namespace
    method: str
    path: str
    body: dict[str, Any] | None


def warmup_requests(namespaces: list[Namespace]) -> list[Request]:
    """One blocking invocation of each echo action and each failing one: the actions whose containers the soak keeps
    long and that run node as well as python. The timing-out action's container is replaced on every run, the
    sequence runs echoes, and the web action's container runs python, which has no JIT warm-up to get past."""
    base = "/api/v1/namespaces/_/actions"
    return ([Request("invoke_blocking", ns, "POST", f"{base}/{name}?blocking=true", None)
             for ns in namespaces for name in ns.actions]
            + [Request("invoke_app_error", ns, "POST", f"{base}/fail-{kind.split(':')[0]}?blocking=true", None)
               for ns in namespaces for kind in KINDS])


def pick(rng: random.Random, namespaces: list[Namespace], kinds: list[str], weights: list[int], seq: int) -> Request:
    # Each kind once first, so even a short run exercises all of them; then by weight.
    kind = kinds[seq] if seq < len(kinds) else rng.choices(kinds, weights)[0]
    ns = rng.choice(namespaces)
    body = {"n": seq}
    base = "/api/v1/namespaces/_"
    match kind:
        case "invoke_blocking":
            return Request(kind, ns, "POST", f"{base}/actions/{rng.choice(ns.actions)}?blocking=true", body)
        case "invoke_nonblocking":
            return Request(kind, ns, "POST", f"{base}/actions/{rng.choice(ns.actions)}", body)
        case "fire_trigger":
            return Request(kind, ns, "POST", f"{base}/triggers/tick", body)
        case "sequence":
            return Request(kind, ns, "POST", f"{base}/actions/seq?blocking=true", body)
        case "web_action":
            return Request(kind, ns, "GET", f"/api/v1/web/{ns.name}/default/web.json?n={seq}", None)
        case "invoke_app_error":
            lang = rng.choice(KINDS).split(":")[0]
            return Request(kind, ns, "POST", f"{base}/actions/fail-{lang}?blocking=true", body)
        case "invoke_timeout":
            return Request(kind, ns, "POST", f"{base}/actions/loop?blocking=true", body)
    raise ValueError(kind)
