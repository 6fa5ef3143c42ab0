import pytest

from whisk.entities.errors import Invalid
from whisk.entities.limits import (ActionLimits, ActionLimitsPut, Bounds, SystemLimits, UserLimits, format_size,
                                   parse_size)
from whisk.entities.parameters import Parameters, annotation_value, truthy

SYSTEM = SystemLimits()


def test_parameters_round_trip_keeps_init_and_encryption():
    wire = [{"key": "a", "value": 1}, {"key": "b", "value": {"x": [1, 2]}, "init": True},
            {"key": "c", "value": "s", "encryption": "aes-256"}]
    params = Parameters.from_json(wire)
    assert params.to_json() == wire
    assert params.init_keys() == {"b"}
    assert params.to_dict() == {"a": 1, "b": {"x": [1, 2]}, "c": "s"}


def test_parameters_compare_by_values_and_flags_and_read_as_a_mapping():
    wire = [{"key": "b", "value": 1}, {"key": "a", "value": 2, "init": True}]
    params = Parameters.from_json(wire)
    assert params == Parameters.from_json(wire) and hash(params) == hash(Parameters.from_json(wire))
    assert params != Parameters.from_json([{"key": "b", "value": 1}, {"key": "a", "value": 2}])     # init differs
    assert params != Parameters.from_json(wire[:1]) and params != {"b": 1, "a": 2}
    assert list(params) == ["b", "a"] and dict(params) == {"b": 1, "a": 2} and len(params) == 2
    assert params.param("a") is not None and params.param("a").init and params.param("z") is None


def test_parameters_later_duplicates_win():
    params = Parameters.from_json([{"key": "a", "value": 1}, {"key": "a", "value": 2}])
    assert params.to_dict() == {"a": 2}
    # ... and takes the later position
    params = Parameters.from_json([{"key": "a", "value": 1}, {"key": "b", "value": 2}, {"key": "a", "value": 3}])
    assert params.to_json() == [{"key": "b", "value": 2}, {"key": "a", "value": 3}]
    # Plain values carry no flags.
    assert Parameters.of(a=1).with_value("b", 2).to_json() == [{"key": "a", "value": 1}, {"key": "b", "value": 2}]


@pytest.mark.parametrize("bad", [{}, "x", [1], [{"key": 1, "value": 1}], [{"key": "a"}],
                                 [{"key": "a", "value": 1, "init": "yes"}], [{"key": "a", "value": 1, "init": None}],
                                 [{"key": "a", "value": 1, "encryption": None}], [[{"key": "a", "value": 1}]]])
def test_parameters_malformed(bad):
    # One text for every shape OpenWhisk's reader refuses: its "invalid parameter" (an entry that is no object) is
    # thrown inside the Try that answers "parameters malformed!"; a null `encryption` without `init` fits none of
    # its field patterns.
    with pytest.raises(Invalid, match="^parameters malformed!$"):
        Parameters.from_json(bad)


def test_parameters_null_flags_with_init():
    params = Parameters.from_json([{"key": "a", "value": None, "init": False, "encryption": None}])
    assert params.to_json() == [{"key": "a", "value": None}]


def test_parameters_merge_right_wins_and_size():
    left = Parameters.of(a=1, b="x")
    right = Parameters.of(b="y", c=None)
    merged = left | right
    assert merged.to_dict() == {"a": 1, "b": "y", "c": None}
    assert merged.defined_keys() == {"a", "b"}
    assert Parameters.of(ab="é").size == len("ab") + len('"é"'.encode())
    assert not Parameters() and Parameters.of(a=1)


@pytest.mark.parametrize("value,expected", [(True, True), (False, False), (0, False), (2.5, True), ("", False),
                                            ("no", True), (None, False), ([], True), ({}, True)])
def test_truthiness(value, expected):
    assert truthy(value) is expected
    assert Parameters.of(k=value).is_truthy("k") is expected


def test_annotation_value_later_duplicates_win_and_a_missing_one_is_the_default():
    doc = {"annotations": [{"key": "web-export", "value": True}, {"key": "x", "value": 1},
                           {"key": "web-export", "value": False}]}
    assert annotation_value(doc, "web-export") is False and annotation_value(doc, "x", 0) == 1
    assert annotation_value(doc, "raw-http", "no") == "no" and annotation_value({}, "x") is None


def test_truthy_default_for_missing_key():
    assert Parameters().is_truthy("x", default=True) is True


def test_limits_put_parsing():
    put = ActionLimitsPut.from_json({"timeout": 1000.0, "memory": 256, "logs": 5, "concurrency": 1})
    assert put.apply(SYSTEM.standard_action_limits()) == ActionLimits(1000, 256, 5, 1)
    with pytest.raises(Invalid, match="memory limit must be whole number"):
        ActionLimitsPut.from_json({"memory": 1.5})
    with pytest.raises(Invalid, match="time limit malformed"):
        ActionLimitsPut.from_json({"timeout": "1"})
    with pytest.raises(Invalid, match="a negative size"):
        ActionLimitsPut.from_json({"logs": -1})


@pytest.mark.parametrize("limits,message", [
    ({"memory": 1024}, "memory size 1024 MB exceeds allowed threshold of 512 MB"),
    ({"memory": 64}, "memory size 64 MB below allowed threshold of 128 MB"),
    ({"timeout": 50}, "duration 50 milliseconds below allowed threshold of 100 milliseconds"),
    ({"timeout": 400000}, "duration 400000 milliseconds exceeds allowed threshold of 300000 milliseconds"),
    ({"logs": 20}, "log size 20 MB exceeds allowed threshold of 10 MB"),
    ({"concurrency": 5}, "concurrency 5 exceeds allowed threshold of 1"),
    ({"concurrency": 0}, "concurrency 0 below allowed threshold of 1"),
    ({"instances": 31}, "Max action instance concurrency must not exceed your namespace concurrency of 30."),
])
def test_limits_out_of_range(limits, message):
    with pytest.raises(Invalid) as err:
        ActionLimitsPut.from_json(limits).check(UserLimits().effective(SYSTEM))
    assert str(err.value) == message



@pytest.mark.parametrize("limits", [{"memory": 128}, {"memory": 512}, {"timeout": 100}, {"timeout": 300000},
                                    {"logs": 0}, {"logs": 10}, {"concurrency": 1}, {"instances": 30}])
def test_limits_at_either_end_of_the_range_are_allowed(limits):
    """OpenWhisk's ranges are closed (`MemoryLimit`: min <= megabytes <= max, and so on): each end may be set."""
    ActionLimitsPut.from_json(limits).check(UserLimits().effective(SYSTEM))


def test_limits_put_refuses_what_is_no_object_and_negative_instances():
    with pytest.raises(Invalid, match=r"^Object expected in field 'timeout'$"):
        ActionLimitsPut.from_json([256])
    with pytest.raises(Invalid, match=r"^Action container concurrency must be greater than or equal to 0\.$"):
        ActionLimitsPut.from_json({"instances": -1})

def test_namespace_overrides_are_clamped_into_system_range():
    user = UserLimits.from_json({"maxActionMemory": 4096, "minActionMemory": 256, "invocationsPerMinute": 7,
                                 "maxParameterSize": "2 MB", "allowedKinds": ["nodejs:20"]})
    eff = user.effective(SYSTEM)
    assert (eff.min_memory, eff.max_memory) == (256, 512)
    assert eff.invocations_per_minute == 7 and eff.concurrent_invocations == 30
    assert eff.max_parameter_size == SYSTEM.max_parameter_size
    assert eff.kind_allowed("nodejs:20") and not eff.kind_allowed("python:3")
    body = eff.to_json()
    assert body["maxActionMemory"] == 512 and body["maxParameterSize"] == "1 MB"
    assert body["allowedKinds"] == ["nodejs:20"] and "storeActivations" not in body
    with pytest.raises(Invalid):
        ActionLimitsPut(memory=200).check(eff)
    # GET .../limits answers maxActionInstances = concurrentInvocations, whatever the document holds (Limits.scala)
    body = UserLimits.from_json({"concurrentInvocations": 12, "maxActionInstances": 5}).effective(SYSTEM).to_json()
    assert (body["concurrentInvocations"], body["maxActionInstances"]) == (12, 12)


def test_blocked_namespace():
    assert UserLimits(concurrent_invocations=0).effective(SYSTEM).blocked
    assert UserLimits(invocations_per_minute=0).effective(SYSTEM).blocked
    assert not UserLimits().effective(SYSTEM).blocked
    assert not UserLimits(invocations_per_minute=1, concurrent_invocations=1).effective(SYSTEM).blocked


def test_what_an_operator_sets_is_checked():
    """`whisk admin limits set`: no negative count or size, no minimum above its maximum (equal is a fixed value);
    zero and false are values like any other."""
    fixed = UserLimits(min_memory=256, max_memory=256, invocations_per_minute=0, store_activations=False)
    assert fixed.check() == fixed
    for bad, message in ((UserLimits(fires_per_minute=-1), "firesPerMinute must not be negative."),
                         (UserLimits(max_payload_size=-1), "maxPayloadSize must not be negative."),
                         (UserLimits(min_memory=257, max_memory=256),
                          "minActionMemory (257) must not be above maxActionMemory (256).")):
        with pytest.raises(Invalid) as err:
            bad.check()
        assert str(err.value) == message


def test_sizes():
    assert parse_size("1 MB") == 1024 * 1024 and parse_size("512k") == 512 * 1024 and parse_size(10) == 10
    assert [parse_size(text) for text in ("10", "10 B", "3k", "3 KB", "2g", "2 GB")] == \
        [10, 10, 3 * 1024, 3 * 1024, 2 * 1024 ** 3, 2 * 1024 ** 3]
    # As GET .../limits shows a size: in the largest unit it is a whole number of.
    assert [format_size(n) for n in (0, 1000, 2048, 3 * 1024 ** 2, 1024 ** 3, 1024 ** 3 + 1024)] == \
        ["0 B", "1000 B", "2 KB", "3 MB", "1 GB", "1048577 KB"]
    with pytest.raises(Invalid):
        parse_size("lots")


def test_custom_bounds_give_standard_limits():
    system = SystemLimits(memory=Bounds(64, 1024, 128))
    assert system.standard_action_limits().memory == 128
    assert UserLimits().effective(system).max_memory == 1024


def test_limits_document_sizes_and_fields_it_does_not_know():
    """A namespace's sizes are its own when within the system's, and shown as they were set; fields whisk does not
    know (a newer OpenWhisk's) are skipped, not the whole document; a malformed one means standard limits, as
    OpenWhisk reads identities."""
    user = UserLimits.from_json({"maxPayloadSize": "512 KB", "truncationSize": "1 KB", "somethingNew": 1,
                                 "invocationsPerMinute": 7})
    eff = user.effective(SYSTEM)
    assert (eff.max_payload_size, eff.invocations_per_minute) == (512 * 1024, 7)
    assert user.to_json() == {"maxPayloadSize": "512 KB", "truncationSize": "1 KB", "invocationsPerMinute": 7}
    assert UserLimits.lenient({"invocationsPerMinute": "many"}) == UserLimits()


def test_limits_put_applies_each_given_limit_and_allows_zero_instances():
    base = SYSTEM.standard_action_limits()
    assert ActionLimitsPut().apply(base) == base
    put = ActionLimitsPut.from_json({"concurrency": 2, "instances": 0})
    assert put.apply(base) == ActionLimits(base.timeout, base.memory, base.logs, 2, 0)


@pytest.mark.parametrize(("doc", "message"), [
    ({"allowedKinds": "nodejs:20"}, "allowedKinds must be an array of kinds"),
    ({"allowedKinds": ["nodejs:20", 5]}, "allowedKinds must be an array of kinds"),
    ({"storeActivations": "no"}, "storeActivations must be a boolean"),
])
def test_limits_document_fields_of_the_wrong_type(doc, message):
    with pytest.raises(Invalid) as err:
        UserLimits.from_json(doc)
    assert str(err.value) == message
    assert UserLimits.from_json({"storeActivations": False, "warmedContainerKeepingTimeout": "10 minutes"}).to_json() \
        == {"storeActivations": False, "warmedContainerKeepingTimeout": "10 minutes"}
