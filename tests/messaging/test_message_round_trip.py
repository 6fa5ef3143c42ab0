"""An activation message survives the bytes between controller and invoker with every field (OpenWhisk's
`ActivationMessage`), and a user whose limits are no object is malformed, as the invoker reads them."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest

from whisk.messages import Acknowledgement, ActivationMessage, PingMessage, metric_event

MESSAGE = ActivationMessage(
    transid=["tid", 1700000000000], action={"path": "ns/pkg", "name": "a", "version": "0.0.1"}, revision="1-x",
    user={"subject": "s", "namespace": {"name": "ns", "uuid": "u"}, "limits": {"maxActionMemory": 256}},
    activation_id="id", root_controller={"asString": "controller0"}, blocking=True, content={"x": 1},
    init_args=["k"], locked_args={"k": "v"}, cause="parent-id", trace_context={"traceparent": "00-ab-cd-01"})


def test_every_field_survives_the_bytes() -> None:
    assert ActivationMessage.from_bytes(MESSAGE.to_bytes()) == MESSAGE
    bare = dataclasses.replace(MESSAGE, cause=None, trace_context=None)
    assert {"cause", "traceContext"}.isdisjoint(bare.to_json())            # absent, as OpenWhisk's Option fields
    assert ActivationMessage.from_bytes(bare.to_bytes()) == bare


def test_a_user_whose_limits_are_no_object_is_malformed() -> None:
    doc = MESSAGE.to_json() | {"user": MESSAGE.user | {"limits": [1]}}
    with pytest.raises(ValueError):
        ActivationMessage.from_bytes(json.dumps(doc).encode())


@pytest.mark.parametrize("ack", [
    Acknowledgement(["tid", 1], "id", {"activationId": "id", "response": {"statusCode": 0}}),     # result
    Acknowledgement(["tid", 1], "id", None, {"instance": 0, "userMemory": "2048 MB"}, True),     # completion
    Acknowledgement(["tid", 1], "id", "id", {"instance": 1, "userMemory": "2048 MB"}, False),    # combined, shrunk
])
def test_every_kind_of_ack_survives_the_bytes(ack: Acknowledgement) -> None:
    """A completion's `isSystemError` is what the balancer counts against its invoker's health."""
    assert Acknowledgement.from_bytes(ack.to_bytes()) == ack


@pytest.mark.parametrize("ping", [PingMessage({"instance": 3, "userMemory": "1024 MB"}),
                                  PingMessage({"instance": 0}, False, 7, False)])
def test_a_ping_survives_the_bytes(ping: PingMessage) -> None:
    assert PingMessage.from_bytes(ping.to_bytes()) == ping


@pytest.mark.parametrize("bad", [
    {"transid": ["tid"]}, {"transid": [1, 2]},                                          # activation messages
    {"user": MESSAGE.user | {"namespace": {"name": "ns", "uuid": "u"}, "limits": True}},
])
def test_activation_messages_of_the_wrong_shape_are_malformed(bad: dict) -> None:
    with pytest.raises(ValueError):
        ActivationMessage.from_bytes(json.dumps(MESSAGE.to_json() | bad).encode())


@pytest.mark.parametrize("data", [
    {"transid": ["t", 1], "activationId": "id", "instance": {"instance": "0"}, "isSystemError": False},  # an ack
    {"name": {"userMemory": "1024 MB"}}, {"name": {"instance": -1}}, {"name": {"instance": True}},    # pings
])
def test_acks_and_pings_without_an_invoker_number_are_malformed(data: dict) -> None:
    with pytest.raises(ValueError):
        (PingMessage if "name" in data else Acknowledgement).from_bytes(json.dumps(data).encode())


def test_a_metric_event_is_stamped_in_milliseconds() -> None:
    before = time.time() * 1000
    event = json.loads(metric_event("TimedRateLimit", 1, source="controller0", user=MESSAGE.user))
    assert before - 1 <= event["timestamp"] <= time.time() * 1000 + 1
    assert (event["eventType"], event["body"]) == ("Metric", {"metricName": "TimedRateLimit", "metricValue": 1})
