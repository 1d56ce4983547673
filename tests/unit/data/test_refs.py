"""References (NAME@REF) and names."""

from __future__ import annotations

import pytest

from loopline.data.refs import Ref, check_name, check_tag, parse_ref
from loopline.errors import InvalidArgumentError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("wine", Ref("wine", "latest", "")),
        ("wine@latest", Ref("wine", "latest", "")),
        ("wine@3", Ref("wine", "version", "3")),
        ("wine@007", Ref("wine", "version", "7")),
        ("wine@prod", Ref("wine", "tag", "prod")),
        ("wine@v1.2-rc_3", Ref("wine", "tag", "v1.2-rc_3")),
        ("wine@sha:ABCDef12", Ref("wine", "digest", "abcdef12")),
        ("wine@sha:blake3:abcd", Ref("wine", "digest", "abcd")),
        ("ds-2024.v1", Ref("ds-2024.v1", "latest", "")),
        ("  wine@2 ", Ref("wine", "version", "2")),
    ],
)
def test_parse_ref(text: str, expected: Ref) -> None:
    assert parse_ref(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty reference"),
        ("123", "may not be all digits"),
        ("wine@", "nothing after '@'"),
        ("wine@0", "versions start at 1"),
        ("wine@sha:abc", "at least 4 hexadecimal"),
        ("wine@sha:xyzw", "at least 4 hexadecimal"),
        ("wine@a@b", "more than one '@'"),
        ("wi ne@1", "invalid name"),
        ("-wine", "invalid name"),
        ("wine@has space", "invalid tag"),
        ("x" * 300, "the limit is 256"),
    ],
)
def test_parse_ref_refuses(text: str, why: str) -> None:
    with pytest.raises(InvalidArgumentError, match=why):
        parse_ref(text)


def test_ref_round_trips_through_str() -> None:
    for text in ("wine", "wine@3", "wine@prod", "wine@sha:abcd1234"):
        assert str(parse_ref(text)) == text


def test_version_of_a_non_version_ref_is_an_error() -> None:
    assert parse_ref("w@4").version == 4
    with pytest.raises(InvalidArgumentError):
        _ = parse_ref("w@prod").version


def test_names_and_tags() -> None:
    assert check_name("a") == "a"
    assert check_tag("prod") == "prod"
    with pytest.raises(InvalidArgumentError, match="reserved"):
        check_tag("latest")
    with pytest.raises(InvalidArgumentError, match="all digits"):
        check_tag("42")
    with pytest.raises(InvalidArgumentError, match=r"e\.g\. 'my-data-set'"):
        check_name("my data set")
