import pytest

from whisk.entities.errors import Invalid
from whisk.entities.names import EntityName, EntityPath, FullyQualifiedEntityName, namespace_segment, resolve_name
from whisk.entities.semver import SemVer


@pytest.mark.parametrize("name", ["a", "a1", "hello world", "x@y.z", "a&b-c", "_", "a" * 256, "my.pkg"])
def test_valid_names(name):
    assert EntityName(name).value == name


@pytest.mark.parametrize("name", ["", " a", "a ", "-a", "a/b", "a$", "ä", "a\n"])
def test_illegal_names(name):
    with pytest.raises(Invalid, match="The name of the entity contains illegal characters."):
        EntityName(name)


def test_name_too_long_uses_openwhisk_message():
    with pytest.raises(Invalid, match=r"^Name segement longer than allowed: 257 > 256\.$"):
        EntityName("a" * 257)


def test_namespace_messages():
    assert namespace_segment("guest") == "guest"
    with pytest.raises(Invalid, match="The namespace contains illegal characters."):
        namespace_segment("gu$st")
    with pytest.raises(Invalid, match=r"Namespace longer than allowed: 300 > 256\."):
        namespace_segment("n" * 300)


def test_path_drops_empty_segments_and_resolves_default():
    path = EntityPath.parse("/_//pkg/")
    assert path.segments == ("_", "pkg")
    assert str(path.resolve("guest")) == "guest/pkg"
    assert EntityPath.parse("other").resolve("guest") == EntityPath.of("other")
    assert EntityPath.of("ns").is_default_package and not path.is_default_package


def test_fqn_string_and_object_forms():
    fqn = FullyQualifiedEntityName.from_json("/_/pkg/act")
    assert (str(fqn.path), fqn.name) == ("_/pkg", "act")
    assert fqn.resolve("guest").doc_id == "guest/pkg/act"
    assert fqn.resolve("guest").with_leading_slash() == "/guest/pkg/act"
    obj = FullyQualifiedEntityName.from_json({"path": "guest/pkg", "name": "a", "binding": "guest/b"})
    assert obj.to_json() == {"path": "guest/pkg", "name": "a", "binding": "guest/b"}
    assert FullyQualifiedEntityName.from_json("ns/a").doc_id == "ns/a"


@pytest.mark.parametrize("bad", ["a", "/a", "", 5, None, {"path": "x"}, {"path": "x", "name": "b c "}])
def test_fqn_malformed(bad):
    with pytest.raises(Invalid):
        FullyQualifiedEntityName.from_json(bad)


def test_fqn_single_segment_message():
    with pytest.raises(Invalid, match="must contain at least the namespace and the name"):
        FullyQualifiedEntityName.from_json("/onlyname")


def test_resolve_name_relative_forms():
    assert resolve_name("a", "guest").doc_id == "guest/a"
    assert resolve_name("pkg/a", "guest").doc_id == "guest/pkg/a"
    assert resolve_name("/other/a", "guest").doc_id == "other/a"
    assert resolve_name("ns/pkg/a", "guest").doc_id == "ns/pkg/a"
    assert resolve_name("/_/a", "guest").doc_id == "guest/a"
    assert resolve_name("/a", "guest") is None
    assert resolve_name("a/b/c/d", "guest") is None
    assert resolve_name(3, "guest") is None


def test_semver_parse_and_bump():
    assert str(SemVer()) == "0.0.1"
    assert str(SemVer.parse("1.2.3").up_patch()) == "1.2.4"
    assert str(SemVer.parse("2")) == "2.0.0"
    # OpenWhisk's SemVer(str): split on '.', trailing empty parts dropped, the first three read with Java's
    # Integer.parseInt (a sign allowed, 32 bits), anything after them ignored.
    for text, version in (("1.2.3.4", "1.2.3"), ("1.2.3.x", "1.2.3"), ("1.2.", "1.2.0"), ("+1.+2.3", "1.2.3"),
                          ("2147483647", "2147483647.0.0")):
        assert str(SemVer.parse(text)) == version
    for bad in ("0.0.0", "", "a.b.c", "1.-1.0", " 1.2.3", "1.2.3-beta", ".1.2", "1..2", "1.²", "+", "1_0.0.1"):
        with pytest.raises(Invalid):
            SemVer.parse(bad)
    assert str(SemVer.parse("0.0.2147483648")) == "0.0.2147483648"       # stored after updates: still read
    for bad in ("0.0.0", "1.2.3-beta", "1_0.0.1", "2147483648", "1.2.2147483648"):
        with pytest.raises(Invalid, match="^semantic version malformed$"):      # a PUT body's: one text for all
            SemVer.from_json(bad)
    with pytest.raises(Invalid, match="semantic version malformed"):
        SemVer.from_json(1)


@pytest.mark.parametrize(("bad", "message"), [
    ("", "requirement failed: path undefined"),
    ("/ns/a$/x", "requirement failed: path contains invalid parts WrappedArray(ns, a$, x)"),
    ({"path": "ns", "name": "a", "version": 1}, "fully qualified name malformed"),
    ({"path": "ns", "name": "a", "binding": "a$"}, "fully qualified name malformed"),
    ({"path": "ns", "name": "a", "binding": 5}, "fully qualified name malformed"),
    ({"path": "n$", "name": "a"}, "fully qualified name malformed"),
    ({"path": 5, "name": "a"}, "fully qualified name malformed"),
])
def test_fqn_malformed_messages(bad, message):
    """Each refusal in the words of OpenWhisk's reader (spray's `require` for a string, the object reader's own)."""
    with pytest.raises(Invalid) as err:
        FullyQualifiedEntityName.from_json(bad)
    assert str(err.value) == message


def test_fqn_object_form_keeps_its_version():
    obj = FullyQualifiedEntityName.from_json({"path": "guest", "name": "a", "version": "0.0.2"})
    assert obj.to_json() == {"path": "guest", "name": "a", "version": "0.0.2"}


def test_path_and_name_refusals():
    assert namespace_segment("n" * 256) == "n" * 256                     # the longest allowed
    for make, message in ((lambda: EntityPath(()), "path undefined"),
                          (lambda: EntityPath.of("ns", "a$"), "path contains invalid parts ['ns', 'a$']"),
                          (lambda: EntityPath.parse(5), "namespace malformed"),
                          (lambda: EntityName(5), "The name of the entity contains illegal characters.")):
        with pytest.raises(Invalid) as err:
            make()
        assert str(err.value) == message
