"""make_job's `__OW_*` environment and /run body, as OpenWhisk's invoker (ContainerProxy) builds them: the API key
only where the action's provide-api-key annotation is truthy or absent."""

from __future__ import annotations

from typing import Any

import pytest

from whisk.invoker.records import make_job
from whisk.messages import ActivationMessage

KEY = "23bc46b1-71f6-4ed5-8c54-816aa4f8c502:123zO3xZCLrMN6v2BKK1dXYFpXlPkccOFqm12CdAsMgRU4VrNZ9lyGVCGuMDGIwP"


def message(content: Any = None, init_args: list[str] | None = None) -> ActivationMessage:
    return ActivationMessage(
        transid=["tid-1", 0], action={"path": "guest/pkg", "name": "a", "version": "0.0.3"}, revision=None,
        user={"subject": "guest", "namespace": {"name": "guest", "uuid": "u"}, "authkey": {"api_key": KEY}},
        activation_id="a" * 32, root_controller={"asString": "controller0"}, blocking=True, content=content,
        init_args=init_args or [])


def job_for(annotations: list[dict[str, Any]] | None, **kwargs: Any):
    action = {"namespace": "guest/pkg", "name": "a", "exec": {"kind": "python:3.11", "code": "x"},
              "limits": {"timeout": 5000}}
    if annotations is not None:
        action["annotations"] = annotations
    return make_job(message(**kwargs), action, "digest", image="img", api_host="http://127.0.0.1:3233")


@pytest.mark.parametrize(("annotations", "given"), [
    (None, True), ([], True), ([{"key": "provide-api-key", "value": True}], True),
    ([{"key": "provide-api-key", "value": "yes"}], True), ([{"key": "provide-api-key", "value": 1}], True),
    ([{"key": "provide-api-key", "value": False}], False), ([{"key": "provide-api-key", "value": None}], False),
    ([{"key": "provide-api-key", "value": ""}], False), ([{"key": "provide-api-key", "value": 0}], False),
])
def test_the_api_key_only_where_provide_api_key_allows(annotations: list | None, given: bool) -> None:
    job = job_for(annotations)
    assert ("__OW_API_KEY" in job.init_env, "api_key" in job.run_body) == (given, given)
    if given:
        assert job.init_env["__OW_API_KEY"] == job.run_body["api_key"] == KEY


def test_no_api_key_for_another_namespaces_action() -> None:
    """bob invoking guest's published action (directly, by a binding or in a sequence) runs guest's code: it must
    not be handed bob's key, whatever the action's annotation asks."""
    msg = message()
    msg.user = {"subject": "bob", "namespace": {"name": "bob", "uuid": "b"}, "authkey": {"api_key": "bob:secret"}}
    action = {"namespace": "guest/pkg", "name": "a", "exec": {"kind": "python:3.11", "code": "x"},
              "annotations": [{"key": "provide-api-key", "value": True}]}
    job = make_job(msg, action, "digest", image="img", api_host="http://127.0.0.1:3233")
    assert "__OW_API_KEY" not in job.init_env and "api_key" not in job.run_body
    assert job.init_env["__OW_NAMESPACE"] == "bob"


def test_the_other_variables() -> None:
    job = job_for([], content={"p": 1, "secret": {"a": 1}}, init_args=["secret"])
    env = job.init_env
    assert env["__OW_API_HOST"] == "http://127.0.0.1:3233"
    assert (env["__OW_NAMESPACE"], env["__OW_ACTION_NAME"], env["__OW_ACTION_VERSION"]) == (
        "guest", "/guest/pkg/a", "0.0.3")
    assert (env["__OW_ACTIVATION_ID"], env["__OW_TRANSACTION_ID"]) == ("a" * 32, "tid-1")
    # The deadline is the container proxy's, from when /init or /run starts (tests/containerpool/test_pool.py).
    assert "__OW_DEADLINE" not in env and "deadline" not in job.run_body
    assert env["secret"] == '{"a":1}' and job.run_body["value"] == {"p": 1}       # init parameters go to env only
    # /run carries the same per-activation values; the proxies export them as __OW_<KEY>
    assert {k: job.run_body[k] for k in ("namespace", "action_name", "action_version", "activation_id",
                                         "transaction_id")} == {
        "namespace": "guest", "action_name": "/guest/pkg/a", "action_version": "0.0.3", "activation_id": "a" * 32,
        "transaction_id": "tid-1"}


def test_a_namespace_made_again_does_not_get_the_old_owners_warm_containers() -> None:
    # `whisk admin user delete` and `create` under the same name, the same action deployed again: another tenant.
    action = {"namespace": "guest", "name": "a", "exec": {"kind": "python:3", "code": "x"}}
    old, new = message(), message()
    new.user = {**new.user, "namespace": {"name": "guest", "uuid": "another"}}
    jobs = [make_job(m, action, "digest", image="img", api_host="http://127.0.0.1:3233") for m in (old, new, message())]
    assert jobs[0].warm_key != jobs[1].warm_key
    assert jobs[0].warm_key == jobs[2].warm_key
    assert jobs[0].warm_key[1] == jobs[1].warm_key[1] == "guest"     # the container's name still says whose it is
