"""The `Activation` user-event's body as OpenWhisk's user-events service reads it (docs/openwhisk.md §9.2), built
from records of each shape without a bus."""

from __future__ import annotations

import json
from typing import Any

import pytest

from whisk.entities.activation import Activation, ActivationResponse
from whisk.messages import activation_event

USER = {"subject": "s", "namespace": {"name": "ns", "uuid": "u"}}


def body(result: Any = None, annotations: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
    record = Activation(namespace="ns", name="a", subject="s", activation_id="id", start=1000, end=1500,
                        response=ActivationResponse(0, result), annotations=annotations or [], **fields)
    event = json.loads(activation_event(record, source="invoker0", user=USER))
    assert (event["eventType"], event["timestamp"], event["userId"]) == ("Activation", 1500, "u")
    return event["body"]


@pytest.mark.parametrize(("result", "code"), [
    ({"statusCode": 201}, 201), ({"error": {"statusCode": 503}, "statusCode": 201}, 503),
    ({"error": "no code", "statusCode": 202}, 202), ({"statusCode": "201"}, 400), ({"statusCode": True}, 400),
    ({"ok": 1}, None), ([1], None), (None, None)])
def test_the_user_defined_status_code(result: Any, code: int | None) -> None:
    """`result.error.statusCode`, else `result.statusCode`; a present non-integer is 400; none, no field."""
    assert body(result).get("userDefinedStatusCode") == code


def test_the_annotations_fill_the_body() -> None:
    notes = [{"key": "path", "value": "ns/pkg/a"}, {"key": "waitTime", "value": 12}, {"key": "initTime", "value": 7},
             {"key": "kind", "value": "python:3"}, {"key": "conductor", "value": True},
             {"key": "limits", "value": {"memory": 256}}, {"key": "causedBy", "value": "sequence"}]
    assert body({"x": "yz"}, notes, duration=500) == {
        "name": "ns/pkg/a", "activationId": "id", "statusCode": 0, "duration": 500, "waitTime": 12, "initTime": 7,
        "kind": "python:3", "conductor": True, "memory": 256, "size": 10, "causedBy": "sequence"}
    bare = body()
    assert bare == {"name": "a", "activationId": "id", "statusCode": 0, "duration": 0, "waitTime": 0, "initTime": 0,
                    "kind": "unknown", "conductor": False, "memory": 0, "size": 0}
