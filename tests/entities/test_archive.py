"""The controller's reading of a zip's declared size (whisk/entities/archive.py)."""

from __future__ import annotations

import base64

import pytest

from tests.support.zips import zip_of
from whisk.entities.archive import check_unpacked_size, declared_unpacked_size
from whisk.entities.errors import Invalid


def test_the_declared_sizes_are_summed() -> None:
    code = zip_of({"a": b"x" * 1000, "b/c": b"y" * 24})
    assert declared_unpacked_size(code) == 1024
    check_unpacked_size(code, 1024)
    with pytest.raises(Invalid, match="unpacks to 1024 bytes, more than the limit of 1023 bytes"):
        check_unpacked_size(code, 1023)


def test_a_lying_zip_is_taken_at_its_word_here() -> None:
    """The runtimes stop such a zip while unzipping it (tests/runtimes/test_unzip_cap.py)."""
    assert declared_unpacked_size(zip_of({"a": b"\0" * 100_000}, lie_to=10)) == 10


@pytest.mark.parametrize("code", [base64.b64encode(b"\x7fELF not a zip").decode(), "not base64!", ""])
def test_code_that_is_not_a_zip_is_left_to_the_runtime(code: str) -> None:
    assert declared_unpacked_size(code) is None
    check_unpacked_size(code, 1)
