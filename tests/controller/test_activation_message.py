"""What the controller's activation message carries of the caller: its key only for an action the invoker hands it
to (the invoking namespace's own, with a truthy or absent `provide-api-key`), never onto the bus otherwise; and of
its namespace's limits what the invoker applies."""

from __future__ import annotations

import pytest

from whisk.controller.caller import Caller, caller_for
from whisk.controller.message import activation_message
from whisk.entities.action import Action
from whisk.entities.errors import Invalid
from whisk.entities.identity import Identity
from whisk.entities.limits import ActionLimits, NamespaceLimits, SystemLimits, UserLimits, check_runnable
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


def test_the_user_limits_carry_what_the_invoker_applies() -> None:
    """The namespace's bounds on action limits and its payload limit, only those its document sets, each as in force
    (within the system's): the invoker applies them without settings of its own (OpenWhisk's `user.limits`)."""
    limits = UserLimits.from_json({"maxActionMemory": 4096, "minActionTimeout": 2000, "maxPayloadSize": "1 KB",
                                   "storeActivations": False, "invocationsPerMinute": 5})
    identity = Identity(subject="s", namespace="ns", uuid="u", limits=limits.effective(SystemLimits()))
    user = caller_for(identity).to_json()
    assert user["limits"] == {"maxActionMemory": 512, "minActionTimeout": 2000, "maxPayloadSize": "1 KB",
                              "storeActivations": False}
    assert caller_for(Identity(subject="s", namespace="ns", uuid="u")).to_json()["limits"] == {}
    check_runnable({"timeout": 2000, "memory": 512, "logs": 10, "concurrency": 1}, user["limits"])
    with pytest.raises(Invalid, match="^duration 1000 milliseconds below allowed threshold of 2000 milliseconds$"):
        check_runnable({"timeout": 1000, "memory": 1024, "logs": 10, "concurrency": 1}, user["limits"])


def test_the_user_limits_are_made_with_the_identity_not_at_each_invoke(monkeypatch: pytest.MonkeyPatch) -> None:
    """An identity is cached and serves every invoke of its key: what its messages carry of the namespace's limits
    is made once, with the limits, not again on the invoke path (it more than doubled `caller_for`'s time)."""
    limits = UserLimits.from_json({"maxActionMemory": 256, "maxPayloadSize": "1 KB"}).effective(SystemLimits())
    identity = Identity(subject="s", namespace="ns", uuid="u", limits=limits)

    def made_again(self: NamespaceLimits) -> dict:
        raise AssertionError("the invoker's limits were made again on the invoke path")
    monkeypatch.setattr(NamespaceLimits, "invoker_limits", made_again)
    for _ in range(3):
        assert caller_for(identity).to_json()["limits"] == {"maxActionMemory": 256, "maxPayloadSize": "1 KB"}


def test_the_user_limits_cost_the_warm_path_no_rendering(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every invoke builds its message's user, and the invoker reads its limits for every activation: neither renders
    the namespace's limits document (its 19 fields, ~3 µs) nor checks an action against bounds that are not there
    (~3 µs), which together doubled the controller's cost of the message's user and added the check to every warm
    activation (caller_for was 6.5 µs, 2.8 µs now)."""
    from whisk.invoker import service

    def rendered(*_: object) -> None:
        raise AssertionError("rendered on the warm path")

    limits = UserLimits.from_json({"maxActionMemory": 4096, "maxPayloadSize": "1 KB"}).effective(SystemLimits())
    monkeypatch.setattr(UserLimits, "to_json", rendered)
    assert limits.invoker_limits() == {"maxActionMemory": 512, "maxPayloadSize": "1 KB"}
    assert caller_for(Identity(subject="s", namespace="ns", uuid="u")).to_json()["limits"] == {}
    monkeypatch.setattr(service, "check_runnable", rendered)
    assert service._over_limits({"limits": {"memory": 256}}, {}) is None
    assert service._payload_limit({}) is None and service._payload_limit({"maxPayloadSize": "1 KB"}) == 1024
