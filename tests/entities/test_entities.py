import base64
import json
import tracemalloc

import pytest

from whisk.entities.action import Action, ActionPut
from whisk.entities.activation import (STATUS_IDS, Activation, ActivationResponse, new_activation_id,
                                       parse_activation_id)
from whisk.entities.errors import Invalid
from whisk.entities.exec import BlackboxExec, CodeExec, is_binary_code, parse_exec
from whisk.entities.identity import (Identity, check_subject, generate_key, generate_uuid, hash_key, key_matches)
from whisk.entities.limits import SystemLimits
from whisk.entities.names import EntityPath
from whisk.entities.package import Binding, Package, PackagePut
from whisk.entities.parameters import Parameters
from whisk.entities.rule import Rule, RulePut, parse_status
from whisk.entities.trigger import ACTIVE, RuleLink, Trigger, TriggerPut
from whisk.store.base import listed

KINDS = {"nodejs:20": "nodejs:20", "nodejs:default": "nodejs:20", "python:3.11": "python:3.11"}
STD = SystemLimits().standard_action_limits()


def resolve(kind):
    if kind not in KINDS:
        raise Invalid(f"The specified runtime '{kind}' is not supported by this platform.")
    return KINDS[kind]


def test_exec_kinds():
    assert parse_exec({"kind": " NodeJS:Default ", "code": "x"}, resolve) == CodeExec("nodejs:20", "x")
    zipped = base64.b64encode(b"PK\x03\x04 some zip bytes").decode()
    code = parse_exec({"kind": "python:3.11", "code": zipped, "main": "run"}, resolve)
    assert code.binary and code.main == "run"
    assert parse_exec({"kind": "blackbox", "image": "openwhisk/dockerskeleton"}, resolve) == \
        BlackboxExec("openwhisk/dockerskeleton")
    seq = parse_exec({"kind": "sequence", "components": ["/_/a", "/guest/pkg/b"]}, resolve)
    assert seq.resolve("guest").to_json() == {"kind": "sequence", "components": ["/guest/a", "/guest/pkg/b"]}


def test_image_names_as_docker_and_openwhisk_read_them():
    # OpenWhisk's ImageName grammar (and Docker's): a path component's separator is '.', '_', '__' or one or more
    # '-'; a tag and a digest after the name.
    for image in ("openwhisk/dockerskeleton", "my__image", "my--image", "a-b.c_d/e---f:1.0",
                  "hostname.com:3121/pre1/pre2/img:t@sha256:"
                  "77af4d6b9913e693e8d0b4b294fa62ade6054e6b2f1ffb617ac955dd63fb0182"):
        assert parse_exec({"kind": "blackbox", "image": image}, resolve) == BlackboxExec(image)
    for image in ("ABC", "x:8080:10/abc", "p/a:x:y", "p/a:t@sha256:77af4d6b9", "a___b", "a-_b", "-a", "a-", "a..b",
                  "a/", "/a", "a:é", "a:t\u0663"):
        with pytest.raises(Invalid, match="^could not parse image name$"):
            parse_exec({"kind": "blackbox", "image": image}, resolve)


@pytest.mark.parametrize("exec_,message", [
    ("", "'kind' must be a string defined in 'exec'"),
    ({"code": "x"}, "'kind' must be a string defined in 'exec'"),
    ({"kind": "cobol:1", "code": "x"}, "The specified runtime 'cobol:1' is not supported"),
    ({"kind": "nodejs:20"}, "'code' must be a string defined in 'exec' for 'nodejs:20' actions"),
    ({"kind": "nodejs:20", "code": "x", "main": 1}, "if defined, 'main' be a string"),
    ({"kind": "blackbox"}, "'image' must be a string defined in 'exec' for 'blackbox' actions"),
    ({"kind": "blackbox", "image": "Bad Image!"}, "could not parse image name"),
    ({"kind": "blackbox", "image": " openwhisk/example"}, "could not parse image name"),
    ({"kind": "sequence"}, "'components' must be defined for sequence kind"),
    ({"kind": "sequence", "components": "a"}, "'components' must be an array"),
])
def test_exec_errors(exec_, message):
    with pytest.raises(Invalid, match=message):
        parse_exec(exec_, resolve)


def test_binary_detection():
    assert is_binary_code("UEsDBA==") and not is_binary_code("function main(){}")
    assert not is_binary_code("") and not is_binary_code("abc") and not is_binary_code(None)
    assert is_binary_code("UEsD") and is_binary_code("UEs=") and is_binary_code(" UE== \n")
    assert not is_binary_code("U===") and not is_binary_code("====") and not is_binary_code("UE=A")
    assert not is_binary_code("UEsD=A==") and not is_binary_code("UEsDB===")


def test_binary_detection_and_listing_hold_no_copy_of_the_code():
    """A 4 MB archive: its test held ~40 bytes a character (a backtracking group repeated a million times), and
    every store write and listing summary ran it again even when the document says `binary`."""
    code = base64.b64encode(b"z" * 3_000_000).decode()
    tracemalloc.start()
    try:
        assert is_binary_code(code)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        assert listed({"exec": {"kind": "python:3", "code": code, "binary": False}})["exec"]["binary"] is False
        _, listing_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000 and listing_peak < 100_000, (peak, listing_peak)


def test_action_create_defaults_and_annotations():
    put = ActionPut.from_json({"exec": {"kind": "nodejs:20", "code": "c"}, "parameters": [{"key": "a", "value": 1}],
                               "annotations": [{"key": "web-export", "value": True}]}, resolve)
    action = put.create(EntityPath.of("guest"), "hello", STD)
    body = action.to_json()
    assert body["version"] == "0.0.1" and body["publish"] is False
    assert body["limits"] == {"timeout": 60000, "memory": 256, "logs": 10, "concurrency": 1}
    assert Parameters.from_json(body["annotations"]).to_dict() == \
        {"web-export": True, "provide-api-key": False, "exec": "nodejs:20"}
    assert action.to_json(code=False)["exec"] == {"kind": "nodejs:20", "binary": False}
    assert action.summary()["exec"] == {"binary": False}
    doc = action.to_doc()
    assert doc["_id"] == "guest/hello" and doc["entityType"] == "action"
    assert Action.from_doc(doc, STD) == action


def test_action_create_requires_exec():
    with pytest.raises(Invalid, match="exec undefined"):
        ActionPut.from_json({}, resolve).create(EntityPath.of("guest"), "x", STD)


def test_action_update_merges():
    old = ActionPut.from_json({"exec": {"kind": "nodejs:20", "code": "c"}, "parameters": [{"key": "a", "value": 1}],
                               "annotations": [{"key": "x", "value": 1}, {"key": "y", "value": 2}],
                               "limits": {"memory": 128}}, resolve).create(EntityPath.of("g"), "a", STD)
    new = ActionPut.from_json({"annotations": [{"key": "z", "value": 3}], "delAnnotations": ["x"],
                               "limits": {"timeout": 1000}}, resolve).update(old)
    assert new.version.patch == 2 and new.parameters.to_dict() == {"a": 1}
    assert new.limits.memory == 128 and new.limits.timeout == 1000
    ann = new.annotations.to_dict()
    assert "x" not in ann and ann["y"] == 2 and ann["z"] == 3 and ann["exec"] == "nodejs:20"
    versioned = ActionPut.from_json({"version": "3.0.0"}, resolve).update(new)
    assert str(versioned.version) == "3.0.0"


def test_sequence_stores_actions_parameter_and_switching_back_clears_it():
    seq = ActionPut.from_json({"exec": {"kind": "sequence", "components": ["/_/a"]},
                               "parameters": [{"key": "ignored", "value": 1}]}, resolve).resolve("guest")
    action = seq.create(EntityPath.of("guest"), "s", STD)
    assert action.parameters.to_dict() == {"_actions": ["/guest/a"]}
    plain = ActionPut.from_json({"exec": {"kind": "nodejs:20", "code": "c"}}, resolve).update(action)
    assert plain.parameters.to_dict() == {}


def test_final_keys_need_boolean_true():
    base = ActionPut.from_json({"exec": {"kind": "nodejs:20", "code": "c"},
                                "parameters": [{"key": "a", "value": 1}, {"key": "b", "value": None}]}, resolve)
    final = ActionPut.from_json({"annotations": [{"key": "final", "value": True}]}, resolve)
    action = base.create(EntityPath.of("g"), "a", STD)
    assert action.final_keys == set()
    assert final.update(action).final_keys == {"a"}


def test_trigger_rules_and_feed():
    trigger = TriggerPut.from_json({"parameters": [{"key": "p", "value": 1}]}).create(EntityPath.of("g"), "t")
    linked = trigger.with_rule("g/r", RuleLink(Rule(EntityPath.of("g"), "r", trigger.fqn, trigger.fqn).action))
    assert linked.rule_status("g/r") == ACTIVE and linked.rule_status("g/x") == "inactive"
    doc = linked.to_doc()
    assert doc["rules"]["g/r"] == {"action": {"path": "g", "name": "t"}, "status": "active"}
    assert doc["limits"] == {}
    assert Trigger.from_doc(doc).rules == linked.rules
    assert "rules" not in trigger.to_json()
    updated = TriggerPut.from_json({"annotations": []}).update(linked)
    assert updated.rules == linked.rules and str(updated.version) == "0.0.2"
    with pytest.raises(Invalid, match="Feed name is not valid"):
        TriggerPut.from_json({"annotations": [{"key": "feed", "value": 3}]}).create(EntityPath.of("g"), "t")


def test_rule_put_and_status():
    put = RulePut.from_json({"trigger": "/_/t", "action": {"path": "_", "name": "a"}}).resolve("guest")
    rule = put.create(EntityPath.of("guest"), "r")
    assert rule.to_json("active")["trigger"] == {"path": "guest", "name": "t"}
    assert Rule.from_doc(rule.to_doc()) == rule
    with pytest.raises(Invalid, match="rule requires a valid trigger and a valid action"):
        RulePut.from_json({"trigger": "/_/t"}).create(EntityPath.of("guest"), "r")
    assert parse_status({"status": "inactive"}) == parse_status({"status": " inactive "}) == "inactive"
    for body, reason in (({"status": "xxx"}, "requirement failed: xxx is not a recognized rule state"),
                         ({"status": ""}, "requirement failed: argument undefined"),
                         ({}, "key not found: status"),
                         ({"status": 5}, "5 (of class spray.json.JsNumber)"),
                         ([1], "[1] (of class spray.json.JsArray)")):
        with pytest.raises(Invalid) as refused:
            parse_status(body)
        assert str(refused.value) == reason


def test_package_binding_annotation_is_owned_by_controller():
    put = PackagePut.from_json({"binding": {"namespace": "_", "name": "p"},
                                "annotations": [{"key": "binding", "value": "forged"}]}).resolve("guest")
    pkg = put.create(EntityPath.of("guest"), "b")
    assert pkg.binding == Binding("guest", "p")
    assert pkg.annotations.to_dict() == {"binding": {"namespace": "guest", "name": "p"}}
    assert pkg.summary()["binding"] == {"namespace": "guest", "name": "p"}
    plain = PackagePut.from_json({"binding": {}}).create(EntityPath.of("guest"), "p")
    assert plain.binding is None and plain.to_json()["binding"] == {} and plain.summary()["binding"] is False
    assert Package.from_doc(pkg.to_doc()) == pkg


def test_activation_forms():
    record = Activation("guest", "hello", "guest-subject", new_activation_id(), 1000, 1250,
                        ActivationResponse.error(1, "boom", 17), ("line",),
                        annotations=[{"key": "path", "value": "guest/hello"}])
    doc = record.to_doc()
    assert doc["response"] == {"statusCode": 1, "result": {"error": "boom"}, "size": 17}
    ext = record.extended_json()
    assert ext["response"] == {"result": {"error": "boom"}, "size": 17, "success": False,
                               "status": "application error"}
    assert ext["duration"] == 250 and ext["end"] == 1250
    summary = record.summary_json()
    assert summary["statusCode"] == 1 and "response" not in summary and "logs" not in summary
    trigger = Activation("guest", "t", "s", new_activation_id(), 1000, 0, ActivationResponse.success({"a": 1}))
    assert "end" not in trigger.extended_json() and "duration" not in trigger.extended_json()
    assert "statusCode" not in trigger.summary_json()
    assert Activation.from_doc(doc) == record
    assert STATUS_IDS[2] == "action_developer_error"
    # A sequence stores the sum of its components' durations; the list (the activations view) shows end - start.
    seq = Activation("guest", "seq", "s", new_activation_id(), 1000, 1300, ActivationResponse.success({}),
                     duration=120)
    assert seq.extended_json()["duration"] == 120 and seq.summary_json()["duration"] == 300


def _stored(record: Activation) -> str:
    return json.dumps(record.to_doc())          # key order included: the stored JSON keeps its bytes


def test_activation_constructors_keep_the_stored_form():
    ident = {"namespace": "guest", "name": "hello", "subject": "guest-subject", "activation_id": "a" * 32}
    head = '{"_id": "guest/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "entityType": "activation", "namespace": "guest", ' \
           '"name": "hello", "subject": "guest-subject", "activationId": "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", '
    ran = Activation.of_run(**ident, version="0.0.2", path="guest/pkg/hello", kind="python:3", binding="guest/b",
                            cause="c" * 32, start=1000, end=1250, wait_ms=-5, init_ms=40, timed_out=False,
                            limits={"memory": 256, "timeout": 60000, "instances": 3},
                            response=ActivationResponse.success({"x": 1}, size=7), logs=("l1",))
    assert _stored(ran) == head + (
        '"start": 1000, "end": 1250, "response": {"statusCode": 0, "result": {"x": 1}, "size": 7}, "logs": ["l1"], '
        '"version": "0.0.2", "publish": false, "annotations": [{"key": "path", "value": "guest/pkg/hello"}, '
        '{"key": "waitTime", "value": 0}, {"key": "kind", "value": "python:3"}, {"key": "timeout", "value": false}, '
        '{"key": "limits", "value": {"timeout": 60000, "memory": 256, "instances": 3}}, '
        '{"key": "initTime", "value": 40}, '
        '{"key": "binding", "value": "guest/b"}, {"key": "causedBy", "value": "sequence"}], "duration": 250, '
        '"cause": "cccccccccccccccccccccccccccccccc"}')
    lost = Activation.whisk_error(**ident, version="0.0.1", path="guest/hello", binding=None, at=5, error="gone")
    assert _stored(lost) == head + (
        '"start": 5, "end": 5, "response": {"statusCode": 3, "result": {"error": "gone"}}, "logs": [], '
        '"version": "0.0.1", "publish": false, "annotations": [{"key": "path", "value": "guest/hello"}, '
        '{"key": "kind", "value": "unknown"}], "duration": 0}')
    missing = Activation.whisk_error(**ident, version="0.0.1", path="guest/hello", binding=None, at=5, error="no",
                                     status_code=1, wait_ms=3)
    assert missing.annotation("waitTime") == 3 and missing.response.status_code == 1
    # A component's record the invoker could not run is marked as a sequence's, as OpenWhisk's fallback record is
    # (`InvokerReactive.generateFallbackActivation`: causedBy when the message has a cause).
    component = Activation.whisk_error(**ident, version="0.0.1", path="guest/hello", binding=None, at=5,
                                       error="gone", cause="c" * 32)
    assert component.cause == "c" * 32 and component.annotation("causedBy") == "sequence"
    assert lost.annotation("causedBy") is None
    fired = Activation.of_trigger(**ident, version="0.0.1", start=9, payload=None, logs=('{"rule": "r"}',))
    assert _stored(fired) == head + (
        '"start": 9, "end": 0, "response": {"statusCode": 0, "result": {}}, "logs": ["{\\"rule\\": \\"r\\"}"], '
        '"version": "0.0.1", "publish": false, "annotations": []}')
    seq = Activation.of_composition(**ident, version="0.0.1", path="guest/hello", binding=None, cause=None,
                                    conductor=True, limits={"memory": 512}, wait_ms=2, start=10, end=8, duration=4,
                                    response=ActivationResponse.success({}), logs=("x" * 32,))
    assert seq.end == 10 and seq.run_duration == 4 and seq.memory == 512
    assert [a["key"] for a in seq.annotations] == ["topmost", "path", "kind", "conductor", "limits", "waitTime"]
    assert Activation.from_doc(seq.to_doc()) == seq and ran.without_logs().logs == ()


def test_activation_ids():
    aid = new_activation_id()
    assert parse_activation_id(aid) == aid and len(aid) == 32
    with pytest.raises(Invalid, match="Activation id length is 3 but must be 32."):
        parse_activation_id("abc")
    with pytest.raises(Invalid, match="The activation id is not valid."):
        parse_activation_id("g" * 32)


def test_keys_and_hashes():
    key = generate_key()
    assert len(key) == 64 and key.isalnum()
    assert len(generate_uuid()) == 36
    digest, salt = hash_key(key)
    other = key[:-1] + ("y" if key.endswith("x") else "x")       # never the key itself
    assert key_matches(key, digest, salt) and not key_matches(other, digest, salt)
    assert hash_key(key)[0] != digest                   # a fresh salt per hash
    ident = Identity("guest-subject", "guest", "u", key="k")
    assert ident.api_key == "u:k" and ident.owns("guest") and not ident.owns("other")
    with pytest.raises(Invalid):
        check_subject("abc")


def test_activation_ids_are_distinct_version_7_uuids_in_time_order_across_a_refill_and_a_fork():
    import os
    import time
    import uuid
    before = time.time_ns() // 1_000_000
    ids = [new_activation_id() for _ in range(600)]            # more than one 4 KB read of urandom
    after = time.time_ns() // 1_000_000
    assert len(set(ids)) == 600
    assert all(uuid.UUID(i).version == 7 and uuid.UUID(i).variant == uuid.RFC_4122 and uuid.UUID(i).hex == i
               and parse_activation_id(i) == i for i in ids)
    stamps = [int(i[:12], 16) for i in ids]                    # the first 48 bits: Unix time in milliseconds
    assert stamps == sorted(stamps) and before <= stamps[0] and stamps[-1] <= after
    assert len({i[13:16] + i[17:] for i in ids}) == 600        # the random bits alone tell them apart
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                                               # the child must not repeat the parent's next id
        os.write(write, new_activation_id().encode())
        os._exit(0)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    os.close(write)
    assert child != new_activation_id() and parse_activation_id(child) == child


def test_transaction_ids_are_32_distinct_hex_digits():
    from whisk.entities.activation import random_hex32
    tids = {random_hex32() for _ in range(600)}
    assert len(tids) == 600 and all(len(t) == 32 and int(t, 16) >= 0 and t == t.lower() for t in tids)
