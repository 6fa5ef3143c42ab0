"""What the controller's activation message carries of the caller: its key only for an action the invoker hands it
to (the invoking namespace's own, with a truthy or absent `provide-api-key`), never onto the bus otherwise."""

from __future__ import annotations

import pytest

from whisk.controller.caller import Caller
from whisk.controller.message import activation_message
from whisk.entities.action import Action
from whisk.entities.limits import ActionLimits
from whisk.entities.parameters import Parameters

KEY = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"
CALLER = Caller(subject="guest", namespace="guest", uuid="u", api_key=KEY, invocations_per_minute=60,
                concurrent_invocations=30)


def sent_key(path: str, annotations: dict | None) -> str:
    doc = {"namespace": path.rsplit("/", 1)[0], "name": path.rsplit("/", 1)[1],
           "exec": {"kind": "python:3.11", "code": "x"}}
    if annotations is not None:
        doc["annotations"] = Parameters.of(annotations).to_json()
    action = Action.from_doc(doc, ActionLimits(60_000, 256, 10, 1))
    msg = activation_message({"asString": "controller0"}, CALLER, action, path=path, binding=None, revision=None,
                             payload={}, blocking=True, tid="t", cause=None, activation_id="a" * 32)
    return msg.to_json()["user"]["authkey"]["api_key"]


@pytest.mark.parametrize(("path", "annotations", "carried"), [
    ("guest/a", None, True), ("guest/pkg/a", {"provide-api-key": True}, True),
    ("guest/a", {"provide-api-key": False}, False), ("guest/a", {"provide-api-key": None}, False),
    ("bob/shared/a", {"provide-api-key": True}, False), ("bob/a", None, False),
])
def test_the_key_only_travels_to_an_action_that_gets_it(path: str, annotations: dict | None, carried: bool) -> None:
    assert sent_key(path, annotations) == (KEY if carried else "")
