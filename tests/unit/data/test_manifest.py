"""Manifests: canonical bytes, digests, parsing."""

from __future__ import annotations

import re

import orjson
import pytest

from loopline.data.manifest import FORMAT, Entry, Manifest
from loopline.errors import IntegrityError, InvalidArgumentError, UnsafePathError

A = "a" * 64
B = "b" * 64


def test_serialization_is_canonical_whatever_the_order() -> None:
    one = Manifest("dir", [Entry("b", 1, B), Entry("a", 2, A, True)])
    two = Manifest("dir", [Entry("a", 2, A, True), Entry("b", 1, B)])
    assert one.to_bytes() == two.to_bytes()
    assert one.digest == two.digest
    assert one.to_bytes() == (
        b'{"format":"loopline.manifest/1","kind":"dir","entries":'
        b'[["a",2,"' + A.encode() + b'",1],["b",1,"' + B.encode() + b'",0]]}'
    )


def test_kind_mode_size_and_digest_all_change_the_digest() -> None:
    base = Manifest("dir", [Entry("a", 1, A)])
    for other in (
        Manifest("file", [Entry("a", 1, A)]),
        Manifest("dir", [Entry("a", 1, A, True)]),
        Manifest("dir", [Entry("a", 2, A)]),
        Manifest("dir", [Entry("a", 1, B)]),
        Manifest("dir", [Entry("b", 1, A)]),
    ):
        assert other.digest != base.digest


def test_round_trip_of_20000_entries() -> None:
    entries = [Entry(f"d{i % 100}/f{i:05d}.bin", i, f"{i:064x}", i % 7 == 0) for i in range(20_000)]
    manifest = Manifest("dir", entries)
    parsed = Manifest.from_bytes(manifest.to_bytes())
    assert parsed == manifest
    assert parsed.digest == manifest.digest
    assert len(parsed.digests()) == 20_000
    assert parsed.total_size == sum(range(20_000))


def test_unicode_paths_are_kept() -> None:
    manifest = Manifest("dir", [Entry("données/été.csv", 1, A)])
    assert Manifest.from_bytes(manifest.to_bytes()).entries[0].path == "données/été.csv"


def test_non_utf8_names_are_refused_by_name() -> None:
    bad = "caf\udce9.csv"  # how Python spells an undecodable byte of a file name
    with pytest.raises(InvalidArgumentError, match="not valid UTF-8"):
        Manifest("dir", [Entry(bad, 1, A)]).to_bytes()


@pytest.mark.parametrize(
    "data",
    [b"not json", b'{"format": "other"}', b'{"format":"loopline.manifest/1"}', b"[]"],
)
def test_garbage_is_an_integrity_error(data: bytes) -> None:
    with pytest.raises(IntegrityError, match="not a loopline manifest"):
        Manifest.from_bytes(data)


def test_under_selects_a_folder_or_a_file() -> None:
    manifest = Manifest(
        "dir", [Entry("a/x", 1, A), Entry("a/y/z", 1, A), Entry("ab", 1, A), Entry("b", 1, B)]
    )
    assert [e.path for e in manifest.under("a")] == ["a/x", "a/y/z"]
    assert [e.path for e in manifest.under("a/y/")] == ["a/y/z"]
    assert [e.path for e in manifest.under("ab")] == ["ab"]
    assert len(manifest.under("")) == 4


@pytest.mark.parametrize("bad", ["../escape.txt", "a/../../escape.txt", "/tmp/escape.txt", "a//b"])
def test_a_manifest_naming_paths_outside_its_folder_is_refused(bad: str) -> None:
    data = orjson.dumps(
        {
            "format": FORMAT,
            "kind": "dir",
            "entries": [["ok.txt", 1, "0" * 64, 0], [bad, 1, "1" * 64, 0]],
        }
    )
    with pytest.raises(UnsafePathError, match=re.escape(repr(bad))):
        Manifest.from_bytes(data)
